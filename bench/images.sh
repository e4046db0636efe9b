#!/usr/bin/env bash
# Measures the offline image pipeline and a cluster's lifecycle, and prints one
# line per number (docs/offline-images.md keeps the results):
#   cold `labrun images build` (empty Go build cache, Go module cache and
#   artifact cache, all private to this run), the cached rebuild, the node
#   image's size, `labrun cluster up` and `labrun cluster down` wall times.
# Usage: bench/images.sh [KUBERNETES_VERSION]   (root; Docker running: make deps)
# The machine's own caches are left alone; the node image of that version is
# rebuilt in Docker (use a version you are not running, or expect a rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(awk '/- version:/ {print $3; exit}' images/versions.yaml)}
dir=$(mktemp -d /var/tmp/labrun-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/labrun" ./cmd/labrun
export GOCACHE=$dir/gocache GOMODCACHE=$dir/gomod LABRUN_CACHE=$dir/artifacts
docker rmi -f "labrun/node:$version" >/dev/null 2>&1 || true

t() { local s=$(date +%s.%N); "$@" >"$dir/out" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }

cold=$(t "$dir/labrun" images build --kubernetes "$version")
echo "images build, cold (kubernetes $version): ${cold}s"
grep -E '^\[.*built in' "$dir/err" | sed 's/^/  /'
warm=$(t "$dir/labrun" images build --kubernetes "$version")
echo "images build, cached: ${warm}s ($(tail -1 "$dir/err"))"
size=$(docker image inspect --format '{{.Size}}' "labrun/node:$version")
echo "node image labrun/node:$version: $((size / 1000000)) MB"
up=$(t "$dir/labrun" cluster up --name labrun-bench --kubernetes "$version")
echo "cluster up: ${up}s"
grep -E '^cluster labrun-bench' "$dir/err" | sed 's/^/  /'
down=$(t "$dir/labrun" cluster down --name labrun-bench)
echo "cluster down: ${down}s"
