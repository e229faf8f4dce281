/*
 * dsync.pml: the dsync quorum lock protocol, version 2, for Spin.
 *
 * One resource, two clients, NN nodes. README.md in this directory says what
 * is modelled, what is abstracted and why, and how to run it; check.sh runs
 * every configuration. Every constant below can be set with spin -DNAME=value.
 *
 * Two rules are added to v2, because without either Spin finds a double
 * grant: a client reclaims only on nodes of the quorum that set its current
 * deadline (RECLAIM_GUARD), and a node refuses a reclaim that names an
 * earlier incarnation of it (RECLAIM_EPOCH).
 *
 * Time. There are no absolute clocks: every timer is a countdown, so the
 * state space is finite without a horizon and runs may go on for ever. The
 * Clock process makes real time pass one tick at a time; a tick is one tick
 * of every node's clock. A client's clock may lose up to DRIFT ticks against
 * a node's over one window (from a send time to the deadline computed from
 * it); the model gives every window its longest real length (see WINDOW).
 * MARGIN = DRIFT = 1 tick. Node-to-node drift is left out: every safety
 * argument compares one client's clock with one node's, or a node's clock
 * with itself (README.md).
 *
 * Network. Between each client and each node there is at most one request in
 * flight. A client that sends a node a new request while the previous one is
 * still in flight has the old one delivered first and its answer ignored (so
 * an Unlock never overtakes its Lock: the node's tombstone makes the
 * overtaken Lock a no-op, which is what delivering the Lock and then the
 * Unlock leaves too). A request may be delayed over any number of ticks; the
 * node's answer reaches the client in the step the node handles the request
 * (README.md: why a delayed answer adds nothing). A request, or the answer to
 * it, may be lost (LOSSES in all).
 */

/* ---------------------------------------------------------------- config */

#ifndef NN
#define NN 3            /* nodes, 2..4 */
#endif
#define NC 2            /* clients */
#if NN < 2 || NN > 4
#error "NN must be 2, 3 or 4"
#endif
#ifndef NA
#define NA 2            /* attempts (UIDs) per client */
#endif
#ifndef NA0
#define NA0 NA          /* attempts of client 0 (at most NA) */
#endif
#ifndef NA1
#define NA1 NA          /* attempts of client 1 (at most NA) */
#endif
#define NAC(c) ((c) == 0 -> NA0 : NA1)
#ifndef VAL
#define VAL 3           /* validity V of every node, in ticks */
#endif
#ifndef MARGIN
#define MARGIN 1        /* the client gives up MARGIN ticks before s + V */
#endif
#ifndef GRACE
#define GRACE VAL       /* restart grace G; 0 = no grace (negative control) */
#endif
#ifndef DRIFT
#define DRIFT 1         /* ticks a client's clock may lose against the nodes' over one window */
#endif
#ifndef CRASHES
#define CRASHES 1       /* node crash-restarts in a run */
#endif
#ifndef LOSSES
#define LOSSES 1        /* lost messages in a run */
#endif
#ifndef MGL
#define MGL 0           /* 1: multiple-granularity modes IS, IX, S, SIX, X (see MODE0) */
#endif
#if MGL
/* the modes, numbered as locker.Mode */
#define M_IS  1
#define M_IX  2
#define M_S   3
#define M_SIX 4
#define M_X   5
#endif
#ifndef MODE0
#if MGL
#define MODE0 M_X       /* MGL: client 0's mode, 1 IS, 2 IX, 3 S, 4 SIX, 5 X */
#else
#define MODE0 1         /* client 0: 1 write, 0 read */
#endif
#endif
#ifndef MODE1
#if MGL
#define MODE1 M_X       /* MGL: client 1's mode */
#else
#define MODE1 1         /* client 1: 1 write, 0 read */
#endif
#endif
#ifndef WQ
#define WQ (NN/2+1)     /* write quorum; NN/2 is a negative control */
#endif
#define RQ ((NN+1)/2)   /* read quorum */
#ifndef RECLAIM_GUARD
#define RECLAIM_GUARD 1 /* 0: reclaim on every node that answers not-held in grace, as v2 says (unsafe) */
#endif
#ifndef RECLAIM_EPOCH
#define RECLAIM_EPOCH 1 /* 0: a node grants a reclaim sent before its last restart, as v2 allows (unsafe) */
#endif
#ifndef FENCE
#define FENCE 0         /* 1: write holders take fencing tokens */
#endif
#ifndef FENCE_CHECK
#define FENCE_CHECK 1   /* 0: a token is valid without the deadline check (negative control) */
#endif
#ifndef LIVE
#define LIVE 0          /* 1: the progress configuration (see README.md) */
#endif
#ifndef SYMM
#define SYMM 0          /* 1: store states once up to a renaming of the nodes */
#endif
#ifndef RMAX
#define RMAX 2          /* LIVE: refresh rounds client 1 makes per hold */
#endif
#ifndef QUEUE
#define QUEUE 0         /* 1: attempts wait on the nodes, which hand a freed lock over (README.md) */
#endif
#ifndef WAITT
#define WAITT 1         /* QUEUE: the longest a node keeps a waiter queued, in ticks of its clock (the client asks V/3) */
#endif
#ifndef ORDER
#define ORDER 1         /* QUEUE: 1 ticket order and no jumping; 0 the youngest waiter first, jumping allowed */
#endif
#ifndef HEAR
#define HEAR 0          /* QUEUE: 1 the client dates its deadline from hearing of a handed-over grant (negative control) */
#endif
#if QUEUE && LIVE
#error "QUEUE and LIVE are not checked together"
#endif
#if MGL && (QUEUE || LIVE)
#error "MGL is checked without QUEUE and LIVE"
#endif
#if MGL && (MODE0 < 1 || MODE0 > 5 || MODE1 < 1 || MODE1 > 5)
#error "MGL: MODE0 and MODE1 must be 1 (IS) to 5 (X)"
#endif

/* A client's window: from a send time s to the deadline s + V - margin on
 * its own clock, in real ticks. Its clock may lose DRIFT ticks against the
 * nodes' over the window, so the window lasts at most V - MARGIN + DRIFT real
 * ticks; the model always gives it that long. A shorter window (a clock in
 * step, or fast) ends the belief earlier, and ending a belief earlier is
 * what a release does, which a client may do at any moment: so the longest
 * window covers every drift up to DRIFT. */
#define WINDOW (VAL - MARGIN + DRIFT)
#define MODE(c)     ((c) == 0 -> MODE0 : MODE1)
#if MGL
/* Gray's matrix, as locker.compat: bit n of COMPAT(m) is set if mode m is
 * compatible with mode n. IS: IS IX S SIX; IX: IS IX; S: IS S; SIX: IS;
 * X: nothing. */
#define COMPAT(m)   ((m) == M_IS -> 30 : ((m) == M_IX -> 6 : ((m) == M_S -> 10 : ((m) == M_SIX -> 2 : 0))))
/* dsync.modeQuorum: IS and S by a read quorum, IX, SIX and X by a write
 * quorum; QIX overrides IX's (QIX=RQ: the negative control m4-ix-readq) */
#ifndef QIX
#define QIX WQ
#endif
#define MQ(m)       ((m) == M_IS || (m) == M_S -> RQ : ((m) == M_IX -> QIX : WQ))
#define Q(c)        MQ(MODE(c))
#define CONFL(c, d) (!((COMPAT(MODE(c)) >> MODE(d)) & 1))
#define WRITER(c)   (MODE(c) == M_X)  /* fencing is for X holders only */
#else
#define Q(c)        (MODE(c) -> WQ : RQ)
#define CONFL(c, d) (MODE(c) || MODE(d))
#define WRITER(c)   MODE(c)
#endif
#define UID(c)      (used[c] - 1)
#define BIT(m, j)   (((m) >> (j)) & 1)
#define COUNT(m)    (BIT(m, 0) + BIT(m, 1) + BIT(m, 2) + BIT(m, 3))

#if RECLAIM_GUARD
#define RQUORUM(c)  quorum[c]
#else
#define RQUORUM(c)  0
#endif
#define S(c, j)     ((c)*NN + (j))            /* the link between client c and node j */
#define G(j, c, a)  (((j)*NC + (c))*NA + (a)) /* node j's grant to attempt a of client c */

/* requests */
#define NONE      0
#define LOCK      1
#define RECLAIM   2
#define REFRESH   3
#define UNLOCK    4
#define RECLAIM_OLD 5   /* a reclaim that names an earlier incarnation of the node (RECLAIM_EPOCH) */
/* answers (NONE: no answer in flight) */
#define GRANTED   1
#define CONFLICT  2
#define QUIET     3
#define REFRESHED 4
#define NOTHELD   5
#define NOTHELD_G 6     /* not held, and the node is in its grace period */
#define QUEUED    7     /* QUEUE: the Lock waits in the node's queue; its outcome comes as an event */

/* client phases */
#define IDLE 0
#define ACQ  1          /* an attempt is in flight */
#define HOLD 2          /* the client believes it holds the lock */

/* ----------------------------------------------------------------- state */

byte rem[NN*NC*NA];     /* node's clock ticks left before a grant expires; 0: no grant */
byte grace[NN];         /* node's clock ticks left of its restart grace period */
byte req[NC*NN];        /* request in flight on each link */

byte phase[NC];
byte used[NC];          /* attempts started; the current UID is used-1 */
byte pdl[NC];           /* client's clock ticks left to s + V - margin, s the send time of the attempt or round in flight */
byte dl[NC];            /* client's clock ticks left to its deadline (HOLD only) */
byte ok[NC];            /* attempt: nodes that granted; round: nodes refreshed or reclaimed (bit j: node j) */
#if RECLAIM_GUARD
byte quorum[NC];        /* HOLD: the nodes counted in the attempt or round that set the deadline */
#endif
byte no[NC];            /* attempt: refusals; round: not-held answers from nodes out of grace */
bool round[NC];         /* a refresh round is in flight */
byte crashes, losses;

#if QUEUE
byte wq[NN*NC*NA];      /* node's clock ticks left of a queued waiter's wait; 0: not queued */
byte ev[NC*NN];         /* event in flight from node j to client c about its current attempt: GRANTED or CONFLICT */
byte n0[NA];            /* tickets: client 1's attempts started before client 0's attempt a (see OLDER) */
#if RECLAIM_GUARD
bool fa[NC];            /* HOLD: the deadline is still the attempt's (a grant heard late joins quorum) */
#endif
#endif

#if LIVE
bool backoff[NC];       /* a failed attempt waits for a tick before the next */
byte rounds[NC];        /* refresh rounds in this hold */
#endif

#if FENCE
byte fc[NN];            /* fence counters, kept across restarts; moved by token raises only (README.md) */
byte fst[NC];           /* token: 0 none yet in this hold, 1 read (ftok is T), 2 raised, 3 taken */
byte ftok[NC];          /* the token T being made */
byte lastTok;           /* the last token found valid */
#endif

/* With SYMM, nodes (and clients of the same mode) change places; these say
 * which is which in the printfs of a trail. Not part of the state. */
#if SYMM
hidden byte nid[NN];
#define NID(j) nid[j]
#else
#define NID(j) (j)
#endif
#if SYMM && MODE0 == MODE1 && !LIVE && !QUEUE
#define CSYMM 1
hidden byte cid[NC];
#define CID(c) cid[c]
#else
#define CSYMM 0
#define CID(c) (c)
#endif
/* real time, for the printfs of a replayed trail only: not part of the state */
hidden int rtime;
/* temporaries of the d_steps: not part of the state */
hidden byte dk, dg, di, dc, da, tj, tn, sj, rx, ti, tc, sp, sq, si, sv;
hidden byte dhit;
#if QUEUE
hidden byte qj, qk, qm, qn, qc, qa, qx, qd, qi, qw;
#endif
/* properties, named so that a failed assertion says which */
hidden byte mutex, told, reclaim_in_time, token_increases;

/* ------------------------------------------------------------ properties */

/* told: when a grant completes a quorum of grants on the nodes for client
 * c's current attempt, no other client still believes it holds a conflicting
 * lock: the previous holder's belief has ended before the nodes hand the
 * lock on, whether or not c has heard of its grants yet. */
inline check_told(c) {
	tn = 0; tj = 0;
	do
	:: tj < NN -> if :: rem[G(tj, c, UID(c))] > 0 -> tn++ :: else fi; tj++
	:: else -> break
	od;
	told = !(tn >= Q(c) && phase[1-c] == HOLD && CONFL(c, 1-c));
	assert(told)
}

/* mutex: when client c begins to believe (it counted a quorum of grant
 * answers), no other client believes it holds a conflicting lock. Beliefs
 * begin nowhere else, so this holds in every state. */
inline check_acquired(c) {
	mutex = !(phase[1-c] == HOLD && CONFL(c, 1-c));
	assert(mutex)
}

/* ---------------------------------------------------------------- queues */

#if QUEUE
/* Waiting on the node (QUEUE). Every attempt asks to wait. A Lock that
 * meets a conflicting grant, or (ORDER) an older conflicting waiter, is
 * queued (answer QUEUED) for at most WAITT ticks of the node's clock, or
 * less (the node may drop it at any moment: a shorter Wait). Whenever the
 * lock frees on the node (an Unlock, an expiry, a dropped waiter), the
 * node grants, within that step, every waiter that nothing is in the way of
 * any more, oldest first, and tells the client by an event, a message that
 * may be delayed or lost. A reclaim is never queued and jumps the queue, as
 * in the code.
 *
 * Tickets. An attempt's ticket is its start time, in the same order on
 * every node; a client's attempts are in the order they start. Client 0's
 * attempt a is older than client 1's attempt b iff b >= n0[a], the number
 * of client 1's attempts started before it. */
#define OLDER(c, a, d, b) ((c) == (d) -> (a) < (b) : ((c) == 0 -> (b) >= n0[a] : (a) < n0[b]))
#define KOLDER(k, x) OLDER((k) / NA, (k) % NA, (x) / NA, (x) % NA)   /* k = c*NA + a */
#if ORDER
#define SERVE_FIRST(k, x) KOLDER(k, x)   /* the oldest waiter first */
#else
#define SERVE_FIRST(k, x) KOLDER(x, k)   /* the youngest first (ORDER=0) */
#endif
#define QX(j, x) ((j)*NC*NA + (x))      /* = G(j, x / NA, x % NA) */

/* qw = 1 if a waiter older than waiter x (= c*NA + a) that conflicts with it
 * is queued on node j: then x may not take the lock there (no jumping). */
inline in_way(j, x) {
	qw = 0; qi = 0;
	do
	:: qi < NC*NA ->
		if
		:: qi != (x) && wq[QX(j, qi)] > 0 && CONFL((x) / NA, qi / NA) && KOLDER(qi, x) -> qw = 1
		:: else
		fi;
		qi++
	:: else -> break
	od
}

/* Node j grants its queued waiter x and tells the client, if the waiter is
 * the client's current attempt and the client still listens. */
inline hand_off(j, x) {
	qc = (x) / NA; qa = (x) % NA;
	rem[QX(j, x)] = VAL; wq[QX(j, x)] = 0;
	printf("node %d: hands the lock over to client %d uid %d (granted; event sent)\n", NID(j), CID(qc), qa);
	if
	:: qa == UID(qc) && phase[qc] != IDLE ->
		ev[S(qc, j)] = GRANTED;
		check_told(qc)
	:: else
	fi
}

/* The wait of node j's waiter x ends: it leaves the queue, refused. */
inline drop(j, x) {
	qc = (x) / NA; qa = (x) % NA;
	wq[QX(j, x)] = 0;
	printf("node %d: the wait of client %d uid %d ends: refused (event sent)\n", NID(j), CID(qc), qa);
	if
	:: qa == UID(qc) && phase[qc] == ACQ -> ev[S(qc, j)] = CONFLICT
	:: else
	fi
}

/* The lock may have freed on node j: grant every queued waiter that no
 * unexpired conflicting grant (and, ORDER, no older conflicting waiter
 * still queued) is in the way of, oldest first. */
inline serve(j) {
	qm = 0;
	do
	:: true ->
		qx = 255; qk = 0;
		do
		:: qk < NC*NA ->
			if
			:: wq[QX(j, qk)] > 0 && !BIT(qm, qk) ->
				if
				:: qx == 255 -> qx = qk
				:: else ->
					if
					:: SERVE_FIRST(qk, qx) -> qx = qk
					:: else
					fi
				fi
			:: else
			fi;
			qk++
		:: else -> break
		od;
		if
		:: qx == 255 -> break
		:: else
		fi;
		qm = qm | (1 << qx);
		qd = 0; qk = 0;
		do
		:: qk < NC*NA ->
			if
			:: qk != qx && rem[QX(j, qk)] > 0 && CONFL(qx / NA, qk / NA) -> qd = 1
			:: else
			fi;
			qk++
		:: else -> break
		od;
#if ORDER
		if
		:: qd == 0 -> in_way(j, qx); qd = qw
		:: else
		fi;
#endif
		if
		:: qd == 0 -> hand_off(j, qx)
		:: else
		fi
	od;
	skip
}
#endif

/* ------------------------------------------------------------------ node */

/* Node j handles the request in flight from client c; its answer is left
 * in rx. */
inline deliver(c, j) {
	dk = req[S(c, j)];
	req[S(c, j)] = NONE;
	rx = NONE;
	dg = G(j, c, UID(c));
	if
	:: dk == UNLOCK ->
		printf("node %d: Unlock(client %d uid %d)\n", NID(j), CID(c), UID(c));
		rem[dg] = 0;
#if QUEUE
		wq[dg] = 0;     /* a queued waiter is withdrawn */
		serve(j);
#endif
		skip
	:: dk == REFRESH ->
		if
		:: rem[dg] > 0 -> rem[dg] = VAL; rx = REFRESHED;
			printf("node %d: Refresh(client %d uid %d): refreshed\n", NID(j), CID(c), UID(c))
		:: rem[dg] == 0 && grace[j] > 0 -> rx = NOTHELD_G;
			printf("node %d: Refresh(client %d uid %d): not held, in grace\n", NID(j), CID(c), UID(c))
		:: rem[dg] == 0 && grace[j] == 0 -> rx = NOTHELD;
			printf("node %d: Refresh(client %d uid %d): not held\n", NID(j), CID(c), UID(c))
		fi
	:: dk == RECLAIM_OLD -> rx = QUIET;
		printf("node %d: Reclaim(client %d uid %d): refused, it names an earlier incarnation\n", NID(j), CID(c), UID(c))
	:: dk == LOCK && grace[j] > 0 -> rx = QUIET;
		printf("node %d: Lock(client %d uid %d): refused, quiet (grace)\n", NID(j), CID(c), UID(c))
	:: dk == RECLAIM || (dk == LOCK && grace[j] == 0) ->
		/* conflict check against every other unexpired grant */
		dhit = 0; di = 0;
		do
		:: di < NC*NA ->
			dc = di / NA; da = di % NA;
			if
			:: (dc != c || da != UID(c)) && rem[G(j, dc, da)] > 0 && CONFL(c, dc) -> dhit = 1
			:: else
			fi;
			di++
		:: else -> break
		od;
#if QUEUE && ORDER
		/* no jumping: nor may it pass an older conflicting waiter */
		if
		:: dk == LOCK && !dhit -> in_way(j, (c)*NA + UID(c)); dhit = qw
		:: else
		fi;
#endif
		if
#if QUEUE
		:: dhit && dk == LOCK -> rx = QUEUED; wq[dg] = WAITT;
			printf("node %d: Lock(client %d uid %d): queued\n", NID(j), CID(c), UID(c))
#endif
		:: dhit -> rx = CONFLICT;
			if
			:: dk == RECLAIM -> printf("node %d: Reclaim(client %d uid %d): refused, conflict\n", NID(j), CID(c), UID(c))
			:: else -> printf("node %d: Lock(client %d uid %d): refused, conflict\n", NID(j), CID(c), UID(c))
			fi
		:: else ->
			rem[dg] = VAL;
			rx = GRANTED;
			if
			:: dk == RECLAIM -> printf("node %d: Reclaim(client %d uid %d): granted\n", NID(j), CID(c), UID(c))
			:: else -> printf("node %d: Lock(client %d uid %d): granted\n", NID(j), CID(c), UID(c))
			fi;
			check_told(c)
		fi
	fi
}

/* A crash loses node j's table; it restarts at once in its grace period.
 * (A node that is down answers nothing: that is a delay, which the network
 * already allows.) The fence counter survives. */
inline crash(j) {
	printf("node %d: crashes, restarts with an empty table, in grace for %d ticks\n", NID(j), GRACE);
	crashes++;
	tc = 0;
	do
	:: tc < NC*NA -> rem[G(j, tc / NA, tc % NA)] = 0; tc++
	:: else -> break
	od;
	grace[j] = GRACE;
#if QUEUE
	/* the queue is lost; a waiting call ends without a grant, counted failed */
	tc = 0;
	do
	:: tc < NC*NA ->
		if
		:: wq[QX(j, tc)] > 0 ->
			wq[QX(j, tc)] = 0;
			if
			:: tc % NA == UID(tc / NA) && phase[tc / NA] == ACQ -> ev[S(tc / NA, j)] = CONFLICT
			:: else
			fi
		:: else
		fi;
		tc++
	:: else -> break
	od;
#endif
#if RECLAIM_EPOCH
	/* A reclaim carries the incarnation (epoch) that the node's not-held
	 * answer named; the answer and the reclaim are one step here, so a
	 * reclaim in flight now names the incarnation that just ended. */
	tc = 0;
	do
	:: tc < NC ->
		if
		:: req[S(tc, j)] == RECLAIM -> req[S(tc, j)] = RECLAIM_OLD
		:: else
		fi;
		tc++
	:: else -> break
	od;
#endif
	skip
}

/* ---------------------------------------------------------------- client */

inline send(c, j, kind) {
	if
	:: req[S(c, j)] != NONE ->
		printf("node %d: (gets client %d's previous request first; the client ignores the answer)\n", NID(j), CID(c));
		deliver(c, j)
	:: else
	fi;
	req[S(c, j)] = kind
}

inline send_all(c, kind) {
	sj = 0;
	do
	:: sj < NN -> send(c, sj, kind); sj++
	:: else -> break
	od
}

/* The client stops believing (release, or lost) or gives an attempt up, and
 * releases on every node. */
inline stop(c) {
	send_all(c, UNLOCK);
	phase[c] = IDLE; round[c] = 0; ok[c] = 0; no[c] = 0; pdl[c] = 0; dl[c] = 0;
#if RECLAIM_GUARD
	quorum[c] = 0;
#endif
#if QUEUE
	/* it ignores events until its next attempt: as if they came now */
	sj = 0;
	do
	:: sj < NN -> ev[S(c, sj)] = NONE; sj++
	:: else -> break
	od;
#if RECLAIM_GUARD
	fa[c] = 0;
#endif
#endif
#if FENCE
	if
	:: fst[c] == 3 -> fst[c] = 0   /* the token taken in this hold; a call in flight goes on */
	:: else
	fi;
#endif
	skip
}

inline give_up(c) {
	stop(c);
#if LIVE
	backoff[c] = 1
#endif
}

inline start(c) {
#if QUEUE
	/* The requests of the previous attempt still in flight (its Unlocks)
	 * reach their nodes first, under its own UID: an Unlock withdraws a
	 * waiter. (Without QUEUE, send delivers them under the new UID, where
	 * they do nothing: as if lost.) */
	sj = 0;
	do
	:: sj < NN ->
		if
		:: req[S(c, sj)] != NONE ->
			printf("node %d: (gets client %d's previous request first; the client ignores the answer)\n", NID(sj), CID(c));
			deliver(c, sj)
		:: else
		fi;
		sj++
	:: else -> break
	od;
#endif
#if LIVE
	if
	:: c == 0 -> used[c] = 1   /* LIVE: client 0 retries for ever with one UID */
	:: else -> used[c]++
	fi;
#else
	used[c]++;
#endif
#if QUEUE
	/* its ticket; events about earlier attempts are ignored from now on */
	if
	:: c == 0 -> n0[UID(0)] = used[1]
	:: else
	fi;
	sj = 0;
	do
	:: sj < NN -> ev[S(c, sj)] = NONE; sj++
	:: else -> break
	od;
	printf("client %d: attempt uid %d: Lock (waiting) to every node\n", CID(c), UID(c));
#else
	printf("client %d: attempt uid %d: Lock to every node\n", CID(c), UID(c));
#endif
	send_all(c, LOCK);
	pdl[c] = WINDOW; ok[c] = 0; no[c] = 0;
	phase[c] = ACQ
}

inline acquired(c) {
	printf("client %d: HOLDS (uid %d, %d grants; deadline in %d ticks of its clock)\n", CID(c), UID(c), COUNT(ok[c]), pdl[c]);
	check_acquired(c);
#if RECLAIM_GUARD
	quorum[c] = ok[c];
#endif
#if QUEUE
	/* a holder ignores refusals; grants it hears later still count (fa) */
	sj = 0;
	do
	:: sj < NN -> if :: ev[S(c, sj)] == CONFLICT -> ev[S(c, sj)] = NONE :: else fi; sj++
	:: else -> break
	od;
#if RECLAIM_GUARD
	fa[c] = 1;
#endif
#endif
	phase[c] = HOLD; dl[c] = pdl[c]; pdl[c] = 0; ok[c] = 0; no[c] = 0;
#if LIVE
	rounds[c] = 0;
#endif
#if FENCE
	fst[c] = 0;
#endif
}

inline start_round(c) {
	printf("client %d: refresh round: Refresh to every node\n", CID(c));
	send_all(c, REFRESH);
	pdl[c] = WINDOW; ok[c] = 0; no[c] = 0; round[c] = 1;
#if LIVE
	rounds[c]++;
#endif
}

inline end_round(c) {
	round[c] = 0; ok[c] = 0; no[c] = 0; pdl[c] = 0
}

/* An attempt of client c counts node j's grant. */
inline got_grant(c, j) {
	ok[c] = ok[c] | (1 << (j));
	if
	:: COUNT(ok[c]) >= Q(c) && pdl[c] > 0 -> acquired(c)
	:: COUNT(ok[c]) >= Q(c) && pdl[c] == 0 ->                  /* too late: s + V - margin has passed */
		printf("client %d: a quorum granted, too late: gives up\n", CID(c));
		give_up(c)
	:: else
	fi
}

/* An attempt of client c counts a refusal. */
inline got_refusal(c) {
	no[c]++;
	if
	:: no[c] > NN - Q(c) ->
		printf("client %d: attempt refused by %d nodes: gives up\n", CID(c), no[c]);
		give_up(c)
	:: else
	fi
}

/* Client c gets node j's answer rx. */
inline receive(c, j) {
	if
	:: phase[c] == ACQ ->
		if
		:: rx == GRANTED -> got_grant(c, j)
#if QUEUE
		:: rx == QUEUED                                   /* its outcome comes as an event */
#endif
		:: else -> got_refusal(c)                         /* CONFLICT or QUIET */
		fi
	:: phase[c] == HOLD && round[c] ->
		if
		:: rx == REFRESHED || rx == GRANTED ->              /* GRANTED: a reclaim */
			ok[c] = ok[c] | (1 << (j));
			if
			:: COUNT(ok[c]) >= Q(c) ->
				dl[c] = pdl[c];
				printf("client %d: refreshed by %d nodes: deadline in %d ticks\n", CID(c), COUNT(ok[c]), dl[c]);
#if RECLAIM_GUARD
				quorum[c] = ok[c];
#endif
#if QUEUE && RECLAIM_GUARD
				fa[c] = 0;
#endif
				end_round(c)
			:: else
			fi
		:: rx == NOTHELD_G && (!RECLAIM_GUARD || BIT(RQUORUM(c), j)) ->
			reclaim_in_time = (dl[c] > 0);
			assert(reclaim_in_time);
			printf("client %d: reclaim on node %d\n", CID(c), NID(j));
			send(c, j, RECLAIM)
		:: rx == NOTHELD_G && RECLAIM_GUARD && !BIT(RQUORUM(c), j) ->
			printf("client %d: no reclaim on node %d: it was not in the quorum that set the deadline\n", CID(c), NID(j))
		:: rx == NOTHELD ->
			no[c]++;
			if
			:: no[c] > NN - Q(c) ->
				printf("client %d: LOST (%d nodes out of grace do not hold it)\n", CID(c), no[c]);
				give_up(c)
			:: else
			fi
		:: else                                           /* a reclaim refused */
		fi
	:: else                                               /* nobody waits for it any more */
	fi
}

#if QUEUE
/* Client c gets node j's event about its current attempt: a grant handed
 * over from the queue, or a refusal (the wait ended, the node restarted).
 * The deadline stays counted from when the attempt was sent (HEAR=1: from
 * now, the negative control). */
inline receive_event(c, j) {
	rx = ev[S(c, j)];
	ev[S(c, j)] = NONE;
	if
	:: phase[c] == ACQ && rx == GRANTED ->
		printf("client %d: hears that node %d handed it the lock\n", CID(c), NID(j));
#if HEAR
		pdl[c] = WINDOW;
#endif
		got_grant(c, j)
	:: phase[c] == ACQ && rx == CONFLICT ->
		printf("client %d: hears that node %d refused it (wait ended)\n", CID(c), NID(j));
		got_refusal(c)
	:: phase[c] == HOLD && rx == GRANTED ->
		/* a grant after the decision: held, refreshed and released with the
		 * lock; while the deadline is the attempt's, it counts for reclaims
		 * (Refresher.MarkHeld) */
		printf("client %d: hears that node %d handed it the lock, after its quorum\n", CID(c), NID(j));
#if RECLAIM_GUARD
		if
		:: fa[c] -> quorum[c] = quorum[c] | (1 << (j))
		:: else
		fi;
#endif
		skip
	:: else                                               /* nobody waits for it any more */
	fi
}
#endif

/* One tick of client c's clock; the deadline ends its belief. */
inline client_tick(c) {
	if
	:: pdl[c] > 0 -> pdl[c]--
	:: else
	fi;
	if
	:: dl[c] > 0 ->
		dl[c]--;
		if
		:: dl[c] == 0 ->
			printf("client %d: LOST (deadline passed)\n", CID(c));
			give_up(c)
		:: else
		fi
	:: else
	fi
}

/* One real tick: one tick of every node's clock, and of every client's
 * clock as the nodes see it (see WINDOW for drift). Grants expire and
 * deadlines pass in the same step, so a node can grant a lock whose previous
 * holder's deadline falls on this tick only after the holder has stopped
 * believing. */
inline tick() {
	rtime++;
	printf("---- tick %d\n", rtime);
	ti = 0;
	do
	:: ti < NN*NC*NA -> if :: rem[ti] > 0 -> rem[ti]-- :: else fi; ti++
	:: else -> break
	od;
	ti = 0;
	do
	:: ti < NN -> if :: grace[ti] > 0 -> grace[ti]-- :: else fi; ti++
	:: else -> break
	od;
	tc = 0;
	do
	:: tc < NC ->
		client_tick(tc);
#if LIVE
		backoff[tc] = 0;
#endif
		tc++
	:: else -> break
	od;
#if QUEUE
	/* grants expired: each node hands the lock over (after the deadlines
	 * of this tick have passed, as a grant in a later step would), then the
	 * waits that end at this tick end: a wait spans at most WAITT ticks
	 * (one that ends earlier: EARLY) */
	qj = 0;
	do
	:: qj < NN -> serve(qj); qj++
	:: else -> break
	od;
	ti = 0;
	do
	:: ti < NN*NC*NA ->
		if
		:: wq[ti] == 1 -> drop(ti / (NC*NA), ti % (NC*NA)); serve(ti / (NC*NA))
		:: wq[ti] > 1 -> wq[ti]--
		:: else
		fi;
		ti++
	:: else -> break
	od;
#endif
	skip
}

#ifndef LIVE_SYNC
#define LIVE_SYNC 1     /* LIVE: messages arrive within a tick; 0: any delay (progress fails) */
#endif
#if LIVE && LIVE_SYNC
/* LIVE: a tick waits until no message is in flight (every message arrives
 * within a tick), so that a fault-free attempt can succeed. */
#define L4(a, i) (a[i] + a[i+1] + a[i+2] + a[i+3])
#if NN == 2
#define QUIESCENT (L4(req, 0) == 0)
#elif NN == 3
#define QUIESCENT (L4(req, 0) + req[4] + req[5] == 0)
#else
#define QUIESCENT (L4(req, 0) + L4(req, 4) == 0)
#endif
#else
#define QUIESCENT true
#endif

/* ------------------------------------------------------------- fencing */

#if FENCE

/* A token call reads the counters of a write quorum m (bit j: node j) and
 * takes T, one more than the largest; then it raises the counters of a write
 * quorum m to at least T. Each is one step here: counters only grow, and a
 * valid token's calls all fall within its holder's belief, so spreading a
 * call's node visits over time changes no valid token's order (README.md). */
inline say_nodes(m) {
	si = 0;
	do
	:: si < NN -> if :: BIT(m, si) -> printf(" %d", NID(si)) :: else fi; si++
	:: else -> break
	od
}

inline fence_read(c, m) {
	ftok[c] = 0; si = 0;
	do
	:: si < NN ->
		if
		:: BIT(m, si) && fc[si] > ftok[c] -> ftok[c] = fc[si]
		:: else
		fi;
		si++
	:: else -> break
	od;
	ftok[c]++;
	fst[c] = 1;
	printf("client %d: reads the fence counters of nodes", CID(c)); say_nodes(m);
	printf(": token %d\n", ftok[c])
}

inline fence_raise(c, m) {
	si = 0;
	do
	:: si < NN ->
		if
		:: BIT(m, si) && fc[si] < ftok[c] -> fc[si] = ftok[c]
		:: else
		fi;
		si++
	:: else -> break
	od;
	fst[c] = 2;
	printf("client %d: raises the fence counters of nodes", CID(c)); say_nodes(m);
	printf(" to %d\n", ftok[c])
}

/* The last step: the token is valid only if the holder's deadline has not
 * passed on its own clock (it still believes). */
inline fence_check(c) {
	if
	:: phase[c] == HOLD || !FENCE_CHECK ->
		printf("client %d: token %d is valid (last valid token %d)\n", CID(c), ftok[c], lastTok);
		token_increases = (ftok[c] > lastTok);
		assert(token_increases);
		lastTok = ftok[c]
	:: else ->
		printf("client %d: token %d refused: its deadline has passed\n", CID(c), ftok[c])
	fi;
	if
	:: phase[c] == HOLD -> fst[c] = 3
	:: else -> fst[c] = 0
	fi;
	ftok[c] = 0
}

/* Counters and tokens are only compared and incremented, so states equal up
 * to adding a constant to all of them are one: subtract the smallest. */
hidden byte fmin;
inline fence_shift() {
	fmin = lastTok; si = 0;
	do
	:: si < NN -> if :: fc[si] < fmin -> fmin = fc[si] :: else fi; si++
	:: else -> break
	od;
	if :: (fst[0] == 1 || fst[0] == 2) && ftok[0] < fmin -> fmin = ftok[0] :: else fi;
	if :: (fst[1] == 1 || fst[1] == 2) && ftok[1] < fmin -> fmin = ftok[1] :: else fi;
	if
	:: fmin > 0 ->
		lastTok = lastTok - fmin;
		si = 0;
		do
		:: si < NN -> fc[si] = fc[si] - fmin; si++
		:: else -> break
		od;
		if :: fst[0] == 1 || fst[0] == 2 -> ftok[0] = ftok[0] - fmin :: else fi;
		if :: fst[1] == 1 || fst[1] == 2 -> ftok[1] = ftok[1] - fmin :: else fi
	:: else
	fi
}
#endif

/* ------------------------------------------------------------- symmetry */

/* The nodes are interchangeable: the Node processes differ only in their
 * index, and nothing else names a node. With SYMM, every step ends by
 * sorting the nodes' data (table, grace, requests in flight, fence state), so
 * that states equal up to a renaming of nodes are stored once. A trail then
 * shows nodes changing places; check.sh runs the negative controls without
 * it so that their trails read plainly. */
#if SYMM
hidden int key[NN];
#if QUEUE
hidden int key2[NN];
#define KEY_GT(x, y) (key[x] > key[y] || (key[x] == key[y] && key2[x] > key2[y]))
#else
#define KEY_GT(x, y) (key[x] > key[y])
#endif

inline node_key(j) {
	key[j] = grace[j];
	si = 0;
	do
	:: si < NC*NA -> key[j] = key[j]*(VAL+1) + rem[(j)*NC*NA + si]; si++
	:: else -> break
	od;
	key[j] = (key[j]*6 + req[S(0, j)])*6 + req[S(1, j)];
	key[j] = key[j]*4 + BIT(ok[0], j)*2 + BIT(ok[1], j);
#if RECLAIM_GUARD
	key[j] = key[j]*4 + BIT(quorum[0], j)*2 + BIT(quorum[1], j);
#endif
#if FENCE
	key[j] = key[j]*16 + fc[j];
#endif
#if QUEUE
	key2[j] = 0; si = 0;
	do
	:: si < NC*NA -> key2[j] = key2[j]*(WAITT+1) + wq[QX(j, si)]; si++
	:: else -> break
	od;
	key2[j] = (key2[j]*3 + ev[S(0, j)])*3 + ev[S(1, j)];
#endif
}

inline swap_bit(m, x, y) {
	if
	:: BIT(m, x) != BIT(m, y) -> m = m ^ ((1 << (x)) | (1 << (y)))
	:: else
	fi
}

inline swap_nodes(x, y) {
	si = 0;
	do
	:: si < NC*NA -> sv = rem[(x)*NC*NA + si]; rem[(x)*NC*NA + si] = rem[(y)*NC*NA + si]; rem[(y)*NC*NA + si] = sv; si++
	:: else -> break
	od;
	sv = grace[x]; grace[x] = grace[y]; grace[y] = sv;
	sv = nid[x]; nid[x] = nid[y]; nid[y] = sv;
	sv = req[S(0, x)]; req[S(0, x)] = req[S(0, y)]; req[S(0, y)] = sv;
	sv = req[S(1, x)]; req[S(1, x)] = req[S(1, y)]; req[S(1, y)] = sv;
	swap_bit(ok[0], x, y);
	swap_bit(ok[1], x, y);
#if RECLAIM_GUARD
	swap_bit(quorum[0], x, y);
	swap_bit(quorum[1], x, y);
#endif
#if FENCE
	sv = fc[x]; fc[x] = fc[y]; fc[y] = sv;
#endif
#if QUEUE
	si = 0;
	do
	:: si < NC*NA -> sv = wq[QX(x, si)]; wq[QX(x, si)] = wq[QX(y, si)]; wq[QX(y, si)] = sv; si++
	:: else -> break
	od;
	sv = ev[S(0, x)]; ev[S(0, x)] = ev[S(0, y)]; ev[S(0, y)] = sv;
	sv = ev[S(1, x)]; ev[S(1, x)] = ev[S(1, y)]; ev[S(1, y)] = sv;
	key2[x] = key2[x] ^ key2[y]; key2[y] = key2[x] ^ key2[y]; key2[x] = key2[x] ^ key2[y];
#endif
	key[x] = key[x] ^ key[y]; key[y] = key[x] ^ key[y]; key[x] = key[x] ^ key[y]
}

#if CSYMM
/* The two clients are interchangeable too when they ask for the same mode
 * (and neither is special, as client 0 is in LIVE). Put first the client
 * with the smaller key, a summary that does not depend on the order of the
 * nodes; on a tie the order stays (a state may then be stored twice, which
 * costs time, not soundness). */
hidden int ck0, ck1;

inline client_key(c, k) {
	k = ((((phase[c]*(NA+1) + used[c])*(WINDOW+1) + pdl[c])*(WINDOW+1) + dl[c])*2 + round[c])*(NN+1) + no[c];
	k = k*(NN+1) + COUNT(ok[c]);
#if RECLAIM_GUARD
	k = k*(NN+1) + COUNT(quorum[c]);
#endif
	si = 0; sv = 0;
	do
	:: si < NN*NA -> sv = sv + rem[G(si / NA, c, si % NA)]; si++
	:: else -> break
	od;
	k = k*(NN*NA*VAL+1) + sv;
	si = 0; sv = 0;
	do
	:: si < NN -> sv = sv + req[S(c, si)]; si++
	:: else -> break
	od;
	k = k*(NN*5+1) + sv
}

#define SWAPB(a, b) sv = a; a = b; b = sv

inline swap_clients() {
	SWAPB(phase[0], phase[1]); SWAPB(used[0], used[1]); SWAPB(pdl[0], pdl[1]); SWAPB(dl[0], dl[1]);
	SWAPB(ok[0], ok[1]); SWAPB(no[0], no[1]); SWAPB(round[0], round[1]); SWAPB(cid[0], cid[1]);
#if RECLAIM_GUARD
	SWAPB(quorum[0], quorum[1]);
#endif
#if FENCE
	SWAPB(fst[0], fst[1]); SWAPB(ftok[0], ftok[1]);
#endif
	si = 0;
	do
	:: si < NN*NA -> SWAPB(rem[G(si / NA, 0, si % NA)], rem[G(si / NA, 1, si % NA)]); si++
	:: else -> break
	od;
	si = 0;
	do
	:: si < NN -> SWAPB(req[S(0, si)], req[S(1, si)]); si++
	:: else -> break
	od
}
#endif

inline sym_canon() {
#if CSYMM
	client_key(0, ck0);
	client_key(1, ck1);
	if
	:: ck1 < ck0 -> swap_clients()
	:: else
	fi;
#endif
	sp = 0;
	do
	:: sp < NN -> node_key(sp); sp++
	:: else -> break
	od;
	sp = 0;
	do
	:: sp + 1 < NN ->
		sq = 0;
		do
		:: sq + 1 + sp < NN ->
			if
			:: KEY_GT(sq, sq+1) -> swap_nodes(sq, sq+1)
			:: else
			fi;
			sq++
		:: else -> break
		od;
		sp++
	:: else -> break
	od;
	skip    /* a d_step must not end with a jump out of a loop */
}
#endif

#if QUEUE
/* Forget what can no longer matter, so that equal futures are one state:
 * the ticket of client 0's attempt a matters only while it is queued
 * somewhere or its Lock is in flight; a holder's late grant event matters
 * only if it adds a node to the nodes it may reclaim on. */
inline queue_canon() {
	qa = 0;
	do
	:: qa < NA ->
		qd = 0; qk = 0;
		do
		:: qk < NN ->
			if
			:: wq[G(qk, 0, qa)] > 0 || (qa == UID(0) && req[S(0, qk)] == LOCK) -> qd = 1
			:: else
			fi;
			qk++
		:: else -> break
		od;
		if
		:: qd == 0 -> n0[qa] = 0
		:: else
		fi;
		qa++
	:: else -> break
	od;
	qc = 0;
	do
	:: qc < NC ->
		if
		:: phase[qc] == HOLD ->
			qk = 0;
			do
			:: qk < NN ->
				if
#if RECLAIM_GUARD
				:: ev[S(qc, qk)] == GRANTED && (!fa[qc] || BIT(quorum[qc], qk)) -> ev[S(qc, qk)] = NONE
#else
				:: ev[S(qc, qk)] == GRANTED -> ev[S(qc, qk)] = NONE
#endif
				:: else
				fi;
				qk++
			:: else -> break
			od
		:: else
		fi;
		qc++
	:: else -> break
	od;
	skip
}
#endif

/* Every step ends here. */
inline canon() {
#if QUEUE
	queue_canon();
#endif
#if FENCE
	fence_shift();
#endif
#if SYMM
	sym_canon();
#endif
	skip
}

/* ------------------------------------------------------------- processes */

#if LIVE
#define START_OK(c) (phase[c] == IDLE && (c == 0 || used[c] < NA) && !backoff[c] FENCE_IDLE(c))
#define ROUND_OK(c) (phase[c] == HOLD && (c == 0 || rounds[c] < RMAX))
#else
#define START_OK(c) (phase[c] == IDLE && used[c] < NAC(c) FENCE_IDLE(c))
#define ROUND_OK(c) (phase[c] == HOLD)
#endif
#if FENCE
/* the two steps on the write quorum m, if m is one */
#define FENCE_ON(m) \
	:: d_step { phase[c] == HOLD && WRITER(c) && fst[c] == 0 && COUNT(m) == WQ && (m) < (1 << NN) -> fence_read(c, m); canon() } \
	:: d_step { fst[c] == 1 && COUNT(m) == WQ && (m) < (1 << NN) -> fence_raise(c, m); canon() }
#define FENCE_IDLE(c) && fst[c] != 1 && fst[c] != 2
#else
#define FENCE_IDLE(c)
#endif

proctype Client(byte c) {
	do
	/* a new attempt with a new UID (its token call, if any, has ended) */
	:: d_step { START_OK(c) -> start(c); canon() }
	/* an attempt times out; LIVE: only once it can no longer succeed */
	:: d_step { phase[c] == ACQ && (!LIVE || pdl[c] == 0) ->
		printf("client %d: attempt times out: gives up\n", CID(c)); give_up(c); canon() }
	/* a refresh round (it ends the one in flight, if any: its answers still
	 * to come are ignored) */
	:: d_step { ROUND_OK(c) -> start_round(c); canon() }
	/* release */
	:: d_step { phase[c] == HOLD -> printf("client %d: releases\n", CID(c)); stop(c); canon() }
#if FENCE
	/* a write holder's token: read, raise (also once its belief has ended:
	 * a paused holder does not know), check */
	FENCE_ON(3) FENCE_ON(5) FENCE_ON(6) FENCE_ON(7) FENCE_ON(9) FENCE_ON(10) FENCE_ON(11)
	FENCE_ON(12) FENCE_ON(13) FENCE_ON(14) FENCE_ON(15)
	:: d_step { fst[c] == 2 -> fence_check(c); canon() }
#endif
	od
}

#ifndef EARLY_DROP
#define EARLY_DROP 1    /* QUEUE: a node may end a wait before WAITT ticks */
#endif
#if QUEUE && EARLY_DROP
#define EARLY(x) :: d_step { (x) < NC*NA && wq[QX(j, x)] > 0 -> drop(j, x); serve(j); canon() }
#else
#define EARLY(x)
#endif

/* Node j and its links: it handles requests, its answers reach the clients,
 * it may crash, and messages on its links may be lost. */
proctype Node(byte j) {
	do
	:: d_step { req[S(0, j)] != NONE -> deliver(0, j); receive(0, j); canon() }
	:: d_step { req[S(1, j)] != NONE -> deliver(1, j); receive(1, j); canon() }
	/* the request is lost */
	:: d_step { losses < LOSSES && req[S(0, j)] != NONE ->
		printf("node %d: request from client %d lost\n", NID(j), CID(0)); losses++; req[S(0, j)] = NONE; canon() }
	:: d_step { losses < LOSSES && req[S(1, j)] != NONE ->
		printf("node %d: request from client %d lost\n", NID(j), CID(1)); losses++; req[S(1, j)] = NONE; canon() }
	/* the node handles the request, and its answer is lost */
	:: d_step { losses < LOSSES && req[S(0, j)] != NONE -> losses++; deliver(0, j);
		printf("node %d: its answer to client %d is lost\n", NID(j), CID(0)); canon() }
	:: d_step { losses < LOSSES && req[S(1, j)] != NONE -> losses++; deliver(1, j);
		printf("node %d: its answer to client %d is lost\n", NID(j), CID(1)); canon() }
	:: d_step { crashes < CRASHES -> crash(j); canon() }
#if QUEUE
	/* an event reaches the client, or is lost */
	:: d_step { ev[S(0, j)] != NONE -> receive_event(0, j); canon() }
	:: d_step { ev[S(1, j)] != NONE -> receive_event(1, j); canon() }
	:: d_step { losses < LOSSES && ev[S(0, j)] != NONE ->
		printf("node %d: its event to client %d is lost\n", NID(j), CID(0)); losses++; ev[S(0, j)] = NONE; canon() }
	:: d_step { losses < LOSSES && ev[S(1, j)] != NONE ->
		printf("node %d: its event to client %d is lost\n", NID(j), CID(1)); losses++; ev[S(1, j)] = NONE; canon() }
	/* a wait ends before WAITT ticks (a shorter Wait) */
	EARLY(0) EARLY(1) EARLY(2) EARLY(3)
#endif
	od
}

/* Real time. */
proctype Clock() {
	do
	:: d_step { QUIESCENT -> tick(); canon() }
	od
}

init {
	byte j;
	atomic {
#if MGL
		printf("modes (1 IS, 2 IX, 3 S, 4 SIX, 5 X): client 0 %d (quorum %d), client 1 %d (quorum %d)\n", MODE0, Q(0), MODE1, Q(1));
#endif
		run Clock();
		run Client(0);
		run Client(1);
		for (j : 0 .. NN-1) {
#if SYMM
			nid[j] = j;
#endif
#if CSYMM
			cid[0] = 0; cid[1] = 1;
#endif
			run Node(j)
		}
	}
}

#if LIVE
/* Progress: client 0, which asks again after every failed attempt, gets the
 * lock. */
ltl progress { <> (phase[0] == HOLD) }
#endif
