package dsync

import (
	"context"

	"github.com/dsync-go/dsync/locker"
)

// Writer intent. A node that refuses a write lock because readers hold the
// resource keeps new readers out of it for a while (locker.Config.
// WriterIntent, 10 s by default), so that the readers drain and a stream of
// them cannot starve the writer; each retry renews it. A writer that gives
// up (its Options.Timeout, its ctx, ErrDeadlock) withdraws what its last
// attempt declared: it sends an Unlock of that attempt's UID naming the
// resources to the nodes that refused it (see locker.NetLocker.Unlock), so
// that readers are not held back for a writer that is gone. The withdrawal
// is one round of calls in the background, not retried: an intent it misses
// lapses by itself. TryLock declares no intent (LockArgs.NoIntent), so it has
// nothing to withdraw.

// intentWithdrawal is what a writer that gives up must withdraw: the UID of
// its last refused attempt, and the nodes that refused it.
type intentWithdrawal struct {
	uid   string
	nodes []bool // by node index; nil if no node refused
}

// note records a failed write attempt of uid, whose nodes ended in state:
// it is the one to withdraw if the writer gives up before the next.
func (w *intentWithdrawal) note(uid string, state []nodeState) {
	w.uid, w.nodes = uid, nil
	for i, st := range state {
		if st == stateRefused {
			if w.nodes == nil {
				w.nodes = make([]bool, len(state))
			}
			w.nodes[i] = true
		}
	}
}

// withdrawIntent withdraws, in the background, the intent that w's attempt
// declared on names. It does nothing if no node refused that attempt, or
// once ds is closed.
func (ds *Dsync) withdrawIntent(names []string, mode Mode, w *intentWithdrawal) {
	if w.nodes == nil {
		return
	}
	args := withdrawalArgs(w.uid, names, mode.wire())
	op := releaseOp(mode == X)
	nodes := w.nodes
	ds.goBackground(func(bg context.Context) {
		// One round, made even if Close has begun (Close waits for it).
		ds.callEach(context.WithoutCancel(bg), op, args, nodes)
	})
}

// withdrawalArgs are the arguments of an Unlock (or, for an IX or SIX, an
// RUnlock naming the mode) that withdraws the intent of the refused lock uid
// on names.
func withdrawalArgs(uid string, names []string, mode locker.Mode) locker.LockArgs {
	return locker.LockArgs{UID: uid, Resources: names, Mode: mode}
}

// withdrawIntent withdraws what the acquisition a declared, as it gives up
// (acquire.go): the intent of its last refused attempt, if its mode is
// exclusive (IX, SIX or X).
func (a *acquisition) withdrawIntent() {
	if a.mode.exclusive() {
		a.ds.withdrawIntent(a.m.names, a.mode, &a.intent)
	}
}
