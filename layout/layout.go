// Package layout reads the layout of a cluster of lock nodes from
// configuration: a list of node URLs, in MinIO's ellipsis form or not, cut
// into lock sets of a given size (see [github.com/dsync-go/dsync/dsync.NewSets]). Every node and every
// client of a cluster is given the same list and set size; each node keeps
// the layout's Fingerprint and tells it to its clients (package [github.com/dsync-go/dsync/rest] sends
// it in its hello), and a client checks the nodes' fingerprints against
// its own before it locks anything (Check). Two clients whose layouts
// differ could lock one resource on two different sets, and both get it;
// Check refuses the client instead.
//
//	l, err := layout.Parse([]string{"http://node{1...16}:9000"}, 4)
//	// l.Sets: [[node1 … node4] [node5 … node8] [node9 … node12] [node13 … node16]]
//	err = layout.Check(ctx, l, lockers) // before dsync.NewSets
//
// # Growth
//
// A layout does not grow in place: SetIndex spreads names over the sets
// there are, so another set count moves most resources to another set,
// and a resource held under the old layout could be granted again under
// the new one. A deployment grows through a change of layout instead
// (dsync.NewTransition): its nodes tell the change's fingerprint
// (Transition), and Compatible lets clients of the old layout and of the
// change, then clients of the change and of the new layout, lock through
// them, never clients of the old and of the new together. The module's
// docs/sets.md ("Growing") gives the steps.
package layout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dsync-go/dsync/locker"
)

// Errors of Parse and Check.
var (
	// ErrInvalid is wrapped by every error of Parse.
	ErrInvalid = errors.New("layout: invalid")
	// ErrMismatch: a node's layout differs from the client's.
	ErrMismatch = errors.New("layout: the node belongs to another layout")
	// ErrUnknown: a node could not tell its layout (it did not answer, or
	// its locker cannot tell).
	ErrUnknown = errors.New("layout: the node's layout is unknown")
)

// Layout is the nodes of a cluster in lock sets.
type Layout struct {
	// Sets lists each set's node URLs, set 0 first. Every set has the same
	// number of nodes; a URL may be in several sets, and is one node.
	Sets [][]string
}

// Parse returns the layout of nodes, cut into sets of setSize in order:
// set i is the URLs i*setSize to (i+1)*setSize−1 of the list. Each entry of
// nodes may hold several URLs separated by spaces or commas, and each URL
// may hold ellipses, expanded as MinIO does: {1...4} is 1, 2, 3, 4;
// {01...16} keeps the zero padding; two ellipses in one URL expand to
// every combination, the rightmost varying fastest. A URL may appear in
// several sets (a node that serves several), never twice in one. A
// setSize of 0 means one set of every URL. The number of URLs must be a
// multiple of setSize.
func Parse(nodes []string, setSize int) (Layout, error) {
	var urls []string
	for _, entry := range nodes {
		for _, f := range strings.FieldsFunc(entry, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			ex, err := Expand(f)
			if err != nil {
				return Layout{}, err
			}
			urls = append(urls, ex...)
		}
	}
	if len(urls) == 0 {
		return Layout{}, fmt.Errorf("%w: no nodes", ErrInvalid)
	}
	switch {
	case setSize < 0:
		return Layout{}, fmt.Errorf("%w: set size %d", ErrInvalid, setSize)
	case setSize == 0:
		setSize = len(urls)
	case len(urls)%setSize != 0:
		return Layout{}, fmt.Errorf("%w: %d nodes are not a multiple of the set size %d", ErrInvalid, len(urls), setSize)
	}
	var l Layout
	for i := 0; i < len(urls); i += setSize {
		set := urls[i : i+setSize : i+setSize]
		seen := make(map[string]bool, len(set))
		for _, u := range set {
			if seen[u] {
				return Layout{}, fmt.Errorf("%w: %s twice in set %d", ErrInvalid, u, len(l.Sets))
			}
			seen[u] = true
		}
		l.Sets = append(l.Sets, set)
	}
	return l, nil
}

// Expand returns the URLs that s stands for: s itself if it holds no
// ellipsis; see Parse for the form.
func Expand(s string) ([]string, error) {
	open := strings.Index(s, "{")
	if open < 0 {
		if strings.Contains(s, "}") {
			return nil, fmt.Errorf("%w: %q: unmatched }", ErrInvalid, s)
		}
		return []string{s}, nil
	}
	end := strings.Index(s[open:], "}")
	if end < 0 {
		return nil, fmt.Errorf("%w: %q: unmatched {", ErrInvalid, s)
	}
	end += open
	lo, hi, ok := strings.Cut(s[open+1:end], "...")
	if !ok {
		return nil, fmt.Errorf("%w: %q: {a...b} expected", ErrInvalid, s)
	}
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if errA != nil || errB != nil || a < 0 || b < a {
		return nil, fmt.Errorf("%w: %q: {%s...%s} is not an ascending range of numbers", ErrInvalid, s, lo, hi)
	}
	if b-a >= 1<<16 {
		return nil, fmt.Errorf("%w: %q: range of %d", ErrInvalid, s, b-a+1)
	}
	width := 0
	if len(lo) > 1 && lo[0] == '0' {
		width = len(lo) // {01...16}: zero-padded
	}
	rest, err := Expand(s[end+1:])
	if err != nil {
		return nil, err
	}
	var out []string
	for i := a; i <= b; i++ {
		n := strconv.Itoa(i)
		if len(n) < width {
			n = strings.Repeat("0", width-len(n)) + n
		}
		for _, r := range rest {
			out = append(out, s[:open]+n+r)
		}
	}
	return out, nil
}

// SetSize returns the number of nodes of a set.
func (l Layout) SetSize() int {
	if len(l.Sets) == 0 {
		return 0
	}
	return len(l.Sets[0])
}

// Nodes returns every distinct URL, in the order they first appear.
func (l Layout) Nodes() []string {
	var out []string
	seen := make(map[string]bool)
	for _, set := range l.Sets {
		for _, u := range set {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Fingerprint returns the layout's fingerprint: "v1-" and the first 32 hex
// digits of the SHA-256 of "dsync-layout-v1", then for each set a newline
// and its URLs joined by spaces. Two layouts have the same fingerprint
// when they have the same sets, in the same order, of the same URLs in the
// same order; so every node and client must be given the same list.
func (l Layout) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("dsync-layout-v1"))
	for _, set := range l.Sets {
		h.Write([]byte("\n" + strings.Join(set, " ")))
	}
	return "v1-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// String returns the layout in short: its sets, set size and fingerprint.
func (l Layout) String() string {
	return fmt.Sprintf("%d sets of %d nodes (layout %s)", len(l.Sets), l.SetSize(), l.Fingerprint())
}

// Teller is a locker that can tell the fingerprint of its node's layout;
// an empty fingerprint says the node was given none. rest.Client is one.
type Teller interface {
	Layout(ctx context.Context) (string, error)
}

// Check asks every locker for its node's layout, at once, and returns nil
// if every one is l's. A node given no layout passes only if l is one set:
// the nodes of a cluster without lock sets are one set, whatever their list.
// Otherwise Check returns an error for each node that does not pass,
// wrapping ErrMismatch (the node was given another layout, or none) or
// ErrUnknown (it did not answer, or is not a Teller), joined. Lock with l
// only if Check returns nil: a client that locked with another layout than
// the nodes' could be granted locks that others hold.
func Check(ctx context.Context, l Layout, lockers []locker.NetLocker) error {
	return check(ctx, l.Fingerprint(), l.String(), len(l.Sets) == 1, lockers)
}

// Transition returns the fingerprint of the change from the layout from to
// the layout to (dsync.NewTransition): the two fingerprints joined by a
// '.'. Nodes are given it (rest.ServerConfig.Layout, dsync-node
// -next-nodes) for the time their clients move from one layout to the
// other; see Compatible for which clients accept such nodes.
func Transition(from, to Layout) string { return from.Fingerprint() + "." + to.Fingerprint() }

// Compatible reports whether a client whose layout has the fingerprint
// client may lock through a node whose layout has the fingerprint node, as
// the steps of a layout change require (see dsync.NewTransition):
//
//   - the same layout: always;
//   - a client of layout A, a node of the change from A to B: yes, the
//     clients of A may still run while nodes and clients change;
//   - a client of the change from A to B, a node of B: yes, the nodes may
//     finish the change before the last clients do;
//   - a client of B, a node of the change from A to B: no, clients of A may
//     still lock through that node, and a client of B does not exclude
//     them; nor a client of A and a node of B: every client of A must be
//     gone once the nodes are given B.
//
// So clients of A and clients of B never lock through the same nodes,
// whatever the order in which nodes and clients are restarted.
func Compatible(client, node string) bool {
	if client == node {
		return true
	}
	if strings.Contains(client, ".") {
		return strings.HasSuffix(client, "."+node) && !strings.Contains(node, ".")
	}
	return strings.HasPrefix(node, client+".")
}

// CheckTransition is Check for a client of the change from the layout from
// to the layout to (dsync.NewTransition): lockers are the nodes of both,
// and each must tell the change's fingerprint (Transition) or to's.
func CheckTransition(ctx context.Context, from, to Layout, lockers []locker.NetLocker) error {
	return check(ctx, Transition(from, to), fmt.Sprintf("changes from %s to %s", from, to), false, lockers)
}

// check is Check against the fingerprint want of a client described as
// client; oneSet says nodes given no layout pass.
func check(ctx context.Context, want, client string, oneSet bool, lockers []locker.NetLocker) error {
	errs := make([]error, len(lockers))
	done := make(chan struct{}, len(lockers))
	for i, lk := range lockers {
		go func() {
			defer func() { done <- struct{}{} }()
			t, ok := lk.(Teller)
			if !ok {
				errs[i] = fmt.Errorf("%w: %s cannot tell it", ErrUnknown, lk)
				return
			}
			got, err := t.Layout(ctx)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("%w: %s: %w", ErrUnknown, lk, err)
			case got == "" && oneSet:
			case got == "":
				errs[i] = fmt.Errorf("%w: %s was given no layout (one set), the client %s", ErrMismatch, lk, client)
			case !Compatible(want, got):
				errs[i] = fmt.Errorf("%w: %s has layout %s, the client %s: give every node and client the same node list and set size (or follow the steps of a layout change)", ErrMismatch, lk, got, client)
			}
		}()
	}
	for range lockers {
		<-done
	}
	return errors.Join(errs...)
}
