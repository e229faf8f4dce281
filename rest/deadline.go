package rest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
)

// deadlineContext is the context of one request on the server: it ends when
// the server closes (its parent ends) or when the client's timeout has passed
// on the server's clock.
//
// It is built for the common case, a table that only asks Err after taking
// its locks: Err reads the clock and costs no timer, no goroutine and no
// channel. Only a table that calls Done gets a channel, and with it a
// goroutine that closes the channel when the deadline passes or the parent
// ends. context.WithTimeout would instead allocate a timer for every
// request, most of which finish in microseconds.
type deadlineContext struct {
	parent   context.Context
	clk      clock.Clock
	start    time.Time     // on clk
	timeout  time.Duration // the context ends timeout after start
	deadline time.Time     // start + timeout
	ended    atomic.Bool   // err is set: Err's fast path

	mu      sync.Mutex    // guards the fields below
	err     error         // set once the context has ended
	done    chan struct{} // made by the first Done; closed when err is set
	stop    chan struct{} // closed by release to end the Done goroutine
	release bool          // release was called
}

func newDeadlineContext(parent context.Context, clk clock.Clock, timeout time.Duration) *deadlineContext {
	now := clk.Now()
	return &deadlineContext{parent: parent, clk: clk, start: now, timeout: timeout, deadline: now.Add(timeout)}
}

// Deadline returns the deadline, measured on the server's clock.
func (c *deadlineContext) Deadline() (time.Time, bool) { return c.deadline, true }

// Value returns the parent's value.
func (c *deadlineContext) Value(key any) any { return c.parent.Value(key) }

// Err returns context.DeadlineExceeded once the deadline has passed, the
// parent's error once it has ended, and nil before. The table asks it once
// per operation of a batch, so while the context lives it takes no lock and
// reads only the monotonic clock (Since).
func (c *deadlineContext) Err() error {
	if !c.ended.Load() {
		var err error
		switch {
		case c.parent.Err() != nil:
			err = c.parent.Err()
		case c.clk.Since(c.start) >= c.timeout:
			err = context.DeadlineExceeded
		default:
			return nil
		}
		c.mu.Lock()
		if c.err == nil {
			c.endLocked(err)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// endLocked records err and closes the Done channel if there is one; c.mu
// must be held.
func (c *deadlineContext) endLocked(err error) {
	c.err = err
	c.ended.Store(true)
	if c.done != nil {
		close(c.done)
	}
}

// Done returns a channel closed when the context ends. The first call starts
// a goroutine that watches the parent and the deadline until then, or until
// the request is finished.
func (c *deadlineContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	if c.release {
		return c.done // the request is over; nobody will wait long
	}
	stop := make(chan struct{})
	c.stop = stop
	t := c.clk.NewTimer(c.deadline.Sub(c.clk.Now()))
	go func() {
		defer t.Stop()
		var err error
		select {
		case <-t.C():
			err = context.DeadlineExceeded
		case <-c.parent.Done():
			err = c.parent.Err()
		case <-stop:
			return
		}
		c.mu.Lock()
		if c.err == nil {
			c.endLocked(err)
		}
		c.mu.Unlock()
	}()
	return c.done
}

// finish ends the Done goroutine, if any. The handler calls it when the
// request is answered; the context stays usable (Err still works). A nil
// c, the context of a request without a timeout, has nothing to end.
func (c *deadlineContext) finish() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release = true
	if c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
}

var _ context.Context = (*deadlineContext)(nil)
