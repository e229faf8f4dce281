package rest

import (
	"context"
	"strings"

	"github.com/dsync-go/dsync/locker"
)

// PathWaits serves locker.WaitReporter: POST locker.WaitsArgs ->
// locker.WaitsReply, authenticated like every other path. A node whose table
// records no waits replies 501 (CodeUnsupported); a node older than this
// path replies 404 (CodeNotFound). Never batched.
const PathWaits = PathPrefix + "waits"

var _ locker.WaitReporter = (*Client)(nil)

// Waits asks the node for its wait-for edges, or withdraws a wait; see
// locker.WaitReporter. It is sent on a request of its own, bounded by
// ClientConfig.CallTimeout and ctx. A node that does not serve waits makes
// it fail with an error wrapping ErrProtocol.
func (c *Client) Waits(ctx context.Context, args locker.WaitsArgs) (locker.WaitsReply, error) {
	var r locker.WaitsReply
	if err := c.callAlone(ctx, "waits", PathWaits, &args, &r); err != nil {
		return locker.WaitsReply{}, err
	}
	return r, nil
}

// serveWaits answers a request for PathWaits.
func (s *Server) serveWaits(ctx context.Context, body []byte) ([]byte, bool, error) {
	w, ok := s.l.(locker.WaitReporter)
	if !ok {
		return nil, false, nil
	}
	var args locker.WaitsArgs
	if err := s.decodeAlone("waits", body, func(b []byte, lim *decodeBudget) ([]byte, error) { return decodeWaitsZC(&args, b, lim) }); err != nil {
		return nil, true, err
	}
	if !s.inPlace {
		args.Withdraw = strings.Clone(args.Withdraw)
		ownNames(args.Resources)
	}
	reply, err := w.Waits(ctx, args)
	if err != nil {
		return nil, true, err
	}
	out, err := reply.MarshalMsg(nil)
	return out, true, err
}
