package simulation

import (
	"fmt"
	"math/bits"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// MaxClients is how many clients the lock model can tell apart: a
// resource's readers are a bit set in one uint64.
const MaxClients = 64

// lockState is the model's state of one resource: its writer (-1 if none)
// and the set of its readers.
type lockState struct {
	writer  int
	readers uint64
}

// lockInput is what porcupine sees of an Op.
type lockInput struct {
	resource string
	client   int
	kind     OpKind
	write    bool
}

// LockModel is the sequential specification of a read/write lock checked by
// porcupine, partitioned by resource: a write acquire succeeds only when the
// resource has no holder, a read acquire only when it has no writer. A failed
// acquire changes nothing. An acquire whose outcome is unknown may or may not
// have taken effect. A release (or a lost notification) ends the client's hold;
// releasing what the model does not hold is allowed and changes nothing.
//
// The model checks what clients believe: a client holds a lock from some
// instant during its successful acquire call until some instant during its
// release call, or until it is told the lock was lost, or until it crashes. A
// history is linearizable if and only if no two beliefs conflict.
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
	Init: func() []any { return []any{lockState{writer: -1}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(lockState), input.(lockInput), output.(Outcome)
		bit := uint64(1) << in.client
		switch in.kind {
		case OpRelease, OpLost:
			if in.write && s.writer == in.client {
				s.writer = -1
			} else if !in.write {
				s.readers &^= bit
			}
			return []any{s}
		}
		acquired, legal := s, false
		if in.write && s.writer < 0 && s.readers == 0 {
			acquired.writer, legal = in.client, true
		} else if !in.write && s.writer < 0 {
			acquired.readers |= bit
			legal = true
		}
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
		mode := "r"
		if in.write {
			mode = "w"
		}
		return fmt.Sprintf("c%d %s(%s,%s) = %v", in.client, in.kind, mode, in.resource, output)
	},
	DescribeState: func(state any) string {
		s := state.(lockState)
		return fmt.Sprintf("writer=%d readers=%d", s.writer, bits.OnesCount64(s.readers))
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
			Input:    lockInput{resource: op.Resource, client: op.Client, kind: op.Kind, write: op.Write},
			Output:   op.Outcome,
			Call:     op.Call,
			Return:   op.Return,
		})
	}
	res := porcupine.CheckOperationsTimeout(LockModel.ToModel(), hist, timeout)
	return LinearizabilityResult{Ok: res == porcupine.Ok, Unknown: res == porcupine.Unknown, Ops: len(hist)}
}
