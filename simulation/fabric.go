package simulation

import (
	"time"

	"github.com/dsync-go/dsync/locker"
)

// Fabric joins a cluster's clients to its nodes and injects its faults.
// *Network is the in-process fabric on virtual time; *HTTPNetwork carries the
// same calls over the rest transport on loopback, through a fault-injecting
// TCP proxy per link, on the real clock. Clients and nodes are numbered from
// 0; c or k of -1 means all where a method says so. All methods are safe for
// concurrent use.
type Fabric interface {
	// Lockers returns client c's lockers, one per node in node order.
	Lockers(c int) []locker.NetLocker

	// Cut loses every message from now on in direction dir of the link
	// between client c and node k (-1: all) until Heal.
	Cut(c, k int, dir Direction)
	// Isolate cuts node k off from every client, both ways.
	Isolate(k int)
	// SetDrop loses messages on the link with probability p.
	SetDrop(c, k int, dir Direction, p float64)
	// SetDelay delays messages on the link by fixed plus up to jitter.
	SetDelay(c, k int, dir Direction, fixed, jitter time.Duration)
	// Heal restores every link; it does not restart nodes or resume clients.
	Heal()

	// CrashNode stops node k; its table is lost.
	CrashNode(k int)
	// RestartNode starts node k again with an empty table (crashing it first
	// if it is up).
	RestartNode(k int)
	// NodeUp reports whether node k runs.
	NodeUp(k int) bool

	// PauseClient freezes client c's traffic, and its workload at its next
	// WaitResumed, until ResumeClient; its timers run on. (A stop of the
	// whole process, timers included, is Cluster.StopClient, in the
	// simulated tier only.)
	PauseClient(c int)
	// ResumeClient ends a pause.
	ResumeClient(c int)
	// WaitResumed blocks while client c is paused (or, on the in-process
	// Network, stopped).
	WaitResumed(c int)
	// CrashClient kills client c's traffic for good.
	CrashClient(c int)

	// Close stops everything and makes every waiting call return.
	Close()
}

var _ Fabric = (*Network)(nil)
