"""The golden files (tests/golden/, README.md there): committed, byte-exact reference packs
and packsets that today's code must read with pinned answers (verify --deep, inspect,
search, the mount), rebuild byte for byte (tests/golden/make.sh), and that the
independent reader (annpack_reader.py) must read; and the named malformed packs of
tests/golden/bad/ that verify, search and the mount must refuse with the message in
bad/EXPECTED. A failure here after a code change means the format changed: see the
README before regenerating anything."""
import hashlib
import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

from annpack_reader import (expected_ranges, read_annp, read_digests, read_idx, read_meta_stream,
                            read_sq8, rows, sq8_encode)
from conftest import BUILD, ROOT
from mountlib import ANNPACKFS, is_mounted

GOLDEN = ROOT / "tests" / "golden"
BAD = GOLDEN / "bad"
PUB = GOLDEN / "keys" / "test-key-DO-NOT-USE.pub"
KEY_ID = "19809c5aad396d67"
QUERIES = GOLDEN / "inputs" / "queries.fvecs"
PACKS = ["pack-zstd", "pack-plain", "pack-sq8", "pack-vectors"]
PACKSETS = ["packset", "packset-rebased"]
ARTIFACTS = PACKS + PACKSETS + ["bad"]  # what make.sh writes
# Older artifacts kept as committed (never regenerated) because they must stay readable:
# v0-* predate pack.digests (a pack and a signed packset exactly as the writer made them).
KEPT = ["v0-pack-zstd", "v0-packset"]

# What the mount of tests/golden/packset presents (MOUNT.md), pinned.
MOUNT_SHA256 = {
    "pack.annpack": "e7356303a60051eb42be7eca9e8f9c0c1e84c2cfe864a376bc8618a169a1840c",
    "pack.meta.jsonl": "377efa26d45f4971780783dc9fc99b0b7a3728a825125cb54a6f6df28d0bf871",
    "pack.manifest.json": "f0c7a1b2d510e259ed6d610eaa398d6b27c45e1110f3add027009ed428407860",
}
# The live set of the packset: base 0..39, delta 1 adds 40 41 (updates 7) and deletes
# 1 2, delta 2 re-adds 1, updates 3, adds 42 and deletes 41 5.
LIVE = sorted(set(range(40)) - {2, 5} | {40, 42})
LAYER = {40: 1, 7: 1, 1: 2, 3: 2, 42: 2}

# (dir, query, k, probe) -> [(id, layer, score as printed)]
SEARCHES = {
    ("pack-zstd", "water my houseplants", 5, 8): [
        (33, 0, "0.360100955"), (31, 0, "0.301294863"), (2, 0, "0.273451477"),
        (39, 0, "0.23272264"), (1, 0, "0.217743739")],
    ("packset", "kombucha tea", 4, 4): [
        (40, 1, "0.384450585"), (4, 0, "0.174974307"), (31, 0, "0.172733918"),
        (0, 0, "0.0951884836")],
    ("packset", "espresso coffee", 4, 4): [
        (1, 2, "0.312576294"), (25, 0, "0.123138428"), (30, 0, "0.0795288086"),
        (18, 0, "0.0784301758")],
    ("packset", "rust borrow checker", 4, 4): [
        (3, 2, "0.462308794"), (31, 0, "0.196602359"), (39, 0, "0.118105918"),
        (4, 0, "0.106163576")],
}
# pack-vectors: the four queries (the cluster centres) at k 5, probe 4: rows of the
# query's own cluster (row % 4), best first.
VECTOR_IDS = [[28, 0, 12, 20, 32], [1, 41, 45, 5, 21], [18, 38, 26, 30, 14], [15, 35, 47, 7, 43]]


def sha(p):
    return hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()


def tree(d):
    """{relative path: bytes, or ("symlink", target)} of every file under d."""
    out = {}
    for p in sorted(pathlib.Path(d).rglob("*")):
        rel = str(p.relative_to(d))
        if p.is_symlink():
            out[rel] = ("symlink", os.readlink(p))
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            assert any(p.iterdir()), f"{rel}: an empty directory (git cannot store it)"
    return out


# --- the pins ----------------------------------------------------------------------------

def test_sha256sums_pin_every_artifact():
    """SHA256SUMS (sha256sum -c format) pins every file make.sh writes and every input
    and key it reads from tests/golden/, and every pin holds."""
    r = subprocess.run(["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"],
                       cwd=GOLDEN, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    listed = [l.split("  ", 1)[1] for l in (GOLDEN / "SHA256SUMS").read_text().splitlines()]
    assert listed == sorted(listed) and len(listed) == len(set(listed))
    have = []
    for top in ARTIFACTS + KEPT + ["inputs", "keys"]:
        have += [f"{top}/{rel}" for rel in tree(GOLDEN / top)]
    have = sorted(f for f in have if f != "bad/EXPECTED" and not f.endswith(".py"))
    assert listed == have


def test_size_budget():
    total = sum(p.lstat().st_size for p in GOLDEN.rglob("*") if p.is_file())
    assert total < 1 << 20, total


def test_vector_inputs_regenerate(tmp_path):
    subprocess.run(["/usr/bin/python3", GOLDEN / "inputs" / "gen_vectors.py", tmp_path],
                   check=True)
    for f in ("vectors.fvecs", "queries.fvecs"):
        assert (tmp_path / f).read_bytes() == (GOLDEN / "inputs" / f).read_bytes(), f


# --- (a) today's code reads them -----------------------------------------------------------

@pytest.mark.parametrize("name", PACKS + PACKSETS + KEPT)
def test_verify_deep(annpack, name):
    rep = annpack.ok("verify", GOLDEN / name, "--deep").json()
    assert rep["ok"] and rep["deep"]
    assert rep["kind"] == ("packset" if "packset" in name else "pack")


def test_signed_packset_verifies_with_the_test_key(annpack):
    rep = annpack.ok("verify", GOLDEN / "packset", "--deep", "--pubkey", PUB).json()
    assert rep["ok"] and rep["signature"]["valid"] and rep["signature"]["key_id"] == KEY_ID
    # the signature is Ed25519 over the exact root manifest bytes (openssl agrees)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", PUB, "-rawin",
                        "-in", GOLDEN / "packset" / "pack.manifest.json",
                        "-sigfile", GOLDEN / "packset" / "pack.manifest.json.sig"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Signature Verified Successfully" in r.stdout, r


@pytest.mark.parametrize("name,kind,dim,n,sizes,rows_", [
    ("pack-zstd", "pack", 256, 40, (8, 9, 14), 40),
    ("pack-plain", "pack", 256, 40, (8, 9, 14), 40),
    ("pack-sq8", "pack", 256, 40, (8, 9, 14), 40),
    ("pack-vectors", "pack", 16, 48, (12, 12, 12), 48),
    ("packset", "packset", 256, 40, None, None),
    ("packset-rebased", "packset", 256, 40, None, None),
])
def test_inspect(annpack, name, kind, dim, n, sizes, rows_):
    i = annpack.ok("inspect", GOLDEN / name).json()
    assert (i["kind"], i["dim"], i["n_lists"], i["n_vectors"]) == (kind, dim, 4, n), i
    if sizes:
        ls = i["list_size"]
        assert (ls["min"], ls["median"], ls["max"]) == sizes, ls
        assert i["meta_rows"] == rows_
        m = json.loads((GOLDEN / name / "pack.manifest.json").read_text())
        assert i["embedder"] == m["embedder"] and i["build"] == m["build"]
        assert i["build"]["created"] == "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH


def test_packset_status(annpack):
    s = annpack.ok("packset", "status", GOLDEN / "packset").json()
    assert s["version"] == 3 and s["live"] == len(LIVE)
    assert [(d["seq"], d["adds"], d["updates"], d["tombstones"]) for d in s["deltas"]] == \
        [(1, 2, 1, 2), (2, 2, 1, 2)]
    s = annpack.ok("packset", "status", GOLDEN / "packset-rebased").json()
    assert s["version"] == 4 and s["deltas"] == [] and s["live"] == len(LIVE)
    m = json.loads((GOLDEN / "packset-rebased" / "base" / "pack.manifest.json").read_text())
    assert m["build"]["rebased_from"]["version"] == 3
    assert m["build"]["rebased_from"]["root_manifest_sha256"] == \
        sha(GOLDEN / "packset" / "pack.manifest.json")


def hits(r):
    return [(h["id"], h["layer"], h["score"]) for h in r["results"]]


def test_search_pinned(annpack):
    for (name, q, k, probe), want in SEARCHES.items():
        r = annpack.ok("search", GOLDEN / name, q, "-k", k, "--probe", probe).json()
        assert hits(r) == [(i, l, float(s)) for i, l, s in want], (name, q, hits(r))


def test_same_answers_from_every_pack_variant(annpack):
    """Plain and zstd rows, the int8 sidecar (any scan mode) and the rebase answer alike."""
    q = ("water my houseplants", "-k", 10, "--probe", 4)
    ref = annpack.ok("search", GOLDEN / "pack-zstd", *q).json()
    for name, extra in [("pack-plain", ()), ("pack-sq8", ()), ("pack-sq8", ("--scan", "sq8")),
                        ("pack-sq8", ("--scan", "f16"))]:
        r = annpack.ok("search", GOLDEN / name, *q, *extra).json()
        assert hits(r) == hits(ref) and [h["meta"] for h in r["results"]] == \
            [h["meta"] for h in ref["results"]], (name, extra)
    for q in ("kombucha tea", "espresso coffee", "rust borrow checker", "tide"):
        a = annpack.ok("search", GOLDEN / "packset", q, "-k", 42, "--probe", 4).json()
        b = annpack.ok("search", GOLDEN / "packset-rebased", q, "-k", 42, "--probe", 4).json()
        assert [(i, s) for i, _, s in hits(a)] == [(i, s) for i, _, s in hits(b)], q
        assert [h["meta"] for h in a["results"]] == [h["meta"] for h in b["results"]]
        assert sorted(i for i, _, _ in hits(a)) == LIVE
        assert all(l == LAYER.get(i, 0) for i, l, _ in hits(a))


def test_old_packs_without_digests_answer_alike(annpack):
    """Packs and packsets written before pack.digests verify and answer as today's do."""
    assert not (GOLDEN / "v0-pack-zstd" / "pack.digests").exists()
    rep = annpack.ok("verify", GOLDEN / "v0-packset", "--deep", "--pubkey", PUB).json()
    assert rep["ok"] and rep["signature"]["valid"]
    for old, new in (("v0-pack-zstd", "pack-zstd"), ("v0-packset", "packset")):
        for q in ("espresso coffee", "water my houseplants"):
            a = annpack.ok("search", GOLDEN / old, q, "-k", 10, "--probe", 4).json()
            b = annpack.ok("search", GOLDEN / new, q, "-k", 10, "--probe", 4).json()
            assert hits(a) == hits(b) and [h["meta"] for h in a["results"]] == \
                [h["meta"] for h in b["results"]], (old, q)


def test_vectors_search_pinned(annpack, tmp_path):
    out = tmp_path / "ids.ivecs"
    annpack.ok("search", GOLDEN / "pack-vectors", "--queries", QUERIES, "-k", 5, "--probe", 4,
               "--ids-out", out)
    a = np.fromfile(out, dtype="<i4").reshape(4, 6)
    assert (a[:, 0] == 5).all() and a[:, 1:].tolist() == VECTOR_IDS


def test_mount_packset(annpack, mount):
    """The signed golden packset mounted with the test key presents the pinned merged
    virtual pack (MOUNT.md), which is itself a valid pack."""
    m = mount(GOLDEN / "packset", f"pubkey={PUB}")
    for f, want in MOUNT_SHA256.items():
        assert sha(m.mnt / f) == want, f
    man = json.loads((m.mnt / "pack.manifest.json").read_text())
    assert man["packset"] == {
        "root_manifest_sha256": sha(GOLDEN / "packset" / "pack.manifest.json"),
        "version": 3, "delta_seqs": [1, 2], "generation": 1, "signature": "verified",
        "key_id": KEY_ID}
    assert man["files"]["pack.annpack"] == {"size": 25048,
                                            "sha256": MOUNT_SHA256["pack.annpack"]}
    assert [json.loads(l)["id"] for l in (m.mnt / "pack.meta.jsonl").read_text().splitlines()] \
        == LIVE
    got = json.loads((m.mnt / "query" / "espresso coffee?k=4&probe=4").read_text())
    assert [(i, l, float(s)) for i, l, s in hits(got)] == \
        [(i, l, float(s)) for i, l, s in SEARCHES[("packset", "espresso coffee", 4, 4)]]
    health = json.loads((m.mnt / "health").read_text())
    assert health["signature"] == "verified" and health["key_id"] == KEY_ID


# --- (b) the same inputs and flags give byte-identical files ------------------------------

def test_rebuild_is_byte_identical(tmp_path):
    out = tmp_path / "g"
    r = subprocess.run([GOLDEN / "make.sh", out], capture_output=True, text=True,
                       env=dict(os.environ, ANNPACK=str(BUILD / "tools" / "annpack")),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTIFACTS)
    for top in ARTIFACTS:
        built, committed = tree(out / top), tree(GOLDEN / top)
        if top == "bad":
            committed.pop("EXPECTED")
        assert sorted(built) == sorted(committed), top
        differ = [f for f in built if built[f] != committed[f]]
        assert not differ, f"{top}: rebuilt files differ from the committed ones: {differ}" \
                           " (a format change? see tests/golden/README.md)"


# --- (c) the independent reader reads them -------------------------------------------------

def manifest(d):
    return json.loads((pathlib.Path(d) / "pack.manifest.json").read_text())


def check_digests(d, m):
    """pack.digests (FORMAT.md): covers exactly the manifest's other files with their sizes,
    its ranges follow each file's structure, and every range's SHA-256 holds."""
    t = read_digests(d / "pack.digests")
    assert sorted(t) == sorted(f for f in m["files"] if f != "pack.digests")
    for name, (size, ranges) in t.items():
        assert size == m["files"][name]["size"], name
        assert [(o, l) for o, l, _ in ranges] == expected_ranges(d, name), name
        data = (d / name).read_bytes()
        for o, l, h in ranges:
            assert hashlib.sha256(data[o:o + l]).hexdigest() == h, (name, o)


def check_pack(d):
    """Everything annpack_reader can check of one pack against the spec; returns
    {id: (f16 vector as f32, row bytes)}."""
    d = pathlib.Path(d)
    m = manifest(d)
    for f, e in m["files"].items():
        assert (d / f).stat().st_size == e["size"] and sha(d / f) == e["sha256"], f
    if "pack.digests" in m["files"]:
        check_digests(d, m)
    a = read_annp(d / "pack.annpack")
    assert (a["dim"], a["n_lists"], a["n_vectors"]) == (m["dim"], m["n_lists"], m["n_vectors"])
    stream = read_meta_stream(d)
    assert m["shards"][0]["meta"] in m["files"]
    lines = stream.split(b"\n")[:-1] if stream else []
    assert stream == b"".join(l + b"\n" for l in lines)
    idx = read_idx(d / "pack.meta.idx")
    assert [e[0] for e in idx] == sorted(json.loads(l)["id"] for l in lines)
    by_id = {}
    for i, off, length in idx:
        row = stream[off:off + length]
        assert json.loads(row)["id"] == i and stream[off + length:off + length + 1] == b"\n"
        by_id[i] = row
    vecs = {}
    for ids, v in a["lists"]:
        for i, x in zip(ids.tolist(), v):
            assert i not in vecs
            assert abs(float(np.linalg.norm(x)) - 1) <= 0.01
            vecs[i] = x
    assert sorted(vecs) == sorted(by_id)
    if (d / "pack.sq8").exists():
        s = read_sq8(d / "pack.sq8")
        allv = np.concatenate([v for _, v in a["lists"]])
        assert s["counts"].tolist() == [len(ids) for ids, _ in a["lists"]]
        assert (s["codes"][:, :a["dim"]] == sq8_encode(allv, s["vmin"], s["step"])).all()
        assert not s["codes"][:, a["dim"]:].any()
    return {i: (vecs[i], by_id[i]) for i in vecs}


def canonical_scores(q, V):
    """FORMAT.md, Search semantics: f32 products summed in the kernels' fixed order."""
    n, dim = V.shape
    P = V * q[None, :].astype(np.float32)
    m32 = dim // 32 * 32
    a = np.zeros((n, 32), np.float32)
    for i in range(0, m32, 32):
        a = a + P[:, i:i + 32]
    s = a[:, :16] + a[:, 16:]
    if dim & 16:
        s = s + P[:, m32:m32 + 16]
    for w in (8, 4, 2):
        s = s[:, :w] + s[:, w:]
    r = s[:, 0] + s[:, 1]
    for i in range(dim // 16 * 16, dim):
        r = r + P[:, i]
    return r


def brute(live, q, k):
    ids = np.array(sorted(live), dtype=np.int64)
    sc = canonical_scores(q, np.stack([live[i][0] for i in ids]))
    order = np.lexsort((ids, -sc.astype(np.float64)))[:k]
    return [(int(ids[o]), sc[o]) for o in order]


def merged(ps):
    """The live set of a packset from its files, by PACKSET.md's rules: {id: (vector, row,
    layer)}; every hash of the chain (root -> layer files -> pack manifests) checked."""
    ps = pathlib.Path(ps)
    root = manifest(ps)
    layers = [(0, root["base"])] + [(e["seq"], e) for e in root["deltas"]]
    live = {}
    for seq, e in layers:
        for key in ("annpack", "meta", "manifest", "tombstones", "delta_manifest"):
            if key in e:
                assert sha(ps / e[key]) == e["sha256_" + key], (seq, key)
        if seq:
            assert e["base_sha256_annpack"] == root["base"]["sha256_annpack"]
        pack = check_pack(ps / e["path"])
        if seq:
            tomb = [json.loads(l)["id"] for l in (ps / e["tombstones"]).read_text().splitlines()]
            assert tomb == sorted(set(tomb)) and not set(tomb) & set(pack)
            for i in tomb:
                live.pop(i, None)
        for i, (v, row) in pack.items():
            live[i] = (v, row, seq)
    return live


def embed(annpack, d, text):
    return np.array(annpack.ok("embed", d, text).json(), dtype=np.float32)


@pytest.mark.parametrize("name", PACKS)
def test_reader_packs(annpack, name):
    d = GOLDEN / name
    assert "pack.digests" in manifest(d)["files"]
    pack = check_pack(d)
    if name == "pack-vectors":
        raw = np.fromfile(QUERIES, dtype="<f4").reshape(4, 17)[:, 1:]
        for q, want in zip(raw / np.linalg.norm(raw, axis=1, keepdims=True), VECTOR_IDS):
            assert [i for i, _ in brute(pack, q.astype(np.float32), 5)] == want
        return
    for (n, text, k, probe), want in SEARCHES.items():
        if n == "pack-zstd":
            q = embed(annpack, d, text)
            assert brute(pack, q, k) == [(i, np.float32(s)) for i, _, s in want]
            r = annpack.ok("search", d, text, "-k", k, "--probe", 4).json()
            assert [h["meta"] for h in r["results"]] == [json.loads(pack[i][1]) for i, *_ in want]


@pytest.mark.parametrize("name", PACKSETS)
def test_reader_packsets(annpack, name):
    live = merged(GOLDEN / name)
    assert sorted(live) == LIVE
    assert {i: l for i, (_, _, l) in live.items() if l} == \
        (LAYER if name == "packset" else {})
    vecs = {i: (v, row) for i, (v, row, _) in live.items()}
    for (n, text, k, probe), want in SEARCHES.items():
        if n == "packset":
            q = embed(annpack, GOLDEN / name, text)
            assert brute(vecs, q, k) == [(i, np.float32(s)) for i, _, s in want], text


def test_reader_mounted_view(annpack, mount):
    """The mount's merged files are a pack the reader accepts, holding exactly the live
    rows (byte for byte, ascending id) and the live vectors of the packset's files."""
    live = merged(GOLDEN / "packset")
    m = mount(GOLDEN / "packset")
    a = read_annp(m.mnt / "pack.annpack")
    got = {i: v for ids, vs in a["lists"] for i, v in zip(ids.tolist(), vs)}
    assert sorted(got) == LIVE
    assert all((got[i] == live[i][0]).all() for i in LIVE)
    assert (m.mnt / "pack.meta.jsonl").read_bytes() == b"".join(live[i][1] + b"\n" for i in LIVE)
    base = read_annp(GOLDEN / "packset" / "base" / "pack.annpack")
    assert (a["centroids"] == base["centroids"]).all()


# --- named malformed packs ------------------------------------------------------------------

def expected():
    out = {}
    for line in (BAD / "EXPECTED").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, rc, flags, verify, other = line.split("\t")
        flags = set() if flags == "-" else set(flags.split(","))
        out[name] = (int(rc), flags, verify, verify if other == "=" else other)
    return out


EXPECTED = expected()


def says(text, d, pattern):
    """pattern (DIR for d, * for any text) occurs in text."""
    text = text.replace(str(d), "DIR")
    pos = text.find(pattern.split("*")[0])
    if pos < 0:
        return False
    for part in pattern.split("*")[1:]:
        pos = text.find(part, pos)
        if pos < 0:
            return False
    return True


def test_every_bad_pack_has_an_expectation():
    assert sorted(p.name for p in BAD.iterdir() if p.is_dir()) == sorted(EXPECTED)


def is_packset(d):
    return manifest(d).get("schema_version") == 3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_refused(annpack, name, tmp_path):
    rc, flags, verify_says, other_says = EXPECTED[name]
    d = BAD / name
    key = ["--pubkey", PUB] if "pubkey" in flags else []
    r = annpack("verify", d, "--deep", *key)
    assert r.rc == rc and r.err.count("\n") == 1 and says(r.err, d, verify_says), repr(r)
    rep = r.json()
    assert rep["ok"] is False and says(rep["error"]["reason"], d, verify_says), rep["error"]
    if "pubkey" in flags:  # nothing but the signature is wrong
        annpack.ok("verify", d, "--deep")
    if "expired" in flags:  # nothing but the time is wrong
        annpack.ok("verify", d, "--deep", "--allow-expired")

    if "nosearch" not in flags:
        if is_packset(d):
            q = ["espresso coffee"]
        elif manifest(d).get("embedder", {}).get("name") == "vectors":
            q = ["--queries", QUERIES]
        else:
            q = ["espresso coffee", "-k", 40, "--probe", 4]  # reads every row
        r = annpack("search", d, *q)
        assert r.rc == rc and says(r.err, d, other_says), repr(r)

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # verify=full: every byte and the manifest before serving (the default verify=lazy
    # refuses a corrupt list at its first use instead: test_lazy_verify.py)
    opts = ["-o", (f"pubkey={PUB}," if "pubkey" in flags else "") + "verify=full"]
    try:
        p = subprocess.run([ANNPACKFS, d, mnt, *opts], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == rc, p
        assert "refusing to mount" in p.stderr and says(p.stderr, d, other_says), p.stderr
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], check=False)
            pytest.fail(f"{name} was mounted")
    assert not is_mounted(mnt)
