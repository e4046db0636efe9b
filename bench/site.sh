#!/usr/bin/env bash
# Measures `labrun site` over 100 synthetic runs of 40 cells each (pkg/site's
# benchmark runs, with their reports as labrun run leaves them), and prints
# the wall time and the peak RSS (/usr/bin/time -v), then the same with the
# site already there (an incremental build over the same runs), then over
# 10 runs without reports (the analysis rebuilt from 40,000 samples each and
# their report pages drawn).
# Usage: bench/site.sh   (no root, no Docker; docs/site.md keeps the results)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /var/tmp/labrun-site-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/labrun" ./cmd/labrun
LABRUN_SITE_BENCH_DIR=$dir go test -count=1 -run '^TestWriteBenchRuns$' ./pkg/site >/dev/null
echo "runs: $(ls "$dir/results" | wc -l) × 40 cells, $(du -sh "$dir/results" | cut -f1)"

measure() {
  local label=$1; shift
  /usr/bin/time -v "$@" >"$dir/out" 2>"$dir/time" || { cat "$dir/time" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time")
  echo "$label: wall $wall, peak RSS $((rss / 1024)) MiB ($(head -1 "$dir/out"))"
}
measure "site, 100 runs from their reports" "$dir/labrun" site "$dir/results" -o "$dir/site"
echo "  site size: $(du -sh "$dir/site" | cut -f1), $(find "$dir/site" -type f | wc -l) files"
measure "site again over the same runs (existing site)" "$dir/labrun" site "$dir/results" -o "$dir/site"
mkdir -p "$dir/raw"
for r in $(ls "$dir/results" | head -10); do
  mkdir -p "$dir/raw/$r"
  cp -r "$dir/results/$r/scenario.yaml" "$dir/results/$r/env.json" "$dir/results/$r/raw" \
    "$dir/results/$r/status" "$dir/results/$r/counters" "$dir/raw/$r/"
done
measure "site, 10 runs without reports (rebuilt from raw files)" "$dir/labrun" site "$dir/raw" -o "$dir/site-raw"
