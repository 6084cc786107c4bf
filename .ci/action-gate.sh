#!/usr/bin/env bash
# The body of the composite GitHub Action (action.yml): run a suite against the candidate,
# optionally compare it with a baseline run, write JUnit files and the step summary, and
# exit with harness's exit code (0 holds / no regression, 1 breached / regression,
# 2 usage, 3 inconclusive, 4 infrastructure). Every input arrives as an environment
# variable (HARNESS_GATE_*) so this script can be run, and tested, outside GitHub.
set -uo pipefail

suite="${HARNESS_GATE_SUITE:?HARNESS_GATE_SUITE (input suite) is required}"
target="${HARNESS_GATE_TARGET:-sim}"
out="${HARNESS_GATE_OUT:-results}"
inconclusive="${HARNESS_GATE_INCONCLUSIVE:-fail}"
baseline="${HARNESS_GATE_BASELINE:-}"
margin="${HARNESS_GATE_MARGIN:-0.01}"
harness="${HARNESS_GATE_HARNESS:-harness}"
extra=()
[ -n "${HARNESS_GATE_BASE_URL:-}" ] && extra+=(--base-url "$HARNESS_GATE_BASE_URL")
[ -n "${HARNESS_GATE_API_KEY_ENV:-}" ] && extra+=(--api-key-env "$HARNESS_GATE_API_KEY_ENV")
# Word-split on purpose: free-form extra flags for `harness run` (e.g. "--samples 20").
# shellcheck disable=SC2206
[ -n "${HARNESS_GATE_RUN_ARGS:-}" ] && extra+=(${HARNESS_GATE_RUN_ARGS})

mkdir -p "$out"
"$harness" run "$suite" --target "$target" --out "$out" --junit "$out/junit-run.xml" \
    --inconclusive "$inconclusive" --json "${extra[@]}" > "$out/run.json"
code=$?
run_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("run_id", ""))' \
    "$out/run.json" 2>/dev/null || true)"
if [ -z "$run_id" ]; then
    echo "harness-gate: harness run failed before writing a summary (exit $code)" >&2
    cat "$out/run.json" >&2
    exit "$code"
fi
run_dir="$out/$run_id"
echo "harness-gate: run $run_id exit $code ($run_dir)"
final=$code
if [ -n "$baseline" ] && [ "$code" -ne 4 ]; then
    "$harness" compare "$baseline" "$run_dir" --margin "$margin" --junit "$out/junit-compare.xml" \
        --inconclusive "$inconclusive" --json > "$out/compare.json"
    ccode=$?
    echo "harness-gate: compare with $baseline exit $ccode"
    # The gate fails on the worse of the two: a breach or regression (1) over inconclusive
    # (3); usage (2) and infrastructure (4) errors win over both.
    for c in 4 2 1 3; do
        if [ "$code" -eq "$c" ] || [ "$ccode" -eq "$c" ]; then final=$c; break; fi
    done
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    {
        echo "run-id=$run_id"
        echo "run-dir=$run_dir"
        echo "report=$run_dir/report.html"
        echo "exit-code=$final"
    } >> "$GITHUB_OUTPUT"
fi
exit "$final"
