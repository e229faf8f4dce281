#!/usr/bin/env bash
# check.sh: model-check dsync.pml with Spin.
#
# Every positive check must finish its exhaustive search with no error; every
# negative control must fail, leaving a trail. Exits non-zero otherwise.
# Needs spin and a C compiler; installs nothing (CI installs spin).
#
#   simulation/model/check.sh              # every check
#   simulation/model/check.sh n3-ww fence  # the named ones
#
# Environment: OUT (work directory, default simulation/model/out), JOBS
# (checks run at once, default: number of CPUs), LIMIT (seconds a check may
# take, default 240).
set -uo pipefail
cd "$(dirname "$0")"

CC=${CC:-cc}
for tool in spin "$CC"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check.sh: $tool not found: install it first (Debian: apt-get install spin gcc)" >&2
		exit 2
	fi
done

OUT=${OUT:-out}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
LIMIT=${LIMIT:-240}
DEPTH=20000

# name | expect | spin -D defines | what it shows
# expect: pass (no error), fail:<assertion> (that assertion must fail),
# live (the LTL property "progress" must hold under weak fairness);
# fail:cycle (it must not: an acceptance cycle).
CHECKS=(
	"n3-ww|pass|-DNN=3 -DSYMM=1|3 nodes, two writers: mutex, told; 1 crash, 1 loss, drift"
	"n3-wr|pass|-DNN=3 -DSYMM=1 -DMODE1=0 -DNA=1|3 nodes, a writer and a reader (1 attempt each)"
	"n3-2crash|pass|-DNN=3 -DSYMM=1 -DCRASHES=2 -DLOSSES=0|3 nodes, two writers, 2 crashes (more than n-W)"
	"n4-ww|pass|-DNN=4 -DSYMM=1 -DLOSSES=0|4 nodes, two writers, 1 crash"
	"n4-wr|pass|-DNN=4 -DSYMM=1 -DMODE1=0 -DNA=1 -DLOSSES=0|4 nodes, a writer and a reader (1 attempt each), 1 crash"
	"n2-wr|pass|-DNN=2 -DSYMM=1 -DMODE1=0|2 nodes, a writer and a reader"
	"fence|pass|-DNN=3 -DSYMM=1 -DFENCE=1 -DNA=1 -DLOSSES=0|fencing tokens of successive write holders increase; 1 crash"
	"progress|live|-DNN=3 -DLIVE=1 -DNA=1|a client that keeps asking gets the lock (weak fairness, bounded delay)"
	"no-grace|fail:told|-DNN=3 -DSYMM=1 -DGRACE=0|negative: a restarted node grants at once"
	"no-margin|fail:told|-DNN=3 -DSYMM=1 -DMARGIN=0|negative: margin 0 with one tick of drift"
	"half-quorum|fail:told|-DNN=4 -DSYMM=1 -DWQ=2|negative: W = n/2 with 4 nodes"
	"fence-nocheck|fail:token_increases|-DNN=3 -DSYMM=1 -DFENCE=1 -DFENCE_CHECK=0 -DNA=1 -DLOSSES=0|negative: a token valid without the deadline check"
	"progress-async|fail:cycle|-DNN=3 -DLIVE=1 -DNA=1 -DLIVE_SYNC=0|negative: with unbounded message delay, no attempt need succeed"
	"v2-reclaim-any|fail:mutex|-DNN=3 -DSYMM=1 -DRECLAIM_GUARD=0|negative: v2 as written: reclaim on any node in grace"
	"v2-reclaim-stale|fail:mutex|-DNN=3 -DSYMM=1 -DRECLAIM_EPOCH=0 -DCRASHES=2 -DLOSSES=0|negative: v2 as written: a reclaim from before the last restart"
	"q-n3-ww|pass|-DNN=3 -DSYMM=1 -DQUEUE=1 -DNA0=1 -DCRASHES=0|queues: 3 nodes, two writers (1 and 2 attempts), 1 loss"
	"q-n3-crash|pass|-DNN=3 -DSYMM=1 -DQUEUE=1 -DNA=1 -DLOSSES=0|queues: 3 nodes, two writers (1 attempt each), 1 crash"
	"q-n4-wr|pass|-DNN=4 -DSYMM=1 -DQUEUE=1 -DMODE1=0 -DNA=1 -DLOSSES=0 -DCRASHES=0|queues: 4 nodes, a writer and a reader (1 attempt each)"
	"q-fence|pass|-DNN=3 -DSYMM=1 -DQUEUE=1 -DFENCE=1 -DNA=1 -DLOSSES=0 -DCRASHES=0|queues: fencing tokens of successive write holders increase"
	"q-order0|pass|-DNN=3 -DSYMM=1 -DQUEUE=1 -DORDER=0 -DNA0=1 -DLOSSES=0 -DCRASHES=0|queues, the youngest waiter served first and jumping allowed: still safe"
	"q-hear|fail:told|-DNN=3 -DSYMM=1 -DQUEUE=1 -DHEAR=1 -DNA0=1 -DLOSSES=0 -DCRASHES=0|negative: deadline dated from hearing of a handed-over grant"
	"m4-ix-s|pass|-DNN=4 -DSYMM=1 -DMGL=1 -DMODE0=2 -DMODE1=3 -DNA=1 -DLOSSES=0|modes: 4 nodes, IX (W) against S (R), 1 attempt each, 1 crash"
	"m4-ix2-s|pass|-DNN=4 -DSYMM=1 -DMGL=1 -DMODE0=2 -DMODE1=3 -DNA=2 -DNA1=1 -DLOSSES=0 -DCRASHES=0|modes: 4 nodes, IX (2 attempts) against S (1), no fault"
	"m4-s-six|pass|-DNN=4 -DSYMM=1 -DMGL=1 -DMODE0=3 -DMODE1=4 -DNA=1 -DLOSSES=0|modes: 4 nodes, S (R) against SIX (W), 1 attempt each, 1 crash"
	"m4-ix-six|pass|-DNN=4 -DSYMM=1 -DMGL=1 -DMODE0=2 -DMODE1=4 -DNA=1 -DLOSSES=0|modes: 4 nodes, IX (W) against SIX (W), 1 attempt each, 1 crash"
	"m4-ix2-six|pass|-DNN=4 -DSYMM=1 -DMGL=1 -DMODE0=2 -DMODE1=4 -DNA=2 -DNA1=1 -DLOSSES=0 -DCRASHES=0|modes: 4 nodes, IX (2 attempts) against SIX (1), no fault"
	"m3-ix2-s|pass|-DNN=3 -DSYMM=1 -DMGL=1 -DMODE0=2 -DMODE1=3 -DNA=2 -DNA1=1 -DLOSSES=0|modes: 3 nodes, IX (2 attempts) against S (1), 1 crash"
	"m4-ix-readq|fail:told|-DNN=4 -DSYMM=1 -DMGL=1 -DMODE0=2 -DMODE1=3 -DQIX=RQ -DNA=1 -DLOSSES=0 -DCRASHES=0|negative: modes: IX granted by a read quorum, against S"
)

if [ $# -gt 0 ]; then
	picked=()
	for want in "$@"; do
		found=
		for c in "${CHECKS[@]}"; do
			if [ "${c%%|*}" = "$want" ]; then picked+=("$c"); found=1; fi
		done
		[ -n "$found" ] || { echo "check.sh: no check named $want" >&2; exit 2; }
	done
	CHECKS=("${picked[@]}")
fi

mkdir -p "$OUT"

# run_one NAME EXPECT DEFINES: search, then write $OUT/NAME/result:
# "ok|bad <one-line summary>".
run_one() {
	local name=$1 expect=$2 defs=$3
	local dir=$OUT/$name
	rm -rf "$dir" && mkdir -p "$dir" && cp dsync.pml "$dir/"
	(
		cd "$dir" || exit 1
		# shellcheck disable=SC2086 # defs is a list of flags
		if ! spin -a $defs dsync.pml >spin.out 2>&1; then
			echo "bad spin -a failed: $(head -c 300 spin.out)" >result
			exit
		fi
		local cflags="-O2 -w -DNOBOUNDCHECK -DMEMLIM=8000"
		local run="./pan -m$DEPTH"
		case $expect in
		pass) cflags="$cflags -DSAFETY" ;;
		fail:cycle | live) cflags="$cflags -DNFAIR=4"; run="./pan -m$DEPTH -a -f" ;;
		fail:*) cflags="$cflags -DSAFETY"; run="./pan -m$DEPTH -i" ;; # -i: search on for the shortest trail
		esac
		# shellcheck disable=SC2086
		if ! $CC $cflags -o pan pan.c >cc.out 2>&1; then
			echo "bad cc failed: $(head -c 300 cc.out)" >result
			exit
		fi
		local TIMEFORMAT=%U rc
		{ time timeout "$LIMIT" $run >pan.out 2>&1; } 2>cpu.out
		rc=$?
		local errors states trans secs mem cpu depth_note=
		errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | tail -1)
		states=$(awk '/states, stored/ {print $1; exit}' pan.out)
		trans=$(awk '/transitions \(= / {print $1; exit}' pan.out)
		secs=$(awk '/elapsed time/ {print $4; exit}' pan.out)
		mem=$(awk '/total actual memory usage/ {printf "%d", $1; exit}' pan.out)
		cpu=$(tail -1 cpu.out)
		grep -q "search depth too small" pan.out && depth_note=" (depth limit reached: search incomplete)"
		local figures="${states:-?} states, ${trans:-?} transitions, ${cpu:-?} s CPU (${secs:-?} s elapsed), ${mem:-?} MB"
		if [ $rc -eq 124 ]; then
			echo "bad timed out after ${LIMIT}s" >result
			exit
		fi
		case $expect in
		pass | live)
			if [ "$errors" = 0 ] && [ -z "$depth_note" ]; then
				echo "ok $figures" >result
			else
				local hint=
				[ -n "$(ls ./*.trail 2>/dev/null)" ] && hint="; replay: cd $dir && spin -T -t $defs dsync.pml"
				echo "bad errors: ${errors:-?}$depth_note; $figures; $(grep -m1 -E 'violated|acceptance|error' pan.out)$hint" >result
			fi
			;;
		fail:*)
			local want=${expect#fail:}
			local trail
			trail=$(ls ./*.trail 2>/dev/null | head -1)
			local pattern="assertion violated $want"
			[ "$want" = cycle ] && pattern="acceptance cycle"
			if [ "${errors:-0}" != 0 ] && [ -n "$trail" ] && grep -q "$pattern" pan.out; then
				# shellcheck disable=SC2086
				spin -T -t $defs dsync.pml 2>&1 | grep -v -e '^[[:space:]]' -e '^[0-9]*:[[:space:]]*proc' \
					-e '^spin: trail ends' -e '^#processes' -e 'processes created' >trail.txt
				echo "ok fails as it must ($pattern, trail of $(grep -c . trail.txt) lines); $figures" >result
			else
				echo "bad passed, or failed otherwise: errors ${errors:-?}, wanted assertion $want; $(grep -m1 'violated' pan.out)" >result
			fi
			;;
		esac
	)
}

start=$(date +%s)
echo "spin: $(spin -V 2>&1 | head -1); $JOBS at a time, at most ${LIMIT}s each"
running=0
for c in "${CHECKS[@]}"; do
	IFS='|' read -r name expect defs _ <<<"$c"
	run_one "$name" "$expect" "$defs" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

failed=0
printf '\n%-17s %-6s %s\n' check result details
for c in "${CHECKS[@]}"; do
	IFS='|' read -r name expect defs what <<<"$c"
	res=$(cat "$OUT/$name/result" 2>/dev/null || echo "bad no result")
	verdict=${res%% *}
	detail=${res#* }
	if [ "$verdict" = ok ]; then
		printf '%-17s %-6s %s\n' "$name" ok "$detail"
	else
		printf '%-17s %-6s %s\n' "$name" FAIL "$detail"
		failed=$((failed + 1))
	fi
	printf '%-17s %-6s %s [%s]\n' "" "" "$what" "$defs"
done

echo
for c in "${CHECKS[@]}"; do
	IFS='|' read -r name expect defs _ <<<"$c"
	case $expect in fail:*) ;; *) continue ;; esac
	[ -s "$OUT/$name/trail.txt" ] || continue
	echo "-- $name: the end of its counterexample ($OUT/$name/trail.txt; replay: cd $OUT/$name && spin -T -t $defs dsync.pml)"
	tail -n 8 "$OUT/$name/trail.txt" | sed 's/^/   /'
done

echo
echo "$((${#CHECKS[@]} - failed)) of ${#CHECKS[@]} checks as expected, in $(($(date +%s) - start)) s"
if [ "$failed" -gt 0 ]; then
	echo "check.sh: $failed check(s) did not turn out as expected" >&2
	exit 1
fi
