"""Packsets: build-base, deltas, promote, revert, rebase, status, merged search."""
import json
import os
import random
import shutil
import signal
import subprocess

import numpy as np
import pytest

from annpack_reader import read_annp
from conftest import EXAMPLES, write_csv


@pytest.fixture
def ps(annpack, tmp_path):
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", d,
               "--lists", 4, "--seed", 1)
    return d


def status(annpack, d):
    return annpack.ok("packset", "status", d).json()


def test_build_base_layout(annpack, ps):
    m = json.loads((ps / "pack.manifest.json").read_text())
    assert m["schema_version"] == 3 and m["version"] == 1 and m["deltas"] == []
    assert m["base"]["path"] == "base" and m["base"]["annpack"] == "base/pack.annpack"
    assert (ps / "base" / "pack.annpack").exists()
    s = status(annpack, ps)
    assert s["version"] == 1 and s["live"] == 40 and s["deltas"] == []
    annpack.ok("verify", ps, "--deep")


def test_delta_add_update_delete(annpack, ps):
    out = annpack.ok("packset", "build-delta", "--packset", ps, "--add",
                     EXAMPLES / "delta_add.csv", "--delete-ids", "1,2",
                     "--out", ps / "deltas" / "0001.delta").json()
    assert out["version"] == 2 and out["live"] == 40 + 2 - 2
    d = out["deltas"][0]
    assert d["seq"] == 1 and d["adds"] == 2 and d["updates"] == 1 and d["tombstones"] == 2
    assert (ps / "deltas/0001.delta/tombstones.jsonl").read_text() == '{"id":1}\n{"id":2}\n'
    # Search sees the merged view: new docs, the updated row, no deleted ids.
    r = annpack.ok("search", ps, "kombucha sweet tea fermented", "-k", 1).json()
    assert r["results"][0]["id"] == 40 and r["results"][0]["layer"] == 1
    r = annpack.ok("search", ps, "bicycle chain degreaser roller", "-k", 40, "--probe", 99).json()
    sevens = [h for h in r["results"] if h["id"] == 7]
    assert len(sevens) == 1 and sevens[0]["meta"]["title"].endswith("(updated)")
    assert sevens[0]["layer"] == 1
    ids = {h["id"] for h in r["results"]}
    assert 1 not in ids and 2 not in ids and len(ids) == 40
    annpack.ok("verify", ps, "--deep")
    insp = annpack.ok("inspect", ps).json()
    assert insp["kind"] == "packset" and insp["n_vectors"] == 40 and insp["version"] == 2


def test_delete_only_and_readd(annpack, ps, tmp_path):
    annpack.ok("packset", "build-delta", "--packset", ps, "--delete-ids", "5",
               "--out", ps / "deltas" / "0001.delta")
    r = annpack.ok("search", ps, "git rebase replays commits", "-k", 40, "--probe", 9).json()
    assert 5 not in [h["id"] for h in r["results"]]
    src = tmp_path / "readd.csv"
    write_csv(src, [(5, "git rebase is back again")])
    s = annpack.ok("packset", "build-delta", "--packset", ps, "--add", src,
                   "--out", ps / "deltas" / "0002.delta").json()
    assert s["deltas"][1]["adds"] == 1 and s["live"] == 40
    r = annpack.ok("search", ps, "git rebase is back again", "-k", 1).json()
    assert r["results"][0]["id"] == 5 and r["results"][0]["layer"] == 2


def test_add_and_delete_same_id_refused(annpack, ps):
    r = annpack("packset", "build-delta", "--packset", ps, "--add", EXAMPLES / "delta_add.csv",
                "--delete-ids", "40", "--out", ps / "deltas" / "0001.delta")
    assert r.rc == 1 and "id 40 is both added" in r.err
    assert not (ps / "deltas" / "0001.delta").exists()
    assert status(annpack, ps)["version"] == 1


def test_delete_ids_file_formats(annpack, ps, tmp_path):
    f = tmp_path / "del.jsonl"
    f.write_text('{"id": 3}\n\n4\n{"id":6}\n')
    s = annpack.ok("packset", "build-delta", "--packset", ps, "--delete-ids-file", f,
                   "--out", ps / "deltas" / "0001.delta").json()
    assert s["deltas"][0]["tombstones"] == 3 and s["live"] == 37
    bad = tmp_path / "bad.txt"
    bad.write_text("7\nseven\n")
    r = annpack("packset", "build-delta", "--packset", ps, "--delete-ids-file", bad,
                "--out", ps / "deltas" / "0002.delta")
    assert r.rc == 1 and "bad.txt:2" in r.err


def test_promote_and_refusals(annpack, ps, tmp_path):
    delta = tmp_path / "outside.delta"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--add", EXAMPLES / "delta_add.csv",
               "--out", delta)
    s = annpack.ok("packset", "promote-delta", "--packset", ps, "--delta", delta).json()
    assert s["version"] == 2 and s["deltas"][0]["path"] == "deltas/0001.delta"
    annpack.ok("verify", ps, "--deep")
    # A delta built against another base is refused.
    other = tmp_path / "other"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", other,
               "--lists", 3, "--seed", 2)
    foreign = tmp_path / "foreign.delta"
    annpack.ok("packset", "build-delta", "--base", other / "base", "--delete-ids", "1",
               "--out", foreign)
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", foreign)
    assert r.rc == 1 and "another base" in r.err
    # Embedder/dim mismatch: a base with another dim.
    odd = tmp_path / "odd"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", odd,
               "--dim", 64)
    forged = tmp_path / "forged.delta"
    annpack.ok("packset", "build-delta", "--base", odd / "base", "--add",
               EXAMPLES / "delta_add.csv", "--out", forged)
    dm = json.loads((forged / "delta.manifest.json").read_text())
    dm["base_sha256_annpack"] = json.loads((ps / "pack.manifest.json").read_text())[
        "base"]["sha256_annpack"]
    (forged / "delta.manifest.json").write_text(json.dumps(dm))
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", forged)
    assert r.rc == 1 and "dim 64 differs from the base dim 256" in r.err
    # A delta that fails verification.
    broken = tmp_path / "broken.delta"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--delete-ids", "9", "--out", broken)
    (broken / "tombstones.jsonl").write_text('{"id":10}\n')
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", broken)
    assert r.rc == 1 and "tombstones.jsonl" in r.err
    # seq not greater than the existing ones (append via build-delta --seq).
    r = annpack("packset", "build-delta", "--packset", ps, "--delete-ids", "3", "--seq", "1",
                "--out", ps / "deltas" / "0009.delta")
    assert r.rc == 1 and "not greater" in r.err
    assert not (ps / "deltas" / "0009.delta").exists()
    assert status(annpack, ps)["version"] == 2


def tree_bytes(d):
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def test_changes_hash_only_what_they_write(annpack, tmp_path):
    """promote-delta and revert on a base fifty times the delta's size hash about the
    delta (the "sha256_bytes" they report), not the base: the kept layers' hashes are
    copied from the verified root manifest. A base byte changed before such a change is
    therefore not refused by it, but never laundered: the next version pins the old hash,
    so verify names the file and sign refuses."""
    rng = random.Random(3)
    rows = [(i, " ".join(f"w{rng.randrange(3000)}" for _ in range(12))) for i in range(12000)]
    write_csv(tmp_path / "base.csv", rows)
    write_csv(tmp_path / "d.csv", [(100000 + i, f"new doc {i} w{i}") for i in range(20)])
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", tmp_path / "base.csv", "--packset", d,
               "--lists", 16, "--dim", 128, "--sq8", "--seed", 1)
    base_bytes = tree_bytes(d / "base")
    x = tmp_path / "x.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--add", tmp_path / "d.csv",
               "--out", x)
    delta_bytes = tree_bytes(x)
    assert base_bytes > 50 * delta_bytes, (base_bytes, delta_bytes)
    s = annpack.ok("packset", "promote-delta", "--packset", d, "--delta", x).json()
    assert s["version"] == 2
    # The delta is hashed (checked where it is, again as copied, then pinned): a few times
    # its size plus the small manifests, never the base.
    assert delta_bytes <= s["sha256_bytes"] < 8 * delta_bytes + 16384, (s, delta_bytes)
    assert s["sha256_bytes"] < base_bytes / 5
    s = annpack.ok("packset", "revert", "--packset", d, "--to", 0).json()
    assert s["version"] == 3 and s["sha256_bytes"] < 16384, s
    # build-delta --packset reads every base list (its calibration): it checks them all.
    s = annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "5",
                   "--out", d / "deltas" / "0001.delta").json()
    assert s["sha256_bytes"] >= base_bytes - (d / "base" / "pack.meta.idx").stat().st_size - 65536, s
    annpack.ok("verify", d, "--deep")

    # A list byte of the base changed in place (its manifests left alone).
    annpack.ok("packset", "build-delta", "--base", d / "base", "--delete-ids", "7", "--out",
               tmp_path / "y.delta")
    m = json.loads((d / "pack.manifest.json").read_text())
    ann = d / "base" / "pack.annpack"
    b = bytearray(ann.read_bytes())
    b[len(b) - 16 * 16 - 2] ^= 1
    ann.write_bytes(bytes(b))
    s = annpack.ok("packset", "promote-delta", "--packset", d, "--delta", tmp_path / "y.delta").json()
    assert s["version"] == 5 and s["sha256_bytes"] < base_bytes / 5
    m2 = json.loads((d / "pack.manifest.json").read_text())
    assert m2["base"] == m["base"]  # the old pins, copied
    r = annpack("verify", d)
    assert r.rc == 1 and "base/pack.annpack" in r.err, repr(r)
    annpack.ok("keygen", "--out", tmp_path / "k")
    r = annpack("sign", d, "--key", tmp_path / "k.pem")
    assert r.rc == 1 and not (d / "pack.manifest.json.sig").exists(), repr(r)
    # A change that reads the base refuses it.
    r = annpack("packset", "build-delta", "--packset", d, "--delete-ids", "8",
                "--out", d / "deltas" / "0009.delta")
    assert r.rc == 1 and "base/pack.annpack" in r.err, repr(r)


def test_promote_checks_a_delta_as_every_open_does(annpack, ps, tmp_path):
    """A delta must fit its base by the same checks wherever it is met (packset/delta.c):
    one whose tombstones delete an id it adds, its hashes and counts made consistent, is
    refused by promote-delta as by every open, and the packset stays at its version."""
    import hashlib
    delta = tmp_path / "readd.delta"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--add",
               EXAMPLES / "delta_add.csv", "--out", delta)
    tomb = b'{"id":40}\n'
    (delta / "tombstones.jsonl").write_bytes(tomb)
    dm = json.loads((delta / "delta.manifest.json").read_text())
    dm["tombstones"] = 1
    dm["files"]["tombstones.jsonl"] = {"size": len(tomb),
                                       "sha256": hashlib.sha256(tomb).hexdigest()}
    (delta / "delta.manifest.json").write_text(json.dumps(dm, indent=2) + "\n")
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", delta)
    assert r.rc == 1 and "id 40 is both added and deleted" in r.err, repr(r)
    assert status(annpack, ps)["version"] == 1
    annpack.ok("verify", ps, "--deep")


def test_revert_equals_never_applied(annpack, ps, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(ps, clean)
    before = annpack.ok("search", ps, "kombucha", "-k", 10, "--probe", 4).json()["results"]
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", EXAMPLES / "delta_add.csv",
               "--out", ps / "deltas" / "0001.delta")
    after = annpack.ok("search", ps, "kombucha", "-k", 10, "--probe", 4).json()["results"]
    assert after != before
    s = annpack.ok("packset", "revert", "--packset", ps, "--to", 0).json()
    assert s["version"] == 3 and s["deltas"] == []
    assert not (ps / "deltas" / "0001.delta").exists()
    assert annpack.ok("search", ps, "kombucha", "-k", 10, "--probe", 4).json()["results"] == before
    annpack.ok("verify", ps, "--deep")


def test_rebase_equivalence(annpack, ps, tmp_path):
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", EXAMPLES / "delta_add.csv",
               "--delete-ids", "1,2", "--out", ps / "deltas" / "0001.delta")
    new = tmp_path / "rebased"
    s = annpack.ok("packset", "rebase", "--packset", ps, "--out", new, "--lists", 3,
                   "--seed", 5).json()
    assert s["version"] == 3 and s["deltas"] == [] and s["live"] == 40
    annpack.ok("verify", new, "--deep")
    for q in ["kombucha", "bicycle chain", "espresso", "sourdough"]:
        a = annpack.ok("search", ps, q, "-k", 40, "--probe", 99).json()["results"]
        b = annpack.ok("search", new, q, "-k", 40, "--probe", 99).json()["results"]
        assert [(h["id"], h["score"], h["meta"]) for h in a] == \
               [(h["id"], h["score"], h["meta"]) for h in b]
    # Rows preserved byte for byte.
    import subprocess as sp
    rows = sp.run(["zstd", "-d", "-c", "-q", str(new / "base" / "pack.meta.jsonl.zst")],
                  capture_output=True, check=True).stdout.decode().splitlines()
    assert len(rows) == 40 and [json.loads(r)["id"] for r in rows] == sorted(
        json.loads(r)["id"] for r in rows)


def test_create(annpack, tiny_pack, ps, tmp_path):
    d1 = tmp_path / "d1"
    annpack.ok("packset", "build-delta", "--base", tiny_pack, "--add", EXAMPLES / "delta_add.csv",
               "--out", d1)
    out = tmp_path / "created"
    s = annpack.ok("packset", "create", "--base", tiny_pack, "--delta", d1, "--out", out).json()
    assert s["version"] == 1 and len(s["deltas"]) == 1 and s["live"] == 42
    annpack.ok("verify", out, "--deep")


def test_packset_help(annpack):
    assert "build-delta" in annpack.ok("packset", "--help").out
    assert annpack("packset", "frob").rc == 2
    assert annpack("packset", "revert", "--packset", "x").rc == 2


# --- model-based test ------------------------------------------------------------------

WORDS = [f"w{i}" for i in range(400)]


def text_for(rng):
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 12))))


def brute(annpack, d, model, query, k):
    """Exact top-k over the model's live set, scoring with the pack's own query vector
    and the stored f16 vectors of each live row's layer."""
    q = np.array(annpack.ok("embed", d, query).json(), dtype=np.float32)
    m = json.loads((d / "pack.manifest.json").read_text())
    layers = [(0, d / "base")] + [(x["seq"], d / x["path"]) for x in m["deltas"]]
    vec = {}
    for seq, ld in layers:
        a = read_annp(ld / "pack.annpack")
        for ids, vs in a["lists"]:
            for i, v in zip(ids.tolist(), vs):
                vec[(seq, i)] = v
    scored = []
    for i, (seq, text) in model.items():
        scored.append((-float(vec[(seq, i)] @ q), i, seq, text))
    scored.sort()
    return scored[:k]


@pytest.mark.slow
def test_model_based_random_deltas(annpack, tmp_path):
    rng = np.random.default_rng(11)
    n0 = 2000
    base_rows = [(i, text_for(rng)) for i in range(n0)]
    src = tmp_path / "base.csv"
    write_csv(src, base_rows)
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", src, "--packset", d, "--lists", 16,
               "--seed", 3)
    model = {i: (0, t) for i, t in base_rows}
    next_id = n0
    steps = int(rng.integers(5, 9))
    for seq in range(1, steps + 1):
        adds, dels = {}, set()
        live = list(model)
        for i in rng.choice(live, size=min(30, len(live)), replace=False).tolist():
            if rng.random() < 0.5:
                adds[i] = text_for(rng)          # update
            else:
                dels.add(i)                      # delete
        dead = sorted(set(range(next_id)) - set(model) - dels)
        for i in dead[:5]:
            adds[i] = text_for(rng)              # re-add a deleted id
        for _ in range(20):
            adds[next_id] = text_for(rng)        # brand new
            next_id += 1
        dels -= set(adds)
        args = ["packset", "build-delta", "--packset", d, "--out", d / "deltas" / f"{seq:04d}.delta"]
        if adds:
            f = tmp_path / f"add{seq}.csv"
            write_csv(f, sorted(adds.items()))
            args += ["--add", f]
        if dels:
            args += ["--delete-ids", ",".join(map(str, sorted(dels)))]
        before = set(model)
        s = annpack.ok(*args).json()
        for i in dels:
            model.pop(i, None)
        for i, t in adds.items():
            model[i] = (seq, t)
        st = s["deltas"][-1]
        assert st["adds"] == len(set(adds) - before)
        assert st["updates"] == len(set(adds) & before)
        assert st["tombstones"] == len(dels)
        assert s["live"] == len(model)
        for _ in range(3):
            query = text_for(rng)
            got = annpack.ok("search", d, query, "-k", 10, "--probe", 16).json()["results"]
            want = brute(annpack, d, model, query, 10)
            assert [h["id"] for h in got] == [w[1] for w in want] or all(
                abs(h["score"] + w[0]) < 1e-5 for h, w in zip(got, want))
            for h, w in zip(got, want):
                assert abs(h["score"] + w[0]) < 1e-5
                assert h["layer"] == model[h["id"]][0]
                assert h["meta"]["text"] == model[h["id"]][1]
    annpack.ok("verify", d, "--deep")


# --- crash safety ---------------------------------------------------------------------


def state(annpack, d):
    s = annpack.ok("packset", "status", d).json()
    return (s["version"], [x["seq"] for x in s["deltas"]], s["live"])


@pytest.mark.parametrize("step", ["promote:copied", "promote:renamed", "append:before-manifest",
                                  "append:after-manifest"])
def test_crash_during_promote(annpack, crash_hooks, ps, tmp_path, step):
    delta = tmp_path / "x.delta"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--add",
               EXAMPLES / "delta_add.csv", "--out", delta)
    old = state(annpack, ps)
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", delta,
                env={"ANNPACK_TEST_CRASH_AT": step})
    assert r.rc == -signal.SIGKILL
    annpack.ok("verify", ps, "--deep")
    now = state(annpack, ps)
    new = (old[0] + 1, [1], 42)
    assert now == (new if step == "append:after-manifest" else old)
    # The next promote succeeds whatever was left behind.
    if now == old:
        annpack.ok("packset", "promote-delta", "--packset", ps, "--delta", delta)
        assert state(annpack, ps) == new
        annpack.ok("verify", ps, "--deep")


@pytest.mark.parametrize("step", ["revert:before-manifest", "revert:after-manifest"])
def test_crash_during_revert(annpack, crash_hooks, ps, step):
    annpack.ok("packset", "build-delta", "--packset", ps, "--delete-ids", "1",
               "--out", ps / "deltas" / "0001.delta")
    old = state(annpack, ps)
    r = annpack("packset", "revert", "--packset", ps, "--to", 0, env={"ANNPACK_TEST_CRASH_AT": step})
    assert r.rc == -signal.SIGKILL
    annpack.ok("verify", ps, "--deep")
    assert state(annpack, ps) == (old if step == "revert:before-manifest" else (old[0] + 1, [], 40))


def test_crash_during_rebase(annpack, crash_hooks, ps, tmp_path):
    annpack.ok("packset", "build-delta", "--packset", ps, "--delete-ids", "1",
               "--out", ps / "deltas" / "0001.delta")
    old = state(annpack, ps)
    new = tmp_path / "new"
    r = annpack("packset", "rebase", "--packset", ps, "--out", new,
                env={"ANNPACK_TEST_CRASH_AT": "rebase:before-rename"})
    assert r.rc == -signal.SIGKILL
    assert not new.exists() and state(annpack, ps) == old
    annpack.ok("packset", "rebase", "--packset", ps, "--out", new)
    annpack.ok("verify", new, "--deep")


def test_crash_hooks_only_in_test_builds(annpack, ps, tmp_path):
    """ANNPACK_TEST_CRASH_AT kills only a library built with -Dtest_hooks=true (diagnose
    says which); elsewhere the variable does nothing and the promote completes."""
    hooks = annpack.ok("diagnose").json()["test_hooks"]
    delta = tmp_path / "x.delta"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--add",
               EXAMPLES / "delta_add.csv", "--out", delta)
    old = state(annpack, ps)
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", delta,
                env={"ANNPACK_TEST_CRASH_AT": "promote:copied"})
    if hooks:
        assert r.rc == -signal.SIGKILL and state(annpack, ps) == old, repr(r)
    else:
        assert r.rc == 0 and state(annpack, ps) == (old[0] + 1, [1], 42), repr(r)
    annpack.ok("verify", ps, "--deep")
