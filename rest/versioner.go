package rest

import (
	"context"

	"github.com/dsync-go/dsync/locker"
)

// PathVersion serves locker.Versioner: POST locker.VersionArgs ->
// locker.VersionReply, authenticated like every other path (the lock role
// suffices). A node whose table cannot answer replies 501
// (CodeUnsupported); a node older than this path replies 404
// (CodeNotFound). Never batched.
const PathVersion = PathPrefix + "version"

var _ locker.Versioner = (*Client)(nil)

// Version asks the node what it knows of the write grants of
// args.Resources; see locker.Versioner. It is sent on a request of its own,
// bounded by ClientConfig.CallTimeout and ctx.
func (c *Client) Version(ctx context.Context, args locker.VersionArgs) (locker.VersionReply, error) {
	var r locker.VersionReply
	if err := c.callAlone(ctx, "version", PathVersion, &args, &r); err != nil {
		return locker.VersionReply{}, err
	}
	return r, nil
}

// serveVersion answers a request for PathVersion. Its arguments have the
// shape of a query's (one list of names, under the key "r"), and are
// decoded, within the table's limits, by the same code.
func (s *Server) serveVersion(ctx context.Context, body []byte) ([]byte, bool, error) {
	v, ok := s.l.(locker.Versioner)
	if !ok {
		return nil, false, nil
	}
	var q locker.QueryArgs
	if err := s.decodeAlone("version", body, func(b []byte, lim *decodeBudget) ([]byte, error) { return decodeQueryZC(&q, b, lim) }); err != nil {
		return nil, true, err
	}
	args := locker.VersionArgs{Resources: q.Resources}
	if !s.inPlace {
		ownNames(args.Resources)
	}
	reply, err := v.Version(ctx, args)
	if err != nil {
		return nil, true, err
	}
	out, err := reply.MarshalMsg(nil)
	return out, true, err
}
