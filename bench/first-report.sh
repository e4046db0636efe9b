#!/usr/bin/env bash
# Measures the first report on a machine that has built nothing yet: with an
# empty Go build cache, Go module cache and artifact cache (all private to this
# run) and no lab node image in Docker, `labrun run scenarios/SCENARIO.yaml`
# builds the images that scenario needs, brings its clusters up, runs its cells
# and writes its report. Prints the wall time, each build step's time and the
# run's own lines (docs/offline-images.md keeps the results).
# What it does not time: `make deps` (apt packages, Docker), which a fresh
# machine runs once before; the apt packages' download is cached by apt.
# Usage: bench/first-report.sh [SCENARIO]   (root; Docker running: make deps)
# The machine's own caches are left alone; its lab node images are rebuilt
# (the same names and keys, so nothing else needs to rebuild afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-baseline}
version=$(awk '/- version:/ {print $3; exit}' images/versions.yaml)
dir=$(mktemp -d /var/tmp/labrun-first.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/labrun" ./cmd/labrun
export GOCACHE=$dir/gocache GOMODCACHE=$dir/gomod LABRUN_CACHE=$dir/artifacts
docker rmi -f "labrun/node:$version-lab" "labrun/node:$version" "labrun/debian:bookworm-node" >/dev/null 2>&1 || true

start=$(date +%s.%N)
"$dir/labrun" run "scenarios/$scenario.yaml" --results "$dir/results" >"$dir/out" 2>"$dir/err" || { tail -20 "$dir/err" >&2; exit 1; }
took=$(echo "$(date +%s.%N) - $start" | bc)
echo "first report ($scenario, kubernetes $version, empty caches): ${took}s"
grep -E '^\[.*built in|^images: ' "$dir/err" | sed 's/^/  /'
grep -E 'ready in|complete,|deleted in|^report: claim' "$dir/err" | sed 's/^/  /'
