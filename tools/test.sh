#!/usr/bin/env bash
# Runs every test: C unit tests (meson test), the direct client's node tests (web/) and the
# pytest integration suite, first in the
# normal build, then the unit tests and a pytest subset under ASan+UBSan.
# Usage: tools/test.sh [--quick]   (--quick skips the sanitizer pass)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

echo "== lint (clang-format, layers, clang-tidy)"
tools/lint.sh build

echo "== unit tests (build/)"
meson test -C build --print-errorlogs

echo "== direct client (npm test in web/: the WebAssembly core against the CLI, real nginx)"
(cd web && ANNPACK_BUILD="$PWD/../build" npm test --silent)

echo "== integration tests (pytest)"
ANNPACK_BUILD="$PWD/build" /usr/bin/python3 -m pytest -q tests

if [ "${1:-}" != "--quick" ]; then
    echo "== sanitizer build (build-asan/): unit tests + pytest"
    if [ ! -f build-asan/build.ninja ]; then
        meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
            --buildtype=debug -Dtest_hooks=true >/dev/null
    elif ! meson introspect --buildoptions build-asan | python3 -c \
            'import json, sys; sys.exit(not any(o["name"] == "test_hooks" and o["value"] for o in json.load(sys.stdin)))'; then
        meson configure build-asan -Dtest_hooks=true >/dev/null
    fi
    ninja -C build-asan >/dev/null
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ANNPACK_BUILD="$PWD/build-asan" /usr/bin/python3 -m pytest -q tests -m "not slow"
fi
