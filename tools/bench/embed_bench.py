#!/usr/bin/python3
"""HTTP embedder figures against the loopback embedding server (tests/embed_server.py):
build throughput in rows/s (median of --runs builds, per ANNPACK_THREADS value) and the
daemon's text-query latency on a real mount: a miss (new text: one embedding request and
a search), an embedding-cache hit (same text, another k: no request, a search) and an
answer-cache hit (the same name again).

usage: /usr/bin/python3 tools/bench/embed_bench.py [--rows 20000] [--dim 384] [--runs 3]
       [--queries 100]    (ANNPACK_BUILD: the build tree, default ./build)

The server is Python: its own cost per request (JSON, vector generation) is part of the
figures, so they bound annpack's overhead from above; a real model is slower per row."""
import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
BUILD = pathlib.Path(os.environ.get("ANNPACK_BUILD", ROOT / "build"))
os.environ["ANNPACK_BUILD"] = str(BUILD)
from embed_server import EmbedServer  # noqa: E402
from mountlib import Mount  # noqa: E402

WORDS = ("espresso coffee tea milk sugar bread butter cheese apple banana orange grape lemon "
         "river mountain forest ocean desert valley city glacier volcano harbor bridge tower "
         "garden library museum market station").split()


def write_docs(path, n):
    r = random.Random(7)
    with open(path, "w") as f:
        f.write("id,text\n")
        for i in range(n):
            f.write(f"{i},{' '.join(r.choices(WORDS, k=12))}\n")


def build_rate(annpack, docs, out, url, threads, runs):
    rates = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run([annpack, "build", "--input", docs, "--text-col", "text", "--id-col", "id",
                        "--output", out, "--force", "--embedder", "openai", "--model",
                        "test-model", "--embed-url", url, "--json"],
                       check=True, capture_output=True, env=dict(os.environ,
                                                                 ANNPACK_THREADS=str(threads)))
        rates.append(ROWS / (time.monotonic() - t0))
    return statistics.median(rates)


def timed_read(p):
    t0 = time.perf_counter()
    p.read_bytes()
    return (time.perf_counter() - t0) * 1e6


def main():
    global ROWS
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queries", type=int, default=100)
    a = ap.parse_args()
    ROWS = a.rows
    annpack = str(BUILD / "tools" / "annpack")
    srv = EmbedServer(dim=a.dim)
    out = {"rows": a.rows, "dim": a.dim, "runs": a.runs,
           "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                        if l.startswith("model name")), "?"),
           "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    with tempfile.TemporaryDirectory() as td:
        td = pathlib.Path(td)
        docs = td / "docs.csv"
        write_docs(docs, a.rows)
        url = srv.url + "/v1"
        out["build_rows_per_s"] = {t: round(build_rate(annpack, docs, td / "P", url, t, a.runs))
                                   for t in (1, 2)}
        m = Mount(td / "P", td / "mnt", f"embed_url={url}")
        try:
            r = random.Random(3)
            texts = [" ".join(r.choices(WORDS, k=3)) + f" q{i}" for i in range(a.queries)]
            q = td / "mnt" / "query"
            miss = [timed_read(q / t) for t in texts]
            emb_hit = [timed_read(q / f"{t}?k=5") for t in texts]
            ans_hit = [timed_read(q / t) for t in texts]
            st = json.loads((td / "mnt" / "stats").read_text())["embed"]
        finally:
            m.close()
        out["query_latency_us_median"] = {"miss": round(statistics.median(miss)),
                                          "embedding_cache_hit": round(statistics.median(emb_hit)),
                                          "answer_cache_hit": round(statistics.median(ans_hit))}
        out["daemon_embed_stats"] = {k: st[k] for k in ("cache_hits", "cache_misses", "requests")}
    srv.stop()
    out["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
