#!/usr/bin/env python3
"""Verified serving in milliseconds (issue 18): what mounting and verifying a signed pack
costs, lazily (-o verify=lazy, the default) and eagerly (-o verify=full).

usage: /usr/bin/python3 tools/bench/verify_bench.py PACK_OR_PACKSET --queries Q.fvecs
           [--pubkey PUB] [--runs 3] [--cold] [--probe 8] [--n 200] [--json OUT]
           [--modes lazy,full] [--no-deep]

Per mode, medians of --runs: the time from starting annpackfs to the mount being live
(page cache warm, and with --cold after dropping the page cache: `echo 1 >
/proc/sys/vm/drop_caches`, which slows every process on the machine for a moment), the
daemon's RSS right after mounting (total, anonymous, file-backed), the first query after
mounting (its lists cold: not yet hashed), then --n fresh queries (`apbench mountq`, probe
--probe, a new name each: each computes afresh) with the FUSE requests the daemon counted per
query (its /stats "requests", the stats reads themselves subtracted), against the trivial
libfuse floor (`apbench fusefloor` + `readnames`) of the same run. Also `annpack verify
--deep` seconds and `annpack diagnose`'s SHA-256 GB/s. A second pass of --n fresh names
over the lists now checked is the steady state; its p50 minus the in-process p50 of the
same queries (`annpack search --queries`, one thread) is the latency the mount adds,
reported against the floor ("added_vs_floor"). A mode "lazy+single" mounts with -o
single_thread. Prints one JSON object."""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from harness import ANNPACK, ANNPACKFS, APBENCH, floor_bench, proc_status, sh, unmount  # noqa: E402


def is_mounted(path):
    path = os.path.realpath(path)
    return any(line.split()[1] == path for line in open("/proc/mounts"))


def drop_caches():
    subprocess.run(["sync"], check=False)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1")


def stats(mnt):
    return json.loads((mnt / "stats").read_text())


def fuse_requests(s):
    r = s["requests"]
    return r["lookup"] + r["getattr"] + r["open"] + r["read"]


def one_mount(a, mnt, mode, cold, first_k):
    """Mounts, measures, unmounts: {mount_s, rss, first_query_us, ...}. mode is a verify=
    value, optionally with "+single" (-o single_thread)."""
    if cold:
        drop_caches()
    verify, _, extra = mode.partition("+")
    opts = ([f"verify={verify}"] + ([f"pubkey={a.pubkey}"] if a.pubkey else [])
            + (["single_thread"] if extra == "single" else []))
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(ANNPACKFS), str(a.source), str(mnt), "-f", "-o", ",".join(opts)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        while not is_mounted(mnt):
            if proc.poll() is not None:
                raise RuntimeError(f"annpackfs exited {proc.returncode}")
            time.sleep(0.002)
        out["mount_s"] = time.perf_counter() - t0
        out["rss"] = proc_status(proc.pid)
        s0 = stats(mnt)
        out["hashed_at_mount"] = s0["verify_hashed"]
        out["ranges"] = s0["verify_ranges"]
        first = json.loads(sh([APBENCH, "mountq", mnt, "--queries", a.queries, "--probe", a.probe,
                               "-k", first_k, "--n", 1]))
        out["first_query_us"] = first["p50_us"]
        s1 = stats(mnt)
        s2 = stats(mnt)  # what reading stats itself costs in requests
        per_stats = fuse_requests(s2) - fuse_requests(s1)
        r = json.loads(sh([APBENCH, "mountq", mnt, "--queries", a.queries, "--probe", a.probe,
                           "-k", first_k + 1, "--from", 1, "--n", a.n]))
        s3 = stats(mnt)
        out["query_p50_us"] = r["p50_us"]
        out["requests_per_query"] = (fuse_requests(s3) - fuse_requests(s2) - per_stats) / a.n
        out["requests"] = {k: (s3["requests"][k] - s2["requests"][k]) / a.n
                           for k in s3["requests"]}
        out["hashed_after_queries"] = s3["verify_hashed"]
        # Again with fresh names (another k) over lists now checked: the steady state, what
        # the added latency against the floor is measured on.
        # k = 10 (the in-process comparison's; the passes above use k >= 20).
        r = json.loads(sh([APBENCH, "mountq", mnt, "--queries", a.queries, "--probe", a.probe,
                           "-k", 10, "--from", 1, "--n", a.n]))
        out["query_p50_steady_us"] = r["p50_us"]
        out["rss_after_queries"] = proc_status(proc.pid)
    finally:
        unmount(mnt, proc)
    return out


def med_of(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=pathlib.Path)
    ap.add_argument("--queries", type=pathlib.Path, required=True)
    ap.add_argument("--pubkey")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--probe", type=int, default=8)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--modes", default="lazy,full", help="verify= modes to mount with")
    ap.add_argument("--no-deep", action="store_true", help="skip annpack verify --deep")
    a = ap.parse_args()
    work = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"verify_bench.{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    res = {"source": str(a.source), "cpu": next((l.split(":", 1)[1].strip()
                                                  for l in open("/proc/cpuinfo")
                                                  if l.startswith("model name")), "?"),
           "loadavg_before": open("/proc/loadavg").read().split()[:3]}
    d = json.loads(sh([ANNPACK, "diagnose"]))
    res["sha256"] = d["sha256"]
    deep = []
    for _ in range(0 if a.no_deep else a.runs):
        t = time.perf_counter()
        sh([ANNPACK, "verify", a.source, "--deep"] + (["--pubkey", a.pubkey] if a.pubkey else []))
        deep.append(time.perf_counter() - t)
    res["verify_deep_s"] = statistics.median(deep) if deep else None
    res["verify_deep_runs_s"] = deep
    k = 20
    for mode in a.modes.split(","):
        for cold in ([False, True] if a.cold else [False]):
            runs = []
            for _ in range(a.runs):
                runs.append(one_mount(a, mnt, mode, cold, k))
                k += 2
            key = f"{mode}_{'cold' if cold else 'warm'}"
            res[key] = {
                "mount_s": med_of(runs, "mount_s"),
                "mount_runs_s": [r["mount_s"] for r in runs],
                "rss_after_mount_mib": statistics.median(r["rss"]["VmRSS"] for r in runs) / 2**20,
                "rss_anon_after_mount_mib":
                    statistics.median(r["rss"]["RssAnon"] for r in runs) / 2**20,
                "first_query_us": med_of(runs, "first_query_us"),
                "query_p50_us": med_of(runs, "query_p50_us"),
                "query_p50_steady_us": med_of(runs, "query_p50_steady_us"),
                "requests_per_query": med_of(runs, "requests_per_query"),
                "requests": runs[-1]["requests"],
                "ranges": runs[-1]["ranges"],
                "hashed_at_mount": runs[-1]["hashed_at_mount"],
                "hashed_after_queries": runs[-1]["hashed_after_queries"],
            }
            print(key, json.dumps(res[key]), file=sys.stderr, flush=True)
    a.runs_floor = a.runs

    class A:
        runs = a.runs
    res["fuse_floor"] = floor_bench(A, work)
    # The same queries in process (one thread): what the mount adds is its p50 minus this.
    ip = [json.loads(sh([ANNPACK, "search", a.source, "--queries", a.queries, "-k", 10,
                         "--probe", a.probe, "--warmup", 1]))
          for _ in range(a.runs)]
    res["in_process"] = {"p50_us": statistics.median(x["latency_us"]["p50"] for x in ip),
                         "probe_us_p50": statistics.median(x["probe_us_p50"] for x in ip)}
    for key in [k for k in res if isinstance(res[k], dict) and "query_p50_steady_us" in res[k]]:
        added = res[key]["query_p50_steady_us"] - res["in_process"]["p50_us"]
        res[key]["added_us"] = added
        res[key]["added_vs_floor"] = added / res["fuse_floor"]["p50_us"]
    res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    text = json.dumps(res, indent=1)
    if a.json:
        a.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
