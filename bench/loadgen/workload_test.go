package loadgen

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapTarget is an in-process lock service with try-lock semantics: a lock
// on a held resource fails at once. It lets the workload logic be tested
// without a quorum client.
type mapTarget struct {
	mu   sync.Mutex
	held map[string]bool
}

var errHeld = errors.New("held")

func (t *mapTarget) Name() string                 { return "map" }
func (t *mapTarget) NewSession() (Session, error) { return &mapSession{t: t}, nil }

type mapSession struct {
	t    *mapTarget
	name string
}

func (s *mapSession) Lock(ctx context.Context, name string, write bool, timeout time.Duration) error {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if s.t.held[name] {
		return errHeld
	}
	s.t.held[name] = true
	s.name = name
	return nil
}

func (s *mapSession) Unlock(ctx context.Context) error {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	delete(s.t.held, s.name)
	return nil
}

func TestRunCountsPairsAndErrors(t *testing.T) {
	target := &mapTarget{held: map[string]bool{}}
	w := Workload{Concurrency: 4, Duration: 50 * time.Millisecond, Contention: 0.5, Hot: 1, Hold: 3}
	var progress bytes.Buffer
	r, err := Run(context.Background(), target, w, &progress)
	require.NoError(t, err)
	assert.NotZero(t, r.Pairs, "pairs %d, latencies %d", r.Pairs, r.Latency.Count())
	assert.Equal(t, r.Pairs, r.Latency.Count(), "pairs %d, latencies %d", r.Pairs, r.Latency.Count())
	assert.Positive(t, r.LocksPerSec, "locks/s %v over %v", r.LocksPerSec, r.Elapsed)
	assert.Positive(t, r.Elapsed, "locks/s %v over %v", r.LocksPerSec, r.Elapsed)
	if r.LockErrors > 0 {
		assert.Contains(t, r.FirstError, "held", "%d lock errors", r.LockErrors)
	}
	assert.Equal(t, -1.0, r.WireBytesPerLock, "a target without counters reported wire bytes")
	assert.Equal(t, -1.0, r.RefreshPerNodePerInterval, "a target without counters reported refreshes")
	assert.Empty(t, target.held, "left held after the run")
	var out bytes.Buffer
	assert.NoError(t, WriteTable(&out, []*Result{r}), "table")
	assert.Contains(t, out.String(), "map", "table")
	out.Reset()
	assert.NoError(t, WriteCSV(&out, []*Result{r}), "csv")
	assert.Equal(t, 2, strings.Count(out.String(), "\n"), "csv:\n%s", out.String())
}

func TestRunRejectsBadWorkload(t *testing.T) {
	for _, w := range []Workload{{Contention: 2}, {Read: -1}, {Concurrency: -1}} {
		_, err := Run(context.Background(), &mapTarget{held: map[string]bool{}}, w, nil)
		assert.Error(t, err, "Run(%+v) accepted", w)
	}
}

func TestCDFCSV(t *testing.T) {
	var results []*Result
	for _, n := range []int{1, 4} {
		r := &Result{Target: "x", Nodes: n, LocksPerSec: float64(1000 * n)}
		for i := 1; i < 100; i++ {
			r.Latency.Record(time.Duration(i*n) * time.Microsecond)
		}
		results = append(results, r)
	}
	var b bytes.Buffer
	require.NoError(t, WriteCDFCSV(&b, results))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	assert.Equal(t, "target,nodes,concurrency,contention,latency_us,fraction", lines[0])
	require.Greater(t, len(lines), 10)
	assert.True(t, strings.HasPrefix(lines[1], "x,1,0,0,"), "first point %q", lines[1])
	assert.True(t, strings.HasSuffix(lines[len(lines)-1], ",1"), "last point %q is not the whole distribution", lines[len(lines)-1])
	assert.NotContains(t, b.String(), "NaN")
}
