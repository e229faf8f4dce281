package rest

import (
	"context"
	"sync"
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
	deadline time.Time // on clk

	mu      sync.Mutex    // guards the fields below
	err     error         // set once the context has ended
	done    chan struct{} // made by the first Done; closed when err is set
	stop    chan struct{} // closed by release to end the Done goroutine
	release bool          // release was called
}

func newDeadlineContext(parent context.Context, clk clock.Clock, timeout time.Duration) *deadlineContext {
	return &deadlineContext{parent: parent, clk: clk, deadline: clk.Now().Add(timeout)}
}

// Deadline returns the deadline, measured on the server's clock.
func (c *deadlineContext) Deadline() (time.Time, bool) { return c.deadline, true }

// Value returns the parent's value.
func (c *deadlineContext) Value(key any) any { return c.parent.Value(key) }

// Err returns context.DeadlineExceeded once the deadline has passed, the
// parent's error once it has ended, and nil before.
func (c *deadlineContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if err := c.parent.Err(); err != nil {
			c.endLocked(err)
		} else if !c.clk.Now().Before(c.deadline) {
			c.endLocked(context.DeadlineExceeded)
		}
	}
	return c.err
}

// endLocked records err and closes the Done channel if there is one; c.mu
// must be held.
func (c *deadlineContext) endLocked(err error) {
	c.err = err
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
// request is answered; the context stays usable (Err still works).
func (c *deadlineContext) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release = true
	if c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
}

var _ context.Context = (*deadlineContext)(nil)
