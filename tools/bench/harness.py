#!/usr/bin/env python3
"""The performance harness: annpack (in-process and through a live mount) against FAISS on the
same files, in one run, next to the machine's own limits.

usage: /usr/bin/python3 tools/bench/harness.py [--n 1000000] [--dim 384] [--lists 1024]
           [--probes 1,2,4,8,16,32,64] [--runs 3] [--data DIR] [--work DIR]
           [--faiss-queries 1000] [--no-faiss] [--no-hnsw] [--hnsw-efs 16,32,64,128,256]
           [--no-mount] [--write-docs] [--sigma S]

Needs numpy, faiss, matplotlib and hnswlib from Debian (python3-numpy python3-faiss
python3-matplotlib libhnswlib-dev, and g++): run it with /usr/bin/python3. Steps, all single-threaded unless noted, queries one at a time:
  1. data: tools/bench/gen_data.py (cached in --data when its info.json matches)
  2. machine: single-core read bandwidth (apbench membw), OpenBLAS sgemm GFLOP/s (1, 2 threads)
  3. annpack build --vectors --sq8 --bits (2 threads, 10 k-means iterations, 256 x lists sample)
  4. annpack search --queries for every probe, f16, sq8 and bits scans (median of --runs runs)
  5. FAISS IndexIVFFlat and IndexIVFScalarQuantizer(QT_fp16): train + add (2 threads) with the
     same nlist, sample size and iterations; search (1 thread) at every probe
  5b. hnswlib (the graph-index anchor): tools/bench/hnsw_bench.cpp compiled here with -O3
     -march=native against Debian's headers; M 16, efConstruction 200, built on 2 threads (the
     index is cached in WORK, keyed by M/efC and a fingerprint of the data), searched on 1
     thread at every ef; stops unless hnswlib's brute force agrees with gt.ivecs and base
     rows searched for themselves are found (tools/bench/hnsw_bench.cpp --check)
  6. through the mount: a trivial libfuse3 file (the floor), the same with a busy lookup, and
     /vquery/ reads of every query; daemon RSS while serving
Writes the results as JSON (WORK/results.json) and, with --write-docs, the tables and the
recall-vs-QPS plot into docs/BENCHMARKS.md and docs/bench_recall_qps.png."""
import argparse
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("ANNPACK_BUILD", ROOT / "build"))
ANNPACK = BUILD / "tools" / "annpack"
ANNPACKFS = BUILD / "fs" / "annpackfs"
APBENCH = BUILD / "tools" / "bench" / "apbench"

# The orientation figures: CPU-tuned FAISS 1.12 (AVX-512), same machine kind, other run.
FAISS_TUNED = {4: (0.953, 2910, 1380), 8: (0.980, 1590, 660), 16: (0.989, 846, 389),
               32: (0.993, 494, 233)}


def log(*a):
    print("harness:", *a, file=sys.stderr, flush=True)


def sh(args, env=None, timeout=3600):
    r = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args[:4]))}: exit {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


def timed(args, env=None):
    """Runs args under GNU time; returns (stdout, wall seconds, peak RSS bytes)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        out = sh(["/usr/bin/time", "-f", "%M", "-o", tf.name, *args], env=env)
        wall = time.perf_counter() - t0
        rss = int(open(tf.name).read().strip().splitlines()[-1]) * 1024
    return out, wall, rss


def med(xs):
    return statistics.median(xs)


def env_threads(t):
    return dict(os.environ, ANNPACK_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                OMP_NUM_THREADS=str(t))


# --- 1. data ----------------------------------------------------------------------------------

def ensure_data(a):
    d = pathlib.Path(a.data)
    want = {"n": a.n, "dim": a.dim} if a.sigma is None else {"n": a.n, "dim": a.dim,
                                                              "sigma": a.sigma}
    info = d / "info.json"
    if info.exists():
        have = json.loads(info.read_text())
        if all(have.get(k) == v for k, v in want.items()):
            log(f"data: reusing {d}")
            return have
    log(f"data: generating {a.n} x {a.dim} into {d}")
    out = sh([sys.executable, ROOT / "tools" / "bench" / "gen_data.py", d, "--n", a.n,
              "--dim", a.dim] + ([] if a.sigma is None else ["--sigma", a.sigma]))
    return json.loads(out)


# --- 2. machine -------------------------------------------------------------------------------

def machine(a):
    bw = [json.loads(sh([APBENCH, "membw", "--mb", 1024, "--runs", 5]))["read_gbps_median"]
          for _ in range(a.runs)]
    g1 = [json.loads(sh([APBENCH, "sgemm", "--threads", 1]))["gflops_median"] for _ in range(a.runs)]
    g2 = [json.loads(sh([APBENCH, "sgemm", "--threads", 2]))["gflops_median"] for _ in range(a.runs)]
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    diag = json.loads(sh([ANNPACK, "diagnose"]))
    return {"read_gbps": med(bw), "read_gbps_runs": bw, "sgemm_gflops_1t": med(g1),
            "sgemm_gflops_2t": med(g2), "cpu": cpu, "nproc": os.cpu_count(),
            "kernel_f16": diag["search_kernel"], "kernel_sq8": diag.get("search_kernel_sq8"),
            "kernel_bits": diag.get("search_kernel_bits"),
            "openblas": diag["openblas"]}


# --- 3, 4. annpack -----------------------------------------------------------------------------

def annpack_build(a, info, pack):
    d = pathlib.Path(a.data)
    if pack.exists():
        shutil.rmtree(pack)
    out, wall, rss = timed([ANNPACK, "build", "--vectors", d / "base.fvecs", "--output", pack,
                            "--lists", a.lists, "--iters", 10, "--sq8", "--bits", "--json"],
                           env=env_threads(2))
    rep = json.loads(out)
    s = rep["seconds"]
    flop_train = rep["kmeans_passes"] * 2.0 * rep["train_rows"] * rep["lists"] * rep["dim"]
    flop_assign = 2.0 * rep["rows"] * rep["lists"] * rep["dim"]
    files = {p.name: p.stat().st_size for p in pack.iterdir()}
    return {"report": rep, "wall_s": wall, "peak_rss": rss,
            "train_gflops": flop_train / max(s["kmeans"], 1e-6) / 1e9,
            "assign_gflops": flop_assign / max(s["assign"], 1e-6) / 1e9,
            "kmeans_plus_assign_s": s["kmeans"] + s["assign"],
            "files": files, "index_bytes": files["pack.annpack"],
            "sq8_bytes": files.get("pack.sq8", 0), "bits_bytes": files.get("pack.bits", 0)}


def annpack_search(a, pack, probe, scan):
    d = pathlib.Path(a.data)
    runs = []
    for _ in range(a.runs):
        runs.append(json.loads(sh([ANNPACK, "search", pack, "--queries", d / "queries.fvecs",
                                   "--gt", d / "gt.ivecs", "-k", 10, "--probe", probe,
                                   "--scan", scan, "--warmup", 1], env=env_threads(1))))
    keys = ["qps", "probe_us_p50", "scan_us_p50", "overhead_us_p50", "scan_gbps", "query_gbps",
            "bytes_per_query", "vectors_per_query", "reranked_per_query"]
    r = {k: med([x[k] for x in runs]) for k in keys}
    r["p50_us"] = med([x["latency_us"]["p50"] for x in runs])
    r["p99_us"] = med([x["latency_us"]["p99"] for x in runs])
    r["recall"] = runs[0]["recall_at_k"]
    r["kernel"] = runs[0]["kernel"]
    r["rerank"] = runs[0]["rerank"]
    return r


def exact_same_lists(a, pack):
    """Recall of an exact float32 IVF-Flat that uses annpack's own centroids and lists: the
    reference for "only float16 rounding may cost recall" (FAISS trains other centroids)."""
    import numpy as np
    d = pathlib.Path(a.data)
    raw = np.memmap(pack / "pack.annpack", dtype=np.uint8, mode="r")
    dim, n_lists = (int(raw[20:24].view("<u4")[0]), int(raw[28:32].view("<u4")[0]))
    table_pos = int(raw[36:44].view("<u8")[0])
    cent = np.frombuffer(raw[72:72 + 4 * n_lists * dim], dtype="<f4").reshape(n_lists, dim)
    table = np.frombuffer(raw[table_pos:table_pos + 16 * n_lists], dtype="<u8").reshape(n_lists, 2)
    lists = []
    for off, _ in table:
        off = int(off)
        count = int(raw[off:off + 4].view("<u4")[0])
        lists.append(np.frombuffer(raw[off + 4:off + 4 + 8 * count], dtype="<u8").astype(np.int64))
    xb = fvecs(d / "base.fvecs")
    xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    xq = fvecs(d / "queries.fvecs")
    xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    gt = fvecs(d / "gt.ivecs").view(np.int32)
    order = np.argsort(-(xq @ cent.T), axis=1, kind="stable")
    out = {}
    for p in a.probes:
        hits = 0
        for i in range(len(xq)):
            cand = np.concatenate([lists[j] for j in order[i, :p]])
            sc = xb[cand] @ xq[i]
            top = cand[np.lexsort((cand, -sc))[:10]]
            hits += len(set(top.tolist()) & set(gt[i, :10].tolist()))
        out[p] = hits / (10 * len(xq))
    return out


# --- 5. FAISS ----------------------------------------------------------------------------------

def fvecs(path):
    import numpy as np
    x = np.fromfile(path, dtype=np.int32)
    dim = int(x[0])
    return x.reshape(-1, dim + 1)[:, 1:].view(np.float32)


def faiss_bench(a, info):
    import faiss
    import numpy as np
    d = pathlib.Path(a.data)
    xb = fvecs(d / "base.fvecs")
    xq = fvecs(d / "queries.fvecs")
    xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    gt = fvecs(d / "gt.ivecs").view(np.int32)
    nq = min(a.faiss_queries, len(xq))
    rng = np.random.default_rng(0)
    sample = xb[np.sort(rng.choice(len(xb), min(len(xb), 256 * a.lists), replace=False))]
    out = {"version": faiss.__version__, "queries": nq}
    for name, make in (("ivf_flat", lambda q: faiss.IndexIVFFlat(q, a.dim, a.lists,
                                                                   faiss.METRIC_INNER_PRODUCT)),
                       ("ivf_sq_fp16", lambda q: faiss.IndexIVFScalarQuantizer(
                           q, a.dim, a.lists, faiss.ScalarQuantizer.QT_fp16,
                           faiss.METRIC_INNER_PRODUCT))):
        faiss.omp_set_num_threads(2)
        quant = faiss.IndexFlatIP(a.dim)
        idx = make(quant)
        idx.cp.niter = 10
        t = time.perf_counter()
        idx.train(sample)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        idx.add(xb)
        add_s = time.perf_counter() - t
        nbytes = len(faiss.serialize_index(idx))
        faiss.omp_set_num_threads(1)
        res = {"train_s": train_s, "add_s": add_s, "index_bytes": nbytes, "probes": {}}
        for p in a.probes:
            idx.nprobe = p
            qps_runs, p50_runs, p99_runs, recall = [], [], [], None
            for r in range(a.runs):
                lat = []
                ids = np.empty((nq, 10), dtype=np.int64)
                t0 = time.perf_counter()
                for i in range(nq):
                    s = time.perf_counter()
                    _, I = idx.search(xq[i:i + 1], 10)
                    lat.append(time.perf_counter() - s)
                    ids[i] = I[0]
                wall = time.perf_counter() - t0
                qps_runs.append(nq / wall)
                lat.sort()
                p50_runs.append(lat[len(lat) // 2] * 1e6)
                p99_runs.append(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e6)
                if recall is None:
                    recall = float(np.mean([len(set(ids[i]) & set(gt[i, :10])) / 10
                                            for i in range(nq)]))
            res["probes"][p] = {"qps": med(qps_runs), "p50_us": med(p50_runs),
                                "p99_us": med(p99_runs), "recall": recall}
            log(f"faiss {name} probe {p}: recall {recall:.4f} qps {med(qps_runs):.0f}")
        out[name] = res
        del idx
    return out


# --- 5b. hnswlib -------------------------------------------------------------------------------

HNSW_SRC = ROOT / "tools" / "bench" / "hnsw_bench.cpp"


def hnsw_driver(work):
    """Compiles hnsw_bench.cpp for this CPU (not part of the meson build: -march=native
    binaries must not be installed or shipped); rebuilt when the source is newer."""
    exe = work / "hnsw_bench"
    if not exe.exists() or exe.stat().st_mtime < HNSW_SRC.stat().st_mtime:
        if not pathlib.Path("/usr/include/hnswlib/hnswlib.h").exists():
            raise RuntimeError("hnswlib headers missing: apt-get install libhnswlib-dev")
        cxx = os.environ.get("CXX", "g++")
        sh([cxx, "-std=c++17", "-O3", "-march=native", "-DNDEBUG", "-pthread", "-o", exe, HNSW_SRC])
    return exe


def data_key(d):
    """A fingerprint of the data set: the exact ground truth (which depends on every base
    vector and query) and the base file's size. A cached index is only reused for the data
    it was built on; a regenerated data set gets a new index, not a stale one."""
    h = hashlib.sha256((d / "gt.ivecs").read_bytes())
    h.update(str((d / "base.fvecs").stat().st_size).encode())
    return h.hexdigest()[:12]


# hnswlib's own brute force must agree with gt.ivecs (metric, labels, files) and a search
# for a base row must find it (a current, connected graph); below these the harness stops.
# A stale index finds almost none; on the 1M harness data a sound one misses ~2% even at
# ef 1024 (rows a 16-link graph barely reaches on near-tie data), at 100k and 300k none.
HNSW_MIN_GT_CHECK = 0.99
HNSW_MIN_SELF_CHECK = 0.9
HNSW_CHECKS = 100


def hnsw_bench(a, work, m=16, efc=200):
    d = pathlib.Path(a.data)
    exe = hnsw_driver(work)
    stem = f"hnsw_M{m}_efc{efc}_{data_key(d)}"
    index = work / f"{stem}.bin"
    built_now = not index.exists()
    log(f"hnswlib: {'building' if built_now else 'reusing'} {index.name}")
    out = json.loads(sh([exe, d / "base.fvecs", d / "queries.fvecs", d / "gt.ivecs", index,
                         "--m", m, "--efc", efc, "--threads", 2, "--efs",
                         ",".join(map(str, a.hnsw_efs)), "--runs", a.runs, "--check", HNSW_CHECKS],
                        env=env_threads(1), timeout=4 * 3600))
    cache = work / f"{stem}.build.json"
    if built_now:
        cache.write_text(json.dumps({"build_s": out["build_s"], "peak_rss": out["peak_rss"]}))
    elif cache.exists():
        out.update(json.loads(cache.read_text()))
    for ef, x in out["efs"].items():
        log(f"hnswlib ef {ef}: recall {x['recall']:.4f} qps {x['qps']:.0f}")
    log(f"hnswlib checks: brute force vs gt.ivecs {out['gt_check']:.4f}, self-queries found "
        f"{out['self_check']:.4f} at ef {out['self_check_ef']}")
    if out["gt_check"] < HNSW_MIN_GT_CHECK:
        raise RuntimeError(f"hnswlib: exact inner-product top-10 agrees with {d / 'gt.ivecs'} "
                           f"on {out['gt_check']:.3f} of {out['check']} queries' neighbours "
                           f"(limit {HNSW_MIN_GT_CHECK}): metric, labels or files disagree")
    if out["self_check"] < HNSW_MIN_SELF_CHECK:
        raise RuntimeError(f"hnswlib: {index.name} finds only {out['self_check']:.3f} of "
                           f"{out['check']} base rows searched for themselves at ef "
                           f"{out['self_check_ef']} (limit {HNSW_MIN_SELF_CHECK}): stale or "
                           f"broken index (delete it)")
    return out


# --- 6. the mount ------------------------------------------------------------------------------

def is_mounted(path):
    path = os.path.realpath(path)
    return any(line.split()[1] == path for line in open("/proc/mounts"))


def wait_mounted(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not is_mounted(path):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{path}: the file system exited {proc.returncode}")
        if time.time() > deadline:
            raise RuntimeError(f"{path}: not mounted after {timeout} s")
        time.sleep(0.05)


def unmount(path, proc=None):
    if is_mounted(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], check=False)
    if proc is not None:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out


def floor_bench(a, work, busy_us=0):
    mnt = work / f"floor{busy_us}"
    mnt.mkdir(exist_ok=True)
    proc = subprocess.Popen([str(APBENCH), "fusefloor", str(mnt), "--busy-us", str(busy_us)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mnt, proc)
        runs = [json.loads(sh([APBENCH, "readnames", mnt, "--n", 2000, "--prefix", f"r{r}-"]))
                for r in range(a.runs)]
    finally:
        unmount(mnt, proc)
    return {"p50_us": med([r["p50_us"] for r in runs]), "p99_us": med([r["p99_us"] for r in runs]),
            "runs_p50_us": [r["p50_us"] for r in runs]}


def mount_bench(a, work, pack, in_process):
    d = pathlib.Path(a.data)
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(ANNPACKFS), str(pack), str(mnt), "-f"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env_threads(1))
    out = {}
    try:
        wait_mounted(mnt, proc, timeout=600)
        out["mount_s"] = time.perf_counter() - t0
        out["rss_after_mount"] = proc_status(proc.pid)
        # Serving starts now: reset the peak so it measures serving, not verification.
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")
        out["probes"] = {}
        for p in a.mount_probes:
            # Warm the pages the queries touch with other names (k=11: a different result
            # file, the same lists), so the measured pass computes every query afresh.
            sh([APBENCH, "mountq", mnt, "--queries", d / "queries.fvecs", "--probe", p, "-k", 11])
            runs = [json.loads(sh([APBENCH, "mountq", mnt, "--queries", d / "queries.fvecs",
                                   "--probe", p, "-k", 10 + 2 * (r + 1)]))
                    for r in range(a.runs)]
            p50 = med([r["p50_us"] for r in runs])
            out["probes"][p] = {"p50_us": p50, "p99_us": med([r["p99_us"] for r in runs]),
                                "qps": med([r["qps"] for r in runs]),
                                "added_p50_us": p50 - in_process[p]["p50_us"]}
            log(f"mount probe {p}: p50 {p50:.0f} us, in-process {in_process[p]['p50_us']:.0f} us")
        out["rss_serving"] = proc_status(proc.pid)
        # Where the daemon's threads run relative to the client matters on a VM: every
        # request and reply that crosses CPUs is an interrupt-driven wakeup. Measure the
        # first probe with both on one CPU, then on two different CPUs.
        if os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset"):
            p = a.mount_probes[0]
            out["pinned"] = {}
            for label, dcpu in (("same_cpu", "0"), ("other_cpu", "1")):
                sh(["taskset", "-a", "-p", "-c", dcpu, proc.pid])
                runs = [json.loads(sh(["taskset", "-c", "0", APBENCH, "mountq", mnt, "--queries",
                                       d / "queries.fvecs", "--probe", p, "-k", 30 + 2 * r + (label == "other_cpu")]))
                        for r in range(a.runs)]
                p50 = med([r["p50_us"] for r in runs])
                out["pinned"][label] = {"p50_us": p50, "added_p50_us": p50 - in_process[p]["p50_us"]}
            sh(["taskset", "-a", "-p", "-c", f"0-{os.cpu_count() - 1}", proc.pid])
    finally:
        unmount(mnt, proc)
    return out


# --- report ------------------------------------------------------------------------------------

def plot(res, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 5))
    probes = sorted(res["annpack"]["f16"], key=int)
    for key, label, style in (("f16", "annpack f16 scan", "o-"),
                              ("sq8", "annpack int8 scan + f16 re-rank", "s-"),
                              ("bits", "annpack 1-bit scan + f16 re-rank (error bound)", "P-")):
        if key not in res["annpack"]:
            continue
        pts = [res["annpack"][key][p] for p in probes]
        ax.plot([x["recall"] for x in pts], [x["qps"] for x in pts], style, label=label)
    if res.get("faiss"):
        for key, label, style in (("ivf_flat", "FAISS IVF-Flat (Debian 1.7.3, generic)", "^--"),
                                  ("ivf_sq_fp16", "FAISS IVF-SQfp16 (Debian 1.7.3, generic)", "v--")):
            pts = [res["faiss"][key]["probes"][p] for p in sorted(res["faiss"][key]["probes"], key=int)]
            ax.plot([x["recall"] for x in pts], [x["qps"] for x in pts], style, label=label)
    if res.get("hnsw"):
        h = res["hnsw"]
        pts = [h["efs"][e] for e in sorted(h["efs"], key=int)]
        ax.plot([x["recall"] for x in pts], [x["qps"] for x in pts], "D-", color="black",
                label=f"hnswlib 0.6.2 -O3 -march=native (M {h['m']}, efC {h['efc']}), ef "
                      f"{min(map(int, h['efs']))}..{max(map(int, h['efs']))}")
    ps = sorted(FAISS_TUNED)
    ax.plot([FAISS_TUNED[p][0] for p in ps], [FAISS_TUNED[p][1] for p in ps], "x:", color="gray",
            label="FAISS 1.12 IVF-SQfp16 AVX-512 (issue's figures, other run, other data)")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (one thread, one query at a time)")
    ax.set_title(f"{res['data']['n']:,} x {res['data']['dim']}, {res['lists']} lists")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def markdown(res, a):
    m, b = res["machine"], res["build"]
    L = []
    L.append(f"Run of {res['when']} on {m['cpu']} ({m['nproc']} cores), kernels "
             f"{m['kernel_f16']} (f16) / {m['kernel_sq8']} (int8) / {m.get('kernel_bits')} (bits), "
             f"{m['openblas']}, load average {res.get('load', '?')} at the start. "
             f"Data: `gen_data.py` {res['data']['n']:,} x {res['data']['dim']} "
             f"({res['data'].get('centres')} centres in {res['data'].get('groups')} groups, "
             f"sigma {res['data'].get('sigma')}), {res['data'].get('queries')} held-out queries, "
             f"exact ground truth. Medians of {a.runs} runs.")
    L.append("")
    L.append("### Machine limits (same run)")
    L.append("")
    L.append("| figure | value |")
    L.append("|---|---|")
    L.append(f"| single-core sequential read bandwidth (`apbench membw`, 1 GiB) | {m['read_gbps']:.2f} GB/s |")
    if m.get("pack_read_gbps"):
        L.append(f"| the same over the built pack.annpack as search maps it (`apbench filebw`) | "
                 f"{m['pack_read_gbps']:.2f} GB/s |")
    L.append(f"| OpenBLAS sgemm 8192x1024x384, 1 thread | {m['sgemm_gflops_1t']:.0f} GFLOP/s |")
    L.append(f"| OpenBLAS sgemm 8192x1024x384, 2 threads | {m['sgemm_gflops_2t']:.0f} GFLOP/s |")
    L.append("")
    L.append("### Build (vectors given, 2 threads, 10 k-means iterations, 256 x lists sample)")
    L.append("")
    r = b["report"]["seconds"]
    L.append("| engine | train | assign/add | train GFLOP/s (% of sgemm) | assign GFLOP/s (% of sgemm) | index bytes | peak RSS |")
    L.append("|---|---|---|---|---|---|---|")
    g2 = m["sgemm_gflops_2t"]
    L.append(f"| annpack | {r['kmeans']:.2f} s | {r['assign']:.2f} s | {b['train_gflops']:.0f} "
             f"({100 * b['train_gflops'] / g2:.0f}%) | {b['assign_gflops']:.0f} "
             f"({100 * b['assign_gflops'] / g2:.0f}%) | {b['index_bytes']:,} (+ {b['sq8_bytes']:,} int8, "
             f"+ {b.get('bits_bytes', 0):,} bits) | "
             f"{b['peak_rss'] / 2**20:.0f} MiB |")
    if res.get("faiss"):
        for key, label in (("ivf_flat", "FAISS IVF-Flat"), ("ivf_sq_fp16", "FAISS IVF-SQfp16")):
            f = res["faiss"][key]
            L.append(f"| {label} (Debian {res['faiss']['version']}) | {f['train_s']:.2f} s | "
                     f"{f['add_s']:.2f} s | | | {f['index_bytes']:,} | |")
    if res.get("hnsw"):
        h = res["hnsw"]
        L.append(f"| hnswlib 0.6.2 native (M {h['m']}, efC {h['efc']}) | {h['build_s']:.1f} s "
                 f"(insert) | | | | {h['index_bytes']:,} | {h['peak_rss'] / 2**20:.0f} MiB |")
    L.append("")
    L.append(f"annpack's whole build (read the fvecs, normalise, k-means, assign, f16 lists, int8 "
             f"and 1-bit sidecars, metadata, hashes, fsync): {r['total']:.1f} s.")
    L.append("")
    L.append("### Search (one thread, one query at a time, k = 10)")
    L.append("")
    fbw = m.get("pack_read_gbps") or m["read_gbps"]
    L.append("| probe | engine | recall@10 | QPS | p50 µs | p99 µs | scan GB/s (% of read bw / of pack-file bw) | overhead µs | re-ranked |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    ex = res.get("exact_same_lists", {})
    for p in sorted(res["annpack"]["f16"], key=int):
        e = ex.get(p, ex.get(str(p)))
        if e is not None:
            L.append(f"| {p} | exact f32 IVF-Flat on annpack's lists | {e:.4f} | | | | | |")
        for key, label in (("f16", "annpack f16"), ("sq8", "annpack int8+rerank"),
                           ("bits", "annpack bits+rerank")):
            if key not in res["annpack"]:
                continue
            x = res["annpack"][key][p]
            L.append(f"| {p} | {label} | {x['recall']:.4f} | {x['qps']:.0f} | {x['p50_us']:.0f} | "
                     f"{x['p99_us']:.0f} | {x['scan_gbps']:.2f} ({100 * x['scan_gbps'] / m['read_gbps']:.0f}% / "
                     f"{100 * x['scan_gbps'] / fbw:.0f}%) | "
                     f"{x['overhead_us_p50']:.1f} | {x.get('reranked_per_query', 0):.0f} |")
        if res.get("faiss"):
            for key, label in (("ivf_flat", "FAISS IVF-Flat"), ("ivf_sq_fp16", "FAISS IVF-SQfp16")):
                x = res["faiss"][key]["probes"].get(p) or res["faiss"][key]["probes"].get(int(p))
                if x:
                    L.append(f"| {p} | {label} (Debian) | {x['recall']:.4f} | {x['qps']:.0f} | "
                             f"{x['p50_us']:.0f} | {x['p99_us']:.0f} | | |")
        t = FAISS_TUNED.get(int(p))
        if t:
            L.append(f"| {p} | FAISS 1.12 SQfp16, AVX-512 (issue) | {t[0]:.3f} | {t[1]} | | | | |")
    if res.get("hnsw"):
        L.append("")
        L.append(f"hnswlib 0.6.2 (Debian's headers compiled here with -O3 -march=native, M "
                 f"{res['hnsw']['m']}, efConstruction {res['hnsw']['efc']}, one thread, one "
                 f"query at a time; checks: hnswlib's own brute force agrees with gt.ivecs on "
                 f"{res['hnsw'].get('gt_check', float('nan')):.4f} of the top-10 of "
                 f"{res['hnsw'].get('check')} queries, and {res['hnsw'].get('self_check', float('nan')):.4f} "
                 f"of {res['hnsw'].get('check')} base rows searched at ef "
                 f"{res['hnsw'].get('self_check_ef')} find themselves):")
        L.append("")
        L.append("| ef | recall@10 | QPS | p50 µs | p99 µs |")
        L.append("|---|---|---|---|---|")
        for ef in sorted(res["hnsw"]["efs"], key=int):
            x = res["hnsw"]["efs"][ef]
            L.append(f"| {ef} | {x['recall']:.4f} | {x['qps']:.0f} | {x['p50_us']:.0f} | "
                     f"{x['p99_us']:.0f} |")
    L.append("")
    L.append("![recall vs QPS](bench_recall_qps.png)")
    if res.get("mount"):
        mt = res["mount"]
        L.append("")
        L.append("### Through the mount (`/vquery/` file reads, a fresh result each time)")
        L.append("")
        L.append("| figure | value |")
        L.append("|---|---|")
        L.append(f"| trivial libfuse3 file, open+read+close of a distinct name (the floor), p50 | "
                 f"{res['floor']['p50_us']:.1f} µs (runs {', '.join(f'{x:.0f}' for x in res['floor']['runs_p50_us'])}) |")
        bf = res.get("busy_floor")
        if bf:
            L.append(f"| the same with a {bf['busy_us']:.0f} µs busy lookup, minus the busy time, p50 | "
                     f"{bf['p50_us'] - bf['busy_us']:.1f} µs |")
        for p, x in sorted(mt["probes"].items(), key=lambda kv: int(kv[0])):
            L.append(f"| probe {p}: mount p50 / in-process p50 / added | {x['p50_us']:.0f} / "
                     f"{res['annpack']['sq8'][p]['p50_us']:.0f} / {x['added_p50_us']:.0f} µs "
                     f"({x['added_p50_us'] / res['floor']['p50_us']:.2f}x the floor) |")
        pin = mt.get("pinned")
        if pin:
            p0 = a.mount_probes[0]
            L.append(f"| probe {p0}, daemon and client pinned to one CPU: mount p50 / added | "
                     f"{pin['same_cpu']['p50_us']:.0f} / {pin['same_cpu']['added_p50_us']:.0f} µs |")
            L.append(f"| probe {p0}, daemon and client pinned to different CPUs: mount p50 / added | "
                     f"{pin['other_cpu']['p50_us']:.0f} / {pin['other_cpu']['added_p50_us']:.0f} µs |")
        L.append(f"| mount time (verify=full: hashes, virtual manifest) | {mt['mount_s']:.1f} s |")
        rs = mt["rss_serving"]
        L.append(f"| daemon while serving: peak RSS since mount / anonymous / file pages | "
                 f"{rs['VmHWM'] / 2**20:.0f} / {rs['RssAnon'] / 2**20:.0f} / {rs['RssFile'] / 2**20:.0f} MiB |")
    return "\n".join(L) + "\n"


def write_docs(res, a):
    md = ROOT / "docs" / "BENCHMARKS.md"
    text = md.read_text()
    body = markdown(res, a)
    begin, end = "<!-- harness:begin -->", "<!-- harness:end -->"
    if begin in text and end in text:
        text = text[:text.index(begin) + len(begin)] + "\n" + body + text[text.index(end):]
    else:
        text += f"\n{begin}\n{body}{end}\n"
    md.write_text(text)
    plot(res, ROOT / "docs" / "bench_recall_qps.png")
    log(f"wrote {md} and docs/bench_recall_qps.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--lists", type=int, default=1024)
    ap.add_argument("--probes", default="1,2,4,8,16,32,64")
    ap.add_argument("--mount-probes", default="8,32")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default=None)
    ap.add_argument("--faiss-queries", type=int, default=1000)
    ap.add_argument("--no-faiss", action="store_true")
    ap.add_argument("--no-hnsw", action="store_true")
    ap.add_argument("--hnsw-efs", default="16,32,64,128,256")
    ap.add_argument("--no-mount", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    # The generator's spread around the cluster centres (its default 1.5: near-ties that
    # graph indexes find hard; 0.5: clusters well apart, where they do well).
    ap.add_argument("--sigma", type=float, default=None)
    a = ap.parse_args()
    a.probes = [int(x) for x in a.probes.split(",")]
    a.mount_probes = [int(x) for x in a.mount_probes.split(",")]
    a.hnsw_efs = [int(x) for x in a.hnsw_efs.split(",")]
    # The mount's added latency is against the in-process figure at the same probe.
    a.probes = sorted(set(a.probes) | set(a.mount_probes))
    for exe in (ANNPACK, ANNPACKFS, APBENCH):
        if not exe.exists():
            sys.exit(f"harness: {exe} not built (tools/setup.sh)")
    tag = f"{a.n // 1000}k_{a.dim}" + ("" if a.sigma is None else f"_s{a.sigma:g}")
    a.data = a.data or str(ROOT / "build" / "bench" / f"data_{tag}")
    work = pathlib.Path(a.work or ROOT / "build" / "bench" / f"work_{tag}")
    work.mkdir(parents=True, exist_ok=True)
    res = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "lists": a.lists,
           "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    res["data"] = ensure_data(a)
    log("machine limits")
    res["machine"] = machine(a)
    log(f"read {res['machine']['read_gbps']:.2f} GB/s, sgemm {res['machine']['sgemm_gflops_2t']:.0f} GFLOP/s (2t)")
    pack = work / "pack"
    log("annpack build")
    res["build"] = annpack_build(a, res["data"], pack)
    log(f"build {res['build']['wall_s']:.1f} s; train {res['build']['train_gflops']:.0f} GFLOP/s, "
        f"assign {res['build']['assign_gflops']:.0f} GFLOP/s")
    fb = [json.loads(sh([APBENCH, "filebw", pack / "pack.annpack", "--runs", 3]))["read_gbps_median"]
          for _ in range(a.runs)]
    res["machine"]["pack_read_gbps"] = med(fb)
    res["machine"]["pack_read_gbps_runs"] = fb
    log(f"pack file read {med(fb):.2f} GB/s")
    res["annpack"] = {"f16": {}, "sq8": {}, "bits": {}}
    for p in a.probes:
        for scan in ("f16", "sq8", "bits"):
            res["annpack"][scan][p] = annpack_search(a, pack, p, scan)
            x = res["annpack"][scan][p]
            log(f"annpack {scan} probe {p}: recall {x['recall']:.4f} qps {x['qps']:.0f} "
                f"scan {x['scan_gbps']:.2f} GB/s overhead {x['overhead_us_p50']:.1f} us")
    log("exact f32 IVF-Flat on annpack's lists")
    res["exact_same_lists"] = exact_same_lists(a, pack)
    if not a.no_faiss:
        res["faiss"] = faiss_bench(a, res["data"])
    if not a.no_hnsw:
        try:
            res["hnsw"] = hnsw_bench(a, work)
        finally:  # a failed check still leaves the figures measured so far
            (work / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    if not a.no_mount:
        res["floor"] = floor_bench(a, work)
        auto = "sq8"  # the mount's scan=auto
        busy = res["annpack"][auto][a.mount_probes[0]]["p50_us"]
        bf = floor_bench(a, work, int(busy))
        bf["busy_us"] = int(busy)
        res["busy_floor"] = bf
        res["mount"] = mount_bench(a, work, pack, res["annpack"][auto])
    (work / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    log(f"results in {work / 'results.json'}")
    print(markdown(res, a))
    if a.write_docs:
        write_docs(res, a)


if __name__ == "__main__":
    main()
