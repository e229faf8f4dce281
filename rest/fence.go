package rest

import (
	"context"

	"github.com/dsync-go/dsync/locker"
)

// PathFence serves locker.Fencer: POST locker.FenceArgs ->
// locker.FenceReply, authenticated like every other path. A node whose table
// has no fence counter replies 501 (CodeUnsupported); a node older than this
// path replies 404 (CodeNotFound). Never batched.
const PathFence = PathPrefix + "fence"

var _ locker.Fencer = (*Client)(nil)

// RaiseFence asks the node to raise its fence counter; see locker.Fencer.
// It is sent on a request of its own, bounded by ClientConfig.CallTimeout
// and ctx.
func (c *Client) RaiseFence(ctx context.Context, args locker.FenceArgs) (locker.FenceReply, error) {
	var r locker.FenceReply
	if err := c.callAlone(ctx, "fence", PathFence, &args, &r); err != nil {
		return locker.FenceReply{}, err
	}
	return r, nil
}

// serveFence answers a request for PathFence.
func (s *Server) serveFence(ctx context.Context, body []byte) ([]byte, bool, error) {
	f, ok := s.l.(locker.Fencer)
	if !ok {
		return nil, false, nil
	}
	var args locker.FenceArgs
	if err := decodeArgs(body, &args); err != nil {
		return nil, true, err
	}
	reply, err := f.RaiseFence(ctx, args)
	if err != nil {
		return nil, true, err
	}
	out, err := reply.MarshalMsg(nil)
	return out, true, err
}
