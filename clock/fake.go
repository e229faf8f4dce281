package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Fake is a Clock whose time moves only when Advance or Set is called. Its
// zero value is not usable; create one with NewFake.
//
// Tests synchronise with code under test through BlockUntil, which waits until
// a given number of timers are pending, instead of sleeping.
type Fake struct {
	mu      sync.Mutex // guards the fields below
	now     time.Time
	timers  timerHeap // pending timers, earliest first
	armed   uint64    // timers armed so far: the order of timers due at one instant
	changed chan struct{}
	reads   int64 // calls of Now and Since
}

// NewFake returns a fake clock that reads t until it is advanced.
func NewFake(t time.Time) *Fake {
	return &Fake{now: t, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.now
}

// Reads returns how many times the time was read (Now and Since), for tests
// of code that must read the clock sparingly.
func (f *Fake) Reads() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// Since returns Now().Sub(t).
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTimer returns a timer that fires when the fake time reaches now+d. A
// timer with d <= 0 fires at once.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return t
}

// arm schedules t for now+d; f.mu must be held.
func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	t.when = f.now.Add(d)
	if d <= 0 {
		t.fire(f.now)
		return
	}
	t.pending = true
	f.armed++
	t.seq = f.armed
	heap.Push(&f.timers, t)
	f.notify()
}

// notify wakes BlockUntil callers; f.mu must be held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Advance moves the fake time forward by d and fires, in time order, every
// timer that falls due. Each timer sees Now equal to its own due time while it
// fires, then the clock settles at the final time.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	f.Set(target)
}

// Set moves the fake time to t (never backwards) and fires the timers due by
// then, in time order; timers due at the same instant fire in the order they
// were armed (NewTimer, Reset).
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		// Fire the earliest due timer, then look again: firing may not add
		// timers (timer channels are buffered and nothing runs under f.mu), but
		// stepping one at a time keeps Now monotone across firings.
		if len(f.timers) == 0 || f.timers[0].when.After(t) {
			break
		}
		next := heap.Pop(&f.timers).(*fakeTimer)
		if next.when.After(f.now) {
			f.now = next.when
		}
		next.pending = false
		next.fire(f.now)
	}
	if t.After(f.now) {
		f.now = t
	}
	f.notify()
}

// FireNext fires the earliest pending timer alone, if it is due by limit:
// the fake time moves to its due time (never backwards), it fires, and
// FireNext reports true. Otherwise it does nothing and reports false. A
// driver that lets everything the timer woke settle before the next call
// fires the timers due at one instant one at a time, in arming order.
func (f *Fake) FireNext(limit time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 || f.timers[0].when.After(limit) {
		return false
	}
	next := heap.Pop(&f.timers).(*fakeTimer)
	if next.when.After(f.now) {
		f.now = next.when
	}
	next.pending = false
	next.fire(f.now)
	f.notify()
	return true
}

// Pending returns the number of timers that have not fired or been stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// NextDue returns the due time of the earliest pending timer, and false if
// there is none.
func (f *Fake) NextDue() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return time.Time{}, false
	}
	return f.timers[0].when, true
}

// BlockUntil waits until at least n timers are pending or done is closed,
// and reports whether the count was reached. It lets a test wait for a
// goroutine to start sleeping on the clock before advancing it.
func (f *Fake) BlockUntil(done <-chan struct{}, n int) bool {
	for {
		f.mu.Lock()
		if len(f.timers) >= n {
			f.mu.Unlock()
			return true
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

type fakeTimer struct {
	f       *Fake
	c       chan time.Time  // nil for a timer made by afterFunc
	fn      func(time.Time) // called instead of a send on c, if not nil
	when    time.Time
	pending bool   // guarded by f.mu
	seq     uint64 // f.armed when it was armed; guarded by f.mu
	index   int    // its place in f.timers while pending; guarded by f.mu
}

// timerHeap is a container/heap of pending timers, ordered by due time, then
// by arming order.
type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// afterFunc calls fn with the fake time when it reaches now+d (at once if
// d <= 0), instead of sending it on a channel: Scaled's timers use it, so
// that a timer of theirs needs no goroutine of its own. fn runs with f.mu
// held: it must not block nor call f. The returned timer's Stop cancels the
// call if it has not happened.
func (f *Fake) afterFunc(d time.Duration, fn func(time.Time)) *fakeTimer {
	t := &fakeTimer{f: f, fn: fn}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return t
}

// fire delivers now without blocking; f.mu must be held.
func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		t.fn(now)
		return
	}
	select {
	case t.c <- now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	wasPending := t.pending
	t.remove()
	t.drain()
	return wasPending
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	wasPending := t.pending
	t.remove()
	t.drain()
	t.f.arm(t, d)
	return wasPending
}

// remove takes t off the pending list; f.mu must be held.
func (t *fakeTimer) remove() {
	if !t.pending {
		return
	}
	t.pending = false
	heap.Remove(&t.f.timers, t.index)
	t.f.notify()
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

// AfterFunc calls fn, on a goroutine of its own, when the fake time reaches
// now+d (at once if d <= 0), and returns a function that cancels the call
// if it has not happened and reports whether it did cancel it. A pending
// call counts as a timer (Pending, NextDue, BlockUntil).
func (f *Fake) AfterFunc(d time.Duration, fn func()) (stop func() bool) {
	return f.afterFunc(d, func(time.Time) { go fn() }).Stop
}
