package dsync

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// TestNodeCycle checks how the nodes' reports make a graph: an edge counts
// only if its holder's quorum of nodes reports it, and a cycle is reported
// only to its largest holder.
func TestNodeCycle(t *testing.T) {
	e := func(waiter, resource, holder, uid string, q int) locker.WaitEdge {
		return locker.WaitEdge{Waiter: waiter, Resource: resource, Holder: holder, Tag: locker.UIDTag(uid), Quorum: q}
	}
	ab := e("A", "b", "B", "ub", 2) // A waits for b, held by B
	ba := e("B", "a", "A", "ua", 2) // B waits for a, held by A
	for _, tc := range []struct {
		name    string
		holder  string
		reports [][]locker.WaitEdge
		want    string // "" for no cycle, else the cycle's holders in order
	}{
		{"cycle on every node: the largest is the victim", "B", [][]locker.WaitEdge{{ab, ba}, {ab, ba}, {ab, ba}}, "B A"},
		{"the smaller holder keeps waiting", "A", [][]locker.WaitEdge{{ab, ba}, {ab, ba}, {ab, ba}}, ""},
		{"on a quorum", "B", [][]locker.WaitEdge{{ab}, {ab, ba}, {ba}}, "B A"},
		{"one node down", "B", [][]locker.WaitEdge{{ab, ba}, nil, {ab, ba}}, "B A"},
		{"an edge below its quorum does not count", "B", [][]locker.WaitEdge{{ab, ba}, {ab}, {}}, ""},
		{"a node counts once", "B", [][]locker.WaitEdge{{ab, ba, ba}, {ab}, {}}, ""},
		{"a stale grant on a minority", "B", [][]locker.WaitEdge{{ab, e("B", "a", "A", "stale", 2)}, {ab, ba}, {}}, ""},
		{"a chain", "C", [][]locker.WaitEdge{{ab, e("B", "c", "C", "uc", 2)}, {ab, e("B", "c", "C", "uc", 2)}}, ""},
		{"a cycle not through the holder", "C", [][]locker.WaitEdge{{ab, ba, e("C", "a", "A", "ua", 2)}, {ab, ba, e("C", "a", "A", "ua", 2)}}, ""},
		{"three holders", "C", [][]locker.WaitEdge{
			{ab, e("B", "c", "C", "uc", 2), e("C", "a", "A", "ua", 2)},
			{ab, e("B", "c", "C", "uc", 2), e("C", "a", "A", "ua", 2)},
		}, "C A B"},
		{"a read quorum of one", "B", [][]locker.WaitEdge{{e("A", "b", "B", "ub", 1), e("B", "a", "A", "ua", 1)}, {}}, "B A"},
		{"waiting for itself", "A", [][]locker.WaitEdge{{e("A", "a", "A", "ua", 1)}}, "A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nodeCycle(tc.holder, tc.reports)
			if tc.want == "" {
				require.Empty(t, got, "cycle, want none")
				return
			}
			holders := strings.Fields(tc.want)
			for i, h := range holders {
				next := holders[(i+1)%len(holders)]
				require.Contains(t, got, `"`+h+`" waits for`, "cycle %q, want %s", got, tc.want)
				require.Contains(t, got, `held by "`+next+`"`, "cycle %q, want %s", got, tc.want)
			}
			require.Equal(t, len(holders), strings.Count(got, "waits for"), "cycle %q: edges", got)
		})
	}
}
