#!/usr/bin/env python3
"""Through-the-mount figures for a packset (docs/BENCHMARKS.md, "Mount").

usage: mount_bench.py PACKSET [--pubkey PUB] [--queries 300] [--wrk-seconds 10]

Mounts PACKSET, reports mount time, daemon RSS and the first query's latency (probe 8),
then for the same distinct queries:
annpack search's in-process took_ms, open/read/close through the mount (p50/p99), curl-like
HTTP GETs through nginx (p50/p99), and queries/s through nginx with wrk (2 threads,
distinct query names). Cleans up the mount and nginx whatever happens."""
import argparse
import json
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from mountlib import Mount, Nginx  # noqa: E402

A = str(ROOT / "build" / "tools" / "annpack")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("packset")
    ap.add_argument("--pubkey")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    a = ap.parse_args()
    rng = random.Random(7)
    queries = [f"w{rng.randrange(2000)} w{rng.randrange(2000)} w{rng.randrange(20000)} q{i}"
               for i in range(a.queries)]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="annpack-mbench-"))
    out = {}
    opts = [f"pubkey={a.pubkey}"] if a.pubkey else []
    t0 = time.time()
    m = Mount(a.packset, tmp / "mnt", *opts)
    out["mount_s"] = round(time.time() - t0, 3)
    ng = None
    try:
        out["rss_after_mount_kb"] = rss_kb(m.pid())
        # The first query after mounting: its lists are not yet checked (verify=lazy hashes
        # them now) nor in the daemon's page tables.
        p = m.mnt / "query" / urllib.parse.quote(f"first {queries[0]}", safe=" ")
        s = time.perf_counter()
        with open(f"{p}?probe=8", "rb") as f:
            f.read()
        out["first_query_ms_probe8"] = (time.perf_counter() - s) * 1e3
        inproc = []
        for q in queries[:60]:
            r = subprocess.run([A, "search", a.packset, q], capture_output=True, text=True)
            inproc.append(float(json.loads(r.stdout)["took_ms"]))
        out["inprocess_took_ms_p50"] = statistics.median(inproc)
        lat = []
        for q in queries:
            p = m.mnt / "query" / urllib.parse.quote(q, safe=" ")
            s = time.perf_counter()
            with open(p, "rb") as f:
                f.read()
            lat.append((time.perf_counter() - s) * 1e3)
        out["mount_ms_p50"], out["mount_ms_p99"] = pct(lat, 50), pct(lat, 99)
        out["rss_after_queries_kb"] = rss_kb(m.pid())
        ng = Nginx(m.mnt, tmp, ROOT / "examples" / "nginx.conf")
        lat = []
        for q in queries:
            url = ng.url + "/query/" + urllib.parse.quote(q + " h")
            s = time.perf_counter()
            with urllib.request.urlopen(url) as r:
                r.read()
            lat.append((time.perf_counter() - s) * 1e3)
        out["nginx_ms_p50"], out["nginx_ms_p99"] = pct(lat, 50), pct(lat, 99)
        if shutil.which("wrk"):
            lua = tmp / "q.lua"
            lua.write_text('counter = 0\nrequest = function()\n counter = counter + 1\n'
                           ' return wrk.format(nil, "/query/w" .. (counter % 50000) .. "%20w7?k=10")\nend\n')
            r = subprocess.run(["wrk", "-t2", "-c16", f"-d{a.wrk_seconds}s", "-s", str(lua), ng.url],
                               capture_output=True, text=True)
            for line in r.stdout.splitlines():
                if "Requests/sec" in line:
                    out["wrk_requests_per_s"] = float(line.split()[1])
            out["wrk_note"] = "2 wrk threads, 16 connections, distinct names (cache misses)"
        out["rss_end_kb"] = rss_kb(m.pid())
    finally:
        if ng:
            ng.close()
        m.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
