#!/usr/bin/env bash
# measure.sh runs every measurement recorded in bench/README.md and writes
# the outputs beside itself. It measures the committed HEAD (a clean copy
# made with git archive, so that uncommitted edits in the work tree do not
# count). Run it on a machine that is otherwise idle; it takes about ten
# minutes. The comparison step needs root (it installs redis-server and etcd
# with apt-get) and is skipped with SKIP_COMPARE=1.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out="$repo/bench/results"
commit=$(git -C "$repo" rev-parse --short HEAD)
src=$(mktemp -d /tmp/dsync-measure.XXXXXX)
trap 'rm -rf "$src"' EXIT
git -C "$repo" archive HEAD | tar -x -C "$src"
cd "$src"
export GOFLAGS=-count=1

{
	echo "commit $commit $(date -u +%FT%TZ)"
	echo "nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo); $(go version)"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"

go build -o /tmp/dsync-bench ./bench/cmd/dsync-bench

# Node table, codec, memory.
go test -run '^$' -bench 'Table|Codec' -benchmem -count 3 ./bench/ | tee "$out/micro.txt"
go test -run '^$' -bench Memory -benchtime 1x ./bench/ | tee "$out/memory.txt"

# Uncontended latency: one locker, 4 HTTP nodes, authentication and refresh on.
go test -run '^$' -bench DsyncLockUnlock -benchmem ./bench/ | tee "$out/dsync-single.txt"
go test -run '^$' -bench Transport -benchmem -benchtime 3s ./bench/ | tee "$out/transport.txt"
/tmp/dsync-bench -nodes 4 -transport http -concurrency 1 -duration 10s -quiet | tee "$out/single.txt"
# Where one locker's acquire goes: the floor of 4 loopback round trips (raw TCP; HTTP with fasthttp's
# server; the same through fasthttp.HostClient) against the real acquire without and with
# authentication, five interleaved rounds.
go test -c -o /tmp/dsync-bench.test ./bench/
for _ in 1 2 3 4 5; do
	/tmp/dsync-bench.test -test.run '^$' -test.bench 'LatencyFloor|DsyncLockUnlock/http.*/nodes=4'
done | grep '^Benchmark' | tee "$out/latency-floor.txt"

# Throughput against nodes, distinct resources and half the operations on 16 hot resources.
/tmp/dsync-bench -nodes 1,3,4,5,8,16 -contention 0,0.5 -transport http -concurrency 256 -duration 10s -quiet \
	-csv "$out/nodes-http.csv" | tee "$out/nodes-http.txt"
# 4 and 16 nodes in nine interleaved rounds, summarised by medians: the ratio the target is about,
# measured so that the VM's drift falls on both alike. Single runs spread by ±15% here; nine rounds
# put the medians' ratio within about two points.
/tmp/dsync-bench -nodes 4,16 -transport http -concurrency 256 -duration 8s -rounds 9 -quiet | tee "$out/rounds-4-16.txt"
# CPU per pair against nodes, in-process and over HTTP, five interleaved rounds: the line a + b*n
# through the medians says how much of a pair is paid once and how much per node.
/tmp/dsync-bench -nodes 4,8,16 -transport local,http -concurrency 256 -duration 6s -rounds 5 -quiet | tee "$out/fit-nodes.txt"
# Latency distribution at 4 nodes, both contention levels.
/tmp/dsync-bench -nodes 4 -contention 0,0.5 -transport http -concurrency 256 -duration 10s -quiet \
	-cdf "$out/latency-http-cdf.csv" | tee "$out/latency-http.txt"
# The same client over in-process nodes (no HTTP): what the transport costs.
/tmp/dsync-bench -nodes 1,4,16 -transport local -concurrency 256 -duration 10s -quiet \
	-csv "$out/nodes-local.csv" | tee "$out/nodes-local.txt"

# Where the CPU goes at 4 HTTP nodes.
/tmp/dsync-bench -nodes 4 -transport http -concurrency 256 -duration 10s -quiet -cpuprofile /tmp/dsync-bench.prof >/dev/null
go tool pprof -top -cum -nodecount 60 /tmp/dsync-bench /tmp/dsync-bench.prof >"$out/profile-http4.txt" 2>/dev/null
# And at 16 HTTP nodes, where the per-node costs dominate.
/tmp/dsync-bench -nodes 16 -transport http -concurrency 256 -duration 10s -quiet -cpuprofile /tmp/dsync-bench16.prof >/dev/null
go tool pprof -top -cum -nodecount 80 /tmp/dsync-bench /tmp/dsync-bench16.prof >"$out/profile-http16.txt" 2>/dev/null

# Refresh traffic: 10,000 locks held on 4 HTTP nodes, refreshed every second, for 30 intervals.
/tmp/dsync-bench -nodes 4 -transport http -hold 10000 -refresh 1s -concurrency 16 -duration 30s -quiet | tee "$out/refresh.txt"

if [ "${SKIP_COMPARE:-}" != 1 ]; then
	bench/compare/run.sh -duration 10s -csv "$out/compare-c0.csv" | tee "$out/compare-c0.txt"
	bench/compare/run.sh -duration 10s -contention 0.5 -csv "$out/compare-c50.csv" | tee "$out/compare-c50.txt"
fi

# The charts, from the CSV above, with gonum.org/v1/plot (bench/plot, a module of its own).
(
	cd bench/plot
	go run . -kind throughput -in "$out/nodes-http.csv" -out "$out/throughput-http.png" \
		-title "Throughput against nodes (HTTP, 256 lockers, 10 s each; $commit)"
	go run . -kind latency -in "$out/nodes-http.csv" -out "$out/latency-nodes-http.png" -height 12 \
		-title "Acquire latency against nodes (HTTP, 256 lockers; $commit)"
	go run . -kind cdf -in "$out/latency-http-cdf.csv" -out "$out/latency-http.png" \
		-title "Acquire latency, 4 HTTP nodes, 256 lockers ($commit)"
)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
