#!/usr/bin/env bash
# Measures the first report on a machine that has built nothing yet: with an
# empty Go build cache, Go module cache and artifact cache (all private to this
# run) and no lab node image in Docker, `labrun run scenarios/SCENARIO.yaml`
# builds the images that scenario needs, brings its clusters up, runs its cells
# and writes its report. Prints the wall time, each build step's time and the
# run's own lines (docs/offline-images.md keeps the results).
#   bench/first-report.sh [SCENARIO]              the node image built here
#   bench/first-report.sh published [SCENARIO]    nodeImage: published: the
#     node image pulled first (bench/standin: a registry in the process serves
#     the lab's plain node image under kindest/node's name, as this machine
#     reaches no registry), then only the lab's own images built
# What it does not time: `make deps` (apt packages, Docker), which a fresh
# machine runs once before; the apt packages' download is cached by apt.
# Root; Docker running (make deps); for `published`, the lab's plain node image
# built (make images), as the stand-in is made of it. The machine's own caches
# are left alone; the built mode rebuilds its lab node images in Docker (the
# same names and keys, so nothing else needs to rebuild afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=built
if [[ ${1:-} == published ]]; then mode=published; shift; fi
scenario=${1:-baseline}
version=$(awk '/- version:/ {print $3; exit}' images/versions.yaml)
dir=$(mktemp -d /var/tmp/labrun-first.XXXXXX)
trap 'rm -rf "$dir"' EXIT
file=scenarios/$scenario.yaml
if [[ $mode == published ]]; then
	# The same scenario on the published node: its Kubernetes is the image's.
	sed -e 's/^\(\s*\)kubernetes: .*/\1nodeImage: published/' "$file" >"$dir/$scenario.yaml"
	file=$dir/$scenario.yaml
	docker rmi -f docker.io/kindest/node:v1.37.0 >/dev/null 2>&1 || true
else
	docker rmi -f "labrun/node:$version-lab" "labrun/node:$version" "labrun/debian:bookworm-node" >/dev/null 2>&1 || true
fi
# The stand-in registry is set up before the clock starts, with the machine's
# own Go caches: a user's registry already holds kind's image. Its push (the
# lab's plain node image, compressed in this process: 1 min 12 s since that
# image carries its images unpacked too, 1.38 GB) is no user's cost; its pull
# (seconds from this process; kind's real image is the network's time) is
# printed, not counted.
if [[ $mode == published ]]; then
	go build -o "$dir/standin" ./bench/standin
	LABRUN_CACHE=$dir/artifacts "$dir/standin" >"$dir/standin.out"
fi
export GOCACHE=$dir/gocache GOMODCACHE=$dir/gomod LABRUN_CACHE=$dir/artifacts

# labrun itself is built in the empty Go caches too, as `make lab` does on a
# fresh machine (its Kubernetes client packages are shared with the lab's
# daemons, which the images build compiles next).
start=$(date +%s.%N)
go build -o "$dir/labrun" ./cmd/labrun
built=$(echo "$(date +%s.%N) - $start" | bc)
"$dir/labrun" run "$file" --results "$dir/results" >"$dir/out" 2>"$dir/err" || { tail -20 "$dir/err" >&2; exit 1; }
took=$(echo "$(date +%s.%N) - $start" | bc)
echo "first report ($scenario, node image $mode, empty caches): ${took}s, of which building labrun ${built}s"
[[ $mode == published ]] && sed 's/^/  /' "$dir/standin.out"
grep -E '^\[.*built in|^images: ' "$dir/err" | sed 's/^/  /'
grep -E 'ready in|loaded into its|complete,|deleted in|^report: claim' "$dir/err" | sed 's/^/  /'
if [[ $mode == published ]]; then docker rmi -f docker.io/kindest/node:v1.37.0 >/dev/null 2>&1 || true; fi
