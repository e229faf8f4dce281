package simulation

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dsync-go/dsync/locker"
)

// MaxClients is how many clients the lock model can tell apart: a
// resource's readers are a bit set in one uint64.
const MaxClients = 64

// lockState is the model's state of one resource: for each mode
// (locker.ModeIS to locker.ModeX), the set of clients that hold it in
// that mode. An array, so that states compare with ==.
type lockState struct {
	holders [locker.ModeX + 1]uint64
}

// lockInput is what porcupine sees of an Op.
type lockInput struct {
	resource string
	client   int
	kind     OpKind
	mode     locker.Mode // never zero: OpMode
}

// grantable reports whether s lets a lock of mode be granted: every mode
// held is compatible with it (locker.Compatible, Gray's matrix), whoever
// holds it, the asking client included, as the nodes check it.
func (s lockState) grantable(mode locker.Mode) bool {
	for m, holders := range s.holders {
		if holders != 0 && !locker.Compatible(mode, locker.Mode(m)) {
			return false
		}
	}
	return true
}

// LockModel is the sequential specification of a multi-granularity lock
// checked by porcupine, partitioned by resource: a resource is held in
// modes (IS, IX, S, SIX, X) by sets of clients, and an acquire of a mode
// succeeds only when every mode held is compatible with it (Gray's matrix,
// locker.Compatible). The classic locks are its S and X: a write acquire
// succeeds only when the resource has no holder, a read acquire only when
// it has no writer (nor IX or SIX holder). A failed acquire changes
// nothing. An acquire whose outcome is unknown may or may not have taken
// effect. A release (or a lost notification) ends the client's hold of
// that mode; releasing what the model does not hold is allowed and changes
// nothing.
//
// The model checks what clients believe: a client holds a lock from some
// instant during its successful acquire call until some instant during its
// release call, or until it is told the lock was lost, or until it crashes. A
// history is linearizable if and only if no two beliefs conflict: no two
// clients believe at once that they hold one resource in incompatible
// modes.
var LockModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byRes := map[string][]porcupine.Operation{}
		var names []string
		for _, op := range history {
			r := op.Input.(lockInput).resource
			if _, ok := byRes[r]; !ok {
				names = append(names, r)
			}
			byRes[r] = append(byRes[r], op)
		}
		sort.Strings(names)
		out := make([][]porcupine.Operation, 0, len(names))
		for _, r := range names {
			out = append(out, byRes[r])
		}
		return out
	},
	Init: func() []any { return []any{lockState{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(lockState), input.(lockInput), output.(Outcome)
		bit := uint64(1) << in.client
		switch in.kind {
		case OpRelease, OpLost:
			s.holders[in.mode] &^= bit
			return []any{s}
		}
		acquired, legal := s, s.grantable(in.mode)
		acquired.holders[in.mode] |= bit
		switch out {
		case OK:
			if legal {
				return []any{acquired}
			}
			return nil
		case Failed:
			return []any{s}
		}
		if legal {
			return []any{s, acquired}
		}
		return []any{s}
	},
	DescribeOperation: func(input, output any) string {
		in := input.(lockInput)
		return fmt.Sprintf("c%d %s(%s,%s) = %v", in.client, in.kind, modeLetter(in.mode, false), in.resource, output)
	},
	DescribeState: func(state any) string {
		s := state.(lockState)
		var parts []string
		for m, holders := range s.holders {
			if holders != 0 {
				parts = append(parts, fmt.Sprintf("%v=%d", locker.Mode(m), bits.OnesCount64(holders)))
			}
		}
		if len(parts) == 0 {
			return "free"
		}
		return strings.Join(parts, " ")
	},
}

// LinearizabilityResult is the verdict of CheckLocks.
type LinearizabilityResult struct {
	// Ok is true when the history is linearizable against LockModel.
	Ok bool
	// Unknown is true when the checker ran out of time before deciding.
	Unknown bool
	// Ops is how many operations were checked.
	Ops int
}

// CheckLocks checks a lock history against LockModel with porcupine,
// giving up after timeout (0 means no limit). It panics if a client number is
// MaxClients or more.
func CheckLocks(ops []Op, timeout time.Duration) LinearizabilityResult {
	hist := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Client < 0 || op.Client >= MaxClients {
			panic(fmt.Sprintf("simulation: client %d outside the model's 0..%d", op.Client, MaxClients-1))
		}
		hist = append(hist, porcupine.Operation{
			ClientId: op.Client,
			Input:    lockInput{resource: op.Resource, client: op.Client, kind: op.Kind, mode: OpMode(op)},
			Output:   op.Outcome,
			Call:     op.Call,
			Return:   op.Return,
		})
	}
	res := porcupine.CheckOperationsTimeout(LockModel.ToModel(), hist, timeout)
	return LinearizabilityResult{Ok: res == porcupine.Ok, Unknown: res == porcupine.Unknown, Ops: len(hist)}
}
