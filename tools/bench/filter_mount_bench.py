#!/usr/bin/env python3
"""The first filtered queries on a lazily verified packset mount (verify=lazy, the default).

usage: filter_mount_bench.py PACKSET COL=VALUE [--annpackfs PATH] [--repeats 3] [--queries 5]
                             [--probe N]

Each repeat mounts PACKSET afresh (page cache warm: run it once before measuring), then
reads query/<text>?COL=VALUE for --queries distinct texts at the pack's default probe
(or --probe N),
timing each read and the ranges the mount hashed for it (stats' verify_hashed), and one
unfiltered query after them. Prints one JSON object: medians over the repeats of the
first filtered query's ms and hashed ranges, the later filtered queries' median ms, and
the unfiltered one's. Needs root (FUSE) and fusermount3; the mount is always unmounted."""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == os.path.realpath(path) for line in f)


def one_repeat(fs, ps, cond, nq, rep, probe):
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="filter_mount_bench."))
    proc = subprocess.Popen([fs, str(ps), str(mnt), "-f"], stderr=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not mounted(mnt):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("annpackfs did not mount")
            time.sleep(0.02)
        stats = lambda: json.loads((mnt / "stats").read_text())
        out = []
        for i in range(nq + 1):
            text = f"w{17 + i} w{301 + 7 * i + rep} w{4000 + i}"
            params = ([] if i == nq else [cond]) + ([f"probe={probe}"] if probe else [])
            name = urllib.parse.quote(text, safe=" ") + ("?" + "&".join(params) if params else "")
            h0 = stats()["verify_hashed"]
            t0 = time.perf_counter()
            body = json.loads((mnt / "query" / name).read_text())
            ms = (time.perf_counter() - t0) * 1e3
            assert body["results"], name
            out.append((ms, stats()["verify_hashed"] - h0))
        return out
    finally:
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
        proc.wait(timeout=60)
        mnt.rmdir()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("packset")
    ap.add_argument("cond")
    ap.add_argument("--annpackfs", default=str(ROOT / "build" / "fs" / "annpackfs"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--probe", type=int, default=0)
    a = ap.parse_args()
    runs = [one_repeat(a.annpackfs, a.packset, a.cond, a.queries, r, a.probe) for r in range(a.repeats)]
    med = statistics.median
    print(json.dumps({
        "first_filtered_ms": round(med(r[0][0] for r in runs), 1),
        "first_filtered_hashed": med(r[0][1] for r in runs),
        "later_filtered_ms": round(med(med(x[0] for x in r[1:-1]) for r in runs), 1),
        "later_filtered_hashed": med(med(x[1] for x in r[1:-1]) for r in runs),
        "unfiltered_after_ms": round(med(r[-1][0] for r in runs), 1),
        "runs": runs}))


if __name__ == "__main__":
    main()
