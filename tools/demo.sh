#!/usr/bin/env bash
# The main job end to end on examples/: set up, build a packset (base + one delta), sign
# it, verify it, mount it with annpackfs, read a query and a document, unmount.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --demo
A=build/tools/annpack
OUT=${OUT:-build/demo}
if mountpoint -q "$OUT/mnt" 2>/dev/null; then fusermount3 -u "$OUT/mnt"; fi
rm -rf "$OUT" && mkdir -p "$OUT/mnt"
trap 'mountpoint -q "$OUT/mnt" && fusermount3 -u "$OUT/mnt"' EXIT

echo "== build a packset: base from examples/tiny_docs.csv, delta from examples/delta_add.csv"
$A packset build-base --input examples/tiny_docs.csv --packset "$OUT/ps" --lists 4 --seed 1 >/dev/null
$A packset build-delta --packset "$OUT/ps" --add examples/delta_add.csv --delete-ids 1,2 \
    --out "$OUT/ps/deltas/0001.delta"
echo "== sign and verify"
$A keygen --out "$OUT/ci"
$A sign "$OUT/ps" --key "$OUT/ci.pem"
$A verify "$OUT/ps" --pubkey "$OUT/ci.pub" --deep | grep -E '"ok"|key_id'
echo "== mount"
build/fs/annpackfs "$OUT/ps" "$OUT/mnt" -o "pubkey=$OUT/ci.pub"
ls -la "$OUT/mnt"
cat "$OUT/mnt/health"
echo "== cat a query"
cat "$OUT/mnt/query/kombucha tea?k=3"
echo "== cat a document (id 7 was updated by the delta)"
cat "$OUT/mnt/doc/7"
echo "== unmount"
fusermount3 -u "$OUT/mnt"
echo "== serve it over HTTP (annpackfs + nginx + the search page) and check every URL"
$A smoke "$OUT/ps" --pubkey "$OUT/ci.pub"
echo "demo: OK  (to search from a browser: $A serve $OUT/ps --port 8000 --pubkey $OUT/ci.pub)"
