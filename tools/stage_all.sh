#!/usr/bin/env bash
# The full repository gate (docs/PRODUCTION.md, "Releasing"): every stage below, in order,
# each timed, its output in $LOGS/STAGE.log (shown when it fails). Ends with
# `PASS stage all` (exit 0) or `FAIL stage all: STAGE` (exit 1).
#   setup        tools/setup.sh: the Debian packages, build/ configured and built (gcc)
#   format       clang-format --dry-run --Werror on every C file, the core's layering
#   tidy         clang-tidy (.clang-tidy, warnings as errors) on core/, fs/, tools/
#   gcc          build/ compiled with gcc and -Werror (the project's warning set)
#   clang        build-clang/ compiled with clang and -Werror
#   unit         meson test -C build (C unit tests, the fuzz-corpus replays, ABI)
#   web          npm test in web/: the WebAssembly core against the CLI, over real nginx
#   pytest       the integration suite on build/
#   sanitizer    build-asan/ (ASan+UBSan): meson test and pytest -m "not slow"
#   fuzz         the committed fuzz corpora replayed under ASan+UBSan
#   determinism  two release builds in different directories are byte-identical, and a
#                pack built with 1 and 2 threads is byte-identical
#   docs         the docs' commands (the guide, the install layout, the Python blocks) run
#                and every command in `annpack --help` has its section in CLI.md and annpack(1)
# Usage: tools/stage_all.sh [--only S1,S2] [--skip S1,S2]
set -uo pipefail
cd "$(dirname "$0")/.."
ALL="setup format tidy gcc clang unit web pytest sanitizer fuzz determinism docs"
ONLY= SKIP=
while [ $# -gt 0 ]; do
    case $1 in
        --only) ONLY=${2//,/ }; shift 2 ;;
        --skip) SKIP=${2//,/ }; shift 2 ;;
        *) echo "usage: $0 [--only S1,S2] [--skip S1,S2]   stages: $ALL" >&2; exit 2 ;;
    esac
done
for s in $ONLY $SKIP; do
    [[ " $ALL " == *" $s "* ]] || { echo "stage_all: unknown stage '$s' (stages: $ALL)" >&2; exit 2; }
done
BUILD=${BUILD:-build}
LOGS=${LOGS:-build-stage}
mkdir -p "$LOGS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

asan_build() {
    if [ ! -f build-asan/build.ninja ]; then
        meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
            --buildtype=debug -Dtest_hooks=true || return 1
    fi
    nice ninja -C build-asan
}

stage_setup() { tools/setup.sh; }
stage_format() {
    local bad
    bad=$(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/' |
          while read -r f; do clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
    [ -z "$bad" ] || { echo "clang-format would change (run clang-format -i): $bad"; return 1; }
    /usr/bin/python3 tools/check_layers.py .
}
stage_tidy() {
    local out
    out=$(git ls-files 'core/*.c' 'fs/*.c' 'tools/*.c' |
          xargs -P "$(nproc)" -n 8 clang-tidy -p "$BUILD" --quiet 2>/dev/null |
          grep -E "(warning|error):" | sort -u || true)
    [ -z "$out" ] || { echo "$out"; return 1; }
}
stage_gcc() {
    grep -q "^C compiler for the host machine: .*(gcc " "$BUILD/meson-logs/meson-log.txt" ||
        { echo "$BUILD is not a gcc build (configure it with CC=gcc)"; return 1; }
    nice ninja -C "$BUILD"
}
stage_clang() {
    if [ ! -f build-clang/build.ninja ]; then
        CC=clang meson setup build-clang -Dwerror=true -Dtest_hooks=true || return 1
    fi
    nice ninja -C build-clang
}
stage_unit() { meson test -C "$BUILD" --print-errorlogs; }
stage_web() {
    local b
    b=$(realpath "$BUILD") && (cd web && ANNPACK_BUILD="$b" npm test --silent)
}
stage_pytest() { ANNPACK_BUILD="$PWD/$BUILD" /usr/bin/python3 -m pytest -q tests; }
stage_sanitizer() {
    asan_build || return 1
    meson test -C build-asan --print-errorlogs || return 1
    ASAN_OPTIONS=detect_leaks=1 ANNPACK_BUILD="$PWD/build-asan" \
        /usr/bin/python3 -m pytest -q tests -m "not slow"
}
stage_fuzz() {
    asan_build || return 1
    local names
    names=$(meson test -C build-asan --list 2>/dev/null | grep '^fuzz_corpus_')
    [ -n "$names" ] || { echo "no fuzz_corpus_* tests"; return 1; }
    # shellcheck disable=SC2086
    meson test -C build-asan --print-errorlogs $names
}
stage_determinism() {
    local d
    for d in build-det-a build-det-b; do
        rm -rf "$d"
        meson setup "$d" --buildtype=release -Dtests=false >/dev/null || return 1
        nice ninja -C "$d" >/dev/null || return 1
    done
    local f status=0
    for f in core/libannpack.so.0 tools/annpack fs/annpackfs; do
        if cmp "build-det-a/$f" "build-det-b/$f"; then
            echo "identical: $f ($(sha256sum < "build-det-a/$f" | cut -c1-16))"
        else
            echo "differ: $f"; status=1
        fi
    done
    local t
    t=$(mktemp -d)
    for n in 1 2; do
        ANNPACK_THREADS=$n "$BUILD/tools/annpack" build --input examples/tiny_docs.csv \
            --text-col text --id-col id --output "$t/p$n" --lists 8 --seed 1 >/dev/null || status=1
    done
    diff -r "$t/p1" "$t/p2" && echo "identical: a pack built with 1 and 2 threads" || status=1
    rm -rf "$t"
    return $status
}
stage_docs() {
    local cmd status=0
    for cmd in $("$BUILD/tools/annpack" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}'); do
        grep -qE "^## .*\b$cmd\b" docs/CLI.md || { echo "docs/CLI.md has no section for '$cmd'"; status=1; }
        grep -q "^\*$cmd\*" docs/man/annpack.1.scd || { echo "annpack(1) lacks '$cmd'"; status=1; }
    done
    ANNPACK_BUILD="$PWD/$BUILD" /usr/bin/python3 -m pytest -q tests/test_production_doc.py \
        tests/test_install.py tests/test_python.py || status=1
    return $status
}

t_all=$(date +%s)
summary=()
for s in $ALL; do
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $s "* ]]; then continue; fi
    if [[ " $SKIP " == *" $s "* ]]; then continue; fi
    echo "== stage $s"
    t0=$(date +%s)
    if ! "stage_$s" >"$LOGS/$s.log" 2>&1; then
        tail -n 60 "$LOGS/$s.log"
        echo "FAIL stage all: $s ($(($(date +%s) - t0)) s; log: $LOGS/$s.log)"
        exit 1
    fi
    summary+=("$(printf '%-12s %5d s' "$s" $(($(date +%s) - t0)))")
    echo "   ok ($(($(date +%s) - t0)) s)"
done
printf '%s\n' "${summary[@]}"
echo "PASS stage all ($(($(date +%s) - t_all)) s)"
