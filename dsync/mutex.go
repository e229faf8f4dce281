package dsync

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Mutex is a distributed mutual-exclusion lock on one resource: the write
// side of a DRWMutex, with the shape of sync.Mutex. It is held when
// floor(n/2)+1 nodes of its Dsync grant it, and it gives exactly the
// guarantees of a DRWMutex write lock (see the package documentation): at most
// one holder at a time while at most n−W nodes fail and no holder stalls past
// its validity.
//
// A Mutex holds the lock at most once at a time and is not reentrant: Lock
// while this Mutex holds the lock waits until the lock is released or lost,
// like any other client. Its methods are safe for concurrent use, but pairing
// each Lock with its Unlock is the caller's job.
type Mutex struct {
	rw *DRWMutex
}

// NewMutex returns a mutex on name through ds. An empty name is an error that
// every acquisition returns (wrapping locker.ErrInvalidArgs).
func NewMutex(ds *Dsync, name string) *Mutex {
	return &Mutex{rw: NewDRWMutex(ds, name)}
}

// Name returns the resource the mutex locks.
func (m *Mutex) Name() string { return m.rw.names[0] }

// Lock acquires the mutex, retrying with back-off until a write quorum grants
// it or ctx is done. It returns a context derived from ctx that is cancelled
// when the lock is lost (context.Cause is then ErrLockLost) or released: do
// the protected work under it. Being derived from ctx, it also ends when ctx
// does, though the mutex stays held until Unlock: to bound the wait and not
// the work, use LockTimeout, not a ctx from context.WithTimeout whose cancel
// runs when the caller returns. A failure wraps ctx's error, ErrClosed,
// locker.ErrInvalidArgs, or ErrDeadlock if ctx names a holder (see
// WithHolder).
func (m *Mutex) Lock(ctx context.Context) (context.Context, error) {
	return m.rw.GetLock(ctx, Options{Source: caller(2)})
}

// LockTimeout is Lock with the wait bounded by timeout: past it, it fails
// with an error wrapping ErrTimeout (and the last attempt's ErrLocked, if
// any). Unlike a deadline on ctx, the timeout bounds only the wait: the
// returned context lives as long as ctx and the lock.
func (m *Mutex) LockTimeout(ctx context.Context, timeout time.Duration) (context.Context, error) {
	return m.rw.GetLock(ctx, Options{Timeout: timeout, Source: caller(2)})
}

// LockWith is Lock with opts: opts.Timeout bounds the wait as in
// LockTimeout, or opts.Adaptive gives the timeout and learns from the
// outcome (see AdaptiveTimeout); opts.Source names the call site (the
// caller's if empty).
func (m *Mutex) LockWith(ctx context.Context, opts Options) (context.Context, error) {
	if opts.Source == "" {
		opts.Source = caller(2)
	}
	return m.rw.GetLock(ctx, opts)
}

// TryLock makes one attempt at the mutex. It reports false with a nil error
// when another client holds it, and false with an error wrapping ErrNoQuorum
// when too many nodes failed to answer.
func (m *Mutex) TryLock(ctx context.Context) (bool, context.Context, error) {
	return m.rw.TryLock(ctx)
}

// Unlock releases the mutex; see DRWMutex.Unlock for what it waits for and
// returns (ErrUnlockPending, ErrLockLost). It is a run-time error (a panic)
// to Unlock a Mutex that is not locked.
func (m *Mutex) Unlock(ctx context.Context) error {
	return m.rw.Unlock(ctx)
}

// Locker returns a sync.Locker whose Lock and Unlock take and release the
// mutex; see DRWMutex.Locker.
func (m *Mutex) Locker() sync.Locker { return m.rw.Locker() }

// Locker returns a sync.Locker over the write lock of m, for code written
// against sync.Locker (sync.Cond, helpers that take a Locker).
//
// Its Lock blocks until the write lock is held: it retries for as long as it
// takes, through contention and through nodes being down. Having no context,
// it cannot be cancelled and cannot report a loss of the lock: prefer GetLock
// wherever a context is at hand, and keep work under a Locker short compared
// with the validity. It is a run-time error (a panic) to Lock after the Dsync
// is closed or on a DRWMutex with invalid names, as it is to misuse a
// sync.Mutex.
//
// Its Unlock releases the write lock, waiting at most Config.CallTimeout. A
// release that a quorum has not confirmed goes on in the background, and a
// lock that was lost needs no release, so Unlock reports neither. It is a
// run-time error (a panic) to Unlock when the write lock is not held.
func (m *DRWMutex) Locker() sync.Locker { return lockerAdapter{m: m, write: true} }

// RLocker returns a sync.Locker over read locks of m: its Lock calls GetRLock
// and its Unlock calls RUnlock, with the behaviour described at Locker.
func (m *DRWMutex) RLocker() sync.Locker { return lockerAdapter{m: m, write: false} }

type lockerAdapter struct {
	m     *DRWMutex
	write bool
}

func (l lockerAdapter) Lock() {
	opts := Options{Source: caller(2)}
	var err error
	if l.write {
		_, err = l.m.GetLock(context.Background(), opts)
	} else {
		_, err = l.m.GetRLock(context.Background(), opts)
	}
	if err != nil {
		// Without a context or timeout, GetLock returns only for errors no
		// retry can cure: a closed Dsync or invalid names.
		panic(fmt.Sprintf("dsync: Locker.Lock: %v", err))
	}
}

func (l lockerAdapter) Unlock() {
	if l.write {
		_ = l.m.Unlock(context.Background()) // pending releases go on in the background; a lost lock needs none
	} else {
		_ = l.m.RUnlock(context.Background())
	}
}
