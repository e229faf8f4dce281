package layout_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
)

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"http://a:9000", []string{"http://a:9000"}},
		{"http://node{1...3}:9000", []string{"http://node1:9000", "http://node2:9000", "http://node3:9000"}},
		{"http://n{08...10}", []string{"http://n08", "http://n09", "http://n10"}},
		{"http://r{1...2}n{1...2}", []string{"http://r1n1", "http://r1n2", "http://r2n1", "http://r2n2"}},
	} {
		got, err := layout.Expand(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"http://n{1...}", "http://n{3...1}", "http://n{1..3}", "http://n{1...3", "http://n}", "http://n{a...c}", "http://n{0...99999}"} {
		_, err := layout.Expand(bad)
		assert.ErrorIs(t, err, layout.ErrInvalid, bad)
	}
}

func TestParse(t *testing.T) {
	l, err := layout.Parse([]string{"http://node{1...16}:9000"}, 4)
	require.NoError(t, err)
	require.Len(t, l.Sets, 4)
	assert.Equal(t, []string{"http://node5:9000", "http://node6:9000", "http://node7:9000", "http://node8:9000"}, l.Sets[1])
	assert.Equal(t, 4, l.SetSize())
	assert.Len(t, l.Nodes(), 16)

	// Commas and spaces separate URLs; 0 is one set of all.
	l, err = layout.Parse([]string{"http://a,http://b http://c"}, 0)
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"http://a", "http://b", "http://c"}}, l.Sets)

	// A node may serve several sets, never one twice.
	l, err = layout.Parse([]string{"http://n{1...4}", "http://n{1...4}", "http://n{1...4}"}, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"http://n4", "http://n1", "http://n2"}, l.Sets[1])
	assert.Len(t, l.Nodes(), 4)

	for name, tc := range map[string]struct {
		nodes []string
		size  int
	}{
		"no nodes":       {nil, 4},
		"not a multiple": {[]string{"http://n{1...6}"}, 4},
		"twice in a set": {[]string{"http://a http://a"}, 2},
		"negative size":  {[]string{"http://a"}, -1},
		"bad ellipsis":   {[]string{"http://n{1...}"}, 1},
	} {
		_, err := layout.Parse(tc.nodes, tc.size)
		assert.ErrorIs(t, err, layout.ErrInvalid, name)
	}
}

func TestFingerprint(t *testing.T) {
	a, err := layout.Parse([]string{"http://node{1...16}:9000"}, 4)
	require.NoError(t, err)
	b, err := layout.Parse([]string{"http://node{1...8}:9000", "http://node{9...16}:9000"}, 4)
	require.NoError(t, err)
	assert.Equal(t, a.Fingerprint(), b.Fingerprint(), "the same layout written two ways")
	// Golden: a change of the fingerprint splits nodes and clients of
	// different versions.
	assert.Equal(t, "v1-"+"92d062081ee81b82a0edb2aa03b92241", a.Fingerprint())
	for _, other := range []struct {
		nodes []string
		size  int
	}{
		{[]string{"http://node{1...16}:9000"}, 8},
		{[]string{"http://node{1...16}:9000"}, 2},
		{[]string{"http://node{1...20}:9000"}, 4},
		{[]string{"http://node{2...16}:9000 http://node1:9000"}, 4},
	} {
		o, err := layout.Parse(other.nodes, other.size)
		require.NoError(t, err)
		assert.NotEqual(t, a.Fingerprint(), o.Fingerprint(), "%v in sets of %d", other.nodes, other.size)
	}
}

// teller is a locker that tells a layout, or fails to.
type teller struct {
	locker.NetLocker
	name   string
	layout string
	err    error
}

func (t teller) Layout(context.Context) (string, error) { return t.layout, t.err }
func (t teller) String() string                         { return t.name }

// plain is a locker that cannot tell a layout.
type plain struct{ locker.NetLocker }

func (plain) String() string { return "plain" }

func TestCheck(t *testing.T) {
	ctx := context.Background()
	l, err := layout.Parse([]string{"http://n{1...4}"}, 2)
	require.NoError(t, err)
	want := l.Fingerprint()
	same := teller{name: "same", layout: want}
	require.NoError(t, layout.Check(ctx, l, []locker.NetLocker{same, same}))

	err = layout.Check(ctx, l, []locker.NetLocker{same, teller{name: "other", layout: "v1-bbbb"}})
	require.ErrorIs(t, err, layout.ErrMismatch)
	assert.Contains(t, err.Error(), "other has layout v1-bbbb")

	err = layout.Check(ctx, l, []locker.NetLocker{teller{name: "none"}})
	require.ErrorIs(t, err, layout.ErrMismatch, "a node given no layout, a client of two sets")

	one, err := layout.Parse([]string{"http://n{1...4}"}, 0)
	require.NoError(t, err)
	require.NoError(t, layout.Check(ctx, one, []locker.NetLocker{teller{name: "none"}}), "no layout is one set")
	err = layout.Check(ctx, one, []locker.NetLocker{same})
	require.ErrorIs(t, err, layout.ErrMismatch, "a node of two sets, a client of one")

	err = layout.Check(ctx, l, []locker.NetLocker{teller{name: "down", err: errors.New("offline")}, plain{}})
	require.ErrorIs(t, err, layout.ErrUnknown)
	assert.NotErrorIs(t, err, layout.ErrMismatch)
}

func ExampleParse() {
	l, err := layout.Parse([]string{"http://node{1...16}:9000"}, 4)
	if err != nil {
		panic(err)
	}
	for i, set := range l.Sets {
		fmt.Println(i, set[0], "...", set[len(set)-1])
	}
	fmt.Println(l)
	// Output:
	// 0 http://node1:9000 ... http://node4:9000
	// 1 http://node5:9000 ... http://node8:9000
	// 2 http://node9:9000 ... http://node12:9000
	// 3 http://node13:9000 ... http://node16:9000
	// 4 sets of 4 nodes (layout v1-92d062081ee81b82a0edb2aa03b92241)
}

// Which clients lock through which nodes during a change from A to B: the
// clients of A and those of B never share a node.
func TestCompatible(t *testing.T) {
	a, err := layout.Parse([]string{"http://n{1...4}"}, 2)
	require.NoError(t, err)
	b, err := layout.Parse([]string{"http://n{1...6}"}, 2)
	require.NoError(t, err)
	A, B, AB := a.Fingerprint(), b.Fingerprint(), layout.Transition(a, b)
	assert.Equal(t, A+"."+B, AB)
	for _, tc := range []struct {
		client, node string
		ok           bool
	}{
		{A, A, true}, {A, AB, true}, {A, B, false},
		{AB, A, false}, {AB, AB, true}, {AB, B, true},
		{B, A, false}, {B, AB, false}, {B, B, true},
		{AB, layout.Transition(b, a), false},
		{A, "", false}, {AB, "", false},
	} {
		assert.Equal(t, tc.ok, layout.Compatible(tc.client, tc.node), "client %s, node %s", tc.client, tc.node)
	}
	// Every step of the change: a client of A and one of B are never both
	// accepted by one node.
	for _, node := range []string{A, AB, B} {
		assert.False(t, layout.Compatible(A, node) && layout.Compatible(B, node), "node %s takes clients of A and of B", node)
	}
}

func TestCheckTransition(t *testing.T) {
	ctx := context.Background()
	a, err := layout.Parse([]string{"http://n{1...4}"}, 2)
	require.NoError(t, err)
	b, err := layout.Parse([]string{"http://n{1...6}"}, 2)
	require.NoError(t, err)
	mid := teller{name: "mid", layout: layout.Transition(a, b)}
	done := teller{name: "done", layout: b.Fingerprint()}
	require.NoError(t, layout.CheckTransition(ctx, a, b, []locker.NetLocker{mid, done}), "nodes in the change, or past it")
	err = layout.CheckTransition(ctx, a, b, []locker.NetLocker{mid, teller{name: "old", layout: a.Fingerprint()}})
	require.ErrorIs(t, err, layout.ErrMismatch, "a node not yet in the change")
	assert.Contains(t, err.Error(), "old has layout "+a.Fingerprint())
	require.ErrorIs(t, layout.CheckTransition(ctx, a, b, []locker.NetLocker{teller{name: "none"}}), layout.ErrMismatch, "a node given no layout")
	require.NoError(t, layout.Check(ctx, a, []locker.NetLocker{mid}), "a client of the old layout, a node in the change")
	require.ErrorIs(t, layout.Check(ctx, b, []locker.NetLocker{mid}), layout.ErrMismatch, "a client of the new layout, a node in the change")
}
