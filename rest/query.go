package rest

import (
	"context"
	"fmt"

	"github.com/dsync-go/dsync/locker"
)

// PathQuery serves locker.Querier: POST locker.QueryArgs ->
// locker.QueryReply, authenticated like every other path. A node whose table
// cannot answer queries replies 501 (CodeUnsupported); a node older than this
// path replies 404 (CodeNotFound). Queries are never batched.
const PathQuery = PathPrefix + "query"

var _ locker.Querier = (*Client)(nil)

// Query asks the node who holds args.Resources; see locker.Querier. It is
// sent on a request of its own, bounded by ClientConfig.CallTimeout and ctx.
// A node that does not serve queries makes it fail with an error wrapping
// ErrProtocol, as does an answer naming a holder of a mode out of range
// (Holder.Mode: zero, from a node that predates modes, or one of the five)
// or whose Write disagrees with its mode.
func (c *Client) Query(ctx context.Context, args locker.QueryArgs) (locker.QueryReply, error) {
	var r locker.QueryReply
	if err := c.callAlone(ctx, "query", PathQuery, &args, &r); err != nil {
		return locker.QueryReply{}, err
	}
	if err := checkHolderModes(r); err != nil {
		return locker.QueryReply{}, fmt.Errorf("rest: query %s: %w: answer: %w", c.endpoint, ErrProtocol, err)
	}
	return r, nil
}

// checkHolderModes reports the first holder of r whose mode is out of
// range, or says X while Write does not (or the reverse).
func checkHolderModes(r locker.QueryReply) error {
	for i, hs := range r.Resources {
		for _, h := range hs.Holders {
			switch {
			case h.Mode != 0 && !h.Mode.Valid():
				return fmt.Errorf("resource %d: holder %s of unknown mode %d", i, h.Tag, uint8(h.Mode))
			case h.Mode != 0 && h.Write != (h.Mode == locker.ModeX):
				return fmt.Errorf("resource %d: holder %s of mode %v with write %v", i, h.Tag, h.Mode, h.Write)
			}
		}
	}
	return nil
}

// serveQuery answers a request for PathQuery.
func (s *Server) serveQuery(ctx context.Context, body []byte) ([]byte, bool, error) {
	q, ok := s.l.(locker.Querier)
	if !ok {
		return nil, false, nil
	}
	var args locker.QueryArgs
	if err := s.decodeAlone("query", body, func(b []byte, lim *decodeBudget) ([]byte, error) { return decodeQueryZC(&args, b, lim) }); err != nil {
		return nil, true, err
	}
	if !s.inPlace {
		ownNames(args.Resources)
	}
	reply, err := q.Query(ctx, args)
	if err != nil {
		return nil, true, err
	}
	out, err := reply.MarshalMsg(nil)
	return out, true, err
}
