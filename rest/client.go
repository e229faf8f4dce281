package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Defaults for the zero values of ClientConfig.
const (
	// DefaultCallTimeout bounds one HTTP request.
	DefaultCallTimeout = 10 * time.Second
	// DefaultHealthInterval is how often an offline node is probed.
	DefaultHealthInterval = time.Second
	// DefaultMaxConns bounds the connections to one node.
	DefaultMaxConns = 64
	// DefaultMaxInFlight bounds the requests in flight to one node when
	// batching. With one, every call that arrives while a request is out
	// waits for its answer and goes in the next batch: the fewest requests
	// per call, which is what a busy client is short of. On this project's
	// 2-core benchmark (4 nodes, 256 lockers) 1 gave 75-82k lock+unlock
	// pairs/s, 2 gave 65-69k and 4 gave 52-68k. Raise it for nodes whose
	// answers are slow to come but cheap to make, such as nodes far away.
	DefaultMaxInFlight = 1
	// DefaultWaitLinger is how long a lock that asks to wait may linger in
	// the client's queue for another call's request. A hot lock whose
	// callers share a client is handed over in one request per node rather
	// than two: on this project's 2-core benchmark (64 lockers of one
	// resource, 4 nodes) 150 µs gave 7,010-7,158 hand-offs/s against
	// 5,812-6,203 without, in the same runs; 50 µs merged too few requests
	// to matter, and 400 µs let the tail grow (p99.9 229 ms).
	DefaultWaitLinger = 150 * time.Microsecond
	// DefaultMaxBatch bounds the operations of one batch request.
	DefaultMaxBatch = 256
)

// ClientConfig configures a Client. The zero value is not valid: set Secret,
// or set Insecure.
type ClientConfig struct {
	// Layout, if set, is the fingerprint of the client's layout of lock
	// sets (layout.Layout.Fingerprint; layout.Transition for a client of a
	// change of layout): the client sends nothing to a node whose hello
	// tells a layout it cannot share resources with (layout.Compatible),
	// or none, and fails every call with an error wrapping ErrLayout. It asks the hello again
	// whenever the node restarts, so a node restarted with another layout
	// is refused from then on. If empty, the client does not check.
	Layout string
	// Secret authenticates every request for the lock role (see auth.go);
	// it must match the node's ServerConfig.Secret, and be at least
	// MinSecretLen bytes.
	Secret string
	// AdminSecret, instead of Secret, signs every request for the admin
	// role, which may also list the node's locks and force-unlock every
	// holder of a resource; it must match the node's
	// ServerConfig.AdminSecret. A storage process needs only Secret; the
	// operator's tool, AdminSecret.
	AdminSecret string
	// Insecure, if true, sends requests without authentication, for nodes
	// that run with ServerConfig.Insecure. The secrets must then be empty.
	Insecure bool
	// CallTimeout bounds one HTTP request, whatever the deadline of the
	// caller's context. If zero, DefaultCallTimeout.
	CallTimeout time.Duration
	// HealthInterval is how often the client probes a node it found offline;
	// it reports the node online again after the first probe it answers. It
	// is measured on Clock. If zero, DefaultHealthInterval.
	HealthInterval time.Duration
	// MaxConns bounds the connections to the node. If zero, DefaultMaxConns.
	MaxConns int
	// DisableBatching, if true, sends every call in its own HTTP request.
	// By default calls to one node are coalesced: see coalesce.go.
	DisableBatching bool
	// MaxInFlight bounds the requests in flight to the node when batching.
	// If zero, DefaultMaxInFlight.
	MaxInFlight int
	// WaitLinger is how long a lock that asks to wait on the node
	// (LockArgs.Wait) may stay in the client's queue, for a call that does
	// not wait to take it along in its request (see coalesce.go). If zero,
	// DefaultWaitLinger; if negative, such a lock is sent as any call is.
	WaitLinger time.Duration
	// MaxBatch bounds the operations of one batch request. It must not be
	// above the node's ServerConfig.MaxBatchOps, nor above MaxBatchLimit.
	// If zero, DefaultMaxBatch.
	MaxBatch int
	// TLS configures the connections to an https endpoint: the roots that
	// verify the node's certificate and, for mutual TLS, the certificate the
	// client presents (see tls.go: ClientTLS builds one whose material
	// reloads). The node's name to verify is the endpoint's host unless
	// TLS.ServerName is set. If nil, an https endpoint is verified against
	// the system's roots, with no client certificate. It must be nil for an
	// http endpoint. The client does not modify it.
	TLS *tls.Config
	// Observer, if not nil, is told of every request the client sends to
	// the node with operations (a batch is one request), with how long the
	// node took to answer. Package dsyncprom's ClientRequests is one. If
	// nil, nothing is measured.
	Observer ClientObserver
	// Logger receives a line when the client finds the node offline (Warn,
	// with the error that said so) and when the node answers again (Info):
	// once per change, never per call. If nil, slog.Default().
	Logger *slog.Logger
	// Clock is the source of time for request timestamps and the health
	// probe interval. HTTP deadlines are always on the real clock. If nil,
	// clock.Real().
	Clock clock.Clock

	// probed, if set, is called after every health probe (tests).
	probed func(ok bool)
	// queued, if set, is called with the queue's length after a call joins
	// the coalescer's queue (tests).
	queued func(n int)
	// batchAlone, if set, sends even a lone call as a batch of one, so that
	// tests run everything through the batch path.
	batchAlone bool
}

func (c ClientConfig) validate() error {
	switch {
	case c.Secret == "" && c.AdminSecret == "" && !c.Insecure:
		return errors.New("rest: ClientConfig.Secret is empty; set it (or AdminSecret), or set Insecure to talk to a node without authentication")
	case (c.Secret != "" || c.AdminSecret != "") && c.Insecure:
		return errors.New("rest: ClientConfig has both a secret and Insecure set")
	case c.Secret != "" && c.AdminSecret != "":
		return errors.New("rest: ClientConfig has both Secret and AdminSecret set: a client signs for one role")
	case c.Secret != "" && validateSecret("ClientConfig.Secret", c.Secret) != nil:
		return validateSecret("ClientConfig.Secret", c.Secret)
	case c.AdminSecret != "" && validateSecret("ClientConfig.AdminSecret", c.AdminSecret) != nil:
		return validateSecret("ClientConfig.AdminSecret", c.AdminSecret)
	case c.CallTimeout < 0:
		return fmt.Errorf("rest: ClientConfig.CallTimeout %v is negative", c.CallTimeout)
	case c.HealthInterval < 0:
		return fmt.Errorf("rest: ClientConfig.HealthInterval %v is negative", c.HealthInterval)
	case c.MaxConns < 0:
		return fmt.Errorf("rest: ClientConfig.MaxConns %d is negative", c.MaxConns)
	case c.MaxInFlight < 0:
		return fmt.Errorf("rest: ClientConfig.MaxInFlight %d is negative", c.MaxInFlight)
	case c.MaxBatch < 0 || c.MaxBatch > MaxBatchLimit:
		return fmt.Errorf("rest: ClientConfig.MaxBatch %d is not within 0..%d", c.MaxBatch, MaxBatchLimit)
	}
	return nil
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	switch {
	case c.WaitLinger == 0:
		c.WaitLinger = DefaultWaitLinger
	case c.WaitLinger < 0:
		c.WaitLinger = 0
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ClientObserver is told of a Client's requests (ClientConfig.Observer):
// RoundTrip once per HTTP request that carried operations, after its
// answer, with the node's endpoint, the time from sending the request to
// reading the answer whole (or to the failure), and whether the node
// answered 200. It is called concurrently, from the goroutines that read
// answers, and must be fast.
type ClientObserver interface {
	RoundTrip(node string, d time.Duration, ok bool)
}

// Client is a node's lock table seen over HTTP. It implements
// locker.NetLocker and locker.Lister. It is safe for concurrent use.
//
// A call whose context ends returns at once with the context's error. Its
// request may still reach the node; if that request was a Lock or RLock that
// the node granted, the client itself sends the matching Unlock or RUnlock,
// so a cancelled call leaves nothing behind (unless that release fails too,
// in which case the grant expires on the node after its validity).
//
// After a transport failure (no connection, a timeout, a node that is
// closing) the client reports the node offline: IsOnline returns false and
// calls fail at once with an error wrapping locker.ErrOffline, instead of
// each waiting for its own timeout. A background probe asks the node's health
// path every ClientConfig.HealthInterval and reports it online again when it
// answers.
type Client struct {
	endpoint string
	addr     string
	cfg      ClientConfig
	tr       *transport
	key      *authKey // nil if Insecure
	role     string   // what key signs for: roleLock or roleAdmin
	stamp    stamper

	ident   atomic.Pointer[identity] // the node's, from its hello; nil until asked, or after CodeIdentity
	helloMu sync.Mutex               // one hello at a time

	online     atomic.Bool
	closed     atomic.Bool
	wentOff    chan struct{} // capacity 1: wakes the prober
	stop       chan struct{} // closed by Close
	proberDone chan struct{}
	closeOnce  sync.Once

	co    coalescer
	waits waits // calls queued on the node, waiting for their events (wait.go)
	stats clientStats
}

// Compile-time checks that Client is a full locker.
var (
	_ locker.NetLocker = (*Client)(nil)
	_ locker.Lister    = (*Client)(nil)
	_ locker.Submitter = (*Client)(nil)
)

// NewClient returns a client for the node at endpoint, a URL like
// "http://127.0.0.1:9000" (or https). It starts the goroutine that probes an
// offline node; Close stops it. The node is taken to be online until a call
// fails.
func NewClient(endpoint string, cfg ClientConfig) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("rest: NewClient: endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("rest: NewClient: endpoint %q is not of the form http://host:port", endpoint)
	}
	if cfg.TLS != nil && u.Scheme != "https" {
		return nil, fmt.Errorf("rest: NewClient: endpoint %q is plain http, but ClientConfig.TLS is set: use https://", endpoint)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	c := &Client{
		endpoint:   u.Scheme + "://" + u.Host,
		addr:       addr,
		cfg:        cfg,
		tr:         newTransport(addr, tlsConfig(u, cfg.TLS), cfg.MaxConns, maxAnswerBytes),
		stamp:      stamper{clk: cfg.Clock},
		wentOff:    make(chan struct{}, 1),
		stop:       make(chan struct{}),
		proberDone: make(chan struct{}),
	}
	switch {
	case cfg.AdminSecret != "":
		c.key, c.role = newAuthKey(cfg.AdminSecret), roleAdmin
	case !cfg.Insecure:
		c.key, c.role = newAuthKey(cfg.Secret), roleLock
	}
	c.co.init(c)
	c.waits.init(c)
	c.online.Store(true)
	go c.probeLoop()
	return c, nil
}

// maxAnswerBytes bounds the body of a node's answer that a client reads: a
// page of a listing is the largest, about 30 MB with locker.MaxListPage
// entries whose names, UIDs and labels are at the table's default limits.
const maxAnswerBytes = 64 << 20

// tlsConfig returns the TLS configuration for endpoint u: nil for http, and
// for https cfg (the defaults if nil), checking the node's certificate for
// u's host unless cfg names another.
func tlsConfig(u *url.URL, cfg *tls.Config) *tls.Config {
	if u.Scheme != "https" {
		return nil
	}
	return clientTLSFor(cfg, u.Hostname())
}

// String returns the node's endpoint.
func (c *Client) String() string { return c.endpoint }

// IsOnline reports whether the node answered the last request or probe.
func (c *Client) IsOnline() bool { return c.online.Load() && !c.closed.Load() }

// Close stops the health probe and closes idle connections. Calls after
// Close fail with an error wrapping locker.ErrClosed; calls in flight finish.
// Calls queued on the node (LockArgs.Wait) are withdrawn first, within
// ClientConfig.CallTimeout, and end with ErrClosed. It always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		// First, while calls can still be sent: the node withdraws the
		// requests that wait for this client.
		c.waits.withdrawAll(fmt.Errorf("rest: lock %s: %w", c.endpoint, locker.ErrClosed), c.cfg.CallTimeout)
		c.closed.Store(true)
		close(c.stop)
		<-c.proberDone
		c.tr.close()
	})
	return nil
}

// Lock asks the node for a write lock. See locker.NetLocker.
func (c *Client) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return c.lockCall(ctx, VerbLock, args)
}

// RLock asks the node for a read lock. See locker.NetLocker.
func (c *Client) RLock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return c.lockCall(ctx, VerbRLock, args)
}

// Unlock asks the node to release a write lock. See locker.NetLocker.
func (c *Client) Unlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return c.lockCall(ctx, VerbUnlock, args)
}

// RUnlock asks the node to release a read lock. See locker.NetLocker.
func (c *Client) RUnlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return c.lockCall(ctx, VerbRUnlock, args)
}

// ForceUnlock asks the node to remove a grant or every holder of resources.
// See locker.NetLocker.
func (c *Client) ForceUnlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return c.lockCall(ctx, VerbForceUnlock, args)
}

// Refresh asks the node to extend grants. See locker.NetLocker.
func (c *Client) Refresh(ctx context.Context, args locker.RefreshArgs) (locker.RefreshReply, error) {
	cl := newCall(VerbRefresh)
	cl.names = append(cl.names[:0], args.UIDs...)
	cl.refresh.UIDs = cl.names
	if err := c.do(ctx, cl); err != nil {
		return locker.RefreshReply{}, err
	}
	r, err := cl.rreply, cl.err
	putCall(cl)
	return r, err
}

func (c *Client) lockCall(ctx context.Context, v Verb, args locker.LockArgs) (locker.Reply, error) {
	switch {
	case args.Wait > 0 && (v == VerbLock || v == VerbRLock):
		return c.lockWaiting(ctx, v, args)
	case v == VerbUnlock || v == VerbRUnlock || v == VerbForceUnlock:
		c.waits.unsubscribe(args.UID)
	}
	cl := newCall(v)
	cl.lock = args
	cl.names = append(cl.names[:0], args.Resources...)
	cl.lock.Resources = cl.names
	if err := c.do(ctx, cl); err != nil {
		return locker.Reply{}, err
	}
	r, err := cl.reply, cl.err
	putCall(cl)
	return r, err
}

// opName names a verb in errors.
func opName(v Verb) string {
	switch v {
	case VerbLock:
		return "lock"
	case VerbRLock:
		return "rlock"
	case VerbUnlock:
		return "unlock"
	case VerbRUnlock:
		return "runlock"
	case VerbRefresh:
		return "refresh"
	case VerbForceUnlock:
		return "force-unlock"
	}
	return "verb " + strconv.Itoa(int(v))
}

// pathOf returns the single-operation path of a verb.
func pathOf(v Verb) string {
	switch v {
	case VerbLock:
		return PathLock
	case VerbRLock:
		return PathRLock
	case VerbUnlock:
		return PathUnlock
	case VerbRUnlock:
		return PathRUnlock
	case VerbRefresh:
		return PathRefresh
	case VerbForceUnlock:
		return PathForceUnlock
	}
	panic("rest: internal error: no path for verb " + strconv.Itoa(int(v)))
}

// States of a call.
const (
	callWaiting   int32 = iota // the caller waits for the answer
	callAnswered               // the answer is in; the caller owns the call again
	callAbandoned              // the caller left; whoever answers disposes of the call
	callDetached               // nobody ever waits (a release the client sends itself)
)

// A submitted call (one with a sink) does not use these states: its answer
// goes to the sink whatever happens, and nobody waits on the call itself.

// minOfflineTimeout is the shortest wait for an answer whose expiry marks
// the node offline. A request that times out with less time than this was
// cut short by its caller's deadline (say, the last milliseconds of a lock
// acquisition's budget); that says nothing about the node, and marking it
// offline would fail every other caller's calls to a healthy node.
const minOfflineTimeout = 250 * time.Millisecond

// errQueueTimeout is wrapped by calls that spent their whole timeout waiting
// for a sender.
var errQueueTimeout = fmt.Errorf("call timeout: %w", context.DeadlineExceeded)

// call is one operation on its way to the node and back, as a call through
// the blocking methods (Lock, Refresh, List...) makes it. The caller owns it
// until it is submitted; then the sender owns it until it answers (the caller
// owns it again) or finds it abandoned (the sender disposes of it).
//
// A call of Client.Submit is no call in the coalescer: it waits in the
// queue by value, as a queuedCall, and is answered from there (see
// coalescer). It is made a call, with a sink and no waiter, only to be sent
// on its own: by a client that does not batch, or by a sender that has it
// alone.
type call struct {
	verb     Verb
	args     *locker.LockArgs // of a submitted call: the caller's, unchanged until the answer (see locker.Submitter)
	deadline time.Time        // on the real clock; never zero once submitted
	sink     locker.Sink      // of a submitted call: gets the answer instead of done
	tag      int              // the sink's tag for this call
	reply    locker.Reply
	err      error

	// Used only by calls made through the blocking methods; zero in a
	// submitted call.
	lock    locker.LockArgs
	refresh locker.RefreshArgs
	rreply  locker.RefreshReply
	state   atomic.Int32
	done    chan struct{} // capacity 1; receives once the call is answered

	// names is the call's own copy of the caller's Resources or UIDs. A call
	// may still be encoded after its caller gave up and returned, when the
	// caller is free to reuse its slice; the copy is what gets sent.
	names []string
}

// lockArgs returns the lock arguments cl sends.
func (cl *call) lockArgs() *locker.LockArgs {
	if cl.args != nil {
		return cl.args
	}
	return &cl.lock
}

// maxPooledNames bounds the names slice a pooled call keeps.
const maxPooledNames = 64

var callPool = sync.Pool{New: func() any { return new(call) }}

func newCall(v Verb) *call {
	cl := callPool.Get().(*call)
	cl.verb = v
	if cl.done == nil {
		cl.done = make(chan struct{}, 1)
	}
	return cl
}

func putCall(cl *call) {
	cl.reset()
	callPool.Put(cl)
}

// reset empties cl for reuse, keeping its buffers.
func (cl *call) reset() {
	done, names := cl.done, cl.names
	clear(names) // drop references to the caller's strings
	if cap(names) > maxPooledNames {
		names = nil
	}
	*cl = call{done: done, names: names[:0]}
}

// do sends cl and waits for its answer or for ctx to end. A non-nil error
// means the call did not complete for the caller (client closed, node
// offline, ctx ended) and cl is no longer the caller's. Otherwise the answer
// is in cl and the caller must putCall it.
func (c *Client) do(ctx context.Context, cl *call) error {
	if err := c.unsendable(ctx, cl.verb); err != nil {
		putCall(cl)
		return err
	}
	op := opName(cl.verb)
	cl.deadline = monoNow().Add(c.cfg.CallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(cl.deadline) {
		cl.deadline = d
	}
	if ctx.Done() == nil && c.cfg.DisableBatching {
		// Nothing can interrupt the caller: send from its own goroutine.
		c.sendOne(cl)
		return nil
	}
	cl.state.Store(callWaiting)
	c.submit(cl)
	if ctx.Done() == nil {
		<-cl.done
		return nil
	}
	select {
	case <-cl.done:
		return nil
	case <-ctx.Done():
		if cl.state.CompareAndSwap(callWaiting, callAbandoned) {
			return fmt.Errorf("rest: %s %s: %w", op, c.endpoint, ctxError(ctx))
		}
		<-cl.done // answered just now
		return nil
	}
}

// unsendable returns why a call of verb v cannot be sent now, wrapping
// locker.ErrNotSent, or nil.
func (c *Client) unsendable(ctx context.Context, v Verb) error {
	err := c.whyUnsendable(ctx, v)
	if err != nil {
		c.stats.notSent.Add(1)
	}
	return err
}

func (c *Client) whyUnsendable(ctx context.Context, v Verb) error {
	switch {
	case c.closed.Load():
		return fmt.Errorf("rest: %s %s: %w (%w)", opName(v), c.endpoint, locker.ErrClosed, locker.ErrNotSent)
	case ctx.Err() != nil:
		return fmt.Errorf("rest: %s %s: %w (%w)", opName(v), c.endpoint, ctxError(ctx), locker.ErrNotSent)
	case !c.online.Load():
		return fmt.Errorf("rest: %s %s: %w (%w)", opName(v), c.endpoint, locker.ErrOffline, locker.ErrNotSent)
	}
	return nil
}

// Submit queues op for the node and returns; the answer goes to sink from
// the goroutine that reads the node's response (or from this one, if the
// call cannot be sent). The call is bounded by the smaller of timeout and
// ClientConfig.CallTimeout, counted from a reading of the clock that may be
// as old as the request in flight to the node when the call is queued: a
// submitted call may time out early by that much, never late. (Reading the
// clock once per request rather than once per call saves a twentieth of
// the client's cost per call.) Unlike a call through Lock, a submitted call
// whose caller stops waiting is not released by the client: its grant goes
// to sink like any other answer. The call reads *args when it is encoded,
// which is before sink hears of it: the caller must leave *args unchanged
// until then. See locker.Submitter.
//
// A lock or rlock with args.Wait may wait on the node (see wait.go): it goes
// in a batch that names the client's session, timeout bounds that request,
// and if the node queues it, a sink that is a locker.QueueSink hears so,
// then sink gets the outcome when the node's news of it comes; or, if none
// came a second after args.Wait, an error wrapping context.DeadlineExceeded
// (the node may have granted it: release its UID).
func (c *Client) Submit(ctx context.Context, op locker.Op, args *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	v, ok := verbOfOp(op)
	if !ok {
		sink.Done(tag, locker.Reply{}, fmt.Errorf("rest: submit %s: %w: unknown op %d", c.endpoint, locker.ErrInvalidArgs, op))
		return
	}
	if err := c.unsendable(ctx, v); err != nil {
		sink.Done(tag, locker.Reply{}, err)
		return
	}
	waiting := args.Wait > 0 && (v == VerbLock || v == VerbRLock)
	if timeout <= 0 || timeout > c.cfg.CallTimeout {
		timeout = c.cfg.CallTimeout // a waiting call's request; its wait is args.Wait
	}
	switch {
	case waiting:
		if ws, ok := sink.(locker.WoundSink); ok && args.Ticket != 0 {
			c.waits.subscribe(args.UID, ws, tag, args.Wait)
		}
	case v == VerbUnlock || v == VerbRUnlock || v == VerbForceUnlock:
		c.waits.unsubscribe(args.UID)
	}
	if c.cfg.DisableBatching && !waiting { // a call that waits names the session: a batch
		cl := newCall(v)
		cl.args, cl.sink, cl.tag = args, sink, tag
		cl.deadline = monoNow().Add(timeout)
		c.submit(cl)
		return
	}
	// Sized here, on the caller's core where *args is in cache, rather
	// than by a sender under the coalescer's lock (see argSize).
	c.co.submitNew(v, args, argSize(args.Msgsize()), timeout, sink, tag)
}

// monoBase anchors monoNow and monoNanos.
var monoBase = time.Now()

// monoNow returns the time now for deadlines: it reads only the monotonic
// clock, which costs about half of time.Now, and so does not follow steps
// of the wall clock made after the process started (deadlines compare
// monotonic readings anyway).
func monoNow() time.Time { return monoBase.Add(time.Since(monoBase)) }

// monoNanos returns monoNow as nanoseconds since monoBase, the coalescer's
// form of a time: a deadline in one int64, compared with < and max.
func monoNanos() int64 { return int64(time.Since(monoBase)) }

// monoNanosOf returns t, a deadline, in monoNanos.
func monoNanosOf(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// monoTime returns the time of n, in monoNanos, as monoNow gives it.
func monoTime(n int64) time.Time { return monoBase.Add(time.Duration(n)) }

// verbOfOp returns the verb that makes op.
func verbOfOp(op locker.Op) (Verb, bool) {
	switch op {
	case locker.OpLock:
		return VerbLock, true
	case locker.OpRLock:
		return VerbRLock, true
	case locker.OpUnlock:
		return VerbUnlock, true
	case locker.OpRUnlock:
		return VerbRUnlock, true
	case locker.OpForceUnlock:
		return VerbForceUnlock, true
	}
	return 0, false
}

// ctxError returns the error of a context that has ended: ctx.Err(), and
// also its cause when that differs (a context of clock.WithTimeout on a fake
// clock reports Canceled with the cause DeadlineExceeded), so that errors.Is
// finds either.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// submit hands cl to a sender: the coalescer, or a goroutine of its own.
func (c *Client) submit(cl *call) {
	if c.cfg.DisableBatching {
		go func() {
			c.sendOne(cl)
			c.answer(cl)
		}()
		return
	}
	c.co.submit(cl)
}

// answer delivers cl's answer to its caller or, if the caller left,
// releases what the node granted and disposes of cl.
func (c *Client) answer(cl *call) {
	if cl.sink != nil {
		sink, tag, r, err := cl.sink, cl.tag, cl.reply, cl.err
		putCall(cl)
		sink.Done(tag, r, err)
		return
	}
	if cl.state.CompareAndSwap(callWaiting, callAnswered) {
		cl.done <- struct{}{}
		return
	}
	if cl.state.Load() == callAbandoned {
		c.releaseAbandoned(cl)
	}
	putCall(cl)
}

// releaseAbandoned sends the unlock for a grant whose caller left. The
// release's own outcome is not awaited: if it fails, the grant expires.
func (c *Client) releaseAbandoned(cl *call) {
	if cl.err != nil || !cl.reply.OK || (cl.verb != VerbLock && cl.verb != VerbRLock) || c.closed.Load() {
		return
	}
	v := VerbUnlock
	if cl.verb == VerbRLock {
		v = VerbRUnlock
	}
	rel := newCall(v)
	// An unlock needs only the UID; cl's resources go back to the pool with cl.
	rel.lock = locker.LockArgs{UID: cl.lock.UID, Owner: cl.lock.Owner, Source: cl.lock.Source, Quorum: cl.lock.Quorum}
	rel.deadline = monoNow().Add(c.cfg.CallTimeout)
	rel.state.Store(callDetached) // nobody waits: the sender disposes of it
	c.submit(rel)
}

// sendOne sends cl alone on its own path and records the answer in cl.
func (c *Client) sendOne(cl *call) {
	ex := getExchange()
	defer putExchange(ex)
	var err error
	switch cl.verb {
	case VerbRefresh:
		ex.buf, err = cl.refresh.MarshalMsg(ex.buf[:0])
	default:
		ex.buf, err = cl.lockArgs().MarshalMsg(ex.buf[:0])
	}
	if err == nil {
		err = c.roundTrip(ex, fasthttp.MethodPost, pathOf(cl.verb), cl.deadline)
	}
	if err == nil {
		err = cl.decodeAnswer(ex.body)
	}
	if err != nil {
		cl.err = fmt.Errorf("rest: %s %s: %w", opName(cl.verb), c.endpoint, err)
	}
	c.stats.tallyOne(cl)
}

// exchange holds the buffers of one HTTP request.
type exchange struct {
	wire   []byte // the whole request, as written
	body   []byte // the answer's body
	buf    []byte // request body
	target []byte // request-target
	auth   []byte // Authorization value
	reply  BatchReply
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

func getExchange() *exchange { return exchangePool.Get().(*exchange) }

func putExchange(ex *exchange) {
	clear(ex.reply.Results)
	ex.reply.Results = ex.reply.Results[:0]
	exchangePool.Put(ex)
}

// roundTrip sends ex.buf to path and leaves the body of the node's 200
// answer in ex.body. Any other outcome is an error: one wrapping locker.ErrOffline
// (and the node is marked offline) when the transport failed, or the
// sentinel of the node's ErrorReply.
//
// The request is signed for the node's identity, as its hello said (see
// hello.go); if the node answers that it is signed for another node or
// start (it restarted, or its address now leads to another node), the
// client asks the hello again and sends the request once more, signed anew:
// the node refused it unread.
func (c *Client) roundTrip(ex *exchange, method, path string, deadline time.Time) error {
	for try := 0; ; try++ {
		err := c.roundTripOnce(ex, method, path, deadline)
		var id *identityError
		if try == 0 && errors.As(err, &id) {
			c.forget(id.was)
			continue
		}
		return err
	}
}

// identityError is the error of a request refused with CodeIdentity.
type identityError struct {
	was *identity // what the request was signed for
	err error
}

func (e *identityError) Error() string { return e.err.Error() }
func (e *identityError) Unwrap() error { return e.err }

func (c *Client) roundTripOnce(ex *exchange, method, path string, deadline time.Time) error {
	ex.target = append(ex.target[:0], path...)
	ex.target = append(ex.target, '?')
	ex.target = append(ex.target, QueryTimeout...)
	ex.target = append(ex.target, '=')
	ms := (time.Until(deadline) + time.Millisecond - 1) / time.Millisecond
	ex.target = strconv.AppendInt(ex.target, int64(max(ms, 1)), 10)
	ex.auth = ex.auth[:0]
	var id *identity
	if c.key != nil || c.cfg.Layout != "" { // (a client of a layout asks the hello, to check it, even unsigned)
		var err error
		if id, err = c.identity(deadline); err != nil {
			return err
		}
	}
	if c.key != nil {
		s := signed{role: c.role, node: id.node, incarnation: id.incarnation, ts: c.stamp.next()}
		ex.auth = c.key.appendAuth(ex.auth, methodBytes(method), ex.target, &s, ex.buf)
	}
	ex.wire = appendRequest(ex.wire[:0], method, ex.target, c.addr, ex.auth, ex.buf)
	budget := time.Until(deadline)
	var start int64
	if c.cfg.Observer != nil {
		start = monoNanos()
	}
	a, err := c.tr.do(ex.wire, &ex.body, deadline, budget)
	if c.cfg.Observer != nil {
		c.cfg.Observer.RoundTrip(c.endpoint, time.Duration(monoNanos()-start), err == nil && a.status == fasthttp.StatusOK)
	}
	if err != nil {
		return c.transportError(err, budget)
	}
	if a.protocol != ProtocolVersion {
		// Nothing of an answer in another version is read.
		return &VersionError{Endpoint: c.endpoint, Client: ProtocolVersion, Node: a.protocol}
	}
	if a.status == fasthttp.StatusOK {
		return nil
	}
	code, err := decodeError(a.status, ex.body)
	switch code {
	case CodeClosed:
		c.markOffline(err)
	case CodeIdentity:
		return &identityError{was: id, err: err}
	}
	return err
}

// transportError returns the error of a request whose transport failed
// with budget left until its deadline, and reports the node offline if the
// failure is the node's.
func (c *Client) transportError(err error, budget time.Duration) error {
	switch {
	case errors.Is(err, errNoFreeConns):
		// Our own connection limit, not the node's failure.
		return fmt.Errorf("%w: all %d connections busy (%w)", locker.ErrBusy, c.cfg.MaxConns, locker.ErrNotSent)
	case isTimeout(err) && budget < minOfflineTimeout:
		// The caller's deadline was too close to judge the node by.
		return fmt.Errorf("no answer within the caller's remaining %v: %w", budget.Round(time.Microsecond), context.DeadlineExceeded)
	}
	c.markOffline(err)
	return fmt.Errorf("%w: %v", locker.ErrOffline, err)
}

// methodBytes returns method as bytes for the MAC, without the allocation
// of a conversion for the two methods a client uses.
func methodBytes(method string) []byte {
	switch method {
	case fasthttp.MethodPost:
		return methodPost
	case fasthttp.MethodGet:
		return methodGet
	}
	return []byte(method)
}

var methodPost, methodGet = []byte(fasthttp.MethodPost), []byte(fasthttp.MethodGet)

// isTimeout reports whether a transport error is a timeout: of the whole
// request, of the dial, or of a read or write.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// decodeAnswer decodes the 200 answer to cl's single-operation request
// into cl.
func (cl *call) decodeAnswer(body []byte) error {
	var left []byte
	var err error
	switch cl.verb {
	case VerbRefresh:
		left, err = cl.rreply.UnmarshalMsg(body)
	default:
		left, err = cl.reply.UnmarshalMsg(body)
	}
	if msg := decodeProblem(left, err); msg != "" {
		return fmt.Errorf("%w: answer: %s", ErrProtocol, msg)
	}
	return nil
}

// decodeError returns the code and the error that a node's answer with a
// status other than 200 reports.
func decodeError(status int, body []byte) (Code, error) {
	var e ErrorReply
	if left, err := e.UnmarshalMsg(body); err != nil || len(left) > 0 || e.Code == CodeOK {
		return CodeInternal, fmt.Errorf("%w: status %d with an unreadable error body", ErrProtocol, status)
	}
	return e.Code, fmt.Errorf("%w: node answered %d: %s", e.Code.sentinel(), status, e.Message)
}

// markOffline reports the node offline, for the reason why, and wakes the
// prober.
func (c *Client) markOffline(why error) {
	if c.online.CompareAndSwap(true, false) {
		c.stats.offline.Add(1)
		c.cfg.Logger.Warn("dsync node offline: calls fail at once until it answers a probe", slog.String("node", c.endpoint), slog.Any("err", why))
		select {
		case c.wentOff <- struct{}{}:
		default:
		}
	}
}

// probeLoop waits for the node to go offline, then probes its health path
// every HealthInterval until it answers.
func (c *Client) probeLoop() {
	defer close(c.proberDone)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wentOff:
		}
		for !c.online.Load() {
			if !clock.Sleep(stopContext(c.stop), c.cfg.Clock, c.cfg.HealthInterval) {
				return
			}
			ok := c.probe()
			if ok {
				c.online.Store(true)
				c.cfg.Logger.Info("dsync node online again", slog.String("node", c.endpoint))
			}
			if c.cfg.probed != nil {
				c.cfg.probed(ok)
			}
		}
	}
}

// stopContext adapts a channel to clock.Sleep's argument.
type stopContext chan struct{}

func (s stopContext) Done() <-chan struct{} { return s }

// probe asks the node's hello once, and reports whether it answered, signed
// with the client's secret. The client then signs for the identity the
// hello gave (the node may have restarted).
func (c *Client) probe() bool {
	id, err := c.hello(time.Now().Add(min(c.cfg.CallTimeout, c.cfg.HealthInterval+time.Second)))
	if err != nil {
		return false
	}
	c.ident.Store(id)
	return true
}
