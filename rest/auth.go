package rest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
)

// Authentication, protocol version 2. Every request but the hello carries
//
//	Authorization: DSYNC2-HMAC-SHA256 <role>:<node>:<incarnation>:<ts>:<body-sha256>:<mac>
//
// where <role> is "lock" or "admin", <node> and <incarnation> name the node
// and its current start as its hello says (see hello.go), <ts> is the
// sender's wall-clock time in decimal nanoseconds since the Unix epoch,
// <body-sha256> is the hex SHA-256 of the body (of nothing, for a GET), and
// <mac> the hex HMAC-SHA256, keyed by the role's secret, of
//
//	"DSYNC2" "\n" method "\n" request-target "\n" role "\n" node "\n" incarnation "\n" ts "\n" body-sha256
//
// (request-target is the path and query exactly as sent; body-sha256 as in
// the header). Everything but the body is thus authenticated by the header
// alone: a node checks it as soon as the header has arrived, before it reads
// or allocates the body, and refuses a request that fails with 401 and
// closes the connection; only then does it read the body (bounded by
// ServerConfig.MaxBodyBytes) and check it against <body-sha256>.
//
// A request is valid for one node, once: the node refuses it if <node> or
// <incarnation> is not its own (CodeIdentity: the client learns them again
// from the hello and signs anew), if <ts> is outside its replay window of its
// clock, or if it has accepted the same MAC before. Since the incarnation is
// drawn anew at every start, a request recorded on its way to one node is
// refused by every other node, and by the same node after it restarts,
// whatever the clocks say. This is the one place in the module where two
// machines' clocks are compared: their wall clocks must agree to within the
// replay window.
//
// Roles: the lock secret signs everything a storage process needs (locks,
// releases, refreshes, reclaims, fences, queries, waits, and force-unlock of
// a UID, which only its holder knows); the admin secret (ServerConfig.
// AdminSecret) also signs listings, which reveal UIDs, and force-unlock of a
// resource's every holder. A UID is thus a capability: random, never shown
// to the lock role, so that nobody but its holder refreshes or releases it.

// authScheme starts the Authorization header's value.
const authScheme = "DSYNC2-HMAC-SHA256 "

// Roles a request is signed for.
const (
	roleLock  = "lock"
	roleAdmin = "admin"
)

// MinSecretLen is the shortest secret a node or client accepts: 32 bytes,
// the size of the MAC's key block that matters.
const MinSecretLen = 32

// DefaultReplayWindow is ServerConfig.ReplayWindow's default.
const DefaultReplayWindow = 15 * time.Second

// DefaultReplayCacheSize is ServerConfig.ReplayCacheSize's default: 2,097,152
// MACs, about 23 to 45 MB when full. A MAC is remembered for about twice
// the replay window, so with DefaultReplayWindow a node refuses requests
// (503) beyond a sustained ~68,000 a second.
const DefaultReplayCacheSize = 1 << 21

// Reasons a request fails authentication. The server sends their text in its
// 401 answer.
var (
	errAuthMissing   = errors.New("missing Authorization header")
	errAuthMalformed = errors.New("malformed Authorization header: want \"" + authScheme + "<role>:<node>:<incarnation>:<unix-nanoseconds>:<64 hex digits>:<64 hex digits>\"")
	errAuthMAC       = errors.New("MAC does not match: wrong secret, or the request was altered")
	errAuthBody      = errors.New("body does not match the SHA-256 in the Authorization header: the request was altered")
	errAuthReplay    = errors.New("replayed request: this MAC was already seen")
	errReplayFull    = errors.New("replay cache full: too many requests within the replay window")
	errNoAdmin       = errors.New("the admin role is refused: this node has no admin secret")
)

// validateSecret reports what is wrong with a secret named what.
func validateSecret(what, s string) error {
	switch {
	case len(s) < MinSecretLen:
		return fmt.Errorf("rest: %s is %d bytes long; it must be at least %d (random bytes, e.g. `openssl rand -hex 32`)", what, len(s), MinSecretLen)
	case s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\n' || s[len(s)-1] == '\r':
		return fmt.Errorf("rest: %s begins or ends with white space: a copying mistake?", what)
	}
	return nil
}

// macSize is the size of an HMAC-SHA256, and of a SHA-256.
const macSize = sha256.Size

// authKey computes MACs with one secret. It is safe for concurrent use.
type authKey struct {
	pool sync.Pool // of *macState keyed with the secret
}

// macState is a keyed HMAC with its scratch space, reused through a pool so
// that computing a MAC allocates nothing.
type macState struct {
	h   hash.Hash
	buf []byte // role and node, digits, then the sum
}

func newAuthKey(secret string) *authKey {
	key := []byte(secret)
	k := &authKey{}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 8+MaxNodeIDLen)} }
	return k
}

// signed is what a request's MAC covers besides its method and target.
type signed struct {
	role        string
	node        string
	incarnation uint64
	ts          int64
	body        [macSize]byte // the body's SHA-256
}

var (
	macPrefix = []byte("DSYNC2\n")
	newline   = []byte{'\n'}
)

// mac returns the MAC of a request.
func (k *authKey) mac(method, target []byte, s *signed) [macSize]byte {
	m := k.pool.Get().(*macState)
	h := m.h
	h.Reset()
	h.Write(macPrefix)
	h.Write(method)
	h.Write(newline)
	h.Write(target)
	h.Write(newline)
	m.buf = append(append(append(m.buf[:0], s.role...), '\n'), s.node...)
	h.Write(m.buf)
	h.Write(newline)
	h.Write(strconv.AppendUint(m.buf[:0], s.incarnation, 10))
	h.Write(newline)
	h.Write(strconv.AppendInt(m.buf[:0], s.ts, 10))
	h.Write(newline)
	h.Write(hex.AppendEncode(m.buf[:0], s.body[:16]))
	h.Write(hex.AppendEncode(m.buf[:0], s.body[16:]))
	var sum [macSize]byte
	copy(sum[:], h.Sum(m.buf[:0]))
	k.pool.Put(m)
	return sum
}

// appendAuth appends the Authorization header value of a request whose
// body is body, signed s (s.body is filled in).
func (k *authKey) appendAuth(dst, method, target []byte, s *signed, body []byte) []byte {
	s.body = sha256.Sum256(body)
	return appendAuthValue(dst, s, k.mac(method, target, s))
}

// appendAuthValue formats an Authorization header value.
func appendAuthValue(dst []byte, s *signed, sum [macSize]byte) []byte {
	dst = append(dst, authScheme...)
	dst = append(dst, s.role...)
	dst = append(dst, ':')
	dst = append(dst, s.node...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, s.incarnation, 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, s.ts, 10)
	dst = append(dst, ':')
	dst = hex.AppendEncode(dst, s.body[:])
	dst = append(dst, ':')
	return hex.AppendEncode(dst, sum[:])
}

// MaxNodeIDLen bounds a node's ID (ServerConfig.NodeID).
const MaxNodeIDLen = 64

// MaxLayoutLen bounds the fingerprint of a node's layout
// (ServerConfig.Layout): room for a change's, two fingerprints joined.
const MaxLayoutLen = 128

// validNodeID reports whether id may name a node: 1 to MaxNodeIDLen bytes
// of letters, digits, '.', '_' and '-'.
func validNodeID(id string) bool {
	return len(id) <= MaxNodeIDLen && validLayout(id)
}

// validLayout reports whether s may be a layout's fingerprint: 1 to
// MaxLayoutLen bytes of letters, digits, '.', '_' and '-'.
func validLayout(id string) bool {
	if len(id) == 0 || len(id) > MaxLayoutLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseAuth parses an Authorization header value: the fields it signs, and
// its MAC. It accepts exactly the format appendAuth produces, with lower- or
// uppercase hex. s.node is known, or a copy of v's.
//
// known is the node ID the caller expects: a header that names it shares
// the caller's string instead of a copy (a request's header is parsed
// twice, and this is the path of every request).
func parseAuth(v []byte, known string) (s signed, sum [macSize]byte, err error) {
	if len(v) == 0 {
		return s, sum, errAuthMissing
	}
	if !bytes.HasPrefix(v, []byte(authScheme)) {
		return s, sum, errAuthMalformed
	}
	v = v[len(authScheme):]
	var fields [6][]byte
	for i := range fields {
		if i == len(fields)-1 {
			fields[i] = v
			break
		}
		j := bytes.IndexByte(v, ':')
		if j < 0 {
			return s, sum, errAuthMalformed
		}
		fields[i], v = v[:j], v[j+1:]
	}
	switch string(fields[0]) {
	case roleLock:
		s.role = roleLock
	case roleAdmin:
		s.role = roleAdmin
	default:
		return s, sum, errAuthMalformed
	}
	if !validNodeID(string(fields[1])) {
		return s, sum, errAuthMalformed
	}
	if string(fields[1]) == known {
		s.node = known
	} else {
		s.node = string(fields[1])
	}
	inc, ok := parseDecimal(fields[2], 20)
	if !ok {
		return s, sum, errAuthMalformed
	}
	s.incarnation = inc
	ts, ok := parseDecimal(fields[3], 19)
	if !ok || ts > 1<<63-1 {
		return s, sum, errAuthMalformed
	}
	s.ts = int64(ts)
	if len(fields[4]) != 2*macSize || len(fields[5]) != 2*macSize {
		return s, sum, errAuthMalformed
	}
	if _, err := hex.Decode(s.body[:], fields[4]); err != nil {
		return s, sum, errAuthMalformed
	}
	if _, err := hex.Decode(sum[:], fields[5]); err != nil {
		return s, sum, errAuthMalformed
	}
	return s, sum, nil
}

// parseDecimal parses 1 to max decimal digits without a leading zero (but
// "0"), as a uint64; false on anything else, or an overflow.
func parseDecimal(b []byte, max int) (uint64, bool) {
	if len(b) == 0 || len(b) > max || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// stamper hands out request timestamps: the clock's time in nanoseconds, but
// strictly increasing, so that two identical requests from one client never
// share a MAC (which the node would reject as a replay) even when the clock
// does not move between them, as a fake clock does not.
type stamper struct {
	clk  clock.Clock
	last atomic.Int64
}

func (s *stamper) next() int64 {
	now := s.clk.Now().UnixNano()
	for {
		last := s.last.Load()
		ts := max(now, last+1)
		if s.last.CompareAndSwap(last, ts) {
			return ts
		}
	}
}

// authError is a refusal of the verifier: the code the node answers with,
// and why.
type authError struct {
	code Code
	err  error
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

func refuse(code Code, err error) *authError { return &authError{code, err} }

// verifier checks requests on the server side: the header (role, node,
// incarnation, timestamp window, MAC) before the body is read, then the body
// and replays. It is safe for concurrent use.
type verifier struct {
	keys        map[string]*authKey // by role; no admin key without an admin secret
	node        string
	incarnation uint64
	clk         clock.Clock
	window      time.Duration
	start       time.Time // the clock's time at creation: the origin of the monotonic times given to seen

	mu   sync.Mutex // guards seen
	seen *replayCache
}

func newVerifier(secret, adminSecret, node string, incarnation uint64, clk clock.Clock, window time.Duration, capacity int) *verifier {
	v := &verifier{
		keys:        map[string]*authKey{roleLock: newAuthKey(secret)},
		node:        node,
		incarnation: incarnation,
		clk:         clk,
		window:      window,
		start:       clk.Now(),
		seen:        newReplayCache(window, capacity),
	}
	if adminSecret != "" {
		v.keys[roleAdmin] = newAuthKey(adminSecret)
	}
	return v
}

// checkHeader checks everything the Authorization header value auth of a
// request signs: its form, its node and incarnation, its timestamp and its
// MAC. It does not look at the body, nor at replays. It returns the signed
// fields, or an *authError.
func (v *verifier) checkHeader(method, target, auth []byte) (signed, error) {
	s, got, err := parseAuth(auth, v.node)
	if err != nil {
		return s, refuse(CodeUnauthorized, err)
	}
	if s.node != v.node || s.incarnation != v.incarnation {
		return s, refuse(CodeIdentity, fmt.Errorf("the request was signed for node %q, start %d; this is node %q, start %d: ask its hello again",
			s.node, s.incarnation, v.node, v.incarnation))
	}
	key := v.keys[s.role]
	if key == nil {
		return s, refuse(CodeUnauthorized, errNoAdmin)
	}
	want := key.mac(method, target, &s)
	if !hmac.Equal(got[:], want[:]) {
		return s, refuse(CodeUnauthorized, errAuthMAC)
	}
	now := v.clk.Now()
	if skew := now.Sub(time.Unix(0, s.ts)); skew > v.window || skew < -v.window {
		return s, refuse(CodeUnauthorized, fmt.Errorf("timestamp %s is %v away from the node's clock, outside the replay window of %v",
			time.Unix(0, s.ts).UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), v.window))
	}
	return s, nil
}

// checkBody checks the body of a request whose header checkHeader accepted
// (auth is that header's value again) and remembers its MAC, so that a
// second call with the same request fails as a replay.
func (v *verifier) checkBody(auth, body []byte) error {
	s, sum, err := parseAuth(auth, v.node)
	if err != nil {
		return refuse(CodeUnauthorized, err)
	}
	if sha256.Sum256(body) != s.body {
		return refuse(CodeUnauthorized, errAuthBody)
	}
	if err := v.remember(v.clk.Now(), s.ts, sum); err != nil {
		if errors.Is(err, errReplayFull) {
			return refuse(CodeBusy, err)
		}
		return refuse(CodeUnauthorized, err)
	}
	return nil
}

// remember records the MAC sum of a request stamped ts (which has passed the
// window check at now), or reports that it was seen before (errAuthReplay),
// or that the replay cache is full (errReplayFull).
//
// A request is accepted while its timestamp is within window of the node's
// clock, so a replay can arrive up to 2×window after the original. The cache
// (see replayCache) keeps every MAC until no replay of it can pass the window
// check on the node's wall clock and at least 2×window after it was last
// added to on the monotonic clock, so that stepping the wall clock back does
// not reopen replays within that time. If the cache is full of MACs it may not
// forget yet, the request is refused as busy rather than weaken the guarantee.
// Keys are the first 8 bytes of the MAC; a collision could only refuse a
// genuine request.
func (v *verifier) remember(now time.Time, ts int64, sum [macSize]byte) error {
	key := binary.LittleEndian.Uint64(sum[:8])
	wall, mono := now.UnixNano(), now.Sub(v.start) // for the real clock, Sub reads the monotonic clock
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seen.insert(ts, key, wall, mono)
}
