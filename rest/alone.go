package rest

import (
	"context"
	"fmt"

	"github.com/tinylib/msgp/msgp"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// Calls for the table's optional capabilities (locker.Querier,
// locker.Fencer, locker.Versioner, locker.WaitReporter) are rare and never batched: each goes alone, on a path of
// its own, through callAlone and serveAlone.

// callAlone sends args on path in a request of its own and decodes the
// node's answer into reply. It is bounded by ClientConfig.CallTimeout and
// ctx; a caller that gives up leaves the request to end on its own.
func (c *Client) callAlone(ctx context.Context, op, path string, args msgp.Marshaler, reply msgp.Unmarshaler) error {
	fail := func(err error) error { return fmt.Errorf("rest: %s %s: %w", op, c.endpoint, err) }
	switch {
	case c.closed.Load():
		return fail(fmt.Errorf("%w (%w)", locker.ErrClosed, locker.ErrNotSent))
	case ctx.Err() != nil:
		return fail(fmt.Errorf("%w (%w)", ctxError(ctx), locker.ErrNotSent))
	case !c.online.Load():
		return fail(fmt.Errorf("%w (%w)", locker.ErrOffline, locker.ErrNotSent))
	}
	deadline := monoNow().Add(c.cfg.CallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	done := make(chan error, 1) // buffered: an abandoned call ends on its own
	go func() {
		ex := getExchange()
		defer putExchange(ex)
		var err error
		if ex.buf, err = args.MarshalMsg(ex.buf[:0]); err == nil {
			err = c.roundTrip(ex, fasthttp.MethodPost, path, deadline)
		}
		if err == nil {
			left, derr := reply.UnmarshalMsg(ex.body)
			if msg := decodeProblem(left, derr); msg != "" {
				err = fmt.Errorf("%w: answer: %s", ErrProtocol, msg)
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fail(err)
		}
		return nil
	case <-ctx.Done():
		return fail(ctxError(ctx))
	}
}

// aloneHandler serves one path of serveAlone: it decodes body, asks the
// table, and returns the encoded answer; ok false if the table lacks the
// capability.
type aloneHandler func(ctx context.Context, body []byte) (out []byte, ok bool, err error)

// errMalformed marks a request body that does not decode.
type errMalformed string

func (e errMalformed) Error() string { return string(e) }

// withAlone routes the paths of the optional capabilities to their
// handlers, and every other path to next.
func (s *Server) withAlone(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	handlers := map[string]struct {
		name string
		h    aloneHandler
	}{
		PathQuery:   {"query", s.serveQuery},
		PathFence:   {"fence", s.serveFence},
		PathWaits:   {"waits", s.serveWaits},
		PathEvents:  {"events", s.serveEvents},
		PathVersion: {"version", s.serveVersion},
	}
	return func(rc *fasthttp.RequestCtx) {
		p, found := handlers[string(rc.Path())]
		if !found {
			next(rc)
			return
		}
		if s.cfg.OnRequest != nil {
			s.cfg.OnRequest(rc.Path())
		}
		if !rc.IsPost() {
			rc.Response.Header.Set("Allow", fasthttp.MethodPost)
			s.fail(rc, CodeMethod, fmt.Sprintf("method %s not allowed on %s; use POST", rc.Method(), rc.Path()))
			return
		}
		body := rc.PostBody()
		if _, ok := s.authentic(rc, body); !ok {
			return
		}
		ctx, dc := s.requestContext(rc)
		defer dc.finish()
		out, ok, err := p.h(ctx, body)
		switch e := err.(type) {
		case nil:
		case errMalformed:
			s.fail(rc, CodeMalformed, "rest: "+p.name+": "+string(e))
			return
		default:
			s.fail(rc, codeOf(err), err.Error())
			return
		}
		if !ok {
			s.fail(rc, CodeUnsupported, "rest: the node's table cannot answer "+p.name+" requests")
			return
		}
		s.reply(rc, out)
	}
}

// decodeArgs decodes body into args, or returns an errMalformed.
func decodeArgs(body []byte, args msgp.Unmarshaler) error {
	left, err := args.UnmarshalMsg(body)
	if msg := decodeProblem(left, err); msg != "" {
		return errMalformed(msg)
	}
	return nil
}
