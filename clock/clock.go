// Package clock is the source of time for everything in this module that waits
// or measures: the node table's expiry ([github.com/dsync-go/dsync/locker]), the refresher's
// ticks ([github.com/dsync-go/dsync/refresher]), the client's retry back-off and its validity
// deadline ([github.com/dsync-go/dsync/dsync]).
//
// Production code uses Real. Tests and the simulation use a *Fake, whose time
// moves only when the test calls Advance, so that a scenario that spans minutes
// of lock validity runs in microseconds and replays the same way every time.
//
// Durations are always measured on the clock of the process that measures them
// (for the real clock, Go's monotonic clock). Nothing in this module compares
// timestamps taken on different machines.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and makes timers. Implementations are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time. For Real it carries a monotonic reading, so
	// Sub between two values of Now is immune to wall-clock steps.
	Now() time.Time
	// NewTimer returns a timer that fires once, d after now.
	NewTimer(d time.Duration) Timer
	// Since returns Now().Sub(t).
	Since(t time.Time) time.Duration
}

// Timer is a single-shot timer, like *time.Timer, whose channel is reached
// through a method so that fake timers can implement it.
type Timer interface {
	// C returns the channel on which the firing time is delivered.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it stopped a
	// pending timer. As with time.Timer in Go 1.23 and later, no stale value is
	// received from C after Stop or Reset returns.
	Stop() bool
	// Reset changes the timer to fire d after now, reporting whether it had
	// been pending.
	Reset(d time.Duration) bool
}

// Real returns the clock of the running process, backed by package time.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }
func (realClock) NewTimer(d time.Duration) Timer  { return realTimer{time.NewTimer(d)} }

// AfterFunc calls fn on a goroutine of its own after d, as time.AfterFunc
// does, and returns its Stop.
func (realClock) AfterFunc(d time.Duration, fn func()) (stop func() bool) {
	return time.AfterFunc(d, fn).Stop
}

// AfterFunc calls fn, on a goroutine of its own, once d has passed on c, and
// returns a function that cancels the call if it has not happened and
// reports whether it did cancel it. It uses c's own AfterFunc if c has one
// (every clock of this package does), else a timer of c and a goroutine.
func AfterFunc(c Clock, d time.Duration, fn func()) (stop func() bool) {
	if af, ok := c.(interface {
		AfterFunc(time.Duration, func()) func() bool
	}); ok {
		return af.AfterFunc(d, fn)
	}
	return afterFunc(c.NewTimer(d), fn)
}

// afterFunc calls fn when t fires, on a goroutine that waits for it, unless
// the returned stop is called first.
func afterFunc(t Timer, fn func()) (stop func() bool) {
	stopped := make(chan struct{})
	go func() {
		select {
		case <-t.C():
			fn()
		case <-stopped:
		}
	}()
	var once sync.Once
	return func() bool {
		ok := t.Stop()
		once.Do(func() { close(stopped) })
		return ok
	}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Sleep blocks until d has passed on c or ctx is done, whichever is first. It
// reports whether the full duration passed.
func Sleep(ctx interface{ Done() <-chan struct{} }, c Clock, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// OrReal returns c, or Real if c is nil. Config structs use it to give a nil
// Clock field its documented default.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// WithTimeout returns a copy of ctx that is cancelled when d has passed on c,
// like context.WithTimeout but measured on c so that fake clocks drive it. The
// cancel function must be called to release its resources.
func WithTimeout(ctx context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := c.(realClock); ok {
		return context.WithTimeout(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := c.NewTimer(d)
	go func() {
		select {
		case <-t.C():
			cancel(context.DeadlineExceeded)
		case <-ctx.Done():
			t.Stop()
		}
	}()
	return ctx, func() {
		t.Stop() // at once, so that a fake clock no longer counts it pending
		cancel(context.Canceled)
	}
}
