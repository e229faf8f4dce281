package locker

import (
	"container/heap"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// MaxListPage is the most entries one page of a listing holds (see
// Lister): well under the 100,000 elements the wire decoders accept in an
// array, and, with names, UIDs and labels at the default limits, about
// 30 MB encoded.
const MaxListPage = 10_000

// List returns a page of the table's listing: the entries after args'
// cursor, ordered by resource then UID, at most args.Max of them. Expired
// grants not yet reclaimed are left out. It changes nothing. See Lister.
//
// It walks every shard, one at a time under its lock, and keeps only the
// page's entries meanwhile, in a heap bounded by the page's size: memory
// is proportional to the page, and time to the table (an entry that does
// not make the page costs a comparison, nothing copied), never to sorting
// the whole table.
func (l *Local) List(ctx context.Context, args ListArgs) (EntryList, error) {
	if l.closed.Load() {
		return EntryList{}, ErrClosed
	}
	max, err := args.pageSize()
	if err != nil {
		return EntryList{}, err
	}
	if len(args.AfterResource) > l.cfg.MaxNameLen || len(args.AfterUID) > l.cfg.MaxUIDLen {
		return EntryList{}, fmt.Errorf("%w: list: a cursor longer than the names and UIDs of the table (MaxNameLen %d, MaxUIDLen %d)", ErrInvalidArgs, l.cfg.MaxNameLen, l.cfg.MaxUIDLen)
	}
	now := l.now()
	page := entryHeap{entries: make([]Entry, 0, min(max, 64))}
	more := false
	consider := func(name string, g *grant) {
		if l.expired(g, now) || !args.before(name, g.uid) {
			return
		}
		full := len(page.entries) == max
		if full {
			more = true
			if top := &page.entries[0]; compareEntry(name, g.uid, top.Resource, top.UID) >= 0 {
				return // not in the page: nothing copied
			}
		}
		// The table's own names may be reused once their grant is gone:
		// hand out copies. Origins are never reused.
		name, uid := cloneTwo(name, g.uid)
		e := Entry{
			Resource: name, UID: uid, Owner: g.origin.owner, Source: g.origin.source, Holder: strings.Clone(g.holder()),
			Write: g.mode == ModeX, Mode: g.mode, Quorum: int(g.quorum), Fence: g.fence,
			HeldFor: now - g.granted, SinceRefresh: now - g.refreshed.Load(),
		}
		if full { // e takes the place of the largest, which is after the page now
			page.entries[0] = e
			heap.Fix(&page, 0)
			return
		}
		heap.Push(&page, e)
	}
	for i := range l.shards {
		if err := ctx.Err(); err != nil {
			return EntryList{}, fmt.Errorf("locker: list: %w", err)
		}
		s := &l.shards[i]
		s.mu.Lock()
		s.resources.each(func(r *resource) {
			if r.writer != nil {
				consider(r.name, r.writer)
			}
			for _, g := range r.readerGrants() {
				consider(r.name, g)
			}
		})
		s.mu.Unlock()
	}
	entries := page.entries
	slices.SortFunc(entries, func(a, b Entry) int { return compareEntry(a.Resource, a.UID, b.Resource, b.UID) })
	return EntryList{Entries: entries, More: more}, nil
}

// pageSize returns the most entries the page of a may hold, or an error if
// a.Max is negative.
func (a ListArgs) pageSize() (int, error) {
	switch {
	case a.Max < 0:
		return 0, fmt.Errorf("%w: list: negative page size %d", ErrInvalidArgs, a.Max)
	case a.Max == 0 || a.Max > MaxListPage:
		return MaxListPage, nil
	}
	return a.Max, nil
}

// before reports whether the entry of resource and uid comes after a's
// cursor, in the page a asks for.
func (a ListArgs) before(resource, uid string) bool {
	return compareEntry(a.AfterResource, a.AfterUID, resource, uid) < 0
}

// Next returns the arguments that ask for the page after the one list is,
// of max entries. It is meaningful only if list.More.
func (list *EntryList) Next(max int) ListArgs {
	if len(list.Entries) == 0 {
		return ListArgs{Max: max}
	}
	last := list.Entries[len(list.Entries)-1]
	return ListArgs{AfterResource: last.Resource, AfterUID: last.UID, Max: max}
}

// compareEntry orders entries by resource, then UID.
func compareEntry(resA, uidA, resB, uidB string) int {
	if c := strings.Compare(resA, resB); c != 0 {
		return c
	}
	return strings.Compare(uidA, uidB)
}

// entryHeap is a max-heap of entries by resource then UID: the page of a
// listing while List builds it, whose largest entry the next smaller one
// pushes out.
type entryHeap struct{ entries []Entry }

func (h *entryHeap) Len() int { return len(h.entries) }
func (h *entryHeap) Less(i, j int) bool {
	a, b := &h.entries[i], &h.entries[j]
	return compareEntry(a.Resource, a.UID, b.Resource, b.UID) > 0
}
func (h *entryHeap) Swap(i, j int) { h.entries[i], h.entries[j] = h.entries[j], h.entries[i] }
func (h *entryHeap) Push(x any)    { h.entries = append(h.entries, x.(Entry)) }
func (h *entryHeap) Pop() any {
	n := len(h.entries) - 1
	e := h.entries[n]
	h.entries[n] = Entry{}
	h.entries = h.entries[:n]
	return e
}

// Entries returns an iterator over the whole listing of l, in order,
// asking for it one page of pageSize entries at a time (MaxListPage if
// zero): it holds one page, never the whole listing. A failed call ends
// the iteration, yielding its error with the zero Entry. The pages are not
// one snapshot: an entry present throughout the walk is yielded exactly
// once; one that comes or goes meanwhile may or may not be.
func Entries(ctx context.Context, l Lister, pageSize int) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		args := ListArgs{Max: pageSize}
		for {
			page, err := l.List(ctx, args)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More || len(page.Entries) == 0 {
				return
			}
			args = page.Next(pageSize)
		}
	}
}
