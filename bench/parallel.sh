#!/usr/bin/env bash
# Runs one fixed small matrix (test/e2e/nightly/testdata/two-shapes.yaml: two
# cluster shapes of 1 control plane + 1 worker, two glibc cells each under the
# race emulator) sequentially and with --parallel 2, and prints for each: wall
# time, per-cell overhead (the run's time beyond its probes' own duration,
# divided by its cells), peak memory in use on the host, whether every cell
# completed and the claims the report checked; then the speed-up as a ratio.
# Usage: bench/parallel.sh [SCENARIO [FLAG...]]   (root; Docker running,
# images built: make images). The FLAGs make the second run parallel
# (default --parallel 2; --cells-at-once 2 runs two cells of a shape at once
# on one cluster instead); the first is one shape and one cell at a time.
# docs/quick-start.md keeps the results.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-test/e2e/nightly/testdata/two-shapes.yaml}
flags=("${@:2}")
((${#flags[@]})) || flags=(--parallel 2)
dir=$(mktemp -d /var/tmp/labrun-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/labrun" ./cmd/labrun
cells=$("$dir/labrun" plan --json "$scenario" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["will_run"])')

# used prints the host's memory in use (MemTotal - MemAvailable) in MiB.
used() { awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {print int((t-a)/1024)}' /proc/meminfo; }

bench() {
	local name=$1; shift
	local peak=0 start end pid rc=0
	start=$(date +%s.%N)
	"$dir/labrun" run "$scenario" --results "$dir/$name" --cluster-prefix "bench$name" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		m=$(used); ((m > peak)) && peak=$m
		sleep 1
	done
	wait "$pid" || rc=$?
	end=$(date +%s.%N)
	local wall probes
	wall=$(echo "$end - $start" | bc)
	# Probe seconds: the sum of every cell's "probes Ns" of its result line.
	probes=$(grep -oE 'probes [0-9.]+m?s' "$dir/$name.err" | awk '{v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v/=1000} else sub(/s/,"",v); s+=v} END {print s+0}')
	echo "$name: exit $rc, wall ${wall}s, $cells cells, probes ${probes}s in all, overhead per cell $(echo "($wall - $probes) / $cells" | bc -l | xargs printf '%.1f')s, peak memory in use ${peak} MiB"
	grep -E '^report: ' "$dir/$name.err" | sed 's/^/  /'
	grep -cE ': complete, ' "$dir/$name.err" | sed 's/^/  complete cells: /'
	echo "$wall" >"$dir/$name.wall"
}

echo "bench/parallel.sh: $scenario (second run: ${flags[*]}), $cells cells, $(nproc) CPUs, $(awk '/^MemTotal:/ {print int($2/1048576)}' /proc/meminfo) GiB"
bench sequential --cells-at-once 1
bench parallel "${flags[@]}"
echo "speed-up: $(echo "$(cat "$dir/sequential.wall") / $(cat "$dir/parallel.wall")" | bc -l | xargs printf '%.2f')x"
