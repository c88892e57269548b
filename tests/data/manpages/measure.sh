#!/bin/sh
# The figures of docs/SEARCH_QUALITY.md: hash v1 vs v2 on this judged set, at the default
# (calibrated) probe, at probe 8 (the old default) and exact, as a pack and as a packset (base + one delta) before and after a rebase.
# usage: tests/data/manpages/measure.sh WORK_DIR   (ANNPACK=path/to/annpack)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
A=${ANNPACK:-$HERE/../../../build/tools/annpack}
W=$1
mkdir -p "$W"
J=$HERE/judgments.jsonl
# base: pages 0..999, delta: the rest (ids 1000..)
head -n 1001 "$HERE/corpus.csv" >"$W/base.csv"
{ head -n 1 "$HERE/corpus.csv"; tail -n +1002 "$HERE/corpus.csv"; } >"$W/delta.csv"
row() { # label dir [probe]; no probe: the pack's default probe
    "$A" eval "$2" --judgments "$J" ${3:+--probe "$3"} | /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin)
print('| $1 | %d/%d | %.3f | %.3f | %.3f | %.3f | %.3f |' % (d['probe'], d['n_lists'],
      d['precision_at_5'], d['ndcg_at_10'], d['recall_at_k'], d['mrr'], d['overlap_at_k']))"
}
echo "| pack | probe/lists | P@5 | nDCG@10 | recall@10 | MRR | overlap@10 |"
echo "|---|---|---|---|---|---|---|"
for v in 1 2; do
    rm -rf "$W/v$v" "$W/ps$v" "$W/ps$v-rebased"
    "$A" build --input "$HERE/corpus.csv" --text-col text --id-col id --embedder-version $v \
        --output "$W/v$v" >/dev/null 2>&1
    "$A" packset build-base --input "$W/base.csv" --packset "$W/ps$v" --embedder-version $v \
        >/dev/null 2>&1
    "$A" packset build-delta --packset "$W/ps$v" --add "$W/delta.csv" \
        --out "$W/ps$v/deltas/0001.delta" >/dev/null 2>&1
    "$A" packset rebase --packset "$W/ps$v" --out "$W/ps$v-rebased" >/dev/null 2>&1
    for p in "" 8 1000000; do
        row "hash v$v, one pack" "$W/v$v" "$p"
        row "hash v$v, base + delta" "$W/ps$v" "$p"
        row "hash v$v, rebased" "$W/ps$v-rebased" "$p"
    done
done
