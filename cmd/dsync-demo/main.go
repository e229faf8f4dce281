// Command dsync-demo starts a cluster of lock nodes on loopback and lets
// several client processes contend for one lock, so you can watch them take
// turns, see a node crash without anyone noticing, and check that no update
// of the shared value was lost.
//
//	go run ./cmd/dsync-demo -nodes 5 -clients 4 -rounds 5
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
)

type config struct {
	nodes, clients, rounds, crash int
	hold                          time.Duration
}

func main() {
	var cfg config
	flag.IntVar(&cfg.nodes, "nodes", 5, "lock nodes to start on loopback")
	flag.IntVar(&cfg.clients, "clients", 4, "client processes contending for the lock")
	flag.IntVar(&cfg.rounds, "rounds", 5, "times each client takes the lock")
	flag.IntVar(&cfg.crash, "crash", -1, "nodes to crash halfway (default: as many as a write quorum tolerates, n-W)")
	flag.DurationVar(&cfg.hold, "hold", 20*time.Millisecond, "how long a client works under the lock")
	flag.Parse()
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dsync-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.nodes < 1 || cfg.clients < 1 || cfg.rounds < 1 {
		return errors.New("-nodes, -clients and -rounds must be at least 1")
	}
	c, err := cluster.Start(cluster.Config{Nodes: cfg.nodes})
	if err != nil {
		return err
	}
	defer c.Close()
	w := cfg.nodes/2 + 1
	if cfg.crash < 0 {
		cfg.crash = cfg.nodes - w
	}
	start := time.Now()
	var printMu sync.Mutex
	say := func(format string, a ...any) {
		printMu.Lock()
		defer printMu.Unlock()
		fmt.Fprintf(out, "%7.1fms  %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, a...))
	}
	say("started %d nodes on loopback: %v", cfg.nodes, c.Endpoints())
	say("write quorum %d of %d, read quorum %d: a write lock survives %d crashed nodes", w, cfg.nodes, (cfg.nodes+1)/2, cfg.nodes-w)

	var procs []*dsync.Dsync
	for range cfg.clients {
		ls, err := c.Lockers()
		if err != nil {
			return err
		}
		defer func() {
			for _, l := range ls {
				l.Close()
			}
		}()
		ds, err := dsync.New(ls, dsync.Config{RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond})
		if err != nil {
			return err
		}
		defer ds.Close()
		procs = append(procs, ds)
	}

	var (
		value    int // the shared value: changed only under the write lock
		inside   atomic.Int32
		overlaps atomic.Int32
		done     atomic.Int32
		crashed  sync.Once
		wg       sync.WaitGroup
		errs     = make(chan error, cfg.clients)
	)
	total := cfg.clients * cfg.rounds
	for i, ds := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := dsync.NewDRWMutex(ds, "bucket/object")
			for round := 1; round <= cfg.rounds; round++ {
				asked := time.Now()
				lockCtx, err := m.GetLock(ctx, dsync.Options{Timeout: 30 * time.Second})
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				v := value
				say("client %d holds the lock (waited %v, round %d): value %d -> %d", i, time.Since(asked).Round(time.Millisecond), round, v, v+1)
				select { // work under the lock, stopping if it is lost
				case <-time.After(cfg.hold):
				case <-lockCtx.Done():
					say("client %d lost the lock: %v", i, context.Cause(lockCtx))
				}
				value = v + 1
				inside.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					say("client %d unlock: %v", i, err)
				}
				if int(done.Add(1)) == total/2 && cfg.crash > 0 {
					crashed.Do(func() {
						for n := range cfg.crash {
							c.Stop(n)
						}
						say("crashed %d of %d nodes: the others still form a write quorum", cfg.crash, cfg.nodes)
					})
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	say("done: value %d after %d locked increments, %d overlapping holders", value, total, overlaps.Load())
	if value != total || overlaps.Load() != 0 {
		return fmt.Errorf("mutual exclusion violated: value %d, want %d; %d overlaps", value, total, overlaps.Load())
	}
	fmt.Fprintln(out, "OK: every client took its turns and no update was lost.")
	return nil
}
