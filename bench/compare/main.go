// Command compare runs one workload through our quorum client, through
// Redlock (redsync) and through etcd's concurrency.Mutex, one after the
// other in the same run, and prints one table. run.sh starts the redis and
// etcd servers it needs on loopback and stops them afterwards.
//
//	go run . -redis 127.0.0.1:7001,...,127.0.0.1:7005 -etcd http://127.0.0.1:2379,...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
)

func main() {
	var (
		targets     = flag.String("targets", "dsync,redlock,etcd", "which to run, in order: dsync, redlock, etcd")
		nodes       = flag.Int("nodes", 4, "dsync: lock servers")
		transport   = flag.String("transport", loadgen.TransportHTTP, "dsync: local or http")
		secret      = flag.String("secret", "", "dsync: shared secret (default: a fixed benchmark secret)")
		insecure    = flag.Bool("insecure", false, "dsync: no authentication")
		refresh     = flag.Duration("refresh", 0, "dsync: refresh interval (0 = dsync's default, 10s)")
		redisAddrs  = flag.String("redis", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003,127.0.0.1:7004,127.0.0.1:7005", "redlock: redis servers")
		etcdAddrs   = flag.String("etcd", "http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379", "etcd: client endpoints")
		concurrency = flag.Int("concurrency", 256, "concurrent lockers")
		duration    = flag.Duration("duration", 10*time.Second, "how long each target runs")
		contention  = flag.Float64("contention", 0, "fraction of operations on the hot set")
		hot         = flag.Int("hot", 16, "size of the hot set")
		timeout     = flag.Duration("timeout", 5*time.Second, "bound on one acquire")
		section     = flag.Duration("section", 0, "how long each lock is held before it is released (0: at once)")
		csvFile     = flag.String("csv", "", "also write the results as CSV to this file")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	w := loadgen.Workload{Concurrency: *concurrency, Duration: *duration, Contention: *contention, Hot: *hot, Timeout: *timeout, Section: *section}
	var results []*loadgen.Result
	for _, name := range strings.Split(*targets, ",") {
		r, err := runOne(ctx, name, w, *nodes, *transport, *secret, *insecure, *refresh, split(*redisAddrs), split(*etcdAddrs))
		if err != nil {
			fmt.Fprintf(os.Stderr, "compare: %s: %v\n", name, err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	fmt.Println()
	loadgen.WriteTable(os.Stdout, results)
	if len(results) > 1 {
		fmt.Println()
		for _, r := range results[1:] {
			if r.LocksPerSec > 0 {
				fmt.Printf("%s / %s throughput: %.1fx\n", results[0].Target, r.Target, results[0].LocksPerSec/r.LocksPerSec)
			}
		}
	}
	if *csvFile != "" {
		f, err := os.Create(*csvFile)
		if err == nil {
			err = loadgen.WriteCSV(f, results)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "compare: %v\n", err)
			os.Exit(1)
		}
	}
}

type closingTarget interface {
	loadgen.Target
	Close() error
}

func runOne(ctx context.Context, name string, w loadgen.Workload, nodes int, transport, secret string, insecure bool,
	refresh time.Duration, redisAddrs, etcdAddrs []string) (*loadgen.Result, error) {
	var t closingTarget
	switch name {
	case "dsync":
		c, err := loadgen.StartCluster(loadgen.ClusterConfig{Nodes: nodes, Transport: transport, Secret: secret, Insecure: insecure})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		dt, err := loadgen.NewDsyncTarget(c, loadgen.DsyncConfig{RefreshInterval: refresh})
		if err != nil {
			return nil, err
		}
		t = dt
	case "redlock":
		rt, err := newRedlockTarget(ctx, redisAddrs, w.Concurrency)
		if err != nil {
			return nil, err
		}
		t = rt
	case "etcd":
		et, err := newEtcdTarget(ctx, etcdAddrs)
		if err != nil {
			return nil, err
		}
		t = et
	default:
		return nil, fmt.Errorf("unknown target (want dsync, redlock or etcd)")
	}
	defer t.Close()
	fmt.Printf("%s: %d lockers, contention %.2f, for %v\n", t.Name(), w.Concurrency, w.Contention, w.Duration)
	r, err := loadgen.Run(ctx, t, w, os.Stdout)
	if err == nil && r.Nodes == 0 {
		switch name {
		case "redlock":
			r.Nodes = len(redisAddrs)
		case "etcd":
			r.Nodes = len(etcdAddrs)
		}
	}
	return r, err
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
