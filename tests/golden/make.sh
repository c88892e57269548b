#!/bin/sh
# Rebuilds every golden artifact of tests/golden/ into OUT_DIR, with exactly the commands
# listed in tests/golden/README.md. The same inputs and flags must give byte-identical
# files: tests/test_golden.py runs this into a temporary directory and compares every
# file with the committed ones (tests/golden/SHA256SUMS pins them).
#
# usage: tests/golden/make.sh OUT_DIR      (ANNPACK=path/to/annpack, default build/tools/annpack)
#
# OUT_DIR must not exist or be empty. To regenerate the committed files (a deliberate
# format change, see README.md): tests/golden/regen.sh
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
A=${ANNPACK:-$ROOT/build/tools/annpack}
case $A in /*) ;; *) A=$(pwd)/$A ;; esac
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
[ -z "$(ls -A "$OUT")" ] || { echo "$0: $OUT is not empty" >&2; exit 2; }

# The only clock annpack reads; results never depend on the thread count.
SOURCE_DATE_EPOCH=1700000000
ANNPACK_THREADS=2
export SOURCE_DATE_EPOCH ANNPACK_THREADS
unset ANNPACK_MAX_DIM ANNPACK_MAX_LISTS ANNPACK_MAX_LIST_BYTES ANNPACK_MAX_META_BYTES \
      ANNPACK_META_MAX_LINE ANNPACK_ALLOW_LARGE_META ANNPACK_LOG_JSON
# Inputs by relative path, from the repository root (no absolute path reaches a file).
cd "$ROOT"
IN=tests/golden/inputs
q() { "$A" "$@" >/dev/null; }

# --- packs ------------------------------------------------------------------------
q build --input examples/tiny_docs.csv --text-col text --id-col id --lists 4 --seed 1 --embedder-version 1 --target-recall 0 \
    --output "$OUT/pack-zstd"
q build --input examples/tiny_docs.csv --text-col text --id-col id --lists 4 --seed 1 --embedder-version 1 --target-recall 0 \
    --meta-compression none --output "$OUT/pack-plain"
q build --input examples/tiny_docs.csv --text-col text --id-col id --lists 4 --seed 1 --embedder-version 1 --target-recall 0 \
    --sq8 --output "$OUT/pack-sq8"
q build --vectors $IN/vectors.fvecs --lists 4 --seed 1 --target-recall 0 --output "$OUT/pack-vectors"

# --- packset: base, delta 1 (adds 40 41, updates 7, deletes 1 2),
#     delta 2 (re-adds 1, updates 3, adds 42, deletes 41 5), signed with the test key ---
PS=$OUT/packset
q packset build-base --input examples/tiny_docs.csv --packset "$PS" --lists 4 --seed 1 \
    --embedder-version 1 --target-recall 0
q packset build-delta --packset "$PS" --add examples/delta_add.csv --delete-ids 1,2 \
    --out "$PS/deltas/0001.delta"
q packset build-delta --packset "$PS" --add $IN/delta2.csv --delete-ids 41,5 \
    --out "$PS/deltas/0002.delta"
# sign warns about a private key readable by others (git checks files out 0644)
KEY=$(mktemp)
trap 'rm -f "$KEY"' EXIT
cat tests/golden/keys/test-key-DO-NOT-USE.pem >"$KEY"
q sign "$PS" --key "$KEY"

# --- its rebase: the merged view compacted into a new base, no deltas ---------------
q packset rebase --packset "$PS" --out "$OUT/packset-rebased" --lists 4 --seed 1 \
    --pubkey tests/golden/keys/test-key-DO-NOT-USE.pub

# --- named malformed packs, each derived from one of the above with one defect ------
ANNPACK=$A /usr/bin/python3 "$HERE/make_bad.py" "$OUT"
