// Package rest carries a node's lock table over HTTP: Server serves any
// [locker.NetLocker] (normally a *[locker.Local]), and Client is a
// [locker.NetLocker] and [locker.Lister] that talks to one Server. The quorum
// client in package [github.com/dsync-go/dsync/dsync] holds one Client per node and knows
// nothing of HTTP.
//
//	table, err := locker.Open(locker.Config{StateDir: "/var/lib/dsync-node"})
//	srv, err := rest.NewServer(table, rest.ServerConfig{Secret: secret})
//	go srv.Serve(ln)
//	defer srv.Close()
//
//	c, err := rest.NewClient("http://10.0.0.1:9000", rest.ClientConfig{Secret: secret})
//	defer c.Close()
//	reply, err := c.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"bucket/object"}})
//
// # Wire protocol, version 2
//
// This section is enough to write a client in another language.
//
// Versions: every path starts with /dsync/v2/, and every answer of a node
// carries the header "Dsync-Protocol: 2". A node answers a request for
// another version (/dsync/vN/...) with 400 CodeVersion, naming both
// versions, before it reads anything else of it; a client reads nothing of
// an answer without that header or with another value, and reports a
// *VersionError (errors.Is ErrVersion). Version 2 added the validity of
// every grant and refresh answer, the restart grace and reclaims, and this
// versioning.
//
// Upgrading across versions: a client and a node of different versions
// count as a failed node to each other, so a rolling upgrade of the nodes
// under clients of the old version makes each upgraded node unavailable to
// them. That is tolerated for as many nodes as the quorums allow (n−W for
// writes, one node of four); beyond it the old clients lose their quorum,
// and new clients have one only once W nodes are upgraded. Upgrade a
// cluster of n nodes by stopping its clients, upgrading the nodes (each
// starts in its grace period unless its boot record says it held nothing),
// and starting the new clients; or run the new cluster beside the old one
// and move each storage process over at once. Never split one resource
// between two clusters.
//
// Transport: HTTP/1.1 with keep-alive, one request at a time on a
// connection. Every answer carries a Content-Length (this package's client,
// which writes and reads HTTP itself in transport.go, refuses a chunked
// answer as malformed). Every body is MessagePack
// (Content-Type application/msgpack) and encodes a map with the short string
// keys given in the msg tags of locker/wire.go and rest/wire.go. Unknown keys
// are skipped; missing keys take the zero value. A body must hold exactly one
// value: trailing bytes are an error.
//
//	POST /dsync/v2/lock          LockArgs    -> Reply
//	POST /dsync/v2/rlock         LockArgs    -> Reply
//	POST /dsync/v2/unlock        LockArgs    -> Reply
//	POST /dsync/v2/runlock       LockArgs    -> Reply
//	POST /dsync/v2/force-unlock  LockArgs    -> Reply
//	POST /dsync/v2/refresh       RefreshArgs -> RefreshReply
//	POST /dsync/v2/batch         BatchArgs   -> BatchReply
//	POST /dsync/v2/events        EventsArgs  -> EventsReply (a long poll; 501 if the table cannot queue; never batched)
//	POST /dsync/v2/query         QueryArgs   -> QueryReply (501 if the table cannot answer; never batched)
//	POST /dsync/v2/fence         FenceArgs   -> FenceReply (501 if the table has no fence counter; never batched)
//	POST /dsync/v2/version       VersionArgs -> VersionReply (501 if the table cannot answer; never batched)
//	POST /dsync/v2/waits         WaitsArgs   -> WaitsReply (501 if the table records no waits; never batched)
//	POST /dsync/v2/locks         ListArgs    -> EntryList (one page; 501 if the table cannot list; never batched)
//	GET  /dsync/v2/health        (no body)   -> 200 with an empty body while the table is open
//	GET  /dsync/v2/hello?n=NONCE (no body, no credentials) -> HelloReply
//
// A request may add the query parameter t=<milliseconds>: how long the
// client will wait for the answer. The node gives up on the request once that
// long has passed on its own clock, answering 408 and granting nothing, so a
// lock request that waited too long in the node is not granted to a client
// that has gone.
//
// Identity: GET /dsync/v2/hello?n=<nonce> needs no credentials and answers
// a HelloReply {"n": node ID, "i": incarnation, "m": mac, "a": admin mac}:
// the node's ID (ServerConfig.NodeID, or its boot record's), a number it
// draws at every start, and HMAC-SHA256s, keyed by the lock and by the admin
// secret, of "DSYNC2-HELLO" "\n" nonce "\n" node "\n" incarnation (decimal).
// A client asks it before its first request, checks the MAC of its role
// with its secret, and signs every request for that node and start.
//
// Authentication: unless the node runs insecure, every other request carries
//
//	Authorization: DSYNC2-HMAC-SHA256 <role>:<node>:<incarnation>:<ts>:<body-sha256>:<mac>
//
// where <role> is "lock" or "admin", <node> and <incarnation> are the
// hello's, <ts> is the client's wall-clock time in nanoseconds since the Unix
// epoch, in decimal without leading zeros, <body-sha256> is the hex SHA-256
// of the raw body (of nothing for a GET), and <mac> is 64 hex digits of
// HMAC-SHA256, keyed by the role's secret, over the bytes
//
//	"DSYNC2" "\n" <method> "\n" <request-target> "\n" <role> "\n" <node> "\n" <incarnation> "\n" <ts> "\n" <body-sha256>
//
// with <method> as sent ("POST"), <request-target> the path and query
// exactly as on the request line ("/dsync/v2/lock?t=1000"), and the other
// fields exactly as in the header. The node checks the header as soon as it
// has arrived, before it reads the body: a request for another node or
// start is refused 401 CodeIdentity (the client asks the hello again and
// resends it), one whose MAC does not match, or whose <ts> is outside the
// node's replay window (15 s by default) of its clock, 401 CodeUnauthorized;
// the node then reads none of the body and closes the connection. Then it
// reads the body (at most ServerConfig.MaxBodyBytes), refuses it 401 if its
// SHA-256 is not <body-sha256>, and 401 again if it has accepted a request
// with the same MAC before. To know, it remembers each accepted MAC for as
// long as <ts> could pass the window check on its wall clock, and at least
// twice the window after acceptance on its monotonic clock (so that
// stepping its wall clock back reopens no replay within that time): about
// twice the window in all. It remembers at most ServerConfig.ReplayCacheSize
// MACs (2,097,152 by default, enough for ~68,000 requests a second with the
// default window); past that it answers 503 CodeBusy. A client must
// therefore never send two requests with the same <ts> and content; this
// package's client makes its timestamps strictly increasing. Wall clocks of
// clients and nodes must agree to within the replay window. A request is
// thus valid for one node, in one of its starts, once.
//
// Roles: the lock role may do everything but list the locks (GET
// /dsync/v2/locks, which shows UIDs) and force-unlock a resource's every
// holder (a force-unlock without a UID): those need the admin role, and are
// answered 403 CodeForbidden otherwise (in a batch, that operation's
// result). A node without an admin secret serves the admin role to nobody.
// A UID is thus a capability: only its holder refreshes or releases it.
//
// Connections: a node serves at most ServerConfig.MaxConns connections (503
// and closed past it), at most ServerConfig.MaxConnsPerIP from one address
// (429 and closed), and reads a request for at most ServerConfig.ReadTimeout.
//
// Grants and refreshes: a granted lock's Reply carries, besides "k" and the
// fence "f", the node's validity "v" in nanoseconds: how long it keeps the
// grant without a refresh, counted from when it received the request. A
// RefreshReply carries it as "v" too, and, while the node is in its restart
// grace period (locker.Config.QuietPeriod), the grace left as "g" and the
// node's incarnation as "i" (a random nonzero number per start of its
// table). During the grace a lock is refused with reason 2 (quiet) and "g",
// unless its LockArgs say "rc": true, a reclaim of a grant held before the
// restart, which is granted unless it conflicts with a grant the node
// holds. A reclaim must name the incarnation as "in": one that names
// another (or none) is refused with reason 7 (stale reclaim), in the grace
// or after it. An unlock of a UID the node does not hold also says "g"
// during the grace.
//
// Answers: 200 carries the reply named above. Every other status carries an
// ErrorReply {"c": code, "m": message}:
//
//	400 CodeInvalidArgs  the table refused the arguments (locker.ErrInvalidArgs)
//	400 CodeMalformed    the body is not a valid message for the path
//	401 CodeUnauthorized missing, malformed, wrong, stale or replayed credentials
//	404 CodeNotFound     unknown path
//	405 CodeMethod       wrong method (the Allow header names the right one)
//	408 CodeCanceled     the node gave up: the request's t passed, or the node is closing
//	413 CodeTooLarge     body over the node's limit, or a batch with too many operations,
//	                     or a request with too many names (see Limits below)
//	500 CodeInternal     any other failure of the table
//	400 CodeVersion      the path names another protocol version
//	401 CodeIdentity     the request was signed for another node, or another start of this one
//	403 CodeForbidden    the lock role asked for what only the admin role may do
//	501 CodeUnsupported  the table cannot list
//	503 CodeBusy         too many calls wait for the same part of the table (locker.ErrBusy),
//	                     the table holds as many grants as it may (locker.ErrFull),
//	                     or the node's replay cache is full; nothing was done
//	503 CodeClosed       the node's table is closed
//
// A rejected request changed nothing in the table. A 200 Reply with OK false
// is not an error: the lock is held by another (Reason says why), or there
// was nothing to unlock.
//
// Batch: BatchArgs {"o": [BatchOp...], "bo": owner, "bs": source} with
// BatchOp {"v": verb, "l": LockArgs, "r": RefreshArgs} and verbs 1 lock, 2
// rlock, 3 unlock, 4 runlock, 5 refresh, 6 force-unlock. A lock or rlock
// operation whose LockArgs has no owner ("o") takes "bo", and none without a
// source ("s") takes "bs": a client names its process and a common call site
// once per batch. A client sends "bo" ("bs") only if every lock and rlock
// operation of the batch has an owner (a source) of its own. The node runs the operations in order, each on
// its own, and answers 200 with BatchReply {"r": [BatchResult...]}, one per
// operation, each {"c": code, "m": message, "p": Reply, "s": RefreshReply}
// where code 0 means success.
//
// Every map may leave out a field whose value is zero (empty, false, 0), and
// the encoders of this module leave out those tagged omitempty or omitzero in
// the Go types: an unlock op is {"v": 3, "l": {"u": uid}}, a granted lock's
// result {"p": {"k": true, "f": fence}}. A decoder takes a missing field as
// zero, and skips keys it does not know.
//
// The whole request is refused (with a status as
// above) only when it cannot be read or authenticated, or carries more
// operations than the node allows (at most MaxBatchLimit, 4096). The
// request's t bounds the whole batch. A table that can (locker.Local) runs
// the operations as a locker.Burst: they share readings of its clock, one
// per locker.BurstCalls lock operations, and a lock operation may be
// granted up to that many operations after t has passed (the client
// releases what it no longer waits for).
//
// Waiting on the node: a lock or rlock whose LockArgs asks to wait ("wt",
// nanoseconds; "tk", the acquisition's ticket), in a batch that names the
// client's session ("ss": 1 to 64 bytes the client draws at random), is
// queued by a table that can (locker.Waiter) when it cannot be granted at
// once, and answered with Reply {"w": 6} (ReasonQueued); its outcome comes
// later as an event of the session. POST /dsync/v2/events with EventsArgs
// {"s": session, "a": ack, "w": wait} answers EventsReply {"e": [Event...]},
// each Event {"q": seq, "u": uid, "p": Reply, "c": code, "m": message,
// "w": wound}, with the session's events after ack, holding the request
// until there is one or wait (at most MaxEventsWait, 5 s) has passed. An
// event is given again until a poll acknowledges it (its "a" at least the
// event's "q"). EventsReply's "ep" names the session's epoch, drawn when
// the node made the session; a poll's "a" counts in the epoch it names
// ("ep"), and is ignored in another: a node that restarted, or forgot the
// session, numbers a new session's events from 1 again. An event with "w" set is a wound (the request's grant
// stands in the way of an older waiter, whose ticket "w" is), not an
// outcome. A batch that names a session may also acknowledge its events
// ("sa": ack, "se": the epoch it counts in) and, with "te": true, take
// them: its answer, BatchReply {"r": [...], "e": [Event...], "ep": epoch},
// then carries the session's events that no answer has carried yet, at
// most MaxEventsPerReply, and the events its operations cause wake no
// poll; a poll gives them again until acknowledged. A session that no request names for
// SessionTTL (15 s) is forgotten and its queued requests withdrawn. Without "ss", or on a node
// whose table cannot queue, "wt" is ignored and the lock is answered at
// once. How clients use this: docs/waiting.md.
//
// Deadlock detection across processes uses two fields: a lock or rlock
// whose LockArgs names a holder ("h", the client's owner, a slash and its
// holder id) keeps it with the grant, and, if refused because of a
// conflict, records that the holder waits for the resources (see
// locker.WaitReporter). POST /dsync/v2/waits with {} answers
// {"e": [WaitEdge...], "t": truncated}, each edge {"a": waiter, "r":
// resource, "h": holder, "t": the tag of the holder's grant's UID, "q": its
// quorum}; with
// {"w": holder, "r": [resources...]} it forgets that holder's wait (for
// exactly those resources, or any if "r" is absent) and answers {"e": []}.
//
// Listings come a page at a time: ListArgs {"ar": resource, "au": uid,
// "m": max} asks for the entries after the entry of that resource and UID,
// ordered by resource then UID ({} for the first page), at most max of them
// (at most locker.MaxListPage, 10,000, which is also what 0 asks for), and
// EntryList {"e": [Entry...], "m": more} answers them, "m" true if more
// follow: the next page starts after the last entry. A page that cannot be
// encoded is answered 500, never with an empty 200.
//
// UIDs are capabilities: whoever knows one can refresh and release its
// grant. So only a listing (an admin's view) carries them. A query answers
// {"r": [{"h": [Holder...]}...]}, each holder {"t": tag, "w": write, "h":
// held for, in nanoseconds, "md": mode} ("md" is locker.Mode, 1 to 5 for IS,
// IX, S, SIX, X, left out by nodes that predate modes; "w" is true exactly
// for X, so that older clients still tell writers from readers), and a wait-for edge names its grant by "t" as
// well: the tag of a UID is the first 12 bytes of its SHA-256, in 24
// lowercase hex digits (locker.UIDTag), the same on every node. A holder
// carries its "u" too only if its lock said "pu": true (a public UID:
// package dsync's condition variables, whose waiters any signaller must be
// able to release).
//
// Limits: a body over ServerConfig.MaxBodyBytes (8 MiB by default, enough for
// a refresh of 100,000 UIDs) is refused with 413, as is a batch of more
// operations than ServerConfig.MaxBatchOps, or a request of more names in
// all (resource names and UIDs) than ServerConfig.MaxRequestNames (200,000
// by default); a lock naming more resources than the table allows (1000 by
// default) with 400, or, in a batch, that operation alone with
// CodeInvalidArgs. The node refuses them before it allocates for them. The
// table refuses names, UIDs and labels over its lengths (see
// locker.Config), and a lock past its caps on grants with 503 CodeBusy.
//
// A Server decodes the requests for a table that copies what it keeps
// (locker.ArgCopier, such as locker.Local) in place, without allocating
// their strings; see NewServer.
//
// # TLS, observers and draining
//
// ServerConfig.TLS makes a node serve TLS, and ClientConfig.TLS configures
// a client's connections to an https endpoint; ServerTLS and ClientTLS
// build configurations from PEM files whose material reloads (tls.go),
// with client certificates required for mutual TLS. The protocol above is
// the same inside TLS, HMAC included.
//
// ServerConfig.Observer is told of every request answered and of the
// outcomes of its operations, counted per request (observe.go); package
// dsyncprom turns them into Prometheus metrics.
//
// Server.Drain, before a node stops, refuses every lock and rlock as a
// node in its grace period does (reason 2, quiet, with "g" the time left
// until the drain's deadline) and serves everything else until the table
// holds no grant (drain.go).
//
// # Client behaviour
//
// Client bounds every request by the caller's context and by
// ClientConfig.CallTimeout, and returns as soon as the context ends. A lock
// granted after its caller left is released by the client. After a
// transport failure (refused or broken connection, a node that is closing, or
// no answer within at least 250 ms) the node is reported offline and calls
// fail fast with locker.ErrOffline until a background probe of the health
// path succeeds. A request cut short by its caller's own nearer deadline does
// not count against the node.
//
// By default a Client coalesces calls to its node (see coalesce.go): while
// ClientConfig.MaxInFlight requests are in flight, further calls queue and
// the next free slot sends up to ClientConfig.MaxBatch of them in one batch
// request. An idle client sends a call at once, alone. At most 16 batches'
// worth of calls wait for one node; past that, calls fail at once with
// locker.ErrBusy.
package rest
