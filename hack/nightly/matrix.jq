# The nightly's shard matrix from `labrun plan FILE --json --shards N`: one
# entry per shard that has cells (an empty shard gets no runner), as GitHub's
# strategy.matrix takes it ({"include": [...]}). The plan job of
# .github/workflows/nightly.yml and hack/nightly-local.sh both use this file.
#   shard            "i/N", as `labrun run --shard` takes it
#   index, count     i and N (artifact names: results-shard-i-of-N)
#   cells, shapes    how many of each the shard runs
#   estimate_minutes the plan's estimate of the shard's wall time
#   timeout_minutes  the job's bound: 1.5 × the estimate, plus 45 min to set
#                    the runner up (make deps, the image cache, make images);
#                    at most 350 (hosted runners stop a job at 360)
{
  include: [
    .shards[]
    | select((.cells | length) > 0)
    | {
        shard,
        index,
        count,
        cells: (.cells | length),
        shapes: (.shapes | if type == "array" then length else . end),
        estimate_minutes: ((.estimate_seconds / 60) | ceil),
        timeout_minutes: ([((.estimate_seconds * 1.5 / 60) | ceil) + 45, 350] | min)
      }
  ]
}
