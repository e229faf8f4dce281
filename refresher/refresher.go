// Package refresher keeps the locks a process holds alive on the nodes that
// granted them, and tells each lock's owner when it is lost.
//
// One Refresher serves every lock of a quorum client. Every Interval it sends
// each node one Refresh request carrying the UIDs of all the locks it holds,
// so refresh traffic grows with the number of nodes, not with the number of
// locks times the number of nodes.
//
// A lock is lost when either
//   - more than n−quorum nodes positively answer that they do not hold it (an
//     unreachable node is not such an answer), or
//   - no refresh has reached a quorum of nodes for a whole Validity, less a
//     safety margin: by then the nodes may have expired it, so its holder
//     must stop before they do.
//
// When a lock is lost the refresher forgets it and calls its OnLost function.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Defaults for the zero values of Config.
const (
	DefaultInterval    = 10 * time.Second
	DefaultCallTimeout = 5 * time.Second
)

// Why a lock was lost. OnLost receives an error wrapping one of them, and
// both wrap ErrLost.
var (
	// ErrLost is wrapped by every reason a lock can be lost for.
	ErrLost = errors.New("refresher: lock lost")
	// ErrNotHeld: more than n−quorum nodes said they do not hold the lock.
	ErrNotHeld = fmt.Errorf("%w: nodes no longer hold it", ErrLost)
	// ErrExpired: no refresh reached a quorum for the validity period.
	ErrExpired = fmt.Errorf("%w: no refresh reached a quorum within the validity", ErrLost)
	// ErrStopped: the refresher was closed, so nothing keeps the lock alive.
	ErrStopped = fmt.Errorf("%w: refreshing stopped", ErrLost)
)

// Config configures a Refresher. The zero value gives the documented
// defaults.
type Config struct {
	// Interval is the time between refresh rounds. If zero, DefaultInterval.
	Interval time.Duration
	// CallTimeout bounds one node's refresh call. If zero, the smaller of
	// DefaultCallTimeout and Interval.
	CallTimeout time.Duration
	// Validity is how long the nodes keep a grant without a refresh. If
	// zero, locker.DefaultValidity. It must be more than Interval.
	Validity time.Duration
	// Clock is the source of time. If nil, clock.Real().
	Clock clock.Clock
	// OnRound, if set, is called on the refresher's goroutine after each
	// round, for metrics and logs. It must not block.
	OnRound func(RoundStats)
}

// RoundStats summarises one refresh round.
type RoundStats struct {
	Locks     int // locks refreshed in the round
	Requests  int // refresh requests sent: one per node
	Failed    int // requests that failed as a whole
	Lost      int // locks found lost (not held on enough nodes)
	Refreshed int // locks a quorum of nodes refreshed
}

// Validate reports the first field of c that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Interval < 0 || c.CallTimeout < 0 || c.Validity < 0:
		return fmt.Errorf("refresher: negative duration in %+v", c)
	case c.Interval >= c.Validity:
		return fmt.Errorf("refresher: refresh interval %v is not shorter than the validity %v", c.Interval, c.Validity)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = min(DefaultCallTimeout, c.Interval)
	}
	if c.Validity == 0 {
		c.Validity = locker.DefaultValidity
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}

// margin is how long before the nodes' expiry a holder gives its lock up, to
// allow for the nodes' clocks running a little faster than the holder's.
func (c Config) margin() time.Duration { return c.Validity / 50 }

// Lock is a held lock, as registered with Add.
type Lock struct {
	// UID is the lock's identity on the nodes.
	UID string
	// Quorum is how many nodes must hold the lock for it to be held.
	Quorum int
	// Acquired is when the request that acquired the lock was sent, on the
	// refresher's clock. The lock's validity is counted from there.
	Acquired time.Time
	// OnLost is called once, on the refresher's goroutine, if the lock is
	// lost; the lock is no longer registered by then. It must not block.
	OnLost func(err error)
}

// Refresher refreshes registered locks on every node. It is safe for
// concurrent use.
type Refresher struct {
	cfg     Config
	lockers []locker.NetLocker

	mu       sync.Mutex // guards locks and earliest
	locks    map[string]*entry
	earliest time.Time // no lock's deadline is before this (may be stale-early)

	wake   chan struct{} // nudges the loop to re-read earliest
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

type entry struct {
	Lock
	deadline time.Time // when the holder must give the lock up
}

// New returns a Refresher for locks held on lockers and starts its
// goroutine; Close stops it. It returns an error if cfg is invalid or there
// are no lockers.
func New(lockers []locker.NetLocker, cfg Config) (*Refresher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(lockers) == 0 {
		return nil, errors.New("refresher: no lockers")
	}
	r := &Refresher{
		cfg:     cfg.withDefaults(),
		lockers: lockers,
		locks:   make(map[string]*entry),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.loop()
	return r, nil
}

// Add registers l for refreshing. Its deadline is l.Acquired plus the
// validity less a safety margin. Adding a UID that is registered replaces it.
func (r *Refresher) Add(l Lock) {
	e := &entry{Lock: l, deadline: l.Acquired.Add(r.cfg.Validity - r.cfg.margin())}
	r.mu.Lock()
	r.locks[l.UID] = e
	nudge := r.earliest.IsZero() || e.deadline.Before(r.earliest)
	if nudge {
		r.earliest = e.deadline
	}
	r.mu.Unlock()
	if nudge {
		r.nudge()
	}
}

// Remove stops refreshing uid. It reports whether uid was registered; false
// means it was never added or was already reported lost.
func (r *Refresher) Remove(uid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.locks[uid]
	delete(r.locks, uid)
	return ok
}

// Deadline returns when the holder of uid must give its lock up: the time,
// on the refresher's clock, when the last refresh that reached a quorum (or
// the acquisition) stops vouching for it, less the safety margin. It
// reports false if uid is not registered (released, or reported lost). A
// holder that checks Deadline against its clock learns that it stalled past
// its validity even before the refresher's loop has run to report it.
func (r *Refresher) Deadline(uid string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.locks[uid]
	if !ok {
		return time.Time{}, false
	}
	return e.deadline, true
}

// Len returns the number of registered locks.
func (r *Refresher) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.locks)
}

// Close stops refreshing. Locks still registered are reported lost, with
// ErrStopped, before Close returns: nothing keeps them alive any more. It
// returns nil.
func (r *Refresher) Close() error {
	r.closed.Do(func() {
		close(r.stop)
		<-r.done
		r.mu.Lock()
		left := r.locks
		r.locks = map[string]*entry{}
		r.mu.Unlock()
		for _, e := range left {
			e.OnLost(fmt.Errorf("%w (lock %s)", ErrStopped, e.UID))
		}
	})
	<-r.done
	return nil
}

func (r *Refresher) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop runs refresh rounds every Interval and gives up locks whose deadline
// passes. A round runs on its own goroutine so that a slow node cannot delay
// a deadline; a tick that comes while a round is still running is skipped.
func (r *Refresher) loop() {
	defer close(r.done)
	clk := r.cfg.Clock
	tick := clk.NewTimer(r.cfg.Interval)
	defer tick.Stop()
	deadline := clk.NewTimer(time.Hour)
	defer deadline.Stop()
	armDeadline := func() {
		r.mu.Lock()
		earliest := r.earliest
		r.mu.Unlock()
		if earliest.IsZero() {
			deadline.Stop()
			return
		}
		deadline.Reset(max(earliest.Sub(clk.Now()), 0))
	}
	armDeadline()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var results chan roundResult // non-nil while a round runs
	for {
		select {
		case <-r.stop:
			cancel()
			if results != nil {
				<-results
			}
			return
		case <-r.wake:
			armDeadline()
		case <-deadline.C():
			r.expire(clk.Now())
			armDeadline()
		case <-tick.C():
			tick.Reset(r.cfg.Interval)
			if results == nil {
				results = make(chan roundResult, 1)
				go r.round(ctx, results)
			}
		case res := <-results:
			results = nil
			st := r.apply(res)
			r.expire(clk.Now())
			armDeadline()
			// Reported once the loop has settled (deadline re-armed), so
			// an observer that moves a fake clock on seeing it cannot race
			// the re-arming.
			if r.cfg.OnRound != nil {
				r.cfg.OnRound(st)
			}
		}
	}
}

// roundResult is what one refresh round learned.
type roundResult struct {
	sent      time.Time
	failed    int // requests that failed
	uids      []string
	refreshed []int // per UID: nodes that refreshed it
	notHeld   []int // per UID: nodes that said they do not hold it
}

// round refreshes every registered lock on every node, one request per
// node, and sends what it learned to out.
func (r *Refresher) round(ctx context.Context, out chan<- roundResult) {
	r.mu.Lock()
	uids := make([]string, 0, len(r.locks))
	for uid := range r.locks {
		uids = append(uids, uid)
	}
	r.mu.Unlock()
	res := roundResult{
		sent:      r.cfg.Clock.Now(),
		uids:      uids,
		refreshed: make([]int, len(uids)),
		notHeld:   make([]int, len(uids)),
	}
	if len(uids) == 0 {
		out <- res
		return
	}
	var (
		mu sync.Mutex // guards res counts
		wg sync.WaitGroup
	)
	for _, l := range r.lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := clock.WithTimeout(ctx, r.cfg.Clock, r.cfg.CallTimeout)
			defer cancel()
			reply, err := l.Refresh(cctx, locker.RefreshArgs{UIDs: uids})
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(reply.Status) != len(uids) {
				res.failed++ // unknown: neither a refresh nor a denial
				return
			}
			for i, st := range reply.Status {
				switch st {
				case locker.RefreshRefreshed:
					res.refreshed[i]++
				case locker.RefreshNotHeld:
					res.notHeld[i]++
				}
			}
		}()
	}
	wg.Wait()
	out <- res
}

// apply updates deadlines from a round, reports the locks it found lost,
// and returns the round's summary.
func (r *Refresher) apply(res roundResult) RoundStats {
	n := len(r.lockers)
	var lost []*entry
	st := RoundStats{Locks: len(res.uids), Failed: res.failed}
	if len(res.uids) > 0 {
		st.Requests = n
	}
	r.mu.Lock()
	for i, uid := range res.uids {
		e := r.locks[uid]
		if e == nil {
			continue // released while the round ran
		}
		switch {
		case res.notHeld[i] > n-e.Quorum:
			delete(r.locks, uid)
			lost = append(lost, e)
		case res.refreshed[i] >= e.Quorum:
			// The nodes refreshed no earlier than the request was sent.
			e.deadline = res.sent.Add(r.cfg.Validity - r.cfg.margin())
			st.Refreshed++
		}
	}
	r.mu.Unlock()
	st.Lost = len(lost)
	for _, e := range lost {
		e.OnLost(fmt.Errorf("%w (lock %s)", ErrNotHeld, e.UID))
	}
	return st
}

// expire reports every lock whose deadline has passed and recomputes the
// earliest deadline.
func (r *Refresher) expire(now time.Time) {
	var lost []*entry
	r.mu.Lock()
	r.earliest = time.Time{}
	for uid, e := range r.locks {
		if !e.deadline.After(now) {
			delete(r.locks, uid)
			lost = append(lost, e)
		} else if r.earliest.IsZero() || e.deadline.Before(r.earliest) {
			r.earliest = e.deadline
		}
	}
	r.mu.Unlock()
	for _, e := range lost {
		e.OnLost(fmt.Errorf("%w (lock %s)", ErrExpired, e.UID))
	}
}
