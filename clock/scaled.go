package clock

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Scaled is the clock of one simulated process: a Clock derived from a base
// clock (the simulation's virtual clock) that runs at its own rate, as a
// machine's clock runs a little fast or slow, and that can be paused, as a
// process stopped by a long GC pause, SIGSTOP or a hypervisor is. Create one
// with NewScaled; it is safe for concurrent use.
//
// Its time is the base clock's time when it was made, plus Rate times the
// base time elapsed since: at rate 1 it reads exactly what the base reads.
// Its timers fire when its own time reaches their deadline, so a timer of d
// fires after d/Rate of base time.
//
// Pause stops the process, not its clock: Now keeps advancing, as a
// machine's monotonic clock does while a process is stopped, but a timer
// that falls due while the clock is paused is held, and fires, late, when
// Resume is called, delivering the time of the resume. A stopped process's
// deadlines thus pass on time and are noticed only when it runs again.
type Scaled struct {
	base   Clock
	rate   float64
	origin time.Time // base time when made, which is also own time then

	mu     sync.Mutex // guards the fields below; never held while calling base
	paused bool
	held   []*scaledTimer // fell due while paused, in the order they did
}

// NewScaled returns a clock that reads base's time now and from then on
// runs rate times as fast as base. It panics if rate is not positive and
// finite.
func NewScaled(base Clock, rate float64) *Scaled {
	if !(rate > 0) || math.IsInf(rate, 0) {
		panic(fmt.Sprintf("clock: NewScaled with rate %v; want a positive rate", rate))
	}
	return &Scaled{base: base, rate: rate, origin: base.Now()}
}

// Rate returns how many times as fast as its base the clock runs.
func (s *Scaled) Rate() float64 { return s.rate }

// Now returns the clock's time, which keeps running while it is paused.
func (s *Scaled) Now() time.Time { return s.own(s.base.Now()) }

// Since returns Now().Sub(t).
func (s *Scaled) Since(t time.Time) time.Duration { return s.Now().Sub(t) }

// own converts a time of the base clock to this clock's time.
func (s *Scaled) own(base time.Time) time.Time {
	return s.origin.Add(s.scale(base.Sub(s.origin)))
}

// scale converts d of base time to own time. It is monotone.
func (s *Scaled) scale(d time.Duration) time.Duration {
	if s.rate == 1 {
		return d
	}
	return time.Duration(float64(d) * s.rate)
}

// unscale returns the least base duration e >= 0 with scale(e) >= d: how
// long after the origin the base clock reads when own time has run d.
func (s *Scaled) unscale(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if s.rate == 1 {
		return d
	}
	e := time.Duration(math.Ceil(float64(d) / s.rate))
	for s.scale(e) < d { // correct the rounding of the float arithmetic
		e++
	}
	for e > 0 && s.scale(e-1) >= d {
		e--
	}
	return e
}

// Pause stops the clock's timers from firing: those that fall due are held
// until Resume. It does nothing if the clock is paused already.
func (s *Scaled) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
}

// Resume ends a pause: every timer held by it fires now, in the order in
// which they fell due, delivering the current time. It does nothing if the
// clock is not paused.
func (s *Scaled) Resume() {
	now := s.Now() // before s.mu: s.mu is never held while calling base
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.paused {
		return
	}
	s.paused = false
	for _, t := range s.held {
		t.held = false
		t.pending = false
		t.send(now)
	}
	s.held = nil
}

// Paused reports whether the clock is paused.
func (s *Scaled) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// NewTimer returns a timer that fires when the clock's time reaches now+d
// (while the clock is paused, at the resume). A timer with d <= 0 is due at
// once.
func (s *Scaled) NewTimer(d time.Duration) Timer {
	t := &scaledTimer{s: s, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// scaledTimer is a timer of a Scaled clock. Each arming schedules one call
// on the base clock; a generation number lets a call of an earlier arming,
// already under way when the timer was stopped or reset, be ignored.
type scaledTimer struct {
	s *Scaled
	c chan time.Time

	// guarded by s.mu:
	gen     uint64      // incremented by every Stop and Reset
	pending bool        // armed, and not fired nor stopped (held counts as pending)
	held    bool        // fell due while the clock was paused; in s.held
	cancel  func() bool // stops the base clock's call of the current arming
}

func (t *scaledTimer) C() <-chan time.Time { return t.c }

// Stop prevents the timer from firing, including a firing held by a pause.
func (t *scaledTimer) Stop() bool {
	s := t.s
	s.mu.Lock()
	wasPending := t.disarm()
	cancel := t.cancel
	t.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return wasPending
}

// Reset changes the timer to fire when the clock reaches now+d.
func (t *scaledTimer) Reset(d time.Duration) bool {
	s := t.s
	baseNow := s.base.Now()
	due := s.own(baseNow).Add(d)
	wait := s.unscale(due.Sub(s.origin)) - baseNow.Sub(s.origin)

	s.mu.Lock()
	wasPending := t.disarm()
	old := t.cancel
	t.cancel = nil
	t.pending = true
	gen := t.gen
	s.mu.Unlock()
	if old != nil {
		old()
	}

	cancel := s.schedule(wait, func(base time.Time) { t.fire(gen, s.own(base)) })
	s.mu.Lock()
	if t.gen == gen {
		t.cancel = cancel
		cancel = nil
	}
	s.mu.Unlock()
	if cancel != nil { // stopped or reset meanwhile
		cancel()
	}
	return wasPending
}

// disarm ends the current arming: later calls of it are ignored, a firing
// it left held or in the channel is dropped. It reports whether the timer
// was pending. s.mu must be held.
func (t *scaledTimer) disarm() bool {
	s := t.s
	wasPending := t.pending
	t.gen++
	t.pending = false
	if t.held {
		t.held = false
		s.held = slices.DeleteFunc(s.held, func(x *scaledTimer) bool { return x == t })
	}
	select {
	case <-t.c:
	default:
	}
	return wasPending
}

// fire is the base clock's call for arming gen, at own time now.
func (t *scaledTimer) fire(gen uint64, now time.Time) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.gen != gen || !t.pending || t.held {
		return
	}
	if s.paused {
		t.held = true
		s.held = append(s.held, t)
		return
	}
	t.pending = false
	t.send(now)
}

// send delivers now without blocking; s.mu must be held.
func (t *scaledTimer) send(now time.Time) {
	select {
	case t.c <- now:
	default:
	}
}

// schedule calls fn with the base clock's time once d of base time has
// passed, and returns a function that cancels the call if it has not
// happened. On a *Fake base fn runs under the fake's lock, without a
// goroutine; on any other base a goroutine waits on a base timer.
func (s *Scaled) schedule(d time.Duration, fn func(time.Time)) func() bool {
	if f, ok := s.base.(*Fake); ok {
		return f.afterFunc(d, fn).Stop
	}
	bt := s.base.NewTimer(d)
	stop := make(chan struct{})
	go func() {
		select {
		case now := <-bt.C():
			fn(now)
		case <-stop:
		}
	}()
	var once sync.Once
	return func() bool {
		once.Do(func() { close(stop) })
		return bt.Stop()
	}
}

// AfterFunc calls fn, on a goroutine of its own, when the clock's time
// reaches now+d (while it is paused, at the resume), and returns a function
// that cancels the call if it has not happened and reports whether it did.
func (s *Scaled) AfterFunc(d time.Duration, fn func()) (stop func() bool) {
	return afterFunc(s.NewTimer(d), fn)
}
