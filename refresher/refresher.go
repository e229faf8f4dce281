// Package refresher keeps the locks a process holds alive on the nodes that
// granted them, reclaims them on nodes that restarted, and tells each lock's
// owner when it is lost. Package [github.com/dsync-go/dsync/dsync] keeps its held
// locks with one; the nodes are [locker.NetLocker]s.
//
// One Refresher serves every lock of a quorum client. Every round it sends
// each node one Refresh request carrying the UIDs of all the locks it holds,
// so refresh traffic grows with the number of nodes, not with the number of
// locks times the number of nodes.
//
// # Validity
//
// Every grant and every refresh answer carries the validity of the node that
// gave it (locker.Reply.Validity, locker.RefreshReply.Validity): how long
// the node keeps the grant without another refresh. A lock's deadline, when
// its holder must stop relying on it, is the time the request that last
// reached a quorum was sent (the acquisition, or a refresh round), plus the
// smallest validity among a quorum of the nodes that answered it (the
// quorum-th largest of their validities), less a margin of a fiftieth for the
// rates of the clocks; Config.Validity, if set, only ever shortens it. The
// nodes' word is thus the one source of truth: a client that was not told,
// or was told wrong, what the nodes' validity is keeps no lock past it.
//
// # Loss
//
// A lock is lost when either
//   - more than n−quorum nodes positively answer that they do not hold it
//     and are not in their restart grace period (an unreachable node is not
//     such an answer), or
//   - no refresh has reached a quorum of nodes before its deadline: by then
//     the nodes may have expired it, so its holder must stop before they do.
//
// When a lock is lost the refresher forgets it and calls its OnLost function.
//
// # Reclaims
//
// A node that restarted has an empty table and a grace period
// (locker.Config.QuietPeriod) in which it grants only reclaims. A refresh
// answer that does not hold a lock and says the node is in its grace is not
// a loss: the refresher sends that node a reclaim of the lock
// (locker.LockArgs.Reclaim, the acquisition's own arguments, naming the
// incarnation the answer named), and a granted reclaim counts as a refresh
// by that node in the round. So a lock outlives the restart of any number
// of its nodes, all of them at once included, with nothing asked of its
// holder.
//
// Two rules keep a reclaim from granting a lock twice; the model of the
// protocol in simulation/model finds a double grant without either.
//
// A lock is reclaimed only on a node that counted for its current
// deadline: one that granted the acquisition (Lock.Held, MarkHeld), or refreshed or
// reclaimed the lock in the refresh round that set the deadline, with a
// validity at least the one the deadline was counted with. Such a node's
// grant was live until the deadline at least, so its "not held" before the
// deadline means that a restart took a live grant, which its grace period
// protects. A node that never held the lock, or whose grant may have
// expired before the deadline, may have granted the lock to another and
// then restarted: its grace protects that other grant, and a reclaim there
// would grant the lock twice.
//
// A reclaim names the incarnation of the node that asked for it
// (locker.RefreshReply.Incarnation), and the node refuses it if it has
// restarted since (locker.ReasonStaleReclaim): a reclaim delayed past a
// second restart would otherwise be granted in a grace that protects
// grants the run in between may have given to another. Such a refusal is
// neither a refresh nor a denial; the next round asks again.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// all wrap ErrLost.
var (
	// ErrLost is wrapped by every reason a lock can be lost for.
	ErrLost = errors.New("refresher: lock lost")
	// ErrNotHeld: more than n−quorum nodes said they do not hold the lock.
	ErrNotHeld = fmt.Errorf("%w: nodes no longer hold it", ErrLost)
	// ErrExpired: no refresh reached a quorum before the lock's deadline.
	ErrExpired = fmt.Errorf("%w: no refresh reached a quorum within the validity", ErrLost)
	// ErrStopped: the refresher was closed, so nothing keeps the lock alive.
	ErrStopped = fmt.Errorf("%w: refreshing stopped", ErrLost)
)

// Config configures a Refresher. The zero value gives the documented
// defaults.
type Config struct {
	// Interval is the longest time between two refresh rounds. Rounds come
	// more often when a lock's validity needs it: at least three per
	// validity of the shortest-lived lock held. If zero, DefaultInterval.
	Interval time.Duration
	// CallTimeout bounds one node's refresh call, and one reclaim. If
	// zero, the smaller of DefaultCallTimeout and Interval.
	CallTimeout time.Duration
	// Validity, if set, caps every lock's validity: a lock's deadline is
	// never later than the time its last quorum was reached plus Validity
	// (less the margin), whatever the nodes say. If zero, the nodes' word
	// alone (see the package documentation). It must then be more than
	// Interval.
	Validity time.Duration
	// Clock is the source of time. If nil, clock.Real().
	Clock clock.Clock
	// OnRound, if set, is called on the refresher's goroutine after each
	// round, for metrics and logs. It must not block.
	OnRound func(RoundStats)
	// OnValidity, if set, is called with the index of a node (in the
	// lockers given to New) and the validity it reported, for every refresh
	// answer and granted reclaim. It must be fast and safe for concurrent
	// use.
	OnValidity func(node int, v time.Duration)
}

// RoundStats summarises one refresh round.
type RoundStats struct {
	Locks     int // locks refreshed in the round
	Requests  int // refresh requests sent: one per node that holds a registered lock
	Failed    int // requests that failed as a whole
	Lost      int // locks found lost (not held on enough nodes)
	Refreshed int // locks a quorum of nodes refreshed
	Reclaims  int // reclaims sent to nodes in their restart grace period
	Reclaimed int // reclaims granted
	// Took is how long the round took on the refresher's clock, from
	// sending its requests to applying their answers.
	Took time.Duration
}

// Validate reports the first field of c that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Interval < 0 || c.CallTimeout < 0 || c.Validity < 0:
		return fmt.Errorf("refresher: negative duration in %+v", c)
	case c.Validity > 0 && c.withDefaults().Interval >= c.Validity:
		return fmt.Errorf("refresher: refresh interval %v is not shorter than the validity %v", c.withDefaults().Interval, c.Validity)
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
	c.Clock = clock.OrReal(c.Clock)
	return c
}

// Margin is how long before the nodes' expiry a holder gives its lock up, to
// allow for the nodes' clocks running a little faster than the holder's: a
// fiftieth of the validity. The clocks of the nodes and their clients must
// run at the same rate within 2%.
func Margin(validity time.Duration) time.Duration { return validity / 50 }

// Lock is a held lock, as registered with Add.
type Lock struct {
	// UID is the lock's identity on the nodes.
	UID string
	// Quorum is how many nodes must hold the lock for it to be held.
	Quorum int
	// Acquired is when the request that acquired the lock was sent, on the
	// refresher's clock. The lock's validity is counted from there.
	Acquired time.Time
	// Validity is the smallest validity among a quorum of the nodes that
	// granted the lock (see the package documentation). It must be
	// positive unless Config.Validity is set.
	Validity time.Duration
	// Write and Args say what the lock is: a write lock or a read lock, and
	// the arguments of the acquisition that won it (its UID, resources,
	// owner, source, holder). A node that restarted is sent them as a
	// reclaim (locker.LockArgs.Reclaim). If Args.Resources is empty, the
	// lock is not reclaimed.
	Write bool
	Args  locker.LockArgs
	// Held marks, by node index (in the lockers given to New), the nodes
	// that granted the acquisition with a validity of at least Validity:
	// each holds the lock until its first deadline at least. Until a
	// refresh round sets a new deadline, and with it the nodes that
	// counted for it, only those may be sent a reclaim (see the package
	// documentation). A nil Held, or one shorter than the lockers, marks
	// none beyond its length: a node not marked is not reclaimed until a
	// round has counted it (or MarkHeld marks it), which is safe, and costs
	// only the reclaim. Add copies it.
	Held []bool
	// OnLost is called once, on the refresher's goroutine, if the lock is
	// lost; the lock is no longer registered by then. It must not block.
	OnLost func(err error)
	// Nodes, if set, lists the nodes (indexes in the lockers given to New,
	// distinct) that the lock was acquired on: its quorum is of these, and
	// only these are sent its UID and its reclaims. A client of several
	// lock sets (dsync.NewSets) has one Refresher for every node it knows,
	// and registers each lock with its set's nodes: a round still sends
	// each node one request, carrying the UIDs of the locks of every set
	// the node serves. If nil, every node. Add copies it.
	Nodes []int
}

// Refresher refreshes registered locks on every node. It is safe for
// concurrent use.
type Refresher struct {
	cfg     Config
	lockers []locker.NetLocker

	mu       sync.Mutex // guards locks, earliest and shortest
	locks    map[string]*entry
	earliest time.Time     // no lock's deadline is before this (may be stale-early)
	shortest time.Duration // no registered lock's validity is shorter (may be stale-short)

	wake   chan struct{} // nudges the loop to re-read earliest and shortest
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

type entry struct {
	Lock
	deadline time.Time // when the holder must give the lock up
	// held marks, by node, the nodes that counted for deadline: those
	// that may be sent a reclaim. fromAdd says that deadline is still the
	// one Add set, from the acquisition (see MarkHeld). Written by Add,
	// MarkHeld and apply, read by reclaim, each under Refresher.mu.
	held    []bool
	fromAdd bool
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

// validity returns the validity to count a deadline with: v, capped by
// Config.Validity if that is set.
func (r *Refresher) validity(v time.Duration) time.Duration {
	switch {
	case r.cfg.Validity > 0 && (v <= 0 || v > r.cfg.Validity):
		return r.cfg.Validity
	case v <= 0:
		panic("refresher: Lock.Validity is not positive and Config.Validity is not set")
	}
	return v
}

// deadline returns when a lock whose quorum was last reached by a request
// sent at sent, with validity v (already capped), must be given up.
func deadline(sent time.Time, v time.Duration) time.Time {
	return sent.Add(v - Margin(v))
}

// Add registers l for refreshing. Its deadline is l.Acquired plus its
// validity less the margin (see the package documentation). Adding a UID
// that is registered replaces it. It panics if neither l.Validity nor
// Config.Validity is positive.
func (r *Refresher) Add(l Lock) {
	v := r.validity(l.Validity)
	l.Validity = v
	held := make([]bool, len(r.lockers))
	copy(held, l.Held)
	l.Held = nil // not the caller's: e.held
	l.Nodes = slices.Clone(l.Nodes)
	e := &entry{Lock: l, deadline: deadline(l.Acquired, v), held: held, fromAdd: true}
	r.mu.Lock()
	r.locks[l.UID] = e
	nudge := r.earliest.IsZero() || e.deadline.Before(r.earliest)
	if nudge {
		r.earliest = e.deadline
	}
	if r.shortest == 0 || v < r.shortest {
		r.shortest = v
		nudge = true
	}
	r.mu.Unlock()
	if nudge {
		r.nudge()
	}
}

// MarkHeld marks node (an index in the lockers given to New) as holding
// the lock of uid since its acquisition, with a grant of the given
// validity, as Lock.Held does: for a node whose grant came after Add (it
// answered after the acquisition's quorum was in). The node counts, and
// may be reclaimed on, only if validity is at least the lock's and no
// refresh round has set another deadline since Add: its grant then lives
// until the deadline Add set at least. Otherwise, or if uid is not
// registered, MarkHeld does nothing.
func (r *Refresher) MarkHeld(uid string, node int, validity time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.locks[uid]
	if ok && e.fromAdd && 0 <= node && node < len(e.held) && validity >= e.Validity {
		e.held[node] = true
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
// on the refresher's clock, when the last request that reached a quorum
// (the acquisition or a refresh round) stops vouching for it, less the
// safety margin. It reports false if uid is not registered (released, or
// reported lost). A holder that checks Deadline against its clock learns
// that it stalled past its validity even before the refresher's loop has
// run to report it.
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

// interval returns the time until the next round: Config.Interval, or a
// third of the shortest validity of the locks held if that is shorter, so
// that every lock gets at least two chances to be refreshed before its
// deadline.
func (r *Refresher) interval() time.Duration {
	r.mu.Lock()
	shortest := r.shortest
	r.mu.Unlock()
	if shortest > 0 {
		return max(min(r.cfg.Interval, shortest/3), time.Millisecond)
	}
	return r.cfg.Interval
}

// loop runs refresh rounds and gives up locks whose deadline passes. A
// round runs on its own goroutine so that a slow node cannot delay a
// deadline; a tick that comes while a round is still running is skipped.
func (r *Refresher) loop() {
	defer close(r.done)
	clk := r.cfg.Clock
	every := r.interval()
	tick := clk.NewTimer(every)
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
			if e := r.interval(); e < every {
				// A lock with a shorter validity came: the next round may
				// not wait for the old interval.
				every = e
				tick.Reset(every)
			}
		case <-deadline.C():
			r.expire(clk.Now())
			armDeadline()
		case <-tick.C():
			every = r.interval()
			tick.Reset(every)
			if results == nil {
				results = make(chan roundResult, 1)
				go r.round(ctx, results)
			}
		case res := <-results:
			results = nil
			st := r.apply(res)
			st.Took = clk.Since(res.sent)
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

// notAsked is the status, in a nodeAnswer, of a lock whose UID was not sent
// to the node: the lock is not on it (Lock.Nodes). It is neither a refresh
// nor a denial.
const notAsked = locker.RefreshUnknown

// nodeAnswer is one node's answer to a round's refresh request.
type nodeAnswer struct {
	ok       bool                   // the request succeeded, with a status per UID and a validity
	asked    bool                   // the node was sent a request: it serves one of the locks at least
	status   []locker.RefreshStatus // per lock of the round (notAsked for those not on the node)
	validity time.Duration
	grace    bool   // the node is in its restart grace period
	incarn   uint64 // in grace: the node's incarnation, which its reclaims name
}

// roundResult is what one refresh round learned.
type roundResult struct {
	sent    time.Time
	locks   []*entry // the locks refreshed, as registered when the round began
	answers []nodeAnswer
	// reclaimed[i] lists, for locks[i], the nodes that granted its
	// reclaim in the round; refused, those that refused it.
	reclaimed, refused [][]int
	reclaims           int
}

// round refreshes every registered lock on every node, one request per
// node, reclaims on nodes in their grace period what they lost, and sends
// what it learned to out.
func (r *Refresher) round(ctx context.Context, out chan<- roundResult) {
	r.mu.Lock()
	locks := make([]*entry, 0, len(r.locks))
	for _, e := range r.locks {
		locks = append(locks, e)
	}
	r.mu.Unlock()
	res := roundResult{sent: r.cfg.Clock.Now(), locks: locks, answers: make([]nodeAnswer, len(r.lockers))}
	if len(locks) == 0 {
		out <- res
		return
	}
	uids := make([]string, len(locks))
	for i, e := range locks {
		uids[i] = e.UID
	}
	// perNode[k] lists the locks (indexes in locks) on node k, if some lock
	// is not on every node; nil if every lock is (one client of one set).
	var perNode [][]int
	for _, e := range locks {
		if e.Nodes != nil {
			perNode = make([][]int, len(r.lockers))
			break
		}
	}
	if perNode != nil {
		for i, e := range locks {
			if e.Nodes == nil {
				for k := range perNode {
					perNode[k] = append(perNode[k], i)
				}
				continue
			}
			for _, k := range e.Nodes {
				perNode[k] = append(perNode[k], i)
			}
		}
	}
	var wg sync.WaitGroup
	for k, l := range r.lockers {
		args := locker.RefreshArgs{UIDs: uids}
		if perNode != nil {
			if len(perNode[k]) == 0 {
				continue // no lock held on this node: nothing to ask
			}
			args.UIDs = make([]string, len(perNode[k]))
			for j, i := range perNode[k] {
				args.UIDs[j] = uids[i]
			}
		}
		res.answers[k].asked = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := clock.WithTimeout(ctx, r.cfg.Clock, r.cfg.CallTimeout)
			defer cancel()
			reply, err := l.Refresh(cctx, args)
			if err != nil || len(reply.Status) != len(args.UIDs) || reply.Validity <= 0 {
				return // unknown: neither a refresh nor a denial
			}
			if r.cfg.OnValidity != nil {
				r.cfg.OnValidity(k, reply.Validity)
			}
			status := reply.Status
			if perNode != nil {
				status = make([]locker.RefreshStatus, len(locks)) // notAsked but for the node's locks
				for j, i := range perNode[k] {
					status[i] = reply.Status[j]
				}
			}
			res.answers[k] = nodeAnswer{ok: true, asked: true, status: status, validity: reply.Validity, grace: reply.Grace > 0, incarn: reply.Incarnation}
		}()
	}
	wg.Wait()
	r.reclaim(ctx, &res)
	out <- res
}

// maxReclaimsInFlight bounds the reclaims in flight to one node.
const maxReclaimsInFlight = 32

// reclaim sends, to every node that answered res's refresh in its grace
// period, a reclaim of each lock it did not hold and that counted it for
// its current deadline (entry.held), and records the outcomes. A lock
// released since the round began is not reclaimed; if its release races
// the reclaim, the node's tombstone refuses the reclaim or the release
// removes it.
func (r *Refresher) reclaim(ctx context.Context, res *roundResult) {
	type job struct{ lock, node int }
	var jobs [][]job // per node
	for k, a := range res.answers {
		if !a.ok || !a.grace {
			continue
		}
		for i, st := range a.status {
			if st == locker.RefreshNotHeld && len(res.locks[i].Args.Resources) > 0 {
				if jobs == nil {
					jobs = make([][]job, len(r.lockers))
				}
				jobs[k] = append(jobs[k], job{i, k})
			}
		}
	}
	if jobs == nil {
		return
	}
	res.reclaimed = make([][]int, len(res.locks))
	res.refused = make([][]int, len(res.locks))
	var (
		mu sync.Mutex // guards res.reclaimed, res.refused, res.reclaims
		wg sync.WaitGroup
	)
	for k, js := range jobs {
		sem := make(chan struct{}, maxReclaimsInFlight)
		for _, j := range js {
			e := res.locks[j.lock]
			if !r.mayReclaim(e, k, r.cfg.Clock.Now()) {
				// Released, or past its deadline: nothing to reclaim. Or
				// the node did not count for the deadline: it may never
				// have held the lock, or have let it expire, and granted
				// it to another before it restarted.
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				args := e.Args
				args.Reclaim = true
				args.Incarnation = res.answers[k].incarn
				cctx, cancel := clock.WithTimeout(ctx, r.cfg.Clock, r.cfg.CallTimeout)
				defer cancel()
				var reply locker.Reply
				var err error
				if e.Write {
					reply, err = r.lockers[k].Lock(cctx, args)
				} else {
					reply, err = r.lockers[k].RLock(cctx, args)
				}
				granted := err == nil && reply.OK && reply.Validity > 0
				if granted && r.cfg.OnValidity != nil {
					r.cfg.OnValidity(k, reply.Validity)
				}
				mu.Lock()
				res.reclaims++
				switch {
				case granted:
					res.reclaimed[j.lock] = append(res.reclaimed[j.lock], k)
				case err == nil && !reply.OK && reply.Reason != locker.ReasonStaleReclaim:
					// (A stale reclaim says the node restarted again since
					// it answered: the next round learns what it holds.)
					res.refused[j.lock] = append(res.refused[j.lock], k)
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
}

// mayReclaim reports whether e may be reclaimed on node k at now: e is
// still the registered lock of its UID, before its deadline (its holder
// may still rely on it), and node k counted for that deadline.
func (r *Refresher) mayReclaim(e *entry, k int, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.locks[e.UID] == e && now.Before(e.deadline) && e.held[k]
}

// apply updates deadlines from a round, reports the locks it found lost,
// and returns the round's summary.
func (r *Refresher) apply(res roundResult) RoundStats {
	n := len(r.lockers)
	var lost []*entry
	st := RoundStats{Locks: len(res.locks), Reclaims: res.reclaims}
	for _, a := range res.answers {
		if a.asked {
			st.Requests++
			if !a.ok {
				st.Failed++
			}
		}
	}
	validities := make([]time.Duration, 0, n) // of the nodes that hold one lock, reused
	holding := make([]int, 0, n)              // those nodes, reused
	sorted := make([]time.Duration, 0, n)     // validities, sorted, reused
	r.mu.Lock()
	r.shortest = 0
	for i, e := range res.locks {
		validities, holding = validities[:0], holding[:0]
		notHeld := 0
		for k, a := range res.answers {
			if !a.ok {
				continue
			}
			switch a.status[i] {
			case locker.RefreshRefreshed:
				validities = append(validities, a.validity)
				holding = append(holding, k)
			case locker.RefreshNotHeld:
				if !a.grace { // in grace: to be reclaimed, not a loss
					notHeld++
				}
			}
		}
		if res.reclaimed != nil {
			for _, k := range res.reclaimed[i] {
				validities = append(validities, res.answers[k].validity)
				holding = append(holding, k)
			}
			st.Reclaimed += len(res.reclaimed[i])
			notHeld += len(res.refused[i])
		}
		if r.locks[e.UID] != e {
			continue // released, or replaced, while the round ran
		}
		switch {
		case notHeld > e.nodes(n)-e.Quorum:
			delete(r.locks, e.UID)
			lost = append(lost, e)
		case len(validities) >= e.Quorum:
			// The nodes refreshed no earlier than the request was sent. The
			// lock is held on at least Quorum of them for the Quorum-th
			// longest of their validities.
			sorted = append(sorted[:0], validities...)
			slices.Sort(sorted)
			v := r.validity(sorted[len(sorted)-e.Quorum])
			e.Validity = v
			e.deadline = deadline(res.sent, v)
			e.fromAdd = false
			// The nodes that hold it that long count for the new deadline:
			// until the next one, reclaims go to them alone.
			clear(e.held)
			for j, k := range holding {
				e.held[k] = validities[j] >= v
			}
			st.Refreshed++
		}
	}
	for _, e := range r.locks {
		if r.shortest == 0 || e.Validity < r.shortest {
			r.shortest = e.Validity
		}
	}
	r.mu.Unlock()
	st.Lost = len(lost)
	for _, e := range lost {
		e.OnLost(fmt.Errorf("%w (lock %s)", ErrNotHeld, e.UID))
	}
	return st
}

// nodes returns the number of nodes e is on, of n.
func (e *entry) nodes(n int) int {
	if e.Nodes != nil {
		return len(e.Nodes)
	}
	return n
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
