package rest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
)

// The hello tells a client which node it reaches, whatever address it
// dialed (clients reach nodes through proxies, NAT and Kubernetes services),
// so that it signs each request for that node and that start of it alone
// (see auth.go):
//
//	GET /dsync/v2/hello?n=<nonce: 32 to 64 hex digits>   (no credentials) -> HelloReply
//
// The answer is signed over the client's nonce with the node's secrets: a
// client that cannot check it with its own secret refuses the node
// (locker.ErrUnauthorized). A client asks the hello before its first
// request, and again whenever a node answers CodeIdentity (the node
// restarted, or the address now leads to another node).

// QueryNonce is the query parameter of PathHello that carries the client's
// nonce.
const QueryNonce = "n"

// helloPrefix starts what a hello's MACs cover.
var helloPrefix = []byte("DSYNC2-HELLO\n")

// helloMAC returns what a hello answer's MAC is, for key. A node without a
// layout signs what nodes signed before layouts were (no line for it).
func helloMAC(key *authKey, nonce []byte, node string, incarnation uint64, layout string) []byte {
	m := key.pool.Get().(*macState)
	h := m.h
	h.Reset()
	h.Write(helloPrefix)
	h.Write(nonce)
	h.Write(newline)
	m.buf = append(m.buf[:0], node...)
	h.Write(m.buf)
	h.Write(newline)
	h.Write(strconv.AppendUint(m.buf[:0], incarnation, 10))
	if layout != "" {
		h.Write(newline)
		m.buf = append(m.buf[:0], layout...)
		h.Write(m.buf)
	}
	sum := h.Sum(nil)
	key.pool.Put(m)
	return sum
}

// validNonce reports whether n is a nonce a node signs: 32 to 64 hex digits.
func validNonce(n []byte) bool {
	if len(n) < 32 || len(n) > 64 {
		return false
	}
	_, err := hex.DecodeString(string(n))
	return err == nil
}

// newIncarnation draws a node's incarnation: 64 random bits.
func newIncarnation() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// hello answers a hello request.
func (s *Server) hello(rc *fasthttp.RequestCtx) {
	nonce := rc.QueryArgs().Peek(QueryNonce)
	if !validNonce(nonce) {
		s.fail(rc, CodeMalformed, "rest: hello: the nonce (query parameter n) must be 32 to 64 hex digits")
		return
	}
	r := HelloReply{Node: s.node, Incarnation: s.incarnation, Layout: s.cfg.Layout}
	if s.verify != nil {
		r.MAC = helloMAC(s.verify.keys[roleLock], nonce, s.node, s.incarnation, r.Layout)
		if k := s.verify.keys[roleAdmin]; k != nil {
			r.AdminMAC = helloMAC(k, nonce, s.node, s.incarnation, r.Layout)
		}
	}
	out, _ := r.MarshalMsg(nil)
	s.reply(rc, out)
}

// identity is who a client's node is, as its hello said.
type identity struct {
	node        string
	incarnation uint64
	layout      string // the fingerprint of the node's layout, or empty (ServerConfig.Layout)
}

// identity returns the node's identity, asking its hello if the client has
// none: before the first request, and after the node answered CodeIdentity.
// Concurrent callers share one hello.
func (c *Client) identity(deadline time.Time) (*identity, error) {
	if id := c.ident.Load(); id != nil {
		return id, nil
	}
	c.helloMu.Lock()
	defer c.helloMu.Unlock()
	if id := c.ident.Load(); id != nil {
		return id, nil
	}
	id, err := c.hello(deadline)
	if err != nil {
		return nil, err
	}
	c.ident.Store(id)
	return id, nil
}

// forget drops the identity was, if it is still the client's: the node
// answered that a request signed for it was signed for another node or
// start.
func (c *Client) forget(was *identity) {
	c.ident.CompareAndSwap(was, nil)
}

// hello asks the node who it is, and checks that its answer is signed with
// the client's secret.
func (c *Client) hello(deadline time.Time) (*identity, error) {
	var raw [16]byte
	rand.Read(raw[:])
	nonce := hex.EncodeToString(raw[:])
	ex := getExchange()
	defer putExchange(ex)
	ex.target = append(append(append(ex.target[:0], PathHello...), "?"+QueryNonce+"="...), nonce...)
	ex.wire = appendRequest(ex.wire[:0], fasthttp.MethodGet, ex.target, c.addr, nil, nil)
	a, err := c.tr.do(ex.wire, &ex.body, deadline, time.Until(deadline))
	if err != nil {
		return nil, c.transportError(err, time.Until(deadline))
	}
	if a.protocol != ProtocolVersion {
		return nil, &VersionError{Endpoint: c.endpoint, Client: ProtocolVersion, Node: a.protocol}
	}
	if a.status != fasthttp.StatusOK {
		_, err := decodeError(a.status, ex.body)
		return nil, fmt.Errorf("hello: %w", err)
	}
	var r HelloReply
	if left, err := r.UnmarshalMsg(ex.body); err != nil || len(left) > 0 {
		return nil, fmt.Errorf("%w: hello: undecodable answer", ErrProtocol)
	}
	if !validNodeID(r.Node) {
		return nil, fmt.Errorf("%w: hello: node ID %q is not a valid ID", ErrProtocol, r.Node)
	}
	if c.key != nil {
		mac := r.MAC
		if c.role == roleAdmin {
			mac = r.AdminMAC
		}
		if want := helloMAC(c.key, []byte(nonce), r.Node, r.Incarnation, r.Layout); !hmac.Equal(mac, want) {
			return nil, fmt.Errorf("%w: the node's hello is not signed with this client's %s secret: a wrong secret, a node without an admin secret, or not this cluster's node",
				locker.ErrUnauthorized, c.role)
		}
	}
	if c.cfg.Layout != "" && !layout.Compatible(c.cfg.Layout, r.Layout) {
		return nil, &layoutError{endpoint: c.endpoint, node: r.Layout, client: c.cfg.Layout}
	}
	return &identity{node: r.Node, incarnation: r.Incarnation, layout: r.Layout}, nil
}

// Layout returns the fingerprint of the layout of lock sets the client's
// node was given (ServerConfig.Layout), as its signed hello said, or "" if
// it was given none: the client is a layout.Teller. It asks the hello if
// the client has not yet (bounded by ctx's deadline and CallTimeout), and
// otherwise answers from the last one, which the client asks again when
// the node restarts.
func (c *Client) Layout(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	deadline := time.Now().Add(c.cfg.CallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	id, err := c.identity(deadline)
	if le := (*layoutError)(nil); errors.As(err, &le) {
		return le.node, nil // the question is what it is
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", c, err)
	}
	return id.layout, nil
}

// layoutError is a hello that told another layout than the client's
// (ClientConfig.Layout). It wraps ErrLayout.
type layoutError struct{ endpoint, node, client string }

func (e *layoutError) Error() string {
	node := e.node
	if node == "" {
		node = "none"
	}
	return fmt.Sprintf("%v: %s has layout %s, the client %s", ErrLayout, e.endpoint, node, e.client)
}

func (e *layoutError) Unwrap() error { return ErrLayout }
