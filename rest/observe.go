package rest

import (
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// Observer is told what a Server did (ServerConfig.Observer): once per
// request answered (Request), and once per request that ran operations on
// the table, with their outcomes counted (Ops). Package dsyncprom
// implements it with Prometheus metrics.
//
// The server counts per request, not per operation, so that a batch of a
// few hundred operations costs an observer two calls. Both methods are
// called concurrently from the goroutines that serve requests, after the
// answer is ready and before it is written; they must be fast (no I/O, no
// lock held for long) and must not keep their argument, which the server
// reuses.
type Observer interface {
	Request(r *RequestInfo)
	Ops(t *OpTally)
}

// RequestInfo describes one request a Server answered.
type RequestInfo struct {
	// Endpoint names the request's path, from a fixed set: one of the
	// Endpoint constants. A path that is none of the protocol's is
	// EndpointOther.
	Endpoint string
	// Code is CodeOK for a 200 answer, else the code of its ErrorReply:
	// CodeUnauthorized, CodeIdentity and CodeForbidden are refusals of the
	// request's credentials.
	Code Code
	// Duration is how long the server took, from when the whole request
	// had been read until its answer was ready. A request that the gate
	// refused before its body was read has 0.
	Duration time.Duration
	// BodyIn and BodyOut are the sizes of the request's and the answer's
	// bodies, in bytes.
	BodyIn, BodyOut int
}

// Endpoints of RequestInfo.Endpoint.
const (
	EndpointLock        = "lock"
	EndpointRLock       = "rlock"
	EndpointUnlock      = "unlock"
	EndpointRUnlock     = "runlock"
	EndpointRefresh     = "refresh"
	EndpointForceUnlock = "force-unlock"
	EndpointBatch       = "batch"
	EndpointLocks       = "locks"
	EndpointHealth      = "health"
	EndpointHello       = "hello"
	EndpointQuery       = "query"
	EndpointFence       = "fence"
	EndpointWaits       = "waits"
	EndpointVersion     = "version"
	EndpointOther       = "other"
)

// Endpoints lists every value of RequestInfo.Endpoint.
var Endpoints = []string{EndpointLock, EndpointRLock, EndpointUnlock, EndpointRUnlock, EndpointRefresh, EndpointForceUnlock,
	EndpointBatch, EndpointLocks, EndpointHealth, EndpointHello, EndpointQuery, EndpointFence, EndpointWaits, EndpointVersion, EndpointOther}

// MaxReason bounds the reasons an OpTally counts apart: a refusal for a
// reason at or above it is counted in RefusedOther.
const MaxReason = 8

// OpTally counts the outcomes of the operations of one request.
type OpTally struct {
	// Granted counts the lock (write) and rlock (read) operations granted:
	// Granted[1] writes, Granted[0] reads. Reclaimed counts those among
	// them that were reclaims (locker.LockArgs.Reclaim).
	Granted   [2]int
	Reclaimed int
	// Refused counts the lock and rlock operations refused, by
	// locker.Reason (a reason at or above MaxReason in RefusedOther).
	// Draining counts those among them refused with locker.ReasonQuiet
	// while the server drains (see Server.Drain).
	Refused      [MaxReason]int
	RefusedOther int
	Draining     int
	// Released counts the unlock and runlock operations that released a
	// grant, NotHeld those that found none; ForceUnlocked the force-unlocks
	// that removed something, whatever their reply.
	Released, NotHeld, ForceUnlocked int
	// Refreshed and RefreshNotHeld count the UIDs of refresh operations by
	// outcome.
	Refreshed, RefreshNotHeld int
	// Failed counts the operations that failed with an error, by the Code
	// they were answered with (indexed by Code; codes past the array's end
	// in Failed[CodeInternal]).
	Failed [16]int
}

// tally counts the outcomes of ops, whose results are in res, for the
// observer, which it calls.
func (s *Server) tally(ops []BatchOp, res []BatchResult) {
	var t OpTally
	draining := s.draining.Load()
	for i := range res {
		op, r := &ops[i], &res[i]
		if r.Code != CodeOK {
			c := int(r.Code)
			if c >= len(t.Failed) {
				c = int(CodeInternal)
			}
			t.Failed[c]++
			continue
		}
		switch op.Verb {
		case VerbLock, VerbRLock:
			mode := 0
			if op.Verb == VerbLock {
				mode = 1
			}
			switch {
			case r.Reply.OK:
				t.Granted[mode]++
				if op.Lock.Reclaim {
					t.Reclaimed++
				}
			case r.Reply.Reason < MaxReason:
				t.Refused[r.Reply.Reason]++
				if draining && r.Reply.Reason == locker.ReasonQuiet {
					t.Draining++
				}
			default:
				t.RefusedOther++
			}
		case VerbUnlock, VerbRUnlock:
			if r.Reply.OK {
				t.Released++
			} else {
				t.NotHeld++
			}
		case VerbForceUnlock:
			if r.Reply.OK {
				t.ForceUnlocked++
			}
		case VerbRefresh:
			for _, st := range r.Refresh.Status {
				if st == locker.RefreshRefreshed {
					t.Refreshed++
				} else {
					t.RefreshNotHeld++
				}
			}
		}
	}
	s.cfg.Observer.Ops(&t)
}

// observed wraps the server's handler so that the observer hears of every
// request it answers.
func (s *Server) observed(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		start := monoNanos()
		next(rc)
		s.observeAnswer(rc, time.Duration(monoNanos()-start))
	}
}

// observeAnswer tells the observer of rc's answer.
func (s *Server) observeAnswer(rc *fasthttp.RequestCtx, d time.Duration) {
	info := RequestInfo{
		Endpoint: endpointName(rc.Path()),
		Duration: d,
		BodyIn:   len(rc.Request.Body()),
		BodyOut:  len(rc.Response.Body()),
	}
	if rc.Response.StatusCode() != fasthttp.StatusOK {
		info.Code = errorCode(rc.Response.Body())
	}
	s.cfg.Observer.Request(&info)
}

// endpointName returns the Endpoint constant of path.
func endpointName(path []byte) string {
	switch string(path) {
	case PathLock:
		return EndpointLock
	case PathRLock:
		return EndpointRLock
	case PathUnlock:
		return EndpointUnlock
	case PathRUnlock:
		return EndpointRUnlock
	case PathRefresh:
		return EndpointRefresh
	case PathForceUnlock:
		return EndpointForceUnlock
	case PathBatch:
		return EndpointBatch
	case PathLocks:
		return EndpointLocks
	case PathHealth:
		return EndpointHealth
	case PathHello:
		return EndpointHello
	case PathQuery:
		return EndpointQuery
	case PathFence:
		return EndpointFence
	case PathWaits:
		return EndpointWaits
	case PathVersion:
		return EndpointVersion
	}
	return EndpointOther
}

// errorCode reads the code of an ErrorReply without allocating its
// message; CodeInternal if body is not one.
func errorCode(body []byte) Code {
	n, b, err := msgp.ReadMapHeaderBytes(body)
	if err != nil {
		return CodeInternal
	}
	for range n {
		var key []byte
		if key, b, err = msgp.ReadMapKeyZC(b); err != nil {
			return CodeInternal
		}
		if string(key) == "c" {
			c, _, err := msgp.ReadUint8Bytes(b)
			if err != nil || c == 0 {
				return CodeInternal
			}
			return Code(c)
		}
		if b, err = msgp.Skip(b); err != nil {
			return CodeInternal
		}
	}
	return CodeInternal
}
