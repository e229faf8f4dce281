package rest

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

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
// ErrProtocol.
func (c *Client) Query(ctx context.Context, args locker.QueryArgs) (locker.QueryReply, error) {
	fail := func(err error) (locker.QueryReply, error) {
		return locker.QueryReply{}, fmt.Errorf("rest: query %s: %w", c.endpoint, err)
	}
	switch {
	case c.closed.Load():
		return fail(fmt.Errorf("%w (%w)", locker.ErrClosed, locker.ErrNotSent))
	case ctx.Err() != nil:
		return fail(fmt.Errorf("%w (%w)", ctxError(ctx), locker.ErrNotSent))
	case !c.online.Load():
		return fail(fmt.Errorf("%w (%w)", locker.ErrOffline, locker.ErrNotSent))
	}
	deadline := time.Now().Add(c.cfg.CallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	type result struct {
		reply locker.QueryReply
		err   error
	}
	done := make(chan result, 1) // buffered: an abandoned query ends on its own
	go func() {
		ex := getExchange()
		defer putExchange(ex)
		ex.buf, _ = args.MarshalMsg(ex.buf[:0])
		if err := c.roundTrip(ex, fasthttp.MethodPost, PathQuery, 0, deadline); err != nil {
			done <- result{err: err}
			return
		}
		var r locker.QueryReply
		left, err := r.UnmarshalMsg(ex.resp.Body())
		if msg := decodeProblem(left, err); msg != "" {
			done <- result{err: fmt.Errorf("%w: answer: %s", ErrProtocol, msg)}
			return
		}
		done <- result{reply: r}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return fail(res.err)
		}
		return res.reply, nil
	case <-ctx.Done():
		return fail(ctxError(ctx))
	}
}

// withQuery routes PathQuery to serveQuery, and every other path to next.
func (s *Server) withQuery(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		if string(rc.Path()) != PathQuery {
			next(rc)
			return
		}
		if s.cfg.OnRequest != nil {
			s.cfg.OnRequest(rc.Path())
		}
		s.serveQuery(rc)
	}
}

// serveQuery answers a request for PathQuery.
func (s *Server) serveQuery(rc *fasthttp.RequestCtx) {
	if !rc.IsPost() {
		rc.Response.Header.Set("Allow", fasthttp.MethodPost)
		s.fail(rc, CodeMethod, fmt.Sprintf("method %s not allowed on %s; use POST", rc.Method(), PathQuery))
		return
	}
	body := rc.PostBody()
	if !s.authentic(rc, body) {
		return
	}
	q, ok := s.l.(locker.Querier)
	if !ok {
		s.fail(rc, CodeUnsupported, "rest: the node's table cannot answer queries")
		return
	}
	var args locker.QueryArgs
	left, err := args.UnmarshalMsg(body)
	if msg := decodeProblem(left, err); msg != "" {
		s.fail(rc, CodeMalformed, "rest: query: "+msg)
		return
	}
	ctx, cancel := s.requestContext(rc)
	defer cancel()
	reply, err := q.Query(ctx, args)
	if err != nil {
		s.fail(rc, codeOf(err), err.Error())
		return
	}
	out, _ := reply.MarshalMsg(nil)
	s.reply(rc, out)
}
