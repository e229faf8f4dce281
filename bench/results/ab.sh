#!/usr/bin/env bash
# ab.sh compares dsync-bench binaries by running them in turn, several
# times, and prints each run's pairs/s and CPU per pair and the means. On a
# VM whose speed drifts, only interleaved runs compare builds fairly.
#
#   go build -o /tmp/old ./bench/cmd/dsync-bench   # at the old commit
#   go build -o /tmp/new ./bench/cmd/dsync-bench   # at the new one
#   bench/results/ab.sh 16 3 /tmp/new /tmp/old     # 16 nodes, 3 rounds
set -euo pipefail
if [ $# -lt 3 ]; then
	echo "usage: $0 NODES ROUNDS BINARY..." >&2
	exit 2
fi
nodes=$1 rounds=$2
shift 2
for _ in $(seq "$rounds"); do
	for b in "$@"; do
		# The columns are found by their names: builds of different
		# versions print different tables.
		"$b" -nodes "$nodes" -transport http -concurrency 256 -duration 5s -quiet | tail -2 |
			awk -v b="$b" 'NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; next}
				{print b, $col["locks/s"], $col["CPU/lock"]}'
	done
done | awk '{print; sub(/µs/, "", $3); s[$1] += $2; c[$1] += $3; n[$1]++}
	END {for (k in s) printf "%s: mean %.0f pairs/s, %.2f µs of CPU per pair\n", k, s[k]/n[k], c[k]/n[k]}'
