#!/usr/bin/env bash
# The static checks every change must pass (run by tools/test.sh, so by CI): formatting
# (clang-format --dry-run --Werror with the repository's .clang-format), clang-tidy
# (.clang-tidy: bug-prone patterns and the static analyzer, warnings as errors) over every
# C file of core/, fs/ and tools/, and the core's layering (tools/check_layers.py).
# Usage: tools/lint.sh [BUILD_DIR]   (BUILD_DIR holds compile_commands.json; default build)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
status=0

echo "== clang-format"
bad=$(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/' |
      while read -r f; do clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
if [ -n "$bad" ]; then
    echo "clang-format would change (run clang-format -i on them):"
    echo "$bad"
    status=1
fi

echo "== layers"
/usr/bin/python3 tools/check_layers.py . || status=1

echo "== clang-tidy"
tidy=$(git ls-files 'core/*.c' 'fs/*.c' 'tools/*.c' |
       xargs -P "$(nproc)" -n 8 clang-tidy -p "$BUILD" --quiet 2>/dev/null |
       grep -E "(warning|error):" | sort -u || true)
if [ -n "$tidy" ]; then
    echo "$tidy"
    echo "clang-tidy: $(echo "$tidy" | wc -l) finding(s)"
    status=1
fi
[ $status -eq 0 ] && echo "lint: clean"
exit $status
