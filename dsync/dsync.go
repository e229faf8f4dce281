package dsync

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
)

// Dsync is a quorum client over a fixed set of lockers: one per node. Create
// it once per process and locker set, and share it: every DRWMutex made from
// it shares its refresher, so the process sends one refresh request per node
// per interval whatever number of locks it holds.
//
// Every resource must always be locked through the same locker set (the same
// nodes in any order); two sets that only overlap do not exclude each other.
//
// A Dsync is safe for concurrent use.
type Dsync struct {
	cfg       Config
	lockers   []locker.NetLocker
	allNodes  []bool // true for every locker; read-only, for calls to all of them
	refresher *refresher.Refresher

	randMu sync.Mutex // guards cfg.Rand, of this Dsync and of its sets

	submitters  []locker.Submitter // per locker: the locker if it is one, else nil
	syncLockers int                // lockers that are not Submitters
	workers     workers            // goroutines for calls to lockers that are not Submitters

	// bg is the context of background releases; Close cancels it and waits
	// for them.
	bg       context.Context
	bgCancel context.CancelFunc
	bgMu     sync.Mutex // guards bgDone, and bgWG.Add against Close's Wait
	bgDone   bool       // Close has begun waiting: start no more
	bgWG     sync.WaitGroup
	closed   atomic.Bool

	validity validityWatch // what each node says its validity is (validity.go)

	lastTicket  atomic.Uint64 // the last acquisition's ticket (waiting.go)
	ticketNonce uint64        // the low bits of every ticket (waiting.go)
	contended   contended     // resources found held lately (waiting.go)
	rtt         *rtts         // each node's round trips and call timeout (rtt.go)

	rounds, reclaims, reclaimed atomic.Uint64 // of the refresher, for Stats

	// Lock sets (sets.go). root is the Dsync the application made: ds
	// itself, or the Dsync made by NewSets that this one is a set of; it
	// keys the wait-for graph and draws the tickets, so that the sets of
	// one client share both. sets is root's sets, nil on a Dsync made by
	// New and on a set. refNodes maps a set's lockers to the indexes of
	// its nodes in the shared refresher (nil: the same indexes).
	root     *Dsync
	sets     []*Dsync
	refNodes []int
	nodeSets [][]setNode // on root of sets: per node, the sets it serves

	// A layout transition (transition.go): place, on its root, maps a
	// name to its set (nil: SetIndex over sets); groups, on a set of a
	// transition, are the sets of the two layouts that it unites, whose
	// quorums every lock on it must include, and writeQ and readQ its own
	// quorums (0: a majority of its lockers).
	place         func(name string) int
	groups        []quorumGroup
	writeQ, readQ int
}

// countRound counts a refresh round for Stats.
func (ds *Dsync) countRound(st refresher.RoundStats) {
	if o := ds.cfg.Observer; o != nil {
		o.RefreshRound(st.Took, st.Locks)
	}
	ds.rounds.Add(1)
	ds.reclaims.Add(uint64(st.Reclaims))
	ds.reclaimed.Add(uint64(st.Reclaimed))
}

// New returns a quorum client over lockers. It returns an error if there are
// no lockers, one is nil, the same locker (or two with the same String) is
// given twice, or cfg is invalid. The caller keeps ownership of the lockers:
// Close does not close them.
func New(lockers []locker.NetLocker, cfg Config) (*Dsync, error) {
	if err := checkLockers(lockers); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ds := newDsync(lockers, cfg)
	ref, err := refresher.New(ds.lockers, refresher.Config{
		Interval:    cfg.RefreshInterval,
		CallTimeout: cfg.RefreshCallTimeout,
		Validity:    cfg.Validity,
		Clock:       cfg.Clock,
		OnValidity:  ds.validity.observe,
		OnRound:     ds.countRound,
	})
	if err != nil {
		return nil, fmt.Errorf("dsync: %w", err)
	}
	ds.refresher = ref
	return ds, nil
}

// checkLockers returns an error if there are no lockers, one is nil, or
// the same locker (or two with the same String) is given twice.
func checkLockers(lockers []locker.NetLocker) error {
	if len(lockers) == 0 {
		return errors.New("dsync: no lockers")
	}
	seen := make(map[string]int, len(lockers))
	for i, l := range lockers {
		if l == nil {
			return fmt.Errorf("dsync: locker %d is nil", i)
		}
		name := l.String()
		if j, dup := seen[name]; dup {
			return fmt.Errorf("dsync: lockers %d and %d are the same node %q", j, i, name)
		}
		seen[name] = i
	}
	return nil
}

// newDsync returns a Dsync over lockers, checked, with cfg, defaulted and
// valid, and no refresher yet: the caller sets it.
func newDsync(lockers []locker.NetLocker, cfg Config) *Dsync {
	ls := append([]locker.NetLocker(nil), lockers...)
	ds := &Dsync{
		cfg:      cfg,
		lockers:  ls,
		allNodes: slices.Repeat([]bool{true}, len(ls)),
	}
	ds.root = ds
	ds.validity = validityWatch{ds: ds, nodes: make([]atomic.Int64, len(ls))}
	ds.rtt = newRTTs(len(ls), ds.cfg.MinCallTimeout, ds.cfg.CallTimeout)
	ds.ticketNonce = uint64(ds.jitter(0, 1<<ticketNonceBits))
	ds.submitters = make([]locker.Submitter, len(ls))
	for i, l := range ls {
		if s, ok := l.(locker.Submitter); ok {
			ds.submitters[i] = s
		} else {
			ds.syncLockers++
		}
	}
	ds.bg, ds.bgCancel = context.WithCancel(context.Background())
	return ds
}

// Close stops refreshing held locks and cancels the retries of background
// releases; a release already started makes its first round of calls, and
// Close waits for their answers (each round at most CallTimeout, and an
// attempt given up by its caller first waits for the nodes' answers). Held
// locks are not released (they expire on the nodes after their validity), but
// their contexts are cancelled at once with a cause wrapping ErrLockLost.
// Close does not close the lockers. Acquiring after Close fails with
// ErrClosed.
func (ds *Dsync) Close() error {
	if ds.closed.Swap(true) {
		return nil
	}
	for _, set := range ds.sets {
		set.closed.Store(true)
	}
	ds.refresher.Close()
	ds.stopBackground()
	for _, set := range ds.sets {
		set.stopBackground()
	}
	return nil
}

// stopBackground cancels the background work of ds and waits for it, and
// stops its workers; ds is closed.
func (ds *Dsync) stopBackground() {
	ds.bgMu.Lock()
	ds.bgDone = true
	ds.bgMu.Unlock()
	ds.bgCancel()
	ds.bgWG.Wait()
	ds.workers.close()
}

// Stats is what a Dsync has seen of its nodes.
type Stats struct {
	// Validities is, per locker in the order given to New, the validity the
	// node last reported in a grant or refresh answer; zero until it has.
	Validities []time.Duration
	// ValidityDisagreements counts the times a node reported a validity
	// other than another node's (see Config.Validity): the nodes of one
	// cluster should be configured alike.
	ValidityDisagreements uint64
	// RefreshRounds counts the refresher's rounds that have ended.
	RefreshRounds uint64
	// Reclaims counts the reclaims sent to nodes in their restart grace
	// period (see package refresher), and Reclaimed those granted.
	Reclaims, Reclaimed uint64
}

// Stats returns what the Dsync has seen so far.
func (ds *Dsync) Stats() Stats {
	st := Stats{
		Validities:            make([]time.Duration, len(ds.lockers)),
		ValidityDisagreements: ds.validity.disagreements.Load() + ds.setDisagreements(),
		RefreshRounds:         ds.rounds.Load(),
		Reclaims:              ds.reclaims.Load(),
		Reclaimed:             ds.reclaimed.Load(),
	}
	for i := range ds.lockers {
		st.Validities[i] = ds.validity.validity(i)
	}
	return st
}

// Lockers returns the number of lockers (nodes). On a Dsync made by
// NewSets, it is the number of distinct nodes of all its sets.
func (ds *Dsync) Lockers() int { return len(ds.lockers) }

// WriteQuorum returns floor(n/2)+1, the number of nodes that must grant a
// write lock. Any two write quorums, and any write and read quorum, share a
// node, and that node refuses the second grant. On a Dsync made by
// NewSets, n is the size of a set: quorums are per set.
//
// On a set of a Dsync made by NewTransition, which unites a set of each
// layout, it is larger: see NewTransition.
func (ds *Dsync) WriteQuorum() int {
	set := ds.aSet()
	if set.writeQ > 0 {
		return set.writeQ
	}
	return len(set.lockers)/2 + 1
}

// ReadQuorum returns ceil(n/2), the number of nodes that must grant a read
// lock; n as for WriteQuorum.
func (ds *Dsync) ReadQuorum() int {
	set := ds.aSet()
	if set.readQ > 0 {
		return set.readQ
	}
	return (len(set.lockers) + 1) / 2
}

// aSet returns ds, or, on the root of sets, its first set: the one whose
// quorums the root reports.
func (ds *Dsync) aSet() *Dsync {
	if ds.sets != nil {
		return ds.sets[0]
	}
	return ds
}

func (ds *Dsync) quorum(write bool) int {
	if write {
		return ds.WriteQuorum()
	}
	return ds.ReadQuorum()
}

// uidSources are cryptographically strong generators of UIDs, each seeded
// from crypto/rand, pooled so that an acquisition draws its UID without a
// system call or a shared lock.
var uidSources = sync.Pool{New: func() any {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}}

// newUID returns a UID no other acquisition uses: 128 random bits from a
// cryptographically strong source, in 22 characters. A UID is a capability:
// whoever knows it may refresh and release the lock (the nodes never show it
// but to the admin role), so it is drawn whole for every acquisition, never
// derived from another. Every attempt gets a new one, so that a release of a
// failed attempt can never be confused with a later grant.
func (ds *Dsync) newUID() string {
	var b [16]byte
	if r := ds.cfg.UIDSource; r != nil {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			// Two locks with one UID would share their grants: never go on.
			panic(fmt.Sprintf("dsync: Config.UIDSource failed: %v", err))
		}
		return base64.RawURLEncoding.EncodeToString(b[:])
	}
	src := uidSources.Get().(*rand.ChaCha8)
	binary.LittleEndian.PutUint64(b[:8], src.Uint64())
	binary.LittleEndian.PutUint64(b[8:], src.Uint64())
	uidSources.Put(src)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hold registers background work that Close must wait for, unless Close
// has begun: Close must be able to wait for all the work it lets start. It
// reports whether it registered; the work ends its hold with ds.bgWG.Done.
func (ds *Dsync) hold() bool {
	ds.bgMu.Lock()
	defer ds.bgMu.Unlock()
	if ds.bgDone {
		return false
	}
	ds.bgWG.Add(1)
	return true
}

// goBackground runs f on a tracked goroutine with the background context,
// unless Close has begun (see hold): background work would then be
// cancelled at once. It reports whether f was started.
func (ds *Dsync) goBackground(f func(ctx context.Context)) bool {
	if !ds.hold() {
		return false
	}
	go func() {
		defer ds.bgWG.Done()
		f(ds.bg)
	}()
	return true
}

// clk returns the configured clock.
func (ds *Dsync) clk() clock.Clock { return ds.cfg.Clock }
