#!/usr/bin/env python3
"""Distribution throughput on loopback: a real docker-registry on 127.0.0.1 (no auth, the
tests' registrylib), `annpack registry upload` of a signed packset into a fresh repository
(every blob pushed), a cold `annpack pull` into a new directory with a new store (every
blob fetched, verified, switched), and a pull of a one-delta release into the pulled
directory (only the delta's blobs fetched). Medians of --runs runs; prints JSON.

usage: bench.py PACKSET KEY.pem KEY.pub [--delta-csv CSV] [--runs 3] [--work DIR]

PACKSET must be signed with KEY.pem. With --delta-csv a copy of PACKSET gets a delta built
from CSV (re-signed) for the delta pull. Run with /usr/bin/python3 from the checkout
(ANNPACK_BUILD selects the build, default ./build)."""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from registrylib import Registry  # noqa: E402

BUILD = pathlib.Path(os.environ.get("ANNPACK_BUILD", ROOT / "build"))
ANNPACK = str(BUILD / "tools" / "annpack")


def du(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file())


def timed(*cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(f"{cmd}: {r.stderr}")
    return dt, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("packset")
    ap.add_argument("key")
    ap.add_argument("pub")
    ap.add_argument("--delta-csv")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/annpack-registry-bench")
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    size = du(a.packset)
    reg = Registry(work / "registry", auth=None)
    env = dict(os.environ, ANNPACK_REGISTRY_URL=reg.url, ANNPACK_THREADS="2")
    out = {"bytes": size, "runs": a.runs}
    try:
        reg.start()
        up, pull = [], []
        for i in range(a.runs):
            dt, _ = timed(ANNPACK, "registry", "upload", "--org", "bench", "--project", f"p{i}",
                          "--version", "v1", "--pack-dir", a.packset, "--skip-verify", env=env)
            up.append(dt)
            into = work / f"pull{i}" / "ps"
            dt, o = timed(ANNPACK, "pull", f"bench/p{i}:v1", "--into", into, "--pubkey", a.pub,
                          env=env)
            assert json.loads(o)["fetched_bytes"] >= size * 0.99
            pull.append(dt)
            if i < a.runs - 1:
                shutil.rmtree(work / f"pull{i}")
        # upload includes hashing every file; pull includes full verification with the key.
        out["upload_s"] = statistics.median(up)
        out["upload_MBps"] = size / 1e6 / out["upload_s"]
        out["pull_s"] = statistics.median(pull)
        out["pull_MBps"] = size / 1e6 / out["pull_s"]
        out["upload_all_s"] = up
        out["pull_all_s"] = pull
        dt, _ = timed(ANNPACK, "registry", "upload", "--org", "bench", "--project", "p0",
                      "--version", "v1", "--pack-dir", a.packset, "--skip-verify", env=env)
        out["reupload_noop_s"] = dt
        if a.delta_csv:
            v2 = work / "v2"
            shutil.copytree(a.packset, v2)
            timed(ANNPACK, "packset", "build-delta", "--packset", v2, "--pubkey", a.pub,
                  "--add", a.delta_csv, "--out", v2 / "deltas/0001.delta", env=env)
            timed(ANNPACK, "sign", v2, "--key", a.key, env=env)
            last = a.runs - 1
            dt, _ = timed(ANNPACK, "registry", "upload", "--org", "bench", "--project",
                          f"p{last}", "--version", "v2", "--pack-dir", v2, "--skip-verify",
                          env=env)
            out["delta_upload_s"] = dt
            dt, o = timed(ANNPACK, "pull", f"bench/p{last}:v2", "--into",
                          work / f"pull{last}" / "ps", "--pubkey", a.pub, env=env)
            j = json.loads(o)
            out["delta_pull_s"] = dt
            out["delta_pull_fetched_bytes"] = j["fetched_bytes"]
            out["delta_pull_reused_bytes"] = j["reused_bytes"]
    finally:
        reg.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
