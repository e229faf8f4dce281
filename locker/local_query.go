package locker

import (
	"context"
	"fmt"
	"strings"
)

var _ Querier = (*Local)(nil)

// Query reports who holds each resource of args; see Querier. Each resource
// is read under its shard's lock, one shard at a time.
func (l *Local) Query(ctx context.Context, args QueryArgs) (QueryReply, error) {
	if l.closed.Load() {
		return QueryReply{}, ErrClosed
	}
	if err := l.checkNames("query", args.Resources); err != nil {
		return QueryReply{}, err
	}
	n := len(args.Resources)
	if err := ctx.Err(); err != nil {
		return QueryReply{}, fmt.Errorf("locker: query: %w", err)
	}
	reply := QueryReply{Resources: make([]Holders, n)}
	for i, name := range args.Resources {
		h := l.hash(name)
		s := &l.shards[l.shardOf(h)]
		if !s.lock(l.maxWaiters) {
			return QueryReply{}, fmt.Errorf("%w: query %q", ErrBusy, name)
		}
		if r := s.resource(h, name); r != nil {
			now := l.now()
			var hs []Holder
			add := func(g *grant) {
				if !g.tombstone && !l.expired(g, now) {
					h := Holder{Tag: UIDTag(g.uid), Write: g.mode == ModeX, Mode: g.mode, HeldFor: now - g.granted}
					if g.public {
						h.UID = strings.Clone(g.uid)
					}
					hs = append(hs, h)
				}
			}
			if r.writer != nil {
				add(r.writer)
			}
			for _, g := range r.readerGrants() {
				add(g)
			}
			reply.Resources[i].Holders = hs
		}
		s.mu.Unlock()
	}
	return reply, nil
}
