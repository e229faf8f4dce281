package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dsync-go/dsync/simulation"
)

// Runs on virtual time go to worker processes: the command starts -parallel
// copies of itself, each with workerEnv set to "k/n" and the command's own
// arguments, and each runs its share of the seeds one at a time on one P
// (GOMAXPROCS=1), every run in a bubble of its own, and writes each result
// as a line of JSON. On one P the goroutines of a run that are runnable at
// the same virtual instant take turns in an order that depends on the run
// alone; on more they race, and a seed would not name one history. One
// process per core keeps the cores busy all the same.
const workerEnv = "DSYNC_SIM_WORKER"

// workerResult is one line of a worker's output.
type workerResult struct {
	Scenario int // index in the scenario list
	Run      int // index of the seed, from 0
	Result   *simulation.Result
	Err      string // Result.Err, which JSON does not carry
}

// parseWorker parses workerEnv's value "k/n".
func parseWorker(spec string) (k, n int, err error) {
	a, b, ok := strings.Cut(spec, "/")
	if ok {
		k, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("dsync-sim: %s=%q, want k/n with 0 <= k < n", workerEnv, spec)
	}
	return k, n, nil
}

// runWorker runs, one after the other, run i of every scenario of list for
// every i with i%n == k, each in a bubble hanging from t, and writes their
// results on w.
func runWorker(t *testing.T, k, n int, list []simulation.Scenario, o options, w io.Writer) int {
	start := time.Now()
	out := bufio.NewWriter(w)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for si, s := range list {
		for i := k; i < o.seeds; i += n {
			if o.duration > 0 && time.Since(start) > o.duration {
				return 0
			}
			cfg := simulation.Config{Seed: o.seed + uint64(i), Nodes: o.nodes, Clients: o.clients, Ops: o.ops, ClockDrift: o.drift}
			var r *simulation.Result
			synctest.Test(t, func(*testing.T) {
				cfg.Quiesce = synctest.Wait
				r = simulation.Run(s, cfg)
			})
			trim(r)
			line := workerResult{Scenario: si, Run: i, Result: r}
			if r.Err != nil {
				line.Err = r.Err.Error()
				r.Err = nil
			}
			if err := enc.Encode(line); err != nil {
				fmt.Fprintf(os.Stderr, "dsync-sim: worker %d/%d: %v\n", k, n, err)
				return 1
			}
			out.Flush() // the parent shows progress as results come
		}
	}
	return 0
}

// runInWorkers runs the seeds of every scenario of list in o.parallel
// worker processes started with args, and returns the results per
// scenario in seed order, showing progress on progress.
func runInWorkers(args []string, list []simulation.Scenario, o options, start time.Time, stderr io.Writer, prog *progress) ([][]*simulation.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("dsync-sim: cannot start workers: %w", err)
	}
	n := max(min(o.parallel, o.seeds), 1)
	results := make([][]*simulation.Result, len(list))
	for i := range results {
		results[i] = make([]*simulation.Result, o.seeds)
	}
	progress := &lockedWriter{w: stderr} // the workers' stderr goes there too
	prog.w = progress
	var mu sync.Mutex // guards results, done and bad
	done, bad := make([]int, len(list)), make([]int, len(list))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for k := range n {
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d/%d", workerEnv, k, n), "GOMAXPROCS=1")
		cmd.Stderr = progress
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("dsync-sim: cannot start worker %d: %w", k, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := json.NewDecoder(stdout)
			for {
				var line workerResult
				if err := dec.Decode(&line); err != nil {
					if err != io.EOF {
						errs[k] = fmt.Errorf("dsync-sim: worker %d/%d: %w", k, n, err)
						io.Copy(io.Discard, stdout)
					}
					break
				}
				if line.Err != "" {
					line.Result.Err = errors.New(line.Err)
				}
				mu.Lock()
				s := line.Scenario
				results[s][line.Run] = line.Result
				done[s]++
				if len(line.Result.Unexpected()) > 0 {
					bad[s]++
				}
				prog.show(list[s].Name, done[s], o.seeds, bad[s], start)
				mu.Unlock()
			}
			if err := cmd.Wait(); err != nil && errs[k] == nil {
				errs[k] = fmt.Errorf("dsync-sim: worker %d/%d: %w", k, n, err)
			}
		}()
	}
	wg.Wait()
	for i := range results {
		results[i] = dropMissing(results[i])
	}
	return results, errors.Join(errs...)
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// worker runs the command as worker spec ("k/n") with args.
func worker(spec string, args []string, stdout, stderr io.Writer, withT func(func(*testing.T)) bool) int {
	k, n, err := parseWorker(spec)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	o, list, _, code := parse(args, stderr)
	if list == nil {
		return code
	}
	runtime.GOMAXPROCS(1)
	code = 1
	withT(func(t *testing.T) { code = runWorker(t, k, n, list, o, stdout) })
	return code
}
