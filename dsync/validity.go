package dsync

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// The nodes' validity is the one source of truth for how long a holder may
// rely on a grant: every grant and every refresh answer carries it
// (locker.Reply.Validity, locker.RefreshReply.Validity), and a lock's
// deadline is counted from the smallest among a quorum of its nodes (see
// package refresher). Config.Validity only ever shortens it.
//
// The nodes of one cluster should agree on it; a node that says otherwise
// is not trusted blindly (it cannot lengthen a lock held through nodes that
// give less) but it is reported: a counter (Stats.ValidityDisagreements)
// and a warning in the log, once per change of a node's word.

// validityWatch keeps the validity each node last reported, and reports
// nodes that disagree. It is safe for concurrent use.
type validityWatch struct {
	ds            *Dsync
	nodes         []atomic.Int64 // per locker: the validity it last reported, in nanoseconds; 0 if none yet
	disagreements atomic.Uint64
}

// observe records that node reported v. It costs one atomic load when node
// says what it said before.
func (w *validityWatch) observe(node int, v time.Duration) {
	if v <= 0 || w.nodes[node].Load() == int64(v) {
		return
	}
	if old := w.nodes[node].Swap(int64(v)); old == int64(v) {
		return
	}
	for i := range w.nodes {
		other := w.nodes[i].Load()
		if i == node || other == 0 || other == int64(v) {
			continue
		}
		w.disagreements.Add(1)
		w.ds.cfg.Logger.Warn("dsync: nodes disagree on their validity; each lock is held for the shortest among a quorum of its nodes",
			slog.String("node", w.ds.lockers[node].String()), slog.Duration("validity", v),
			slog.String("other_node", w.ds.lockers[i].String()), slog.Duration("other_validity", time.Duration(other)))
		return
	}
}

// validity returns what node last reported, or zero.
func (w *validityWatch) validity(node int) time.Duration {
	return time.Duration(w.nodes[node].Load())
}

// shortest returns the shortest validity any node has reported, or zero if
// none has.
func (w *validityWatch) shortest() time.Duration {
	var v int64
	for i := range w.nodes {
		if x := w.nodes[i].Load(); x > 0 && (v == 0 || x < v) {
			v = x
		}
	}
	return time.Duration(v)
}
