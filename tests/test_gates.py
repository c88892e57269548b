"""tools/stage_all.sh and tools/prod_gate.sh name the stage that fails: a misformatted C
file fails stage_all's `format` stage (and so prod_gate's `stage all`), a threshold no
run can meet fails prod_gate's `bench` stage, and the checked-in thresholds pass on this
machine (the quick workload, so CI stays short; the full gate is tools/prod_gate.sh)."""
import json
import subprocess

import pytest

from conftest import ROOT


def run(args, cwd=ROOT, timeout=600):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=None)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def clone(tmp_path):
    d = tmp_path / "clone"
    rc, out = run(["git", "clone", "-q", "--no-hardlinks", ROOT, d])
    assert rc == 0, out
    return d


def test_stage_all_names_the_failing_stage(clone):
    rc, out = run(["bash", clone / "tools/stage_all.sh", "--only", "format"], cwd=clone)
    assert rc == 0 and "PASS stage all" in out, out
    c = clone / "core" / "base" / "env.c"
    c.write_text(c.read_text().replace("{\n", "{   \n\n\n", 1))
    rc, out = run(["bash", clone / "tools/stage_all.sh", "--only", "format"], cwd=clone)
    assert rc == 1, out
    assert out.rstrip().splitlines()[-1].startswith("FAIL stage all: format"), out
    assert "core/base/env.c" in out
    rc, out = run(["bash", clone / "tools/prod_gate.sh", "--only", "format", "--quick"],
                  cwd=clone)
    assert rc == 1 and "FAIL prod gate: stage all: format" in out, out
    assert "== bench" not in out  # the benchmark does not run after a failed stage
    rc, out = run(["bash", clone / "tools/stage_all.sh", "--only", "nonsense"], cwd=clone)
    assert rc == 2 and "unknown stage 'nonsense'" in out


def gate(*args):
    return run(["bash", ROOT / "tools/prod_gate.sh", "--skip-stage-all", "--quick", *args],
               timeout=600)


@pytest.mark.slow  # a benchmark: not under the sanitizers (their slowdown is not a regression)
def test_prod_gate_checked_in_thresholds_pass():
    rc, out = gate()
    assert rc == 0, out
    assert out.rstrip().splitlines()[-1].startswith("PASS prod gate"), out
    for name in ("recall_at_k_vs_exact", "exact_scan_bw_ratio", "probe_qps_per_membw_gbps",
                 "build_us_per_row"):
        assert f"ok   {name}" in out


@pytest.mark.slow
def test_prod_gate_fails_on_a_broken_threshold(tmp_path):
    t = json.loads((ROOT / "tools/bench/thresholds.json").read_text())
    t["runs"] = 1
    t["min"]["recall_at_k_vs_exact"] = 1.01  # recall cannot exceed 1
    f = tmp_path / "broken.json"
    f.write_text(json.dumps(t))
    rc, out = gate("--thresholds", f)
    assert rc == 1, out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("FAIL prod gate: bench: recall_at_k_vs_exact "), out
    assert "< 1.01" in last
    # An unknown figure is an error, not a silent pass.
    t["min"] = {"qps_typo": 1}
    f.write_text(json.dumps(t))
    rc, out = gate("--thresholds", f)
    assert rc == 1 and "unknown figure 'qps_typo'" in out, out

