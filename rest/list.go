package rest

import (
	"context"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// Listings (locker.Lister) go one page per request, alone, never batched:
// POST PathLocks with a locker.ListArgs, answered with a locker.EntryList.

// List asks the node for one page of its listing; see locker.Lister. It is
// sent on a request of its own, bounded by ClientConfig.CallTimeout and
// ctx. locker.Entries walks every page.
func (c *Client) List(ctx context.Context, args locker.ListArgs) (locker.EntryList, error) {
	var list locker.EntryList
	if err := c.callAlone(ctx, "list", PathLocks, &args, &list); err != nil {
		return locker.EntryList{}, err
	}
	return list, nil
}

// list answers a request for PathLocks, whose body has been authenticated.
func (s *Server) list(rc *fasthttp.RequestCtx) {
	lister, ok := s.l.(locker.Lister)
	if !ok {
		s.fail(rc, CodeUnsupported, "rest: the node's table cannot list its locks")
		return
	}
	var args locker.ListArgs
	if err := decodeArgs(rc.PostBody(), &args); err != nil {
		s.fail(rc, CodeMalformed, "rest: locks: "+err.Error())
		return
	}
	ctx, dc := s.requestContext(rc)
	defer dc.finish()
	page, err := lister.List(ctx, args)
	if err != nil {
		s.fail(rc, codeOf(err), err.Error())
		return
	}
	// A page that cannot be encoded (one over the wire's limits, from a
	// table whose pages are larger than locker.MaxListPage) is an error,
	// never an empty answer.
	out, err := page.MarshalMsg(nil)
	if err != nil {
		s.fail(rc, CodeInternal, fmt.Sprintf("rest: locks: a page of %d entries cannot be encoded: %v", len(page.Entries), err))
		return
	}
	s.reply(rc, out)
}
