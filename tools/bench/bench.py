#!/usr/bin/env python3
"""The quick offline benchmark: build a pack from a synthetic CSV with the built-in hash
embedder and search it, printing a short summary. Standard library only (any python3).

usage: ANNPACK_OFFLINE=1 python3 tools/bench/bench.py [--rows 2000] [--lists 64] [--dim 256]
           [--queries 100] [-k 10] [--probe 8] [--seed 1] [--json] [--keep DIR]

Rows are 12-30 words drawn from a Zipf-like vocabulary; each query is a row's own text with
a third of its words dropped. Reported: build time and rows/s, pack size, search latency
(the in-process took_ms of `annpack search`: embed + probe + scan + rows, p50/p99), recall@k
of the probe against an exact search (probe = every list) and how often the query's own row
comes first. For the full harness against FAISS see tools/bench/harness.py."""
import argparse
import csv
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def annpack_bin():
    """$ANNPACK, else $ANNPACK_BUILD/tools/annpack, else `annpack` on PATH (an installed
    package), else this tree's build/."""
    if os.environ.get("ANNPACK"):
        return os.environ["ANNPACK"]
    if os.environ.get("ANNPACK_BUILD"):
        b = pathlib.Path(os.environ["ANNPACK_BUILD"]) / "tools" / "annpack"
    else:
        b = shutil.which("annpack") or ROOT / "build" / "tools" / "annpack"
    if not pathlib.Path(b).exists():
        sys.exit(f"bench.py: {b} not found: build first (tools/setup.sh) or set $ANNPACK")
    return str(b)


def run(args, **kw):
    r = subprocess.run([str(x) for x in args], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"bench.py: {' '.join(map(str, args[:3]))} failed: {r.stderr.strip()}")
    return r.stdout


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser(description="annpack quick offline benchmark")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--lists", type=int, default=64)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--probe", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    ap.add_argument("--keep", help="build into DIR and keep it (default: a temporary dir)")
    a = ap.parse_args()
    if a.rows < 1 or a.lists < 1 or a.queries < 1 or a.k < 1 or a.probe < 1:
        sys.exit("bench.py: --rows, --lists, --queries, -k and --probe must be positive")
    if os.environ.get("ANNPACK_OFFLINE") != "1":
        print("bench.py: note: ANNPACK_OFFLINE is not 1; the hash embedder is offline anyway",
              file=sys.stderr)
    exe = annpack_bin()
    rng = random.Random(a.seed)
    vocab = [f"w{i}" for i in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    texts = [" ".join(rng.choices(vocab, weights, k=rng.randint(12, 30))) for _ in range(a.rows)]
    work = pathlib.Path(a.keep) if a.keep else pathlib.Path(tempfile.mkdtemp(prefix="annpack-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = work / "rows.csv"
        with open(src, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "text"])
            for i, t in enumerate(texts):
                w.writerow([i, t])
        pack = work / "pack"
        env = dict(os.environ, ANNPACK_OFFLINE="1")
        t0 = time.perf_counter()
        run([exe, "build", "--input", src, "--text-col", "text", "--id-col", "id", "--output",
             pack, "--lists", a.lists, "--dim", a.dim, "--seed", a.seed], env=env)
        build_s = time.perf_counter() - t0
        info = json.loads(run([exe, "inspect", pack], env=env))
        size = sum(p.stat().st_size for p in pack.iterdir())
        n_lists = info.get("n_lists", a.lists)
        picks = rng.sample(range(a.rows), min(a.queries, a.rows))
        took, took_exact, recall, self_hit = [], [], [], 0
        for i in picks:
            words = texts[i].split()
            q = " ".join(wd for j, wd in enumerate(words) if j % 3 != 2)
            got = json.loads(run([exe, "search", pack, q, "-k", a.k, "--probe", a.probe], env=env))
            exact = json.loads(run([exe, "search", pack, q, "-k", a.k, "--probe", n_lists], env=env))
            took.append(got["took_ms"])
            took_exact.append(exact["took_ms"])
            ids = [r["id"] for r in got["results"]]
            want = [r["id"] for r in exact["results"]]
            recall.append(len(set(ids) & set(want)) / max(1, len(want)))
            self_hit += bool(ids) and ids[0] == i
        out = {
            "rows": a.rows, "dim": a.dim, "lists": n_lists, "build_s": round(build_s, 3),
            "rows_per_s": round(a.rows / build_s), "pack_bytes": size, "queries": len(picks),
            "k": a.k, "probe": a.probe, "took_ms_p50": round(pct(took, 50), 3),
            "took_ms_p99": round(pct(took, 99), 3),
            "took_ms_exact_p50": round(pct(took_exact, 50), 3),
            "vector_bytes": a.rows * a.dim * 2,
            "recall_at_k_vs_exact": round(sum(recall) / len(recall), 4),
            "self_hit_at_1": round(self_hit / len(picks), 4),
            "kernel": json.loads(run([exe, "diagnose"], env=env)).get("search_kernel"),
        }
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(out))
        return
    print("annpack quick benchmark (offline, hash embedder)")
    print(f"  pack:   {out['rows']} rows, dim {out['dim']}, {out['lists']} lists, "
          f"{out['pack_bytes'] / 1e6:.2f} MB")
    print(f"  build:  {out['build_s']:.2f} s ({out['rows_per_s']} rows/s, one process)")
    print(f"  search: probe {a.probe}, k {a.k}, {out['queries']} queries, kernel {out['kernel']}: "
          f"took_ms p50 {out['took_ms_p50']:.3f}, p99 {out['took_ms_p99']:.3f}")
    print(f"  recall@{a.k} vs exact search {out['recall_at_k_vs_exact']:.3f}; "
          f"own row first {out['self_hit_at_1']:.3f}")


if __name__ == "__main__":
    main()
