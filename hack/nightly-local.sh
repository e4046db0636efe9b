#!/usr/bin/env bash
# make nightly-local SCENARIO=NAME SHARDS=N: the steps of the nightly workflow
# (.github/workflows/nightly.yml) on this machine, in the workflow's order, the
# shards one after the other instead of on N runners:
#   1. plan     labrun plan --json --shards N, and the matrix of the shards
#               that have cells (hack/nightly/matrix.jq, as the plan job);
#   2. shards   labrun hostcheck, then labrun run --shard i/N for each of them.
#               An exit 3 (an expectation broken) is the publish step's to
#               judge; any other failure is noted and the next shard runs (the
#               workflow's fail-fast: false), and the merge names its cells;
#   3. publish  labrun merge (rebuilds the report and judges the expect:
#               block), labrun export --format junit, labrun site, and the
#               summary the job summary shows (hack/nightly/summary.sh).
# Everything goes to results/nightly-local-<time>/: plan.json, matrix.json,
# shards/, merged/<scenario>-<time>/, junit/junit.xml, site/, logs/, summary.md.
# SITE=DIR builds into an existing site instead (labrun site extends it).
# The exit code is the merge's, the merged run's verdict (docs/exit-codes.md):
# 0 every expectation met, 3 one broken, 1 a failure (a shard's cells missing,
# an expectation not evaluated); 1 when no merged run could be made.
# SCENARIO is a name in scenarios/ or a path to a .yaml file; OUT=DIR puts
# nightly-local-<time>/ under DIR instead of results/.
#   usage: hack/nightly-local.sh SCENARIO SHARDS
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:?usage: hack/nightly-local.sh SCENARIO SHARDS}
shards=${2:?usage: hack/nightly-local.sh SCENARIO SHARDS}
file=scenarios/$scenario.yaml
if [[ $scenario == *.yaml ]]; then # a scenario file anywhere (the e2e test's)
  file=$scenario
  scenario=$(basename "$scenario" .yaml)
fi
stamp=$(date -u +%Y%m%d-%H%M%S)
out=${OUT:-results}/nightly-local-$stamp
site=${SITE:-$out/site}
run=$out/merged/$scenario-$stamp
say() { printf 'nightly-local: %s\n' "$*" >&2; }
mkdir -p "$out/shards" "$out/merged" "$out/junit" "$out/logs"

# 1. plan
bin/labrun plan "$file" --json --shards "$shards" >"$out/plan.json"
jq -c -f hack/nightly/matrix.jq "$out/plan.json" >"$out/matrix.json"
mapfile -t planned < <(jq -r '.include[].shard' "$out/matrix.json")
say "$file: ${#planned[@]} of $shards shards have cells; writing to $out"

# 2. shards
bin/labrun hostcheck | tee "$out/logs/hostcheck.txt"
failed=()
for shard in "${planned[@]}"; do
  log=$out/logs/shard-${shard/\//-of-}.log
  say "shard $shard (log: $log)"
  code=0
  bin/labrun run "$file" --shard "$shard" --results "$out/shards" 2>&1 | tee "$log" || code=$?
  case $code in
    0) ;;
    3) say "shard $shard: an expectation broken (exit 3): judged after the merge" ;;
    *)
      say "shard $shard failed (exit $code); going on with the others"
      failed+=("$shard")
      ;;
  esac
done

# 3. publish
mapfile -t runs < <(find "$out/shards" -mindepth 1 -maxdepth 1 -type d | sort)
if [ ${#runs[@]} -eq 0 ]; then
  say "no shard left a run directory: nothing to merge"
  exit 1
fi
verdict=0
bin/labrun merge "${runs[@]}" -o "$run" 2>&1 | tee "$out/logs/merge.log" || verdict=$?
if [ ! -f "$run/summary.json" ]; then
  say "the merge made no run (exit $verdict); see $out/logs/merge.log"
  exit 1
fi
bin/labrun export "$run" --format junit -o "$out/junit"
bin/labrun site "$run" -o "$site"
hack/nightly/summary.sh "$run" "$out/plan.json" "$out/shards" | tee "$out/summary.md"
if [ ${#failed[@]} -gt 0 ]; then
  say "shards that failed: ${failed[*]}"
fi
say "merged run: $run; site: $site/index.html; verdict: exit $verdict"
exit "$verdict"
