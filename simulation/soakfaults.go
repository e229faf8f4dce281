package simulation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// The soak's fault schedule. It cycles through the kinds of fault of
// SoakConfig.Faults (all four by default), each on f nodes drawn from the
// seed, f drawn in [1, n−W] (one node of 3, one or two of 5), and on
// clients drawn from the seed:
//
//   - kill: the nodes crash (their tables are lost, their connections
//     reset) and restart Outage later, empty, on new ports, in the
//     library's default grace period of one Validity, in which they grant
//     only the holders' reclaims;
//   - isolate: every client's links to the nodes are cut both ways
//     (blackholed: calls time out) for Outage;
//   - partition: the links of some clients (a non-empty proper subset) to
//     the nodes are cut both ways for Outage;
//   - cut-replies: the nodes' replies to some or all clients are lost for
//     Outage, while their requests arrive: the nodes grant what nobody
//     hears of, and the clients must release what they abandoned.
//
// Then everything heals (a killed node's fault ends with its grace
// period), and FaultGap passes before the next fault. The first fault
// comes Settle after the start.
//
// Why this schedule: it stays within what the design promises to survive
// (README.md, Guarantees), so that anything the checks find is a bug. At
// most n−W nodes are faulty at once, and a fault counts until its effects
// are gone: a killed node until the end of its grace period (until then it
// grants nothing new, so new locks need every other node); a cut node until
// well after the heal, which is what the gap's least length,
// Validity + LongHold + 2s, is for. It keeps two faults out of one long
// hold. A lock granted during a fault, or while a node still holds a grant
// that a cut left behind (it expires within a Validity), may be granted by
// exactly W nodes, and then one more fault of one of those nodes loses it:
// not a violation (its holder is told in time), but not what a long
// holder, which checks that its locks are never lost, may meet. With the
// gap, a hold that starts within a Validity after a heal ends, LongHold
// later, before the next fault; the 2 s cover the rest clients' probe of a
// node they found offline (every second) and a loaded machine. A long hold
// that spans one fault keeps its lock: it was granted by every node, so
// the others still hold it, and a killed node takes its reclaim in its
// grace. The default gap is longer (Settle + 10s), for settled samples.
const (
	soakKill       = "kill"
	soakIsolate    = "isolate"
	soakPartition  = "partition"
	soakCutReplies = "cut-replies"
)

// SoakFaultKinds are the kinds of fault of the soak's schedule, in the
// order it cycles through them by default.
var SoakFaultKinds = []string{soakKill, soakIsolate, soakPartition, soakCutReplies}

// injectFaults runs the fault schedule until ctx ends, then heals
// everything: restarts the nodes it killed and restores every link.
func (s *Soak) injectFaults(ctx context.Context) {
	n := s.cfg.Nodes
	tolerated := n - (n/2 + 1) // n − W
	if tolerated < 1 {
		s.setFault("", "") // no fault is within the design's tolerance: the schedule is empty
		return
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0xfa17))
	for i := 0; ; i++ {
		gap := s.cfg.FaultGap
		if i == 0 {
			gap = s.cfg.Settle // nothing to keep apart yet; settled samples first
		}
		sleepCtx(ctx, gap)
		if ctx.Err() != nil {
			return
		}
		kind := s.cfg.Faults[i%len(s.cfg.Faults)]
		nodes := rng.Perm(n)[:1+rng.IntN(tolerated)]
		var clients []int
		switch kind {
		case soakPartition:
			clients = someClients(rng, s.cfg.Clients, true)
		case soakCutReplies:
			clients = someClients(rng, s.cfg.Clients, false)
		}
		s.setFault(kind, describeFault(kind, nodes, clients))
		for _, k := range nodes {
			switch kind {
			case soakKill:
				s.net.CrashNode(k)
			case soakIsolate:
				s.net.Isolate(k)
			case soakPartition:
				for _, c := range clients {
					s.net.Cut(c, k, Both)
				}
			case soakCutReplies:
				for _, c := range clients {
					s.net.Cut(c, k, FromNode)
				}
			}
		}
		sleepCtx(ctx, s.cfg.Outage)
		if kind == soakKill {
			for _, k := range nodes {
				s.net.RestartNode(k)
			}
			if ctx.Err() == nil {
				s.setFault("", describeFault("grace", nodes, nil))
				sleepCtx(ctx, s.cfg.Validity) // the restarted nodes' grace period
			}
		} else {
			s.net.Heal()
		}
		s.setFault("", "")
		if ctx.Err() != nil {
			return
		}
	}
}

// setFault records the fault under way (now, "" if none, and then when the
// last one ended) and counts one of kind, unless kind is "".
func (s *Soak) setFault(kind, now string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if now == "" && s.faultNow != "" {
		s.lastFault, s.faultEnded = s.faultNow, time.Now()
	}
	s.faultNow = now
	if kind != "" {
		s.faults[kind]++
	}
}

// settled reports whether no fault is under way and none ended within
// Settle, and names the fault under way.
func (s *Soak) settled() (bool, string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faultNow == "" && (s.faultEnded.IsZero() || time.Since(s.faultEnded) >= s.cfg.Settle), s.faultNow
}

// someClients draws a non-empty set of the clients, sorted: a proper
// subset if proper and there is more than one client.
func someClients(rng *rand.Rand, clients int, proper bool) []int {
	most := clients
	if proper && clients > 1 {
		most = clients - 1
	}
	picked := rng.Perm(clients)[:1+rng.IntN(most)]
	out := make([]int, 0, len(picked))
	for c := range clients {
		for _, p := range picked {
			if p == c {
				out = append(out, c)
			}
		}
	}
	return out
}

// describeFault names a fault for the samples: "kill n1", "partition n0
// from c1,c3".
func describeFault(kind string, nodes, clients []int) string {
	name := func(prefix string, ids []int) string {
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s%d", prefix, id)
		}
		return strings.Join(parts, ",")
	}
	switch kind {
	case soakPartition:
		return fmt.Sprintf("partition %s from %s", name("n", nodes), name("c", clients))
	case soakCutReplies:
		return fmt.Sprintf("cut-replies %s to %s", name("n", nodes), name("c", clients))
	}
	return fmt.Sprintf("%s %s", kind, name("n", nodes))
}
