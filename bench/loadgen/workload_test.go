package loadgen

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
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
	if err != nil {
		t.Fatal(err)
	}
	if r.Pairs == 0 || r.Latency.Count() != r.Pairs {
		t.Errorf("pairs %d, latencies %d", r.Pairs, r.Latency.Count())
	}
	if r.LocksPerSec <= 0 || r.Elapsed <= 0 {
		t.Errorf("locks/s %v over %v", r.LocksPerSec, r.Elapsed)
	}
	if r.LockErrors > 0 && !strings.Contains(r.FirstError, "held") {
		t.Errorf("%d lock errors, first %q", r.LockErrors, r.FirstError)
	}
	if r.WireBytesPerLock != -1 || r.RefreshPerNodePerInterval != -1 {
		t.Errorf("a target without counters reported wire %v refresh %v", r.WireBytesPerLock, r.RefreshPerNodePerInterval)
	}
	if len(target.held) != 0 {
		t.Errorf("left held after the run: %v", target.held)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, []*Result{r}); err != nil || !strings.Contains(out.String(), "map") {
		t.Errorf("table: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := WriteCSV(&out, []*Result{r}); err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("csv: %v\n%s", err, out.String())
	}
}

func TestRunRejectsBadWorkload(t *testing.T) {
	for _, w := range []Workload{{Contention: 2}, {Read: -1}, {Concurrency: -1}} {
		if _, err := Run(context.Background(), &mapTarget{held: map[string]bool{}}, w, nil); err == nil {
			t.Errorf("Run(%+v) accepted", w)
		}
	}
}

func TestChartsAreSVG(t *testing.T) {
	var results []*Result
	for _, n := range []int{1, 4, 16} {
		r := &Result{Target: "x", Nodes: n, LocksPerSec: float64(1000 * n)}
		for i := 1; i < 100; i++ {
			r.Latency.Record(time.Duration(i*n) * time.Microsecond)
		}
		results = append(results, r)
	}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"throughput": func(b *bytes.Buffer) error { return WriteThroughputChart(b, results) },
		"latency":    func(b *bytes.Buffer) error { return WriteLatencyChart(b, results) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		s := b.String()
		if !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(s, "</svg>\n") || strings.Contains(s, "NaN") {
			t.Errorf("%s chart is not a sane SVG:\n%s", name, s)
		}
	}
}
