package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Defaults for the zero values of ServerConfig.
const (
	// DefaultMaxBodyBytes bounds a request body: enough for a refresh of
	// 100,000 UIDs of 36 characters (3.8 MB) with room to spare.
	DefaultMaxBodyBytes = 8 << 20
	// DefaultMaxBatchOps bounds the operations of one batch request.
	DefaultMaxBatchOps = MaxBatchLimit
	// MaxBatchLimit is the most operations a batch may carry at all: the
	// decoders refuse longer batches before allocating for them.
	MaxBatchLimit = 4096
	// DefaultReadTimeout bounds the reading of one request.
	DefaultReadTimeout = 10 * time.Second
	// DefaultShutdownTimeout bounds how long Close waits for in-flight requests.
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultIdleTimeout is how long the server keeps an idle connection.
	DefaultIdleTimeout = time.Minute
	// DefaultMaxConns bounds the connections a node serves at once.
	DefaultServerMaxConns = 4096
	// DefaultMaxConnsPerIP bounds the connections a node serves at once
	// from one address: eight client processes with 64 connections each.
	DefaultMaxConnsPerIP = 512
)

// ServerConfig configures a Server. The zero value is not valid: set Secret,
// or set Insecure.
type ServerConfig struct {
	// Secret authenticates every request of the lock role (see auth.go and
	// doc.go): what storage processes send. It must be the same on every
	// client and node of a locker set, and at least MinSecretLen bytes.
	Secret string
	// AdminSecret, if set, authenticates requests of the admin role, which
	// may also list the node's locks (with their UIDs) and force-unlock
	// every holder of a resource; the lock role may not. If empty, nobody
	// may: an operator's tool needs the node to have one. At least
	// MinSecretLen bytes, and not Secret.
	AdminSecret string
	// Insecure, if true, turns authentication off: every request is served,
	// in every role. It is for tests and trusted loopback setups. The
	// secrets must then be empty.
	Insecure bool
	// NodeID names the node in every request's MAC, so that a request
	// signed for one node is refused by every other (see auth.go): 1 to
	// MaxNodeIDLen letters, digits, '.', '_' or '-', unique in the cluster.
	// If empty, the table's boot record ID (locker.Local.Boot), or, for a
	// table without one, 64 random bits drawn by NewServer.
	NodeID string
	// Layout, if set, is the fingerprint of the layout of lock sets the
	// node belongs to (layout.Layout.Fingerprint): the hello tells it to
	// every client (HelloReply.Layout), which refuses the node if its own
	// layout differs (layout.Check), so that no two clients lock one
	// resource on different sets; during a change of layout, the change's
	// (layout.Transition), which clients of the old layout and of the
	// change accept (layout.Compatible). 1 to MaxLayoutLen letters,
	// digits, '.', '_' or '-'. If empty, the node tells none, and a client
	// that checks a layout refuses it.
	Layout string
	// MaxConns bounds the connections served at once; past it a new
	// connection is answered 503 and closed at once. If zero,
	// DefaultServerMaxConns.
	MaxConns int
	// MaxConnsPerIP bounds the connections served at once from one IP
	// address; past it a new one is answered 429 and closed. Clients behind
	// one proxy or NAT address share it: raise it for them. If zero,
	// DefaultMaxConnsPerIP; if negative, no bound.
	MaxConnsPerIP int
	// Logger receives what the HTTP server has to say about connections it
	// could not serve (malformed requests, timeouts), at most a few lines a
	// second: an attacker cannot flood it. If nil, slog.Default().
	Logger *slog.Logger
	// ReplayWindow is how far a request's timestamp may be from the server's
	// clock. If zero, DefaultReplayWindow.
	ReplayWindow time.Duration
	// ReplayCacheSize bounds the MACs the replay cache remembers at once.
	// Each accepted request's MAC is kept about 2×ReplayWindow (no less,
	// and longer only for a request stamped ahead of the node's clock or
	// after the node's wall clock steps), so a node that accepts more than
	// ReplayCacheSize requests within about 2×ReplayWindow refuses the
	// excess with 503 until older MACs may go. Memory is about 11 to 21
	// bytes per MAC held. If zero, DefaultReplayCacheSize.
	ReplayCacheSize int
	// MaxBodyBytes bounds the size of a request body; a larger one is refused
	// with 413. If zero, DefaultMaxBodyBytes.
	MaxBodyBytes int
	// MaxBatchOps bounds the operations of one batch; more are refused with
	// 413. It may not exceed MaxBatchLimit. If zero, DefaultMaxBatchOps.
	MaxBatchOps int
	// MaxRequestNames bounds the names (resource names and UIDs) one
	// request may carry in all; a request with more is refused with 413
	// before they are decoded. A lock naming more resources than the
	// table allows (locker.Limits.MaxResources) is refused alone, with 400,
	// and its names are not decoded. See decodeBudget. If zero,
	// DefaultMaxRequestNames.
	MaxRequestNames int
	// ReadTimeout bounds the time to read one request, once its first byte
	// has arrived, so that a slow or stuck sender cannot hold a connection
	// forever. If zero, DefaultReadTimeout.
	ReadTimeout time.Duration
	// ShutdownTimeout bounds how long Close waits for requests in flight. If
	// zero, DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// IdleTimeout is how long an idle keep-alive connection is kept. If zero,
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Clock is the source of time for the replay window and the request
	// timeouts. If nil, clock.Real().
	Clock clock.Clock
	// TLS, if not nil, makes Serve speak TLS on every listener with this
	// configuration (see tls.go: ServerTLS builds one whose certificates
	// reload, and that may require client certificates). The server does
	// not modify it. If nil, plain HTTP.
	TLS *tls.Config
	// Observer, if not nil, is told what the server did: once per request
	// answered, and once per request's operations (see observe.go). Package
	// dsyncprom implements it with Prometheus metrics. If nil, nothing is
	// observed and nothing is measured.
	Observer Observer
	// OnRequest, if set, is called once for every HTTP request the server
	// receives, with the request's path, before anything else is done with
	// it. Tests and benchmarks use it to count requests. It must be safe for
	// concurrent use, fast, and must not keep path.
	OnRequest func(path []byte)
}

func (c ServerConfig) validate() error {
	switch {
	case c.Secret == "" && !c.Insecure:
		return errors.New("rest: ServerConfig.Secret is empty; set it, or set Insecure to serve without authentication")
	case (c.Secret != "" || c.AdminSecret != "") && c.Insecure:
		return errors.New("rest: ServerConfig has both a secret and Insecure set")
	case c.Secret != "" && validateSecret("ServerConfig.Secret", c.Secret) != nil:
		return validateSecret("ServerConfig.Secret", c.Secret)
	case c.AdminSecret != "" && validateSecret("ServerConfig.AdminSecret", c.AdminSecret) != nil:
		return validateSecret("ServerConfig.AdminSecret", c.AdminSecret)
	case c.AdminSecret != "" && c.AdminSecret == c.Secret:
		return errors.New("rest: ServerConfig.AdminSecret is the lock Secret: the admin role needs a secret of its own")
	case c.NodeID != "" && !validNodeID(c.NodeID):
		return fmt.Errorf("rest: ServerConfig.NodeID %q is not 1 to %d letters, digits, '.', '_' or '-'", c.NodeID, MaxNodeIDLen)
	case c.Layout != "" && !validLayout(c.Layout):
		return fmt.Errorf("rest: ServerConfig.Layout %q is not 1 to %d letters, digits, '.', '_' or '-'", c.Layout, MaxLayoutLen)
	case c.MaxConns < 0:
		return fmt.Errorf("rest: ServerConfig.MaxConns %d is negative", c.MaxConns)
	case c.ReplayWindow < 0:
		return fmt.Errorf("rest: ServerConfig.ReplayWindow %v is negative", c.ReplayWindow)
	case c.ReplayCacheSize < 0:
		return fmt.Errorf("rest: ServerConfig.ReplayCacheSize %d is negative", c.ReplayCacheSize)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("rest: ServerConfig.MaxBodyBytes %d is negative", c.MaxBodyBytes)
	case c.MaxBatchOps < 0 || c.MaxBatchOps > MaxBatchLimit:
		return fmt.Errorf("rest: ServerConfig.MaxBatchOps %d is not within 0..%d", c.MaxBatchOps, MaxBatchLimit)
	case c.MaxRequestNames < 0:
		return fmt.Errorf("rest: ServerConfig.MaxRequestNames %d is negative", c.MaxRequestNames)
	case c.ReadTimeout < 0:
		return fmt.Errorf("rest: ServerConfig.ReadTimeout %v is negative", c.ReadTimeout)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("rest: ServerConfig.ShutdownTimeout %v is negative", c.ShutdownTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("rest: ServerConfig.IdleTimeout %v is negative", c.IdleTimeout)
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.ReplayWindow == 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	if c.ReplayCacheSize == 0 {
		c.ReplayCacheSize = DefaultReplayCacheSize
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBatchOps == 0 {
		c.MaxBatchOps = DefaultMaxBatchOps
	}
	if c.MaxRequestNames == 0 {
		c.MaxRequestNames = DefaultMaxRequestNames
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultServerMaxConns
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}

// Server serves one node's lock table over HTTP. Create it with NewServer,
// run it with Serve, stop it with Close. It is safe for concurrent use.
type Server struct {
	l           locker.NetLocker
	cfg         ServerConfig
	node        string    // NodeID
	incarnation uint64    // drawn by NewServer: this start of the node
	verify      *verifier // nil if Insecure
	srv         *fasthttp.Server

	// inPlace is whether l copies every argument string it keeps
	// (locker.ArgCopier): then l gets the strings as decoded, in place,
	// aliasing the request body (decode.go), valid until the handler
	// returns; otherwise it gets copies.
	inPlace bool

	// burster is l if it can take a batch's calls as a burst
	// (locker.Burst), else nil.
	burster burster

	// waiter is l if it can queue lock requests (locker.Waiter), else nil;
	// sessions are the clients' whose requests wait (events.go).
	waiter   locker.Waiter
	sessions sessions

	// base is the parent of every request's context; Close cancels it so
	// that calls still waiting in the table give up.
	base   context.Context
	cancel context.CancelFunc
	closed atomic.Bool
	once   sync.Once
	err    error // of Close

	// draining is set by Drain: lock and rlock operations are refused.
	draining   atomic.Bool
	drainUntil atomic.Int64   // Drain's deadline, in monoNanos; 0 if none
	lnMu       sync.Mutex     // orders Serve's start against Close
	listeners  []net.Listener // given to Serve; Close closes them
}

// NewServer returns a server for the table l. The server does not own l:
// Close leaves it open.
//
// If l is a locker.ArgCopier whose CopiesArgs reports true (locker.Local is
// one), the server decodes requests in place: the argument strings it passes
// to l alias the request's buffer, which the server reuses once it has
// answered the request. Otherwise every argument string is a fresh allocation
// that l may keep.
func NewServer(l locker.NetLocker, cfg ServerConfig) (*Server, error) {
	if l == nil {
		return nil, errors.New("rest: NewServer: nil locker")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{l: l, cfg: cfg}
	if c, ok := l.(locker.ArgCopier); ok && c.CopiesArgs() {
		s.inPlace = true
	}
	s.burster, _ = l.(burster)
	s.waiter, _ = l.(locker.Waiter)
	s.node = cfg.NodeID
	if b, ok := l.(interface{ Boot() locker.BootInfo }); s.node == "" && ok {
		s.node = b.Boot().ID
	}
	if s.node == "" {
		s.node = fmt.Sprintf("%016x", newIncarnation())
	}
	s.incarnation = newIncarnation()
	if !cfg.Insecure {
		s.verify = newVerifier(cfg.Secret, cfg.AdminSecret, s.node, s.incarnation, cfg.Clock, cfg.ReplayWindow, cfg.ReplayCacheSize)
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	if s.waiter != nil {
		go s.janitor() // ends with s.base
	}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.handleReadError,
		HeaderReceived:               s.headerReceived,
		MaxRequestBodySize:           cfg.MaxBodyBytes,
		ReadBufferSize:               connBufferSize,
		IdleTimeout:                  cfg.IdleTimeout,
		ReadTimeout:                  cfg.ReadTimeout,
		Concurrency:                  cfg.MaxConns,
		MaxConnsPerIP:                max(cfg.MaxConnsPerIP, 0),
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		Name:                         "dsync",
		Logger:                       newRateLog(cfg.Logger, cfg.Clock),
	}
	s.srv.Handler = s.withVersion(s.withAlone(s.handle)) // alone.go
	if cfg.Observer != nil {
		s.srv.Handler = s.observed(s.srv.Handler) // observe.go
	}
	return s, nil
}

// NodeID returns the node's ID, which its hello names.
func (s *Server) NodeID() string { return s.node }

// Every answer names the protocol version (HeaderProtocol); these are its
// header's name and value, ready for fasthttp.
var (
	headerProtocolKey   = []byte(HeaderProtocol)
	headerProtocolValue = []byte(strconv.Itoa(ProtocolVersion))
	pathVersionPrefix   = []byte("/dsync/v")
)

// withVersion stamps every answer with the protocol version. (The gate
// refuses a request of another version: see gate.go.)
func (s *Server) withVersion(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		rc.Response.Header.SetCanonical(headerProtocolKey, headerProtocolValue)
		if code, msg, no := refused(rc); no {
			if s.cfg.OnRequest != nil {
				s.cfg.OnRequest(rc.Path())
			}
			s.fail(rc, code, msg)
			if code != CodeNotFound && code != CodeVersion {
				rc.SetConnectionClose() // a peer without credentials gets no second try on this connection
			}
			return
		}
		if string(rc.Path()) == PathHello {
			if s.cfg.OnRequest != nil {
				s.cfg.OnRequest(rc.Path())
			}
			if !rc.IsGet() {
				rc.Response.Header.Set("Allow", fasthttp.MethodGet)
				s.fail(rc, CodeMethod, fmt.Sprintf("method %s not allowed on %s; use GET", rc.Method(), rc.Path()))
				return
			}
			s.hello(rc)
			return
		}
		next(rc)
	}
}

// Serve accepts connections on ln and serves them until Close. It returns nil
// after Close, or the error that made ln fail. It may be called more than
// once, with different listeners.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.closed.Load() {
		s.lnMu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.lnMu.Unlock()
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	err := s.srv.Serve(ln)
	if s.closed.Load() {
		return nil
	}
	return err
}

// Close stops the server: it closes the listeners, makes calls still waiting
// in the table give up (they answer 408 and grant nothing), and waits up to
// ServerConfig.ShutdownTimeout for requests in flight to finish. It does not
// close the table.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.lnMu.Lock()
		s.closed.Store(true)
		listeners := s.listeners
		s.listeners = nil
		s.lnMu.Unlock()
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.err = s.srv.ShutdownWithContext(ctx)
		// fasthttp closes only the listeners its Serve has taken: one that
		// Serve was about to hand over would keep it in Accept for ever.
		for _, ln := range listeners {
			ln.Close() // an error means it is closed already
		}
	})
	return s.err
}

// endpoint identifies a path of the protocol.
type endpoint uint8

const (
	epNone endpoint = iota
	epLock
	epRLock
	epUnlock
	epRUnlock
	epRefresh
	epForceUnlock
	epBatch
	epLocks
	epHealth
)

func route(path []byte) endpoint {
	switch string(path) {
	case PathLock:
		return epLock
	case PathRLock:
		return epRLock
	case PathUnlock:
		return epUnlock
	case PathRUnlock:
		return epRUnlock
	case PathRefresh:
		return epRefresh
	case PathForceUnlock:
		return epForceUnlock
	case PathBatch:
		return epBatch
	case PathLocks:
		return epLocks
	case PathHealth:
		return epHealth
	}
	return epNone
}

// verbOf maps the single-operation endpoints to batch verbs.
var verbOf = [...]Verb{
	epLock:        VerbLock,
	epRLock:       VerbRLock,
	epUnlock:      VerbUnlock,
	epRUnlock:     VerbRUnlock,
	epRefresh:     VerbRefresh,
	epForceUnlock: VerbForceUnlock,
}

// scratch holds a request's reusable buffers.
type scratch struct {
	op     BatchOp
	batch  BatchArgs
	reply  BatchReply
	out    []byte
	burst  locker.Burst
	budget decodeBudget
	events []Event // the memory of reply.Events
}

// burster is a table that can take many calls in a row on one reading of
// its clock (locker.Local.StartBurst).
type burster interface {
	StartBurst(ctx context.Context, b *locker.Burst) *locker.Burst
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (s *Server) handle(rc *fasthttp.RequestCtx) {
	if s.cfg.OnRequest != nil {
		s.cfg.OnRequest(rc.Path())
	}
	ep := route(rc.Path())
	if ep == epNone {
		s.fail(rc, CodeNotFound, "no such path: "+strconv.Quote(string(rc.Path())))
		return
	}
	wantGet := ep == epHealth
	if wantGet && !rc.IsGet() || !wantGet && !rc.IsPost() {
		allow := fasthttp.MethodPost
		if wantGet {
			allow = fasthttp.MethodGet
		}
		rc.Response.Header.Set("Allow", allow)
		s.fail(rc, CodeMethod, fmt.Sprintf("method %s not allowed on %s; use %s", rc.Method(), rc.Path(), allow))
		return
	}
	body := rc.PostBody()
	role, ok := s.authentic(rc, body)
	if !ok {
		return
	}
	admin := role == roleAdmin

	switch ep {
	case epHealth:
		if !s.l.IsOnline() {
			s.fail(rc, CodeClosed, "rest: the node's table is closed")
			return
		}
		rc.SetStatusCode(fasthttp.StatusOK)
		return
	case epLocks:
		s.list(rc)
		return
	}

	sc := scratchPool.Get().(*scratch)
	defer func() {
		sc.reset()
		scratchPool.Put(sc)
	}()
	ctx, dc := s.requestContext(rc)
	defer dc.finish()
	if ep == epBatch {
		s.batch(ctx, rc, sc, body, admin)
		return
	}
	op := &sc.op
	op.Verb = verbOf[ep]
	// Decoded in place within the budget (budget.go), whatever the table;
	// for a table that may keep its arguments' strings, copied.
	var left []byte
	var err error
	lim := s.budget(&sc.budget)
	if op.Verb == VerbRefresh {
		left, err = decodeRefreshZC(&op.Refresh, body, lim)
	} else {
		left, err = decodeLockZC(&op.Lock, body, lim)
	}
	if !s.decoded(rc, string(rc.Path()), left, err) {
		return
	}
	if n, over, _ := overAt(lim.over, 0); over && usesLock(op.Verb) {
		s.fail(rc, CodeInvalidArgs, tooManyResources(op.Verb, n, lim.resources))
		return
	}
	if !s.inPlace {
		ownLock(&op.Lock)
		ownNames(op.Refresh.UIDs)
	}
	res := &sc.reply
	res.Results = append(res.Results[:0], BatchResult{})
	r := &res.Results[0]
	s.run(ctx, op, r, admin, nil)
	if s.cfg.Observer != nil {
		s.tally([]BatchOp{*op}, res.Results)
	}
	if r.Code != CodeOK {
		s.fail(rc, r.Code, r.Message)
		return
	}
	if op.Verb == VerbRefresh {
		sc.out, err = r.Refresh.MarshalMsg(sc.out[:0])
	} else {
		sc.out, err = r.Reply.MarshalMsg(sc.out[:0])
	}
	if err != nil {
		s.fail(rc, CodeInternal, "rest: "+string(rc.Path())+": the answer cannot be encoded: "+err.Error())
		return
	}
	s.reply(rc, sc.out)
}

// decodeProblem describes a failed or incomplete decode, or returns "".
func decodeProblem(left []byte, err error) string {
	if err != nil {
		return "malformed msgpack body: " + err.Error()
	}
	if len(left) > 0 {
		return fmt.Sprintf("%d bytes of trailing garbage after the msgpack body", len(left))
	}
	return ""
}

// requestContext returns the context for the table calls of rc: cancelled
// when the server closes and, if the client sent a timeout, when that much
// time has passed on the server's clock. The caller must call finish on the
// second result, which is nil if there is no timeout, when the calls are
// done. (A finish method value would cost an allocation per request.)
func (s *Server) requestContext(rc *fasthttp.RequestCtx) (context.Context, *deadlineContext) {
	ms, err := strconv.ParseInt(string(rc.QueryArgs().Peek(QueryTimeout)), 10, 64)
	if err != nil || ms <= 0 {
		return s.base, nil
	}
	ctx := newDeadlineContext(s.base, s.cfg.Clock, time.Duration(min(ms, 1<<40))*time.Millisecond)
	return ctx, ctx
}

func (s *Server) batch(ctx context.Context, rc *fasthttp.RequestCtx, sc *scratch, body []byte, admin bool) {
	// Decoded in place within the budget (budget.go), which bounds the
	// operations (MaxBatchOps) and names; for a table that may keep its
	// arguments' strings, copied.
	lim := s.budget(&sc.budget)
	left, err := decodeBatchZC(&sc.batch, body, lim)
	if !s.decoded(rc, "batch", left, err) {
		return
	}
	if len(sc.batch.Session) > maxSessionLen {
		// Every batch of a waiting client names its session, which the
		// node keeps: bounded like a poll's (serveEvents).
		s.fail(rc, CodeMalformed, fmt.Sprintf("rest: batch: a session of %d bytes; at most %d", len(sc.batch.Session), maxSessionLen))
		return
	}
	ops := sc.batch.Ops
	if !s.inPlace {
		sc.batch.Owner, sc.batch.Source = strings.Clone(sc.batch.Owner), strings.Clone(sc.batch.Source)
		for i := range ops {
			ownLock(&ops[i].Lock)
			ownNames(ops[i].Refresh.UIDs)
		}
	}
	sc.batch.inherit()
	if s.burster != nil && len(ops) > 1 {
		// The operations run one right after another, and the request has
		// arrived: the table may read its clock once for several of them.
		ctx = s.burster.StartBurst(ctx, &sc.burst)
		defer sc.burst.End()
	}
	sess, take := s.batchSession(&sc.batch)
	res := sc.reply.Results[:0]
	over := lim.over
	for i := range ops {
		res = append(res, BatchResult{})
		var n uint32
		var found bool
		if n, found, over = overAt(over, i); found && usesLock(ops[i].Verb) {
			// Its resources were too many to decode: refused as the table
			// would refuse them.
			res[i].Code, res[i].Message = CodeInvalidArgs, tooManyResources(ops[i].Verb, n, lim.resources)
			continue
		}
		s.run(ctx, &ops[i], &res[i], admin, sess)
	}
	sc.reply.Results = res
	if take {
		events, epoch := sess.endBatch(sc.events[:0])
		sc.events = events
		if len(events) > 0 {
			sc.reply.Events = events
		}
		sc.reply.Epoch = epoch
	}
	if s.cfg.Observer != nil {
		s.tally(ops, res)
	}
	sc.out, err = appendBatchReply(sc.out[:0], &sc.reply)
	if err != nil {
		s.fail(rc, CodeInternal, "rest: batch: the answer cannot be encoded: "+err.Error())
		return
	}
	s.reply(rc, sc.out)
}

// reset drops the scratch's references to decoded strings, so that the pool
// does not keep them alive, but keeps small argument slices for the next
// request's decoder to fill (the table does not retain them). Decoded in
// place, the strings alias the request body, which fasthttp reuses once the
// handler returns: reset must run before that, and clear every string the
// decoder may have written, up to the slices' capacities.
func (sc *scratch) reset() {
	ops := sc.batch.Ops
	for i := range ops {
		r, u := keepSmall(ops[i].Lock.Resources), keepSmall(ops[i].Refresh.UIDs)
		ops[i] = BatchOp{Lock: locker.LockArgs{Resources: r}, Refresh: locker.RefreshArgs{UIDs: u}}
	}
	clear(sc.reply.Results)
	clear(sc.events)
	sc.events = sc.events[:0]
	if cap(sc.events) > MaxEventsPerReply {
		sc.events = nil
	}
	sc.reply.Events, sc.reply.Epoch = nil, 0
	r, u := keepSmall(sc.op.Lock.Resources), keepSmall(sc.op.Refresh.UIDs)
	sc.op = BatchOp{Lock: locker.LockArgs{Resources: r}, Refresh: locker.RefreshArgs{UIDs: u}}
	if cap(sc.out) > 64<<10 {
		sc.out = nil
	}
	// Emptied, so that a body without "o" is an empty batch, not the last
	// one's length of blank operations; the decoders reuse the elements.
	sc.batch.Ops = ops[:0]
	sc.batch.Owner, sc.batch.Source, sc.batch.Session = "", "", ""
	if cap(ops) > 4096 {
		sc.batch.Ops, sc.reply.Results = nil, nil
	}
}

// keepSmall returns s emptied and cleared, or nil if it is large.
func keepSmall(s []string) []string {
	if cap(s) > 16 {
		return nil
	}
	clear(s[:cap(s)])
	return s[:0]
}

// run performs one operation on the table and records its outcome in r;
// admin says whether the request is signed for the admin role, which alone
// may force-unlock every holder of a resource (the lock role may
// force-unlock a UID, which only its holder knows).
//
// sess is the batch's session (batchSession): a lock operation that asks
// to wait waits only in a session (events.go).
func (s *Server) run(ctx context.Context, op *BatchOp, r *BatchResult, admin bool, sess *session) {
	var err error
	if op.Verb == VerbForceUnlock && op.Lock.UID == "" && !admin {
		r.Code, r.Message = CodeForbidden, "rest: force-unlock of a resource's holders needs the admin role (ServerConfig.AdminSecret); the lock role may force-unlock a UID"
		return
	}
	if (op.Verb == VerbLock || op.Verb == VerbRLock) && s.draining.Load() {
		r.Reply = locker.Reply{Reason: locker.ReasonQuiet, Grace: s.drainGrace()} // drain.go
		return
	}
	switch op.Verb {
	case VerbLock:
		r.Reply, err = s.lockWait(ctx, true, op.Lock, sess)
	case VerbRLock:
		r.Reply, err = s.lockWait(ctx, false, op.Lock, sess)
	case VerbUnlock:
		r.Reply, err = s.l.Unlock(ctx, op.Lock)
	case VerbRUnlock:
		r.Reply, err = s.l.RUnlock(ctx, op.Lock)
	case VerbForceUnlock:
		r.Reply, err = s.l.ForceUnlock(ctx, op.Lock)
	case VerbRefresh:
		r.Refresh, err = s.l.Refresh(ctx, op.Refresh)
	default:
		r.Code, r.Message = CodeMalformed, fmt.Sprintf("rest: unknown verb %d", op.Verb)
		return
	}
	if err != nil {
		r.Code, r.Message = codeOf(err), err.Error()
	}
}

func (s *Server) reply(rc *fasthttp.RequestCtx, body []byte) {
	rc.SetStatusCode(fasthttp.StatusOK)
	rc.Response.Header.SetContentType(ContentType)
	rc.Response.SetBody(body)
}

// fail answers with code's status and an ErrorReply.
func (s *Server) fail(rc *fasthttp.RequestCtx, code Code, msg string) {
	rc.SetStatusCode(code.status())
	rc.Response.Header.SetContentType(ContentType)
	e := ErrorReply{Code: code, Message: msg}
	out, _ := e.MarshalMsg(nil)
	rc.Response.SetBody(out)
}

// handleReadError answers requests that fasthttp could not read: among
// them, those the gate refused that came with a body.
func (s *Server) handleReadError(rc *fasthttp.RequestCtx, err error) {
	if s.cfg.Observer != nil {
		defer s.observeAnswer(rc, 0)
	}
	rc.Response.Header.SetCanonical(headerProtocolKey, headerProtocolValue)
	if code, msg, no := refused(rc); no {
		s.fail(rc, code, msg)
		return
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		s.fail(rc, CodeTooLarge, fmt.Sprintf("rest: request body over the limit of %d bytes", s.cfg.MaxBodyBytes))
		return
	}
	s.fail(rc, CodeMalformed, "rest: cannot read request: "+err.Error())
}

var _ msgp.Marshaler = (*ErrorReply)(nil)
