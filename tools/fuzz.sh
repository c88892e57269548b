#!/usr/bin/env bash
# Runs every libFuzzer target under ASan+UBSan for SECONDS each (default 60), starting
# from the committed corpora (tests/fuzz/corpus/<target>/), and reports executions per
# target. New corpus entries go to build-fuzz/corpus/<target>/; crashes to
# build-fuzz/crashes/<target>/ (turn each into a corpus file: the replay test keeps it fixed).
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Dfs=false -Db_sanitize=address,undefined \
        -Db_lundef=false --buildtype=debugoptimized >/dev/null || exit 1
fi
ninja -C build-fuzz >/dev/null || exit 1
status=0
total=0
for t in annp csv json manifest pem query meta idlist vecs sq8 vname; do
    mkdir -p build-fuzz/corpus/$t build-fuzz/crashes/$t
    log=build-fuzz/fuzz_$t.log
    dict=""
    case $t in json|manifest) dict=-dict=tests/fuzz/dict/json.dict ;; query) dict=-dict=tests/fuzz/dict/query.dict ;; esac
    [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $t "* ]] && continue
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        build-fuzz/tests/fuzz/fuzz_$t $dict -max_total_time="$SECS" -max_len=65536 -timeout=10 \
        -artifact_prefix=build-fuzz/crashes/$t/ build-fuzz/corpus/$t tests/fuzz/corpus/$t \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -z "$execs" ] && execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
    total=$((total + ${execs:-0}))
    if [ $rc -ne 0 ]; then
        echo "fuzz_$t: FAILED after ${execs:-?} executions (see $log, build-fuzz/crashes/$t/)"
        status=1
    else
        echo "fuzz_$t: ${execs:-?} executions in ${SECS}s, no crash"
    fi
done
echo "total: $total executions"
exit $status
