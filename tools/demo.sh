#!/usr/bin/env bash
# The main job end to end on the examples: set up, build a pack from examples/,
# verify it deeply, inspect it and search it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
A=build/tools/annpack
OUT=${OUT:-build/demo}
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== build a pack from examples/tiny_docs.csv"
$A build --input examples/tiny_docs.csv --text-col text --id-col id --output "$OUT/pack" --lists 4 --seed 1
echo "== verify --deep"
$A verify "$OUT/pack" --deep | head -3
echo "== inspect"
$A inspect "$OUT/pack" | head -8
echo "== search"
$A search "$OUT/pack" "how do I water my houseplants" -k 3
