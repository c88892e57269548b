#!/usr/bin/env bash
# Security audit: cppcheck, clang-tidy (.clang-tidy), every fuzzer for a short time, and
# the sanitizer suite. Prints each tool's findings; exits nonzero if any tool finds any.
# Usage: tools/security_audit.sh [FUZZ_SECONDS]   (default 30 per fuzzer)
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
status=0

echo "== cppcheck"
if ! cppcheck --quiet --enable=warning,portability --error-exitcode=1 --inline-suppr \
        -I core/include -I core --suppress=missingIncludeSystem core fs tools; then
    status=1
fi

echo "== clang-tidy (.clang-tidy)"
tidy=$(git ls-files "core/*.c" "fs/*.c" "tools/*.c" | xargs -P "$(nproc)" -n 8 clang-tidy -p build --quiet 2>/dev/null | grep -E "(warning|error):" | sort -u || true)
if [ -n "$tidy" ]; then
    echo "$tidy"
    echo "clang-tidy: $(echo "$tidy" | wc -l) finding(s)"
    status=1
fi

echo "== fuzzers"
tools/fuzz.sh "${1:-30}" || status=1

echo "== sanitizer suite (unit + pytest under ASan+UBSan)"
if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null
fi
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 meson test -C build-asan || status=1
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 ANNPACK_BUILD="$PWD/build-asan" \
    /usr/bin/python3 -m pytest -q tests -m "not slow" || status=1

[ $status -eq 0 ] && echo "security audit: clean" || echo "security audit: FINDINGS (see above)"
exit $status
