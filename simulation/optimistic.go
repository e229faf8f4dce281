package simulation

import (
	"time"

	"github.com/dsync-go/dsync/clock"
)

// optimisticRead is one optimistic read of the register workload
// (Config.Optimistic): it reads a version of resource (DRWMutex.ReadVersion),
// reads the register, holds for d of virtual time, reads the register again,
// and validates the version. The register records both reads and the
// outcome; CheckRegister counts a validated read during which the register
// changed as a violation.
func (cl *Client) optimisticRead(resource string, d time.Duration) {
	c := cl.c
	m := cl.mutex(resource)
	v, err := m.ReadVersion(cl.ctx)
	if err != nil {
		return
	}
	sec := c.Register.EnterOptimistic(cl.ID, resource)
	clock.Sleep(cl.ctx, cl.clk, d)
	c.Net.WaitResumed(cl.ID)
	c.Register.ReadAgain(sec)
	ok, err := m.Validate(cl.ctx, v)
	c.Register.Validated(sec, ok && err == nil)
}
