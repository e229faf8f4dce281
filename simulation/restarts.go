package simulation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/dsync"
)

// Scenarios of node restarts with the nodes' default grace period: a node
// that restarts grants only reclaims for one validity, and the holders'
// refreshers reclaim what it lost. No held lock may be lost, whatever number
// of nodes restart at once.

// restartAllWhileHeld restarts every node at once while c0 holds the write
// lock, until a second past the end of the nodes' grace, and lets c1 ask
// meanwhile.
func restartAllWhileHeld() Scenario {
	return Scenario{
		Name:   "restart-all-while-held",
		Faults: "every node restarts empty at once while a write lock is held; the nodes' default grace period",
		Expect: Safe,
		Explain: "the restarted nodes grant nothing new for one validity; the holder's refresher reclaims its grant on each, " +
			"so it keeps the lock (its context is never cancelled) and the second writer gets it only after the release",
		Drive: func(c *Cluster) (time.Duration, error) {
			h0, err := c.acquire(0, true)
			if err != nil {
				return 0, err
			}
			var releaseErr error
			held := c.spawn(func() {
				h0.cl.Section(h0, c.Cfg.Validity+time.Second)
				releaseErr = h0.Release()
			})
			c.Advance(100 * time.Millisecond)
			for k := range c.Cfg.Nodes {
				c.Net.RestartNode(k)
			}
			heal := c.Now()
			var h1 *Hold
			var err1 error
			asked := c.spawn(func() { h1, err1 = c.Client(1).Acquire(resource, true) })
			if err := c.await(held, 3*c.Cfg.Validity, "c0 section"); err != nil {
				return heal, err
			}
			if cause := context.Cause(h0.Ctx); errors.Is(cause, dsync.ErrLockLost) {
				return heal, fmt.Errorf("c0 lost its lock across the restart: %v", cause)
			}
			if releaseErr != nil {
				return heal, fmt.Errorf("c0's Unlock: %w", releaseErr)
			}
			released := c.Now()
			if err := c.await(asked, c.acquireLimit()+time.Minute, "c1 acquire"); err != nil {
				return heal, err
			}
			if err1 != nil {
				return heal, fmt.Errorf("c1 acquire: %w", err1)
			}
			if wait := c.Now() - released; wait > c.Cfg.Validity {
				return heal, fmt.Errorf("c1 got the lock %v after c0 released it, more than a validity", wait)
			}
			return heal, c.await(c.useAndRelease(h1, c.Cfg.Hold), time.Minute, "c1 section")
		},
	}
}

// rollingRestart restarts the nodes one after another, each half a validity
// after the one before, while every client runs the register workload.
func rollingRestart() Scenario {
	return Scenario{
		Name:    "rolling-restart",
		Faults:  "each node restarts empty in turn, half a validity apart, under the register workload; the default grace period",
		Expect:  Safe,
		Explain: "a restarted node grants only reclaims during its grace, so a lock held across the restarts is kept and never granted twice; new locks wait while too many nodes are in their grace",
		Setup: func(cfg *Config) {
			cfg.Hold = max(cfg.Hold, 500*time.Millisecond)
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			var faults []Fault
			at := 300 * time.Millisecond
			for k := range c.Cfg.Nodes {
				faults = append(faults, Fault{At: at, Name: fmt.Sprintf("restart n%d", k), Do: func(c *Cluster) { c.Net.RestartNode(k) }})
				at += c.Cfg.Validity / 2
			}
			heal := faults[len(faults)-1].At
			if !c.RunWorkload(faults) {
				return heal, fmt.Errorf("workload did not finish")
			}
			return heal, nil
		},
	}
}
