package rest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// listAll returns the whole listing of l, walking its pages.
func listAll(ctx context.Context, l locker.Lister) ([]locker.Entry, error) {
	var out []locker.Entry
	for e, err := range locker.Entries(ctx, l, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// bigPages is a Lister whose pages are larger than the wire allows.
type bigPages struct {
	locker.NetLocker
	n int
}

func (b bigPages) List(ctx context.Context, args locker.ListArgs) (locker.EntryList, error) {
	return locker.EntryList{Entries: make([]locker.Entry, b.n)}, nil
}

// A page that cannot be encoded is an error status, never an empty 200.
func TestListEncodeErrorIsAnError(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	srv, err := NewServer(bigPages{tbl, lockerArrayLimit + 1}, ServerConfig{Insecure: true})
	require.NoError(t, err)
	body, err := (&locker.ListArgs{}).MarshalMsg(nil)
	require.NoError(t, err)
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(PathLocks)
	req.SetBody(body)
	var rc fasthttp.RequestCtx
	rc.Init(&req, nil, nil)
	srv.handle(&rc)
	assert.Equal(t, fasthttp.StatusInternalServerError, rc.Response.StatusCode())
	var e ErrorReply
	_, err = e.UnmarshalMsg(rc.Response.Body())
	require.NoError(t, err)
	assert.Equal(t, CodeInternal, e.Code)
	assert.Contains(t, e.Message, fmt.Sprintf("a page of %d entries cannot be encoded", lockerArrayLimit+1))
}

// A client walks a listing of more than a page over HTTP.
func TestListPagesOverHTTP(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	_, endpoint := startServer(t, tbl, ServerConfig{Insecure: true})
	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	ctx := context.Background()
	const n = locker.MaxListPage + 5
	for i := range n {
		r, err := tbl.Lock(ctx, locker.LockArgs{UID: fmt.Sprintf("u%06d", i), Resources: []string{fmt.Sprintf("r%06d", i)}})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	page, err := c.List(ctx, locker.ListArgs{})
	require.NoError(t, err)
	assert.Len(t, page.Entries, locker.MaxListPage)
	assert.True(t, page.More)
	all, err := listAll(ctx, c)
	require.NoError(t, err)
	require.Len(t, all, n)
	for i, e := range all {
		require.Equal(t, fmt.Sprintf("r%06d", i), e.Resource)
	}
}
