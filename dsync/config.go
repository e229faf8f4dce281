package dsync

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/refresher"
)

// Defaults for the zero values of Config.
const (
	DefaultRefreshInterval    = refresher.DefaultInterval // 10s
	DefaultCallTimeout        = time.Second
	DefaultMinCallTimeout     = 100 * time.Millisecond
	DefaultRefreshCallTimeout = refresher.DefaultCallTimeout // 5s
	DefaultUnlockRetryFor     = 30 * time.Second
	DefaultRetryMin           = 250 * time.Millisecond
	DefaultRetryMax           = 5 * time.Second
	DefaultMaxWait            = 2 * time.Second
)

// Config configures a Dsync. The zero value of every field is a documented
// default; New validates the whole once.
type Config struct {
	// RefreshInterval is the longest time between two refreshes of the
	// locks held. The refresher refreshes more often when the nodes'
	// validity needs it: at least three times per validity. If zero,
	// DefaultRefreshInterval. If Validity is set, it must be shorter.
	RefreshInterval time.Duration

	// Validity, if set, caps how long a holder relies on a grant: its
	// deadline is never later than Validity (less a 2% margin for clock
	// rates) after the request that last reached a quorum was sent. The
	// nodes' own validity, which every grant and refresh answer carries,
	// always applies: a holder treats its lock as lost before the smallest
	// validity among a quorum of its nodes has passed, whatever this says.
	// So a Validity set too long, or nodes reconfigured, never makes two
	// holders. If zero, the nodes' word alone.
	Validity time.Duration

	// CallTimeout bounds one lock or unlock call to one node. It is also how
	// long Unlock waits for the nodes before leaving the rest to background
	// retries. If zero, DefaultCallTimeout.
	CallTimeout time.Duration

	// MinCallTimeout is the least a lock call to one node is given. Each
	// node's lock calls are bounded by its retransmission timeout, computed
	// from measured round trips as TCP does and kept between MinCallTimeout
	// and CallTimeout (see rtt.go), so that a node that stops answering
	// does not hold up a failing attempt for CallTimeout. If zero,
	// DefaultMinCallTimeout. If negative, or not less than CallTimeout,
	// every call gets CallTimeout.
	MinCallTimeout time.Duration

	// RefreshCallTimeout bounds one node's refresh call. If zero, the
	// smaller of DefaultRefreshCallTimeout and RefreshInterval.
	RefreshCallTimeout time.Duration

	// UnlockRetryFor is how long releases that did not reach a node are
	// retried in the background. If zero, DefaultUnlockRetryFor.
	UnlockRetryFor time.Duration

	// RetryMin and RetryMax bound the wait between attempts to acquire a
	// contended lock. The n-th wait is drawn uniformly from [cap/2, cap),
	// where cap grows from RetryMin by RetryMin/2 per attempt up to
	// RetryMax, so that contending clients spread out instead of storming
	// the nodes. If zero, DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration

	// MaxWait bounds how long one attempt of a contended acquisition waits
	// in the nodes' queues (locker.LockArgs.Wait) before it asks again. An
	// acquisition that finds its lock held waits in the queues for as long
	// as its timeout allows, one MaxWait at a time, and is handed the lock
	// when its turn comes (see waiting.go); it is also capped at a third of
	// the nodes' validity. If zero, DefaultMaxWait. If negative,
	// acquisitions do not wait on the nodes: they back off between
	// attempts (RetryMin, RetryMax), as they do anyway against nodes that
	// cannot queue.
	MaxWait time.Duration

	// Owner names this process on the nodes, for listings and force-unlock.
	// If empty, "hostname:pid".
	Owner string

	// Clock is the source of time for every timer and timeout of the client
	// and its refresher. If nil, clock.Real().
	Clock clock.Clock

	// Rand, if set, draws the retry jitter. The simulation seeds it for
	// replay; it is used under a lock. If nil, math/rand/v2's global source.
	Rand *rand.Rand

	// UIDSource, if set, gives the 16 bytes of every acquisition's UID
	// (Read of 16 bytes), instead of a cryptographically strong source; it
	// must be safe for concurrent use, and never fail (a failed read
	// panics: two locks with one UID would share their grants). The simulation sets it, seeded, so
	// that a seed replays with the same UIDs. A UID is a capability
	// (whoever knows it may refresh and release the lock): anywhere else,
	// leave it nil.
	UIDSource io.Reader

	// Observer, if set, hears of every acquisition, lost lock and refresh
	// round, for metrics (see Observer; package dsyncprom has one for
	// Prometheus). If nil, nothing is told.
	Observer Observer

	// Logger receives what an operator must hear of: nodes that disagree
	// on their validity, locks lost. Nothing is logged on the path of an
	// acquisition that goes well. If nil, slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.MinCallTimeout == 0 {
		c.MinCallTimeout = DefaultMinCallTimeout
	}
	if c.RefreshCallTimeout == 0 {
		c.RefreshCallTimeout = min(DefaultRefreshCallTimeout, c.RefreshInterval)
	}
	if c.UnlockRetryFor == 0 {
		c.UnlockRetryFor = DefaultUnlockRetryFor
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate checks c after defaults are applied.
func (c Config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RefreshInterval", c.RefreshInterval}, {"Validity", c.Validity}, {"CallTimeout", c.CallTimeout},
		{"RefreshCallTimeout", c.RefreshCallTimeout}, {"UnlockRetryFor", c.UnlockRetryFor},
		{"RetryMin", c.RetryMin}, {"RetryMax", c.RetryMax},
	} {
		if d.v < 0 {
			return fmt.Errorf("dsync: Config.%s %v is negative", d.name, d.v)
		}
	}
	if c.Validity > 0 && c.RefreshInterval >= c.Validity {
		return fmt.Errorf("dsync: Config.RefreshInterval %v must be shorter than Config.Validity %v", c.RefreshInterval, c.Validity)
	}
	if c.RetryMax < c.RetryMin {
		return fmt.Errorf("dsync: Config.RetryMax %v is below Config.RetryMin %v", c.RetryMax, c.RetryMin)
	}
	return nil
}
