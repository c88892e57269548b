#!/usr/bin/env python3
"""Deterministic benchmark data: a Gaussian mixture of unit vectors, held-out queries and
exact ground truth, in the standard ANN benchmark formats.

usage: gen_data.py OUT_DIR [--n 1000000] [--dim 384] [--centres 2000] [--queries 1000]
                   [--groups 100] [--tau 0.5] [--sigma 1.5] [--gt-k 100] [--seed 1]

Writes OUT_DIR/base.fvecs (n vectors), OUT_DIR/queries.fvecs (held out: drawn from the same
mixture, never in base) and OUT_DIR/gt.ivecs (for each query the gt-k base row numbers with
the largest dot product, best first, ties by lower row), plus OUT_DIR/info.json.

Each vector is normalise(c + sigma * g / sqrt(dim)) with c a unit centre drawn uniformly
among `centres` random unit centres and g standard normal. Queries are rounded to float16
(then stored as float32), so a query sent through the mount as f16 is the same query the
in-process search sees. Ground truth is exact: candidates from float32 scores, re-scored in
float64. Same arguments, same numpy: byte-identical files. Needs numpy (Debian's
python3-numpy: run with /usr/bin/python3)."""
import argparse
import json
import pathlib
import sys

import numpy as np

CHUNK = 100_000


def write_vecs(f, a, dtype):
    """Appends rows of a as fvecs/ivecs: int32 dim, then dim values."""
    n, d = a.shape
    rec = np.empty((n, d + 1), dtype=np.int32)
    rec[:, 0] = d
    rec[:, 1:] = a.astype(dtype).view(np.int32)
    f.write(rec.tobytes())


def draw(rng, centres, n, sigma):
    d = centres.shape[1]
    which = rng.integers(0, centres.shape[0], size=n)
    x = centres[which] + (sigma / np.sqrt(d)) * rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--centres", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--sigma", type=float, default=1.5)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--gt-k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.n < a.gt_k or a.dim < 1 or a.centres < 1 or a.queries < 1:
        sys.exit("gen_data.py: need n >= gt-k and positive dim, centres, queries")
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    # Centres are themselves a mixture around `groups` super-centres, so clusters overlap
    # in families and a query's neighbours spread over a few nearby lists, as in real data.
    supers = rng.standard_normal((a.groups, a.dim), dtype=np.float32)
    supers /= np.linalg.norm(supers, axis=1, keepdims=True)
    centres = draw(rng, supers, a.centres, a.tau)
    # Queries first, from their own stream, so they do not depend on n.
    qrng = np.random.default_rng([a.seed, 1])
    q = draw(qrng, centres, a.queries, a.sigma).astype(np.float16).astype(np.float32)
    base = np.empty((a.n, a.dim), dtype=np.float32)
    brng = np.random.default_rng([a.seed, 2])
    for s in range(0, a.n, CHUNK):
        base[s:s + CHUNK] = draw(brng, centres, min(CHUNK, a.n - s), a.sigma)
    with open(out / "base.fvecs.tmp", "wb") as f:
        for s in range(0, a.n, CHUNK):
            write_vecs(f, base[s:s + CHUNK], np.float32)
    with open(out / "queries.fvecs.tmp", "wb") as f:
        write_vecs(f, q, np.float32)

    # Exact ground truth: the best 4*gt_k candidates by float32 score, re-ranked in float64.
    cand_k = min(a.n, 4 * a.gt_k)
    best_s = np.full((a.queries, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((a.queries, 0), dtype=np.int64)
    for s in range(0, a.n, CHUNK):
        sc = q @ base[s:s + CHUNK].T
        kk = min(cand_k, sc.shape[1])
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(sc, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + s], axis=1)
        if best_s.shape[1] > cand_k:
            keep = np.argpartition(-best_s, cand_k - 1, axis=1)[:, :cand_k]
            best_s = np.take_along_axis(best_s, keep, 1)
            best_i = np.take_along_axis(best_i, keep, 1)
    gt = np.empty((a.queries, a.gt_k), dtype=np.int32)
    q64 = q.astype(np.float64)
    for i in range(a.queries):
        ids = best_i[i]
        exact = base[ids].astype(np.float64) @ q64[i]
        order = np.lexsort((ids, -exact))[:a.gt_k]
        gt[i] = ids[order]
    with open(out / "gt.ivecs.tmp", "wb") as f:
        write_vecs(f, gt, np.int32)
    for name in ("base.fvecs", "queries.fvecs", "gt.ivecs"):
        (out / (name + ".tmp")).rename(out / name)
    info = {k: getattr(a, k) for k in ("n", "dim", "centres", "groups", "tau", "queries", "sigma", "gt_k", "seed")}
    info["numpy"] = np.__version__
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
