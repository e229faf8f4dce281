#!/usr/bin/env bash
# run.sh installs redis-server and etcd from Debian, starts 5 redis servers
# (127.0.0.1:7001-7005, no persistence) and a 3-member etcd cluster on
# loopback in a temporary directory, runs the comparison (ours over 4 HTTP
# nodes with auth and refresh, Redlock, etcd) and stops everything it
# started, whatever happens. Arguments are passed to the compare program,
# e.g.: bench/compare/run.sh -duration 10s -contention 0.5
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if ! command -v redis-server >/dev/null || ! command -v etcd >/dev/null; then
	apt-get update
	apt-get install -y redis-server etcd-server etcd-client
fi

tmp=$(mktemp -d /tmp/dsync-compare.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# wait_port HOST PORT: wait up to 20 s for a listener.
wait_port() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "run.sh: nothing listens on $1:$2" >&2
	return 1
}

for port in 7001 7002 7003 7004 7005; do
	mkdir -p "$tmp/redis-$port"
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$tmp/redis-$port" --daemonize no --protected-mode yes \
		>"$tmp/redis-$port.log" 2>&1 &
	pids+=($!)
done

cluster="e1=http://127.0.0.1:2380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
for m in "e1 2379 2380" "e2 22379 22380" "e3 32379 32380"; do
	read -r name client peer <<<"$m"
	etcd --name "$name" --data-dir "$tmp/$name" \
		--listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
		--listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token dsync-compare \
		>"$tmp/$name.log" 2>&1 &
	pids+=($!)
done

for port in 7001 7002 7003 7004 7005 2379 22379 32379; do
	wait_port 127.0.0.1 "$port"
done
ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379 endpoint health

cd "$here"
go run . \
	-redis 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003,127.0.0.1:7004,127.0.0.1:7005 \
	-etcd http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379 \
	"$@"
