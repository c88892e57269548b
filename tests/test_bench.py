"""The benchmark tools keep working: the quick offline bench.py, apbench's measurements and
clients, gen_data.py's determinism, and a tiny end-to-end run of the harness (no FAISS)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT
from mountlib import is_mounted

APBENCH = BUILD / "tools" / "bench" / "apbench"
BENCH = ROOT / "tools" / "bench"


def run(args, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{args[:3]}: rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r.stdout


def test_quick_offline_bench():
    env = dict(os.environ, ANNPACK_OFFLINE="1", ANNPACK_BUILD=str(BUILD))
    out = json.loads(run([sys.executable, BENCH / "bench.py", "--rows", 600, "--lists", 16,
                          "--queries", 20, "--json"], env=env))
    assert out["rows"] == 600 and out["lists"] == 16 and out["queries"] == 20
    assert 0 < out["took_ms_p50"] <= out["took_ms_p99"]
    assert 0.3 <= out["recall_at_k_vs_exact"] <= 1.0
    # A query is its own row with a third of the words dropped: it should mostly come first.
    assert out["self_hit_at_1"] >= 0.6
    text = run([sys.executable, BENCH / "bench.py", "--rows", 300, "--lists", 8, "--queries", 5],
               env=env)
    assert "annpack quick benchmark" in text and "recall@10" in text


def test_bench_py_bad_arguments():
    r = subprocess.run([sys.executable, BENCH / "bench.py", "--rows", "0"], capture_output=True,
                       text=True, env=dict(os.environ, ANNPACK_BUILD=str(BUILD)))
    assert r.returncode != 0 and "must be positive" in r.stderr


def test_apbench_limits():
    bw = json.loads(run([APBENCH, "membw", "--mb", 64, "--runs", 2]))
    assert bw["read_gbps_median"] > 0.5 and bw["read_gbps_best"] >= bw["read_gbps_median"]
    g = json.loads(run([APBENCH, "sgemm", "--threads", 1, "--m", 256, "--n", 128, "--k", 64,
                        "--runs", 2]))
    assert g["gflops_median"] > 0.1
    r = subprocess.run([str(APBENCH), "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2


def test_fuse_floor_and_readnames(tmp_path):
    mnt = tmp_path / "floor"
    mnt.mkdir()
    proc = subprocess.Popen([str(APBENCH), "fusefloor", str(mnt), "--busy-us", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if is_mounted(mnt):
                break
            assert proc.poll() is None, proc.stderr.read()
            import time
            time.sleep(0.02)
        assert (mnt / "anything").read_text().startswith('{"floor":true')
        out = json.loads(run([APBENCH, "readnames", mnt, "--n", 50]))
        assert out["calls"] == 50 and out["errors"] == 0
        # Each lookup spins 50 us, so no call can be faster than that.
        assert out["p50_us"] >= 50
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
        proc.wait(timeout=20)
    assert not is_mounted(mnt)


def test_gen_data_is_deterministic(tmp_path):
    args = ["--n", 500, "--dim", 16, "--centres", 20, "--groups", 4, "--queries", 10,
            "--gt-k", 20]
    for d in ("a", "b"):
        run(["/usr/bin/python3", BENCH / "gen_data.py", tmp_path / d, *args])
    for f in ("base.fvecs", "queries.fvecs", "gt.ivecs"):
        a, b = (tmp_path / "a" / f).read_bytes(), (tmp_path / "b" / f).read_bytes()
        assert a == b and len(a) > 0
    assert len((tmp_path / "a" / "base.fvecs").read_bytes()) == 500 * (4 + 4 * 16)
    assert len((tmp_path / "a" / "gt.ivecs").read_bytes()) == 10 * (4 + 4 * 20)


def test_harness_tiny_end_to_end(tmp_path):
    """Data, machine limits, build, in-process search at two probes, the floors and the
    mount, on a tiny set: the numbers are meaningless, the code path is what is tested."""
    out = run(["/usr/bin/python3", BENCH / "harness.py", "--n", 3000, "--dim", 32, "--lists", 16,
               "--probes", "1,16", "--mount-probes", "4", "--runs", 1, "--no-faiss",
               "--data", tmp_path / "data", "--work", tmp_path / "work"],
              env=dict(os.environ, ANNPACK_BUILD=str(BUILD)))
    res = json.loads((tmp_path / "work" / "results.json").read_text())
    assert res["build"]["report"]["rows"] == 3000 and res["build"]["report"]["sq8"] is True
    f16, sq8 = res["annpack"]["f16"], res["annpack"]["sq8"]
    # probe 16 of 16 lists is exact: recall is the f16 rounding's only.
    assert f16["16"]["recall"] >= 0.98 and sq8["16"]["recall"] >= f16["16"]["recall"] - 0.02
    assert f16["1"]["recall"] <= f16["16"]["recall"]
    # The same lists scanned exactly in float32: only float16 rounding separates the two.
    assert abs(f16["1"]["recall"] - res["exact_same_lists"]["1"]) <= 0.02
    assert res["mount"]["probes"]["4"]["p50_us"] > 0 and res["floor"]["p50_us"] > 0
    assert "### Search" in out and "| 16 | annpack f16 |" in out
    # hnswlib's checks passed (the harness stops otherwise) and it is exact at a high ef.
    h = res["hnsw"]
    assert h["gt_check"] >= 0.99 and h["self_check"] >= 0.99
    assert h["efs"]["256"]["recall"] >= 0.99
    assert not is_mounted(tmp_path / "work" / "mnt")


def hnsw_driver(work):
    sys.path.insert(0, str(BENCH))
    try:
        import harness
    finally:
        sys.path.remove(str(BENCH))
    return harness.hnsw_driver(work)


def test_hnsw_checks_catch_harness_defects(tmp_path):
    """The checks that keep a harness defect from passing as hnswlib's recall: ground truth
    whose labels are off by one row (or computed for other data) fails gt_check, an index
    reused for data it was not built on fails self_check; sound files pass both."""
    exe = hnsw_driver(tmp_path)
    args = ["--n", 2000, "--dim", 32, "--centres", 20, "--groups", 4, "--queries", 40,
            "--gt-k", 10]
    for d, seed in (("a", 1), ("b", 2)):
        run(["/usr/bin/python3", BENCH / "gen_data.py", tmp_path / d, *args, "--seed", seed])

    def bench(base, gt, index):
        return json.loads(run([exe, tmp_path / base / "base.fvecs", tmp_path / base /
                               "queries.fvecs", gt, tmp_path / index, "--efs", "16,128",
                               "--runs", 1, "--check", 40]))

    good = bench("a", tmp_path / "a" / "gt.ivecs", "a.bin")
    assert good["gt_check"] >= 0.99 and good["self_check"] == 1.0
    assert good["efs"]["128"]["recall"] >= 0.99
    # Labels off by one: every neighbour id shifted, as a 1-based or header-skewed reader.
    gt = (tmp_path / "a" / "gt.ivecs").read_bytes()
    rec = bytearray(gt)
    for off in range(0, len(rec), 4 + 4 * 10):
        for j in range(10):
            at = off + 4 + 4 * j
            rec[at:at + 4] = (int.from_bytes(rec[at:at + 4], "little") + 1).to_bytes(4, "little")
    (tmp_path / "shifted.ivecs").write_bytes(bytes(rec))
    shifted = bench("a", tmp_path / "shifted.ivecs", "a.bin")
    assert shifted["gt_check"] < 0.5 and shifted["efs"]["128"]["recall"] < 0.5
    # The index of data set a reused for data set b (same sizes): the graph is stale.
    stale = bench("b", tmp_path / "b" / "gt.ivecs", "a.bin")
    assert stale["gt_check"] >= 0.99 and stale["self_check"] < 0.5
