#!/usr/bin/env python3
"""The benchmark stage of tools/prod_gate.sh: runs tools/bench/bench.py on the workload of a
thresholds file (tools/bench/thresholds.json), measures the machine's read bandwidth
(apbench membw) before each run, and checks the medians against the file's limits.

Figures (all from the same run):
  recall_at_k_vs_exact      recall@k at the workload's probe against probe = every list
  self_hit_at_1             how often a query (a row's text, a third of it dropped) finds its row first
  exact_scan_bw_ratio       vector bytes / exact-search took_ms, over the machine's read GB/s
  probe_qps_per_membw_gbps  1000 / took_ms p50 at the probe, per GB/s of read bandwidth
  build_us_per_row          build wall time per row, microseconds

Prints one line per figure (`ok` or `FAIL`) and exits 1 naming the figures that crossed.
usage: gate.py [--thresholds FILE] [--quick] [--json OUT]"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def apbench():
    b = pathlib.Path(os.environ.get("ANNPACK_BUILD", ROOT / "build")) / "tools/bench/apbench"
    if not b.exists():
        sys.exit(f"gate.py: {b} not found: build first (tools/setup.sh)")
    return str(b)


def membw():
    r = subprocess.run([apbench(), "membw", "--mb", "256", "--runs", "3"], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)["read_gbps_median"]


def bench(w):
    args = [sys.executable, str(HERE / "bench.py"), "--json"]
    for k in ("rows", "lists", "dim", "queries", "probe", "seed"):
        args += [f"--{k}", str(w[k])]
    args += ["-k", str(w["k"])]
    r = subprocess.run(args, capture_output=True, text=True,
                       env=dict(os.environ, ANNPACK_OFFLINE="1"))
    if r.returncode != 0:
        sys.exit(f"gate.py: bench.py failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def figures(b, bw, w):
    return {
        "recall_at_k_vs_exact": b["recall_at_k_vs_exact"],
        "self_hit_at_1": b["self_hit_at_1"],
        "exact_scan_bw_ratio": b["vector_bytes"] / (b["took_ms_exact_p50"] * 1e6) / bw,
        "probe_qps_per_membw_gbps": 1000.0 / b["took_ms_p50"] / bw,
        "build_us_per_row": b["build_s"] * 1e6 / w["rows"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--thresholds", default=str(HERE / "thresholds.json"))
    ap.add_argument("--quick", action="store_true", help="the file's smaller `quick` workload")
    ap.add_argument("--json", help="write the measured figures to this file")
    a = ap.parse_args()
    t = json.loads(pathlib.Path(a.thresholds).read_text())
    w = t["quick" if a.quick else "workload"]
    runs = []
    for _ in range(int(t.get("runs", 3))):
        bw = membw()
        runs.append(dict(figures(bench(w), bw, w), membw_gbps=bw))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"gate: {len(runs)} runs of {w['rows']} rows, {w['lists']} lists, probe {w['probe']}; "
          f"read bandwidth median {med['membw_gbps']:.2f} GB/s (apbench membw)")
    failed = []
    for kind, ok in (("min", lambda v, lim: v >= lim), ("max", lambda v, lim: v <= lim)):
        for name, lim in t.get(kind, {}).items():
            if name not in med:
                sys.exit(f"gate.py: {a.thresholds}: unknown figure {name!r}")
            v = med[name]
            good = ok(v, lim)
            op = ">=" if kind == "min" else "<="
            print(f"  {'ok  ' if good else 'FAIL'} {name} {v:.4g} (want {op} {lim})")
            if not good:
                failed.append(f"{name} {v:.4g} {'<' if kind == 'min' else '>'} {lim}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({"median": med, "runs": runs}, indent=1))
    if failed:
        print("gate: FAIL " + "; ".join(failed))
        sys.exit(1)
    print("gate: PASS")


if __name__ == "__main__":
    main()
