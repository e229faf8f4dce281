package rest

import (
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

// Authentication. Every request carries the header
//
//	Authorization: DSYNC1-HMAC-SHA256 <timestamp>:<mac>
//
// where <timestamp> is the sender's wall-clock time in decimal nanoseconds
// since the Unix epoch and <mac> is the lowercase hex HMAC-SHA256, keyed by
// the shared secret, of
//
//	method "\n" request-target "\n" timestamp "\n" body
//
// (request-target is the path and query exactly as sent on the request line).
// A node accepts a request only if the MAC matches (compared in constant time),
// the timestamp is within its replay window of its own clock, and it has not
// accepted the same MAC before (it remembers each MAC while a replay of it
// could pass the window check, and at least twice the window after it
// accepted it: see replayCache). This is the one place in
// the module where two machines' clocks are compared: their wall clocks must
// agree to within the replay window.

// authScheme starts the Authorization header's value.
const authScheme = "DSYNC1-HMAC-SHA256 "

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
	errAuthMalformed = errors.New("malformed Authorization header: want \"" + authScheme + "<unix-nanoseconds>:<64 hex digits>\"")
	errAuthMAC       = errors.New("MAC does not match: wrong secret, or the request was altered")
	errAuthReplay    = errors.New("replayed request: this MAC was already seen")
	errReplayFull    = errors.New("replay cache full: too many requests within the replay window")
)

// macSize is the size of an HMAC-SHA256.
const macSize = sha256.Size

// authKey computes MACs with one secret. It is safe for concurrent use.
type authKey struct {
	pool sync.Pool // of *macState keyed with the secret
}

// macState is a keyed HMAC with its scratch space, reused through a pool so
// that computing a MAC allocates nothing.
type macState struct {
	h   hash.Hash
	buf []byte // capacity 32: the timestamp's digits, then the sum
}

func newAuthKey(secret string) *authKey {
	key := []byte(secret)
	k := &authKey{}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 32)} }
	return k
}

// mac returns the MAC of a request.
func (k *authKey) mac(method, target []byte, ts int64, body []byte) [macSize]byte {
	m := k.pool.Get().(*macState)
	h := m.h
	h.Reset()
	h.Write(method)
	h.Write(newline)
	h.Write(target)
	h.Write(newline)
	h.Write(strconv.AppendInt(m.buf[:0], ts, 10))
	h.Write(newline)
	h.Write(body)
	var sum [macSize]byte
	copy(sum[:], h.Sum(m.buf[:0]))
	k.pool.Put(m)
	return sum
}

var newline = []byte{'\n'}

// appendAuth appends the Authorization header value for a request.
func (k *authKey) appendAuth(dst, method, target []byte, ts int64, body []byte) []byte {
	return appendAuthValue(dst, ts, k.mac(method, target, ts, body))
}

// appendAuthValue formats an Authorization header value.
func appendAuthValue(dst []byte, ts int64, sum [macSize]byte) []byte {
	dst = append(dst, authScheme...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, ':')
	return hex.AppendEncode(dst, sum[:])
}

// parseAuth parses an Authorization header value. It accepts exactly the
// format appendAuth produces, with lower- or uppercase hex.
func parseAuth(v []byte) (ts int64, sum [macSize]byte, err error) {
	if len(v) == 0 {
		return 0, sum, errAuthMissing
	}
	if len(v) < len(authScheme) || string(v[:len(authScheme)]) != authScheme {
		return 0, sum, errAuthMalformed
	}
	v = v[len(authScheme):]
	// <digits>:<64 hex>
	if len(v) < 2*macSize+2 || v[len(v)-2*macSize-1] != ':' {
		return 0, sum, errAuthMalformed
	}
	digits := v[:len(v)-2*macSize-1]
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && len(digits) > 1) {
		return 0, sum, errAuthMalformed
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, sum, errAuthMalformed
		}
		ts = ts*10 + int64(c-'0')
	}
	if ts < 0 { // overflow of 19 digits
		return 0, sum, errAuthMalformed
	}
	if _, err := hex.Decode(sum[:], v[len(v)-2*macSize:]); err != nil {
		return 0, sum, errAuthMalformed
	}
	return ts, sum, nil
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

// verifier checks requests on the server side: MAC, timestamp window, and
// replays. It is safe for concurrent use.
type verifier struct {
	key    *authKey
	clk    clock.Clock
	window time.Duration
	start  time.Time // the clock's time at creation: the origin of the monotonic times given to seen

	mu   sync.Mutex // guards seen
	seen *replayCache
}

func newVerifier(secret string, clk clock.Clock, window time.Duration, capacity int) *verifier {
	return &verifier{
		key:    newAuthKey(secret),
		clk:    clk,
		window: window,
		start:  clk.Now(),
		seen:   newReplayCache(window, capacity),
	}
}

// verify checks the Authorization header value auth of a request. A nil
// error means the request is authentic, fresh and seen for the first time; it
// is then remembered, so a second call with the same request fails.
func (v *verifier) verify(method, target, auth []byte, body []byte) error {
	ts, got, err := parseAuth(auth)
	if err != nil {
		return err
	}
	want := v.key.mac(method, target, ts, body)
	if !hmac.Equal(got[:], want[:]) {
		return errAuthMAC
	}
	now := v.clk.Now()
	if skew := now.Sub(time.Unix(0, ts)); skew > v.window || skew < -v.window {
		return fmt.Errorf("timestamp %s is %v away from the node's clock, outside the replay window of %v",
			time.Unix(0, ts).UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), v.window)
	}
	return v.remember(now, ts, got)
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
