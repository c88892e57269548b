#!/usr/bin/env python3
"""The build against FAISS's train + add, on the same data and threads, in one run.

usage: /usr/bin/python3 tools/bench/build_bench.py DATA_DIR [--lists 1024] [--runs 3]
           [--threads 2] [--work DIR] [--no-faiss] [--no-sq8]

DATA_DIR holds base.fvecs (tools/bench/gen_data.py). Each round runs, each in its own process
under GNU time (wall seconds, peak RSS):
  - annpack build --vectors --sq8 --lists L --iters 10 (the harness's build step: every file,
    metadata, digests and the manifest), with ANNPACK_LOG_LEVEL=debug for the per-phase
    seconds and peak RSS so far;
  - FAISS IndexIVFScalarQuantizer(QT_fp16) train (10 iterations, 256 x L sample) + add, as in
    harness.py. Its peak RSS includes the numpy array of every vector it reads, as annpack's
    includes its normalised copy; the timed part is train + add only (not reading the file).
Rounds alternate annpack and FAISS so both see the same load; prints the medians and every
round as JSON. Debian's python3-faiss is a generic build (no AVX-512 kernels): say so next to
its figures."""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("ANNPACK_BUILD", ROOT / "build"))
ANNPACK = BUILD / "tools" / "annpack"

FAISS_CHILD = r"""
import json, sys, time
import numpy as np
import faiss
path, lists, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a = np.fromfile(path, dtype=np.int32)
d = int(a[0])
xb = a.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)
del a
faiss.omp_set_num_threads(threads)
rng = np.random.default_rng(0)
sample = xb[np.sort(rng.choice(len(xb), min(len(xb), 256 * lists), replace=False))]
idx = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, lists,
                                    faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
idx.cp.niter = 10
t = time.perf_counter()
idx.train(sample)
train_s = time.perf_counter() - t
t = time.perf_counter()
idx.add(xb)
add_s = time.perf_counter() - t
print(json.dumps({"version": faiss.__version__, "train_s": train_s, "add_s": add_s}))
"""

PHASE = re.compile(r"DEBUG: build: (.+): ([0-9.]+) s, peak RSS so far ([0-9]+) MiB")


def timed(args, env):
    """(stdout, stderr, wall seconds, peak RSS bytes) of args under GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name, *map(str, args)],
                           env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]}: exit {r.returncode}: {r.stderr[-2000:]}")
        rss = int(open(tf.name).read().strip().splitlines()[-1]) * 1024
    return r.stdout, r.stderr, wall, rss


def env_threads(t, **extra):
    return dict(os.environ, ANNPACK_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                OMP_NUM_THREADS=str(t), **extra)


def annpack_round(a, data, work):
    pack = work / "pack"
    if pack.exists():
        shutil.rmtree(pack)
    args = [ANNPACK, "build", "--vectors", data / "base.fvecs", "--output", pack, "--lists",
            a.lists, "--iters", 10, "--json"] + ([] if a.no_sq8 else ["--sq8"])
    out, err, wall, rss = timed(args, env_threads(a.threads, ANNPACK_LOG_LEVEL="debug"))
    rep = json.loads(out)
    phases = [{"phase": m[1], "s": float(m[2]), "peak_rss_mib": int(m[3])}
              for m in PHASE.finditer(err)]
    return {"wall_s": wall, "peak_rss": rss, "report_total_s": rep["seconds"]["total"],
            "phases": phases}


def faiss_round(a, data):
    out, _, wall, rss = timed([sys.executable, "-c", FAISS_CHILD, data / "base.fvecs", a.lists,
                               a.threads], env_threads(a.threads))
    r = json.loads(out)
    r.update({"train_add_s": r["train_s"] + r["add_s"], "process_wall_s": wall, "peak_rss": rss})
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--lists", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work")
    ap.add_argument("--no-faiss", action="store_true")
    ap.add_argument("--no-sq8", action="store_true")
    a = ap.parse_args()
    data = pathlib.Path(a.data)
    work = pathlib.Path(a.work or tempfile.mkdtemp(prefix="annpack-build-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "")
    rounds = []
    for i in range(a.runs):
        r = {"load_before": os.getloadavg()[0], "annpack": annpack_round(a, data, work)}
        if not a.no_faiss:
            r["faiss"] = faiss_round(a, data)
        r["load_after"] = os.getloadavg()[0]
        rounds.append(r)
        print(f"round {i + 1}: annpack {r['annpack']['wall_s']:.1f} s "
              f"{r['annpack']['peak_rss'] / 2**30:.2f} GiB" +
              (f"; faiss train+add {r['faiss']['train_add_s']:.1f} s "
               f"{r['faiss']['peak_rss'] / 2**30:.2f} GiB" if "faiss" in r else "") +
              f"; load {r['load_before']:.1f}-{r['load_after']:.1f}", file=sys.stderr)
    med = statistics.median
    res = {"cpu": cpu, "nproc": os.cpu_count(), "threads": a.threads, "lists": a.lists,
           "annpack_wall_s": med(r["annpack"]["wall_s"] for r in rounds),
           "annpack_peak_rss": med(r["annpack"]["peak_rss"] for r in rounds),
           "rounds": rounds}
    if not a.no_faiss:
        res["faiss_version"] = rounds[0]["faiss"]["version"]
        res["faiss_train_add_s"] = med(r["faiss"]["train_add_s"] for r in rounds)
        res["faiss_peak_rss"] = med(r["faiss"]["peak_rss"] for r in rounds)
        res["ratio_annpack_over_faiss"] = med(r["annpack"]["wall_s"] / r["faiss"]["train_add_s"]
                                              for r in rounds)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
