#!/usr/bin/env bash
# Writes the nightly's verdict as Markdown on stdout: the merged run's totals,
# broken and unevaluated expectations, the cells it owes (hack/nightly/summary.jq),
# and, given the plan and the folder of shard runs, each planned shard that left
# no run at all, with its cells. The publish job of .github/workflows/nightly.yml
# appends it to the job summary; hack/nightly-local.sh prints it.
#   usage: hack/nightly/summary.sh RUN [PLAN.json SHARDS_DIR]
set -euo pipefail

run=${1:?usage: hack/nightly/summary.sh RUN [PLAN.json SHARDS_DIR]}
plan=${2:-}
shards=${3:-}
here=$(dirname "$0")

if [ -f "$run/summary.json" ]; then
  jq -r -f "$here/summary.jq" "$run/summary.json"
else
  printf '## Nightly: no merged run\n\n%s has no summary.json: the merge failed (its output above says why).\n' "$run"
fi

[ -n "$plan" ] && [ -f "$plan" ] || exit 0
missing=0
report=""
while IFS=$'\t' read -r index count shard cells; do
  if compgen -G "$shards/*-shard-$index-of-$count" >/dev/null; then
    continue
  fi
  missing=$((missing + 1))
  list=$(jq -r --argjson i "$index" '[.shards[] | select(.index == $i) | .cells[]] | .[:50] | map("`" + . + "`") | join(", ")' "$plan")
  more=""
  if [ "$cells" -gt 50 ]; then
    more=" and $((cells - 50)) more"
  fi
  report+="- shard $shard: $cells cells: $list$more"$'\n'
done < <(jq -r '.shards[] | select((.cells | length) > 0) | [.index, .count, .shard, (.cells | length)] | @tsv' "$plan")
printf '\n### Shards that left no run (%d)\n\n' "$missing"
if [ "$missing" -eq 0 ]; then
  echo "none"
else
  printf '%s' "$report"
fi
