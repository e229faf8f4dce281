package rest

import (
	"context"
	"log/slog"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Draining: a node that is about to stop (dsync-node on SIGTERM) first
// stops granting, and lets its holders move on before it goes, so that it
// stops with no live grant and its next start needs no grace period (see
// locker/boot.go). Clients take a draining node for a restarting one: its
// refusals say locker.ReasonQuiet, which dsync reports as ErrRestarting
// when too few other nodes grant, and which counts as neither a conflict
// nor a failure of the node; the other nodes' quorum goes on without it.

// drainPoll is how often Drain looks at the table.
const drainPoll = 50 * time.Millisecond

// defaultDrainGrace is the Grace of a refusal by a node that drains
// without a deadline.
const defaultDrainGrace = time.Second

// Drain makes the server refuse every new lock and rlock operation, as a
// node in its restart grace period does (locker.ReasonQuiet, with Grace
// the time left until ctx's deadline, or a second if it has none), while
// it goes on serving unlocks, refreshes, force-unlocks, listings and every
// other request. It then waits until the table holds no live grant, or ctx
// ends, and returns nil or ctx's error. Drain does not close the server:
// call Close after it, then close the table, whose boot record then says
// whether grants were left (and so whether the next start waits a grace
// period).
//
// The table is asked through two optional methods, Expire() int and
// Stats() locker.Stats, which locker.Local has; for a table without them
// Drain waits for ctx. Once called, the server drains for the rest of its
// life. Drain may be called more than once, and concurrently.
func (s *Server) Drain(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		s.drainUntil.Store(monoNanosOf(d))
	}
	if !s.draining.Swap(true) {
		s.cfg.Logger.Info("draining: refusing new locks, serving unlocks and refreshes until the holders leave")
	}
	table, _ := s.l.(interface {
		Expire() int
		Stats() locker.Stats
	})
	for {
		if table != nil {
			table.Expire()
			if n := table.Stats().Grants; n == 0 {
				s.cfg.Logger.Info("drained: no grant left")
				return nil
			}
		}
		if !clock.Sleep(ctx, s.cfg.Clock, drainPoll) {
			left := 0
			if table != nil {
				left = table.Stats().Grants
			}
			s.cfg.Logger.Warn("drain ended with grants left", slog.Int("grants", left), slog.Any("err", ctx.Err()))
			return ctx.Err()
		}
	}
}

// Draining reports whether Drain has been called.
func (s *Server) Draining() bool { return s.draining.Load() }

// drainGrace is the Grace of a refusal while the server drains.
func (s *Server) drainGrace() time.Duration {
	until := s.drainUntil.Load()
	if until == 0 {
		return defaultDrainGrace
	}
	return max(time.Duration(until-monoNanos()), time.Millisecond)
}
