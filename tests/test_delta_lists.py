"""delta.lists: the base list each delta vector is grouped under, recorded by build-delta so
that opening a packset assigns nothing (docs/FORMAT.md "delta.lists", docs/PACKSET.md)."""
import hashlib
import json
import shutil
import struct

import numpy as np
import pytest

from annpack_reader import read_annp
from conftest import write_csv
from digestlib import repin_digests

DIM = 32


def sha256(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def rows(lo, hi, seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]
    return [(i, " ".join(rng.choice(words, 12))) for i in range(lo, hi)]


@pytest.fixture
def ps(annpack, tmp_path):
    """A packset: a 600-row base (16 lists, int8 sidecar), one promoted delta of 120 adds
    (rows 600..720) and 2 deletes."""
    write_csv(tmp_path / "base.csv", rows(0, 600, 1))
    write_csv(tmp_path / "add.csv", rows(600, 720, 2))
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", tmp_path / "base.csv", "--packset", d,
               "--dim", DIM, "--lists", 16, "--sq8", "--seed", 1)
    annpack.ok("packset", "build-delta", "--base", d / "base", "--add", tmp_path / "add.csv",
               "--delete-ids", "3,4", "--out", tmp_path / "d1", "--lists", 4)
    annpack.ok("packset", "promote-delta", "--packset", d, "--delta", tmp_path / "d1")
    return d


def delta_dir(ps):
    return ps / json.loads((ps / "pack.manifest.json").read_text())["deltas"][0]["path"]


def read_lists(path):
    """delta.lists as FORMAT.md specifies it: (base_lists, entries)."""
    b = path.read_bytes()
    assert b[:8] == b"ANNPDLS1"
    base_lists, reserved, n = struct.unpack_from("<IIQ", b, 8)
    assert reserved == 0 and len(b) == 24 + 4 * n
    return base_lists, list(struct.unpack_from(f"<{n}I", b, 24))


def write_lists(path, base_lists, entries):
    path.write_bytes(b"ANNPDLS1" + struct.pack("<IIQ", base_lists, 0, len(entries))
                     + struct.pack(f"<{len(entries)}I", *entries))


def repin(ps, d):
    """Re-pins d's delta.lists in d's manifest and digest table, and d's manifest in the
    root manifest: only a check of the grouping itself can tell then."""
    m = json.loads((d / "pack.manifest.json").read_text())
    m["files"]["delta.lists"] = {"size": (d / "delta.lists").stat().st_size,
                                 "sha256": sha256(d / "delta.lists")}
    repin_digests(d, m)
    (d / "pack.manifest.json").write_text(json.dumps(m, indent=1))
    pin_manifest(ps, d)


def pin_manifest(ps, d):
    """Pins d's pack manifest where the delta manifest and the root manifest do."""
    dm = json.loads((d / "delta.manifest.json").read_text())
    dm["files"]["pack.manifest.json"]["sha256"] = sha256(d / "pack.manifest.json")
    (d / "delta.manifest.json").write_text(json.dumps(dm, indent=1))
    r = json.loads((ps / "pack.manifest.json").read_text())
    r["deltas"][0]["sha256_manifest"] = sha256(d / "pack.manifest.json")
    r["deltas"][0]["sha256_delta_manifest"] = sha256(d / "delta.manifest.json")
    (ps / "pack.manifest.json").write_text(json.dumps(r, indent=1))


def nearest(base, vecs):
    """The builder's rule, from the spec: the largest dot product with a base centroid on
    the f16 vector as stored, ties to the lowest list."""
    s = vecs.astype(np.float64) @ base["centroids"].astype(np.float64).T
    return [int(np.flatnonzero(r == r.max())[0]) for r in s]


def test_build_delta_records_the_grouping(annpack, ps):
    d = delta_dir(ps)
    m = json.loads((d / "pack.manifest.json").read_text())
    assert m["files"]["delta.lists"]["sha256"] == sha256(d / "delta.lists")
    base, delta = read_annp(ps / "base" / "pack.annpack"), read_annp(d / "pack.annpack")
    base_lists, entries = read_lists(d / "delta.lists")
    assert base_lists == base["n_lists"] == 16 and delta["n_lists"] == 4
    vecs = np.concatenate([v for _, v in delta["lists"]])  # file order: list by list
    assert len(entries) == delta["n_vectors"] == 120
    want = nearest(base, vecs)
    # float64 here against the builder's float32 sgemm: a near-tie may round either way.
    agree = sum(a == b for a, b in zip(entries, want))
    assert agree >= 118, (agree, entries, want)
    assert len(set(entries)) > 4  # grouped under the base's lists, not the delta's own
    annpack.ok("verify", ps, "--deep")


def test_delete_only_delta_has_an_empty_grouping(annpack, ps, tmp_path):
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--delete-ids", "7", "--out",
               tmp_path / "d2")
    assert read_lists(tmp_path / "d2" / "delta.lists") == (16, [])
    annpack.ok("packset", "promote-delta", "--packset", ps, "--delta", tmp_path / "d2")
    annpack.ok("verify", ps, "--deep")


def queries():
    return ["w1 w2 w3", "w10 w200", "w42 w7 w99 w150", "w250 w251", "w5"]


def answers(annpack, ps):
    return [[(h["id"], h["layer"], round(h["score"], 6)) for h in
             annpack.ok("search", ps, q, "-k", 15, "--probe", p, "--scan", scan).json()["results"]]
            for q in queries() for p in (1, 3) for scan in ("f16", "sq8")]


def test_a_delta_without_the_file_is_grouped_the_same(annpack, ps, tmp_path):
    """Deltas built before delta.lists existed are grouped at open by the same rule: the
    answers are those of the recorded grouping."""
    with_file = answers(annpack, ps)
    old = tmp_path / "old"
    shutil.copytree(ps, old)
    d = delta_dir(old)
    m = json.loads((d / "pack.manifest.json").read_text())
    for name in ("delta.lists", "pack.digests"):  # a delta from before either existed
        (d / name).unlink()
        del m["files"][name]
    (d / "pack.manifest.json").write_text(json.dumps(m, indent=1))
    pin_manifest(old, d)
    annpack.ok("verify", old, "--deep")
    assert answers(annpack, old) == with_file
    # The merged virtual pack of either is the same too (the mount serves it).
    assert (annpack.ok("packset", "status", old).json()["live"]
            == annpack.ok("packset", "status", ps).json()["live"])


def test_changed_bytes_are_refused_naming_the_file(annpack, ps):
    d = delta_dir(ps)
    b = bytearray((d / "delta.lists").read_bytes())
    b[30] ^= 1
    (d / "delta.lists").write_bytes(bytes(b))
    for args in (("verify", ps), ("search", ps, "w1")):
        r = annpack(*args)
        assert r.rc != 0 and "delta.lists" in r.err, r.err


def test_wrong_grouping_is_found_by_verify_deep(annpack, ps):
    d = delta_dir(ps)
    base_lists, entries = read_lists(d / "delta.lists")
    entries[5] = (entries[5] + 1) % base_lists
    write_lists(d / "delta.lists", base_lists, entries)
    repin(ps, d)
    annpack.ok("verify", ps)  # every hash matches: only the grouping is wrong
    r = annpack("verify", ps, "--deep")
    assert r.rc == 1
    assert "delta.lists: vector 5 is grouped under base list" in r.err, r.err


@pytest.mark.parametrize("case", ["other-base", "short", "count", "list-range", "magic",
                                  "reserved"])
def test_malformed_lists_are_refused(annpack, ps, case):
    d = delta_dir(ps)
    base_lists, entries = read_lists(d / "delta.lists")
    p = d / "delta.lists"
    if case == "other-base":
        write_lists(p, 8, [e % 8 for e in entries])
        want = "grouped under 8 base lists, the base has 16"
    elif case == "short":
        p.write_bytes(p.read_bytes()[:-2])
        want = "entries need"
    elif case == "count":
        write_lists(p, base_lists, entries[:-1])
        want = "holds 119 entries, the delta has 120 vectors"
    elif case == "list-range":
        entries[0] = base_lists
        write_lists(p, base_lists, entries)
        want = "vector 0 is grouped under list 16 of 16 base lists"
    elif case == "magic":
        p.write_bytes(b"ANNPDLS2" + p.read_bytes()[8:])
        want = "not a delta.lists file"
    else:
        b = bytearray(p.read_bytes())
        b[12] = 1
        p.write_bytes(bytes(b))
        want = "reserved field is 1"
    repin(ps, d)
    for args in (("verify", ps), ("search", ps, "w1"), ("packset", "status", ps)):
        r = annpack(*args)
        assert r.rc != 0, args
        assert "delta.lists" in r.err and want in r.err, (args, r.err)
        assert r.err.count("\n") <= 1, r.err


def test_copies_of_a_delta_carry_it(annpack, ps, tmp_path):
    """packset create copies a delta's listed files; the copy opens with its grouping."""
    d = delta_dir(ps)
    out = tmp_path / "made"
    annpack.ok("packset", "create", "--base", ps / "base", "--out", out, "--delta", d)
    assert (delta_dir(out) / "delta.lists").read_bytes() == (d / "delta.lists").read_bytes()
    assert answers(annpack, out) == answers(annpack, ps)
