#!/bin/sh
# Regenerates the committed golden artifacts in tests/golden/ and their SHA256SUMS.
# Doing so is a format change: run it only on purpose, review `git diff --stat`, and say
# in the commit why the bytes changed (README.md). tests/test_golden.py fails until the
# committed files equal what make.sh builds.
#
# usage: tests/golden/regen.sh          (ANNPACK=path/to/annpack, default build/tools/annpack)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$HERE/make.sh" "$T/g"
cd "$HERE"
rm -rf pack-zstd pack-plain pack-sq8 pack-vectors packset packset-rebased
find bad -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
cp -a "$T/g/." .
# Every file make.sh writes, the kept older artifacts (v0-*: never regenerated) and every
# input it reads from here (sha256sum -c format).
find pack-* packset packset-rebased v0-* bad inputs keys \( -type f -o -type l \) \
    ! -path bad/EXPECTED ! -name '*.py' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS
echo "regenerated $(wc -l <SHA256SUMS) files; review: git -C $HERE status --short ."
