package simulation

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// OpKind is what a recorded lock operation did.
type OpKind uint8

// Kinds of lock operations in a History.
const (
	OpAcquire OpKind = iota // GetLock or GetRLock
	OpRelease               // Unlock or RUnlock, or the crash of a holding client
	OpLost                  // the holder's lock context was cancelled because the lock was lost
)

func (k OpKind) String() string {
	switch k {
	case OpAcquire:
		return "acquire"
	case OpRelease:
		return "release"
	case OpLost:
		return "lost"
	}
	return "?"
}

// Outcome is how a recorded operation ended.
type Outcome uint8

// Outcomes. An operation whose call never returned (its client crashed, or
// the run ended first) is Unknown: it may or may not have taken effect.
const (
	Unknown Outcome = iota
	OK
	Failed
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Infinity is the Return of an operation that never returned.
const Infinity = math.MaxInt64

// Op is one lock operation of one client on one resource. Call and Return
// are positions in the history's single logical order (a counter taken
// atomically with each event), so that "A returned before B was called" is
// exact even when both happened at the same virtual instant.
type Op struct {
	Client   int
	Resource string
	Kind     OpKind
	Write    bool
	// Mode is the lock's mode of multi-granularity locking (locker.ModeIS
	// to locker.ModeX); zero for the classic locks, whose mode Write tells
	// (X or S). See OpMode.
	Mode     locker.Mode
	Outcome  Outcome
	Call     int64
	Return   int64 // Infinity while pending
	CallAt   time.Time
	ReturnAt time.Time // zero while pending
	Err      string    // the error of a failed acquire, for reports
	// CondWait marks the acquisition inside a Cond.Wait: its wait includes
	// the wait for a signal, which CheckCond checks, so the lock's liveness
	// bound does not apply to it.
	CondWait bool
}

// OpMode returns the mode of o's lock: o.Mode if set, and otherwise X for
// a write lock and S for a read lock.
func OpMode(o Op) locker.Mode { return lockMode(o.Mode, o.Write) }

// lockMode returns mode if set, and otherwise X for a write lock and S for
// a read lock.
func lockMode(mode locker.Mode, write bool) locker.Mode {
	switch {
	case mode != 0:
		return mode
	case write:
		return locker.ModeX
	}
	return locker.ModeS
}

// modeLetter names a mode in histories: w and r for the classic locks,
// the mode's name for the intention modes.
func modeLetter(mode locker.Mode, write bool) string {
	switch lockMode(mode, write) {
	case locker.ModeX:
		return "w"
	case locker.ModeS:
		return "r"
	}
	return mode.String()
}

func (o Op) String() string {
	mode := modeLetter(o.Mode, o.Write)
	ret := "…"
	if o.Return != Infinity {
		ret = fmt.Sprint(o.Return)
	}
	return fmt.Sprintf("c%d %s(%s,%s)=%v [%d,%s]", o.Client, o.Kind, mode, o.Resource, o.Outcome, o.Call, ret)
}

// History records lock operations as they happen. Safe for concurrent use.
type History struct {
	clk clock.Clock

	mu  sync.Mutex // guards the fields below
	seq int64
	ops []Op
}

// NewHistory returns an empty history whose virtual times come from clk.
func NewHistory(clk clock.Clock) *History { return &History{clk: clock.OrReal(clk)} }

// next returns the next logical time; h.mu must be held.
func (h *History) next() int64 {
	h.seq++
	return h.seq
}

// Seq returns a fresh logical time, ordered with every recorded event. The
// register workload uses it to place critical sections in the same order.
func (h *History) Seq() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next()
}

// Invoke records the call of an operation and returns its id for Finish.
func (h *History) Invoke(client int, resource string, kind OpKind, write bool) int {
	return h.invoke(client, resource, kind, write, 0)
}

// InvokeMode records the call of an operation on a lock of mode (see
// Op.Mode), and returns its id for Finish.
func (h *History) InvokeMode(client int, resource string, kind OpKind, mode locker.Mode) int {
	return h.invoke(client, resource, kind, mode == locker.ModeX, mode)
}

func (h *History) invoke(client int, resource string, kind OpKind, write bool, mode locker.Mode) int {
	now := h.clk.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, Op{Client: client, Resource: resource, Kind: kind, Write: write, Mode: mode,
		Call: h.next(), Return: Infinity, CallAt: now})
	return len(h.ops) - 1
}

// PointMode records, as Point does, an operation at one instant on a lock
// of mode.
func (h *History) PointMode(client int, resource string, kind OpKind, mode locker.Mode) {
	h.Finish(h.InvokeMode(client, resource, kind, mode), OK, nil)
}

// markCondWait marks operation id as the acquisition inside a Cond.Wait.
func (h *History) markCondWait(id int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops[id].CondWait = true
}

// Finish records the return of operation id with its outcome; err, if not
// nil, is kept for reports.
func (h *History) Finish(id int, outcome Outcome, err error) {
	now := h.clk.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.ops[id]
	op.Outcome, op.Return, op.ReturnAt = outcome, h.next(), now
	if err != nil {
		op.Err = err.Error()
	}
}

// finishAs records the return of operation id, as Finish does, and moves it
// to resource: a semaphore acquisition learns which permit it got only when
// it returns.
func (h *History) finishAs(id int, resource string, outcome Outcome) {
	now := h.clk.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.ops[id]
	op.Resource, op.Outcome, op.Return, op.ReturnAt = resource, outcome, h.next(), now
}

// Point records an operation that happens at one instant, such as the
// notification that a lock was lost.
func (h *History) Point(client int, resource string, kind OpKind, write bool) {
	h.Finish(h.Invoke(client, resource, kind, write), OK, nil)
}

// Holding reports whether client holds a lock as far as its recorded
// operations go: an acquisition returned OK on some resource, and no release
// or loss of that resource was recorded after it.
func (h *History) Holding(client int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := map[string]bool{}
	for _, op := range h.ops {
		if op.Client != client {
			continue
		}
		switch {
		case op.Kind == OpAcquire && op.Outcome == OK:
			held[op.Resource] = true
		case op.Kind == OpRelease || op.Kind == OpLost:
			delete(held, op.Resource)
		}
	}
	return len(held) > 0
}

// Ops returns a copy of the operations recorded so far, in call order.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}
