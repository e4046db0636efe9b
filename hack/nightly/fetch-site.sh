#!/usr/bin/env bash
# Brings back what `labrun site -o DIR` needs from the published site to keep
# its history (docs/site.md, "Building on an earlier site"): index.json, which
# holds every run's numbers, and the pages of the newest runs
# (runs/<run>/index.html with the summary.json and plots/ the page links to).
# Each GitHub Pages deployment replaces the whole site, so the publish job of
# .github/workflows/nightly.yml runs this before `labrun site`.
#
#   usage: hack/nightly/fetch-site.sh BASE_URL DIR
#
# KEEP_PAGES (default 30) bounds how many run pages come back: an older run
# stays in index.json (the claims grid, the cell histories), and `labrun site`
# notes that its page is gone, which keeps the site under Pages' size limit.
# RETRIES (default 3) is how often curl tries a request again.
# Nothing published yet (index.json answers 404) is a first night: DIR is left
# empty and the script succeeds. Any other failure fails it: deploying a site
# built without the old index would drop every earlier night from it.
set -euo pipefail

base=${1:?usage: hack/nightly/fetch-site.sh BASE_URL DIR}
dir=${2:?usage: hack/nightly/fetch-site.sh BASE_URL DIR}
base=${base%/}
keep=${KEEP_PAGES:-30}
retries=${RETRIES:-3}
say() { printf 'fetch-site: %s\n' "$*" >&2; }
get() { # get URL FILE: HTTP status on stdout; the body in FILE only on 200
  local code
  code=$(curl -sS -L --retry "$retries" --retry-delay 2 --connect-timeout 10 --max-time 300 \
    -o "$2.part" -w '%{http_code}' "$1") || { rm -f "$2.part"; echo 000; return; }
  if [ "$code" = 200 ]; then mv "$2.part" "$2"; else rm -f "$2.part"; fi
  echo "$code"
}

mkdir -p "$dir"
code=$(get "$base/index.json" "$dir/index.json")
case $code in
  200) ;;
  404)
    say "nothing published at $base yet (index.json: 404): a new site"
    exit 0
    ;;
  *)
    say "cannot read $base/index.json (HTTP $code); not building a site without its history"
    exit 1
    ;;
esac
if ! jq -e '.schema == "labrun.dev/site/v1"' "$dir/index.json" >/dev/null; then
  say "$base/index.json is not a labrun site index (schema labrun.dev/site/v1)"
  exit 1
fi

runs=0
pages=0
while IFS=$'\t' read -r name page; do
  runs=$((runs + 1))
  [ -n "$page" ] || continue
  if [ "$pages" -ge "$keep" ]; then
    continue
  fi
  if [[ ! $page =~ ^runs/[A-Za-z0-9._-]+/index\.html$ ]] || [[ $page == *..* ]]; then
    say "run $name: unexpected page path $page, skipped"
    continue
  fi
  pdir=$(dirname "$page")
  mkdir -p "$dir/$pdir/plots"
  code=$(get "$base/$page" "$dir/$page")
  case $code in
    200) ;;
    404) say "run $name: its page is not published ($page): the site will say so"; continue ;;
    *) say "run $name: $base/$page: HTTP $code"; exit 1 ;;
  esac
  files=(summary.json)
  while IFS= read -r plot; do
    files+=("$plot")
  done < <(grep -o 'plots/[A-Za-z0-9._-]*\.png' "$dir/$page" | sort -u)
  for f in "${files[@]}"; do
    code=$(get "$base/$pdir/$f" "$dir/$pdir/$f")
    case $code in
      200 | 404) ;;
      *) say "run $name: $base/$pdir/$f: HTTP $code"; exit 1 ;;
    esac
  done
  pages=$((pages + 1))
done < <(jq -r '.runs[] | [.name, (.page // "")] | @tsv' "$dir/index.json")
say "$runs runs in the published index; brought back the pages of the newest $pages"
