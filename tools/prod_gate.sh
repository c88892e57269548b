#!/usr/bin/env bash
# The production gate (docs/PRODUCTION.md, "Releasing"): tools/stage_all.sh, then the offline
# benchmark checked against the thresholds in tools/bench/thresholds.json (tools/bench/gate.py:
# recall at the default probe, the query's own row first, exact-scan bandwidth and probe QPS
# as ratios to the machine's read bandwidth measured in the same run, build time per row).
# Ends with `PASS prod gate` or `FAIL prod gate: STAGE: REASON` (exit 1).
# Usage: tools/prod_gate.sh [--quick] [--thresholds FILE] [--skip-stage-all] [stage_all options]
#   --quick: the thresholds file's smaller workload; --skip-stage-all: the benchmark only.
set -uo pipefail
cd "$(dirname "$0")/.."
THRESHOLDS=tools/bench/thresholds.json QUICK=() SKIP_ALL= PASS_ON=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=(--quick); shift ;;
        --thresholds) THRESHOLDS=$2; shift 2 ;;
        --skip-stage-all) SKIP_ALL=1; shift ;;
        --only | --skip) PASS_ON+=("$1" "$2"); shift 2 ;;
        *) echo "usage: $0 [--quick] [--thresholds FILE] [--skip-stage-all] [--only|--skip STAGES]" >&2
           exit 2 ;;
    esac
done
[ -r "$THRESHOLDS" ] || { echo "FAIL prod gate: bench: cannot read $THRESHOLDS"; exit 1; }
t0=$(date +%s)
if [ -z "$SKIP_ALL" ]; then
    echo "== stage all"
    out=$(tools/stage_all.sh "${PASS_ON[@]}" | tee /dev/stderr | tail -n 1)
    case $out in
        "PASS stage all"*) ;;
        *) echo "FAIL prod gate: stage all: ${out#FAIL stage all: }"; exit 1 ;;
    esac
fi
echo "== bench ($THRESHOLDS)"
t1=$(date +%s)
out=$(/usr/bin/python3 tools/bench/gate.py --thresholds "$THRESHOLDS" "${QUICK[@]}" 2>&1)
rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
    echo "FAIL prod gate: bench: $(echo "$out" | tail -n 1 | sed 's/^gate: FAIL //')"
    exit 1
fi
echo "bench: $(($(date +%s) - t1)) s"
echo "PASS prod gate ($(($(date +%s) - t0)) s)"
