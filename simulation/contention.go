package simulation

import (
	"fmt"
	"time"
)

// ContentionClients and ContentionResources shape the contention scenario:
// many clients on few resources, so that most acquisitions wait in the
// nodes' queues (dsync.Config.MaxWait) while faults strike.
const (
	ContentionClients   = 12
	ContentionResources = 2
)

// Contention returns the scenario of the random faults within b, with
// stops as random-clocks has them, over a workload of ContentionClients
// clients on ContentionResources resources that wait on the nodes' queues.
// Waiters are crashed, paused, stopped and cut off while they wait, and the
// nodes that queue them crash and restart (losing their queues) or are
// stopped.
//
// What it checks: mutual exclusion and the register, as random does; and
// progress, with the liveness check: once faults stop, every live client's
// acquisition, and then every live client's probe of each resource (all of
// them at once), is served within LivenessBound. The bound counts stale
// state up to a validity: a waiter that crashed, stopped polling or was cut
// off leaves every queue within its own wait, which the node caps at its
// validity, and a grant handed to a waiter that never collects it expires
// like any grant.
func Contention(b Budget) Scenario {
	s := Random(b)
	s.Name = "contention"
	s.Faults = fmt.Sprintf("as random, with %d stops (a client up to Validity/2, a node up to 2×Validity), "+
		"%d clients on %d resources that wait on the nodes' queues", contentionStops, ContentionClients, ContentionResources)
	s.Explain = "every holder keeps a quorum or is told before another is granted, as in random; a waiter that " +
		"crashes, stops or is cut off leaves the queues within its wait (at most a validity on the nodes), a node " +
		"that restarts loses its queue and nothing else, so once faults stop every live client is served within the bound"
	s.SimulatedOnly = true
	s.budget = func(_ Config, b Budget) Budget {
		if b.Stops == 0 {
			b.Stops = contentionStops
		}
		return b
	}
	random := s.Setup
	s.Setup = func(cfg *Config) {
		random(cfg)
		atLeast(&cfg.Clients, ContentionClients)
		cfg.Resources = ContentionResources
		if cfg.Think == 0 {
			cfg.Think = time.Millisecond // back at once: the queues stay long
		}
	}
	s.Drive = func(c *Cluster) (time.Duration, error) {
		faults, heal := RandomFaults(c.Cfg, s.budget(c.Cfg, b))
		if !c.RunWorkload(faults) {
			return heal, fmt.Errorf("workload did not finish")
		}
		return heal, nil
	}
	return s
}

// contentionStops is how many stops the contention scenario draws.
const contentionStops = 6
