# The nightly's verdict in Markdown, from a merged run's summary.json
# (docs/results-format.md): the totals, then what makes a night red: the
# broken expectations, those that could not be evaluated, and the cells the
# run owes (incomplete, or never reached: a shard that failed or was killed).
# Cells the host could not run are only counted. Used by hack/nightly/summary.sh.
def n(x): x // 0;
def owed: .state == "incomplete" or (.state == "not-run" and ((.reason // "") | startswith("no status file")));
def bullets(items): if (items | length) == 0 then "none" else (items | map("- " + .) | join("\n")) end;
def code: "`" + (tostring | gsub("`"; "'")) + "`";
(.expectations // []) as $ex
| [.cells[] | select(owed)] as $owed
| [.cells[] | select(.state == "not-run" and (owed | not))] as $notrun
| [$ex[] | select(.verdict == "broken")] as $broken
| [$ex[] | select(.verdict == "not-evaluated")] as $unevaluated
| (if ($broken | length) > 0 then "red: expectations broken"
   elif ($owed | length) > 0 or ($unevaluated | length) > 0 then "red: the run is incomplete"
   elif ($ex | length) == 0 then "no expectations"
   else "green: every expectation met" end) as $verdict
| [
  "## Nightly \(.scenario): \(.run) — \($verdict)",
  "",
  "Cells: \(n(.totals.cells.complete)) complete, \(n(.totals.cells.incomplete)) incomplete, \(n(.totals.cells["not-run"])) not run. "
    + "Claims: \(n(.totals.claims.pass)) pass, \(n(.totals.claims.fail)) fail, \(n(.totals.claims["not-run"])) not run. "
    + "Expectations: \(n(.totals.expectations.met)) met, \($broken | length) broken, \($unevaluated | length) not evaluated.",
  "",
  "### Broken expectations (\($broken | length))",
  "",
  bullets($broken | map("\(.name | code): measured \(.measured)"
    + (if .cell then " in cell \(.cell | code)" else "" end)
    + (if .source then " (\(.source))" else "" end))),
  "",
  "### Expectations not evaluated (\($unevaluated | length))",
  "",
  bullets($unevaluated | map("\(.name | code): \(.reason // "no reason given")")),
  "",
  "### Cells the run owes (\($owed | length))",
  "",
  bullets($owed | map("\(.id | code) (\(.state)): \(.reason // "no reason given")")),
  "",
  "### Cells this host could not run: \($notrun | length)",
  "",
  bullets($notrun | group_by(.reason // "") | map("\(length) × \(.[0].reason // "no reason given")"))
] | join("\n")
