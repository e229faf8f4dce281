package rest

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"
)

// The gate decides, as soon as a request's header has arrived and before
// its body is read, whether the node will read the body at all: a request
// for another protocol version, for no path of the protocol, or whose
// credentials do not hold (see auth.go) is answered from its header alone,
// its body is never allocated (the server allows it one byte), and its
// connection is closed. So a peer without the secret costs the node a
// header's parse and, at most, one short MAC.
//
// fasthttp calls headerReceived with the request's header only; the verdict
// reaches the handler, or the error handler if the body is refused, in a
// header of the request that the gate sets on every request (gateHeader),
// overwriting any that a peer sent. A request that reaches the handler
// without it (a caller of the handler that bypasses fasthttp's server, as
// the fuzz tests do) has its header checked there.

// gateHeader carries the gate's verdict on a request to its handler:
// "ok:<role>" for a request whose header holds, "ok:" for one that needs
// no credentials, "<code>:<message>" for a refusal.
var gateHeader = []byte("Dsync-Internal-Gate")

// refusedBody is the body size a refused request may have: fasthttp reads
// no more than that, and refuses a larger one with ErrBodyTooLarge before
// allocating it.
const refusedBody = 1

// headerReceived is the gate, called by fasthttp after a request's header
// and before its body.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	uri := h.RequestURI()
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case bytes.HasPrefix(path, pathVersionPrefix) && !bytes.HasPrefix(path, []byte(PathPrefix)):
		v := path[len(pathVersionPrefix):]
		if i := bytes.IndexByte(v, '/'); i >= 0 {
			v = v[:i]
		}
		version := string(v)
		if _, err := strconv.ParseUint(version, 10, 16); err != nil {
			version = strconv.Quote(version)
		}
		return s.refuse(h, CodeVersion, fmt.Sprintf("rest: the request speaks dsync protocol %s (path %s); this node speaks protocol %d: upgrade the client",
			version, strconv.Quote(string(path)), ProtocolVersion))
	case string(path) == PathHello:
		h.SetBytesKV(gateHeader, gateOpen)
		return fasthttp.RequestConfig{MaxRequestBodySize: refusedBody} // no credentials, no body
	case !s.known(path):
		return s.refuse(h, CodeNotFound, "no such path: "+strconv.Quote(string(path)))
	case s.verify == nil:
		h.SetBytesKV(gateHeader, gateOpen)
		return fasthttp.RequestConfig{}
	}
	signed, err := s.verify.checkHeader(h.Method(), uri, h.PeekBytes(headerAuthKey))
	if err != nil {
		e := err.(*authError)
		return s.refuse(h, e.code, "rest: "+e.Error())
	}
	if signed.role != roleAdmin && adminOnly(path) {
		return s.refuse(h, CodeForbidden, fmt.Sprintf("rest: %s needs the admin role (ServerConfig.AdminSecret); this request is signed for the %s role", path, signed.role))
	}
	if signed.role == roleAdmin {
		h.SetBytesKV(gateHeader, gateAdmin)
	} else {
		h.SetBytesKV(gateHeader, gateLock)
	}
	return fasthttp.RequestConfig{}
}

// The gate's verdicts that let a request through.
var (
	gateOpen  = []byte("ok:")
	gateLock  = []byte("ok:" + roleLock)
	gateAdmin = []byte("ok:" + roleAdmin)
)

var headerAuthKey = []byte(HeaderAuth)

// refuse records the gate's refusal of the request whose header is h, and
// allows it no body.
func (s *Server) refuse(h *fasthttp.RequestHeader, code Code, msg string) fasthttp.RequestConfig {
	h.SetBytesKV(gateHeader, append(strconv.AppendUint(nil, uint64(code), 10), append([]byte{':'}, msg...)...))
	return fasthttp.RequestConfig{MaxRequestBodySize: refusedBody}
}

// refused returns the gate's refusal of rc's request, if it refused it.
func refused(rc *fasthttp.RequestCtx) (Code, string, bool) {
	v := rc.Request.Header.PeekBytes(gateHeader)
	if v == nil || bytes.HasPrefix(v, gateOpen) {
		return 0, "", false
	}
	code, msg, _ := bytes.Cut(v, []byte{':'})
	n, err := strconv.ParseUint(string(code), 10, 8)
	if err != nil {
		return CodeInternal, "rest: bad refusal", true
	}
	return Code(n), string(msg), true
}

// known reports whether path is a path of the protocol.
func (s *Server) known(path []byte) bool {
	if route(path) != epNone {
		return true
	}
	switch string(path) {
	case PathQuery, PathFence, PathWaits, PathEvents, PathVersion:
		return true
	}
	return false
}

// adminOnly reports whether path is served to the admin role alone.
func adminOnly(path []byte) bool { return string(path) == PathLocks }

// authentic checks, once the body has arrived, what the gate could not:
// that the body is the one the header signs, and that the request is not a
// replay; and returns the role the request is signed for. An insecure node
// serves every request in every role. If the request fails, authentic
// answers rc and returns false.
func (s *Server) authentic(rc *fasthttp.RequestCtx, body []byte) (role string, ok bool) {
	if s.verify == nil {
		return roleAdmin, true
	}
	auth := rc.Request.Header.PeekBytes(headerAuthKey)
	switch v := rc.Request.Header.PeekBytes(gateHeader); {
	case bytes.Equal(v, gateLock):
		role = roleLock
	case bytes.Equal(v, gateAdmin):
		role = roleAdmin
	default: // the gate did not run: check the header here
		signed, err := s.verify.checkHeader(rc.Method(), rc.RequestURI(), auth)
		if err != nil {
			e := err.(*authError)
			s.fail(rc, e.code, "rest: "+e.Error())
			return "", false
		}
		if role = signed.role; role != roleAdmin && adminOnly(rc.Path()) {
			s.fail(rc, CodeForbidden, fmt.Sprintf("rest: %s needs the admin role", rc.Path()))
			return "", false
		}
	}
	if err := s.verify.checkBody(auth, body); err != nil {
		e := err.(*authError)
		s.fail(rc, e.code, "rest: "+e.Error())
		return "", false
	}
	return role, true
}
