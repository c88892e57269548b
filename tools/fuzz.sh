#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz/fuzz_*.c) under ASan+UBSan against the
# coverage-instrumented library, one target at a time, starting from the committed corpora
# (tests/fuzz/corpus/<target>/). See docs/ROBUSTNESS.md.
#
# Usage:
#   tools/fuzz.sh --budget SECONDS       split SECONDS over all targets (a short CI run)
#   tools/fuzz.sh --per-target SECONDS   SECONDS per target (a campaign: e.g. 3600)
#   tools/fuzz.sh SECONDS                the same as --per-target SECONDS (default 60)
#   tools/fuzz.sh --merge                fold new entries into tests/fuzz/corpus/ (minimised)
# Options: --only "annp view"  (or FUZZ_ONLY=...) runs a subset; --build-dir DIR (default
# build-fuzz, configured here with clang on first use).
#
# Per target it prints executions, coverage (libFuzzer's cov: at start and end), new corpus
# entries and crashes. New corpus entries go to BUILD/corpus/<target>/, crashes (and
# timeouts, leaks, OOMs) to BUILD/crashes/<target>/, the log to BUILD/fuzz_<target>.log.
# Exit status 1 when any target crashed, 2 on a usage error.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

mode=per-target
secs=60
only=${FUZZ_ONLY:-}
bdir=build-fuzz
while [ $# -gt 0 ]; do
    case $1 in
        --budget | --per-target)
            [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || {
                echo "fuzz.sh: $1 needs a positive number of seconds" >&2
                exit 2
            }
            mode=${1#--}
            secs=$2
            shift 2
            ;;
        --merge) mode=merge; shift ;;
        --only)
            [ $# -ge 2 ] || usage
            only=$2
            shift 2
            ;;
        --build-dir)
            [ $# -ge 2 ] || usage
            bdir=$2
            shift 2
            ;;
        -h | --help) usage ;;
        *)
            if [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; then
                mode=per-target
                secs=$1
                shift
            else
                echo "fuzz.sh: unknown argument '$1'" >&2
                usage
            fi
            ;;
    esac
done

# Every target with a source file (names from tests/fuzz/fuzz_<name>.c).
targets=()
for f in tests/fuzz/fuzz_*.c; do
    t=${f#tests/fuzz/fuzz_}
    t=${t%.c}
    if [ -n "$only" ] && [[ " $only " != *" $t "* ]]; then continue; fi
    targets+=("$t")
done
for t in $only; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no targets" >&2; exit 2; }

if [ ! -f "$bdir/build.ninja" ]; then
    command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (libFuzzer)" >&2; exit 1; }
    echo "configuring $bdir (clang, -Dfuzz=true, ASan+UBSan)..."
    CC=clang meson setup "$bdir" -Dfuzz=true -Dfs=false -Db_sanitize=address,undefined \
        -Db_lundef=false --buildtype=debugoptimized >/dev/null || exit 1
fi
bins=()
for t in "${targets[@]}"; do bins+=("tests/fuzz/fuzz_$t"); done
ninja -C "$bdir" "${bins[@]}" >/dev/null || { echo "fuzz.sh: building $bdir failed" >&2; exit 1; }

dict_of() {
    case $1 in
        json | manifest | delta | deep) echo "-dict=tests/fuzz/dict/json.dict" ;;
        query) echo "-dict=tests/fuzz/dict/query.dict" ;;
    esac
}

# One process at a time, single-threaded: the results must not depend on the machine.
export ANNPACK_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
common=(-max_len=16384 -timeout=10 -rss_limit_mb=2048)

if [ "$mode" = merge ]; then
    # Named files (hand-written seeds, crash regressions) are always kept; hash-named ones
    # are re-minimised together with the new entries of the campaigns.
    for t in "${targets[@]}"; do
        c=tests/fuzz/corpus/$t
        tmp=$(mktemp -d)
        old=$(mktemp -d)
        mkdir -p "$c" "$bdir/corpus/$t"
        for f in "$c"/*; do
            [ -f "$f" ] || continue
            if [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]]; then cp "$f" "$old/"; else cp "$f" "$tmp/"; fi
        done
        before=$(ls "$c" | wc -l)
        if ! "$bdir/tests/fuzz/fuzz_$t" "${common[@]}" -merge=1 "$tmp" "$old" "$bdir/corpus/$t" \
            >"$bdir/merge_$t.log" 2>&1; then
            echo "fuzz_$t: merge FAILED (see $bdir/merge_$t.log)"
            rm -rf "$tmp" "$old"
            exit 1
        fi
        rm -f "$c"/*
        cp "$tmp"/* "$c"/
        rm -rf "$tmp" "$old"
        echo "fuzz_$t: corpus $before -> $(ls "$c" | wc -l) files, $(du -sb "$c" | cut -f1) bytes"
    done
    exit 0
fi

n=${#targets[@]}
if [ "$mode" = budget ]; then
    each=$((secs / n))
    [ "$each" -ge 1 ] || each=1
    echo "budget ${secs}s over $n targets: ${each}s each"
else
    each=$secs
fi

status=0
total=0
for t in "${targets[@]}"; do
    corpus=$bdir/corpus/$t crashes=$bdir/crashes/$t log=$bdir/fuzz_$t.log
    mkdir -p "$corpus" "$crashes"
    # The first corpus directory receives the new entries; the committed one is read only.
    "$bdir/tests/fuzz/fuzz_$t" $(dict_of "$t") "${common[@]}" -max_total_time="$each" \
        -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/corpus/$t" \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    cov0=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | grep -oE '[0-9]+$')
    cov1=$(grep -oE '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
    # Inputs found while fuzzing (after the seeds were loaded): libFuzzer's NEW lines.
    added=$(awk '/INITED/ {on = 1; next} on && /^#[0-9]+\tNEW / {n++} END {print n + 0}' "$log")
    total=$((total + ${execs:-0}))
    cov="cov ${cov0:-?} -> ${cov1:-${cov0:-?}}, $added new corpus entries"
    if [ $rc -ne 0 ]; then
        art=$(ls -t "$crashes" | head -1)
        echo "fuzz_$t: FAILED (exit $rc) after ${execs:-?} executions, $cov: ${art:+$crashes/$art }(log: $log)"
        status=1
    else
        echo "fuzz_$t: ${execs:-?} executions in ${each}s, $cov, no crash"
    fi
done
echo "total: $total executions; new entries in $bdir/corpus/, crashes in $bdir/crashes/"
echo "(tools/fuzz.sh --merge folds new entries into tests/fuzz/corpus/)"
exit $status
