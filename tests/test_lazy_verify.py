"""Lazy verification (docs/SECURITY.md, "Lazy verification"; FORMAT.md, "pack.digests"):
a mount checks the signature, the manifest, the digest table, the heads and the small files,
then each list and frame on first use. A corrupt list fails exactly the queries that need it
(EIO, never partial results), is logged once, reported by /health and counted in /stats;
verify --deep names it; -o verify=full refuses the mount. Real annpackfs mounts."""
import base64
import csv
import errno
import hashlib
import json
import os
import struct
import threading

import numpy as np
import pytest

from annpack_reader import read_annp, read_digests
from conftest import EXAMPLES
from digestlib import repin_digests

TINY = EXAMPLES / "tiny_docs.csv"


def build(annpack, out, *extra, src=TINY, lists=4):
    annpack.ok("build", "--input", src, "--text-col", "text", "--id-col", "id", "--output", out,
               "--lists", lists, "--seed", 1, *extra)
    return out


def flip(path, offset):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0x01
    path.write_bytes(bytes(b))


def ranges(d, name):
    return read_digests(d / "pack.digests")[name][1]


def vname(vec):
    """vquery/ name of a vector: base64url (no padding) of its float16 values."""
    return base64.urlsafe_b64encode(np.asarray(vec, dtype="<f2").tobytes()).decode().rstrip("=")


def centroid_query(mnt, d, i):
    """The answer to a probe-1 vector query aimed at list i (its own centroid)."""
    c = read_annp(d / "pack.annpack")["centroids"][i]
    return (mnt / "vquery" / "k=3&probe=1" / vname(c)).read_text()


def eio(fn):
    with pytest.raises(OSError) as e:
        fn()
    assert e.value.errno == errno.EIO, e.value


def stats(mnt):
    return json.loads((mnt / "stats").read_text())


def list_of_offset(d, off):
    for k, (o, length, _) in enumerate(ranges(d, "pack.annpack")):
        if o <= off < o + length:
            return k - 1
    raise AssertionError(off)


@pytest.fixture
def keys(annpack, tmp_path):
    annpack.ok("keygen", "--out", tmp_path / "k")
    return tmp_path / "k.pem", tmp_path / "k.pub"


def test_corrupt_list_fails_only_its_queries(annpack, tmp_path, keys, mount):
    d = build(annpack, tmp_path / "p")
    annpack.ok("sign", d, "--key", keys[0])
    bad = 2
    o, length, _ = ranges(d, "pack.annpack")[bad + 1]
    flip(d / "pack.annpack", o + length - 3)  # a vector byte of list 2, after signing
    assert list_of_offset(d, o + length - 3) == bad

    m = mount(d, f"pubkey={keys[1]}", expect_errors=True)  # lazy is the default
    h = json.loads((m.mnt / "health").read_text())
    assert h["status"] == "ok" and h["verify"] == "lazy"
    before = stats(m.mnt)
    assert before["verify_bad"] == 0 and before["verify_hashed"] < before["verify_ranges"]
    for i in range(4):
        if i == bad:
            eio(lambda: centroid_query(m.mnt, d, i))
            eio(lambda: centroid_query(m.mnt, d, i))  # fails fast the second time too
        else:
            assert json.loads(centroid_query(m.mnt, d, i))["results"]
    eio(lambda: (m.mnt / "query" / "espresso?probe=4").read_text())  # probes every list
    s = stats(m.mnt)
    assert s["verify_bad"] == 1
    h = json.loads((m.mnt / "health").read_text())
    assert h["status"] == "corrupt" and h["bad_ranges"] == 1
    assert f"pack.annpack: list {bad} (range {bad + 1}, " in h["first_bad"]
    # logged once, naming the list, however many queries touched it
    logged = [l for l in m.stderr().splitlines() if "does not match pack.digests" in l]
    assert len(logged) == 1 and f"list {bad} " in logged[0], logged
    # the full checks name the same list
    r = annpack("verify", d, "--deep", "--pubkey", keys[1])
    assert r.rc == 1 and f"pack.annpack: list {bad} (range {bad + 1}, " in r.err, r
    with pytest.raises(RuntimeError, match=f"refusing to mount .*list {bad} "):
        mount(d, f"pubkey={keys[1]}", "verify=full")


def test_corrupt_sidecar_list(annpack, tmp_path, mount):
    d = build(annpack, tmp_path / "p", "--sq8")
    bad = 1
    o, length, _ = ranges(d, "pack.sq8")[bad + 1]
    assert length > 0
    flip(d / "pack.sq8", o + 5)
    m = mount(d, expect_errors=True)
    for i in range(4):
        if i == bad:
            eio(lambda: centroid_query(m.mnt, d, i))
        else:
            assert json.loads(centroid_query(m.mnt, d, i))["results"]
    r = annpack("verify", d, "--deep")
    assert r.rc == 1 and f"pack.sq8: list {bad} (range {bad + 1}, " in r.err, r
    with pytest.raises(RuntimeError, match="refusing to mount .*pack.sq8: list 1 "):
        mount(d, "verify=full")


def test_corrupt_metadata_frame(annpack, tmp_path, mount):
    """A row fetch from a corrupt zstd frame fails the answer that needs it; rows in other
    frames are served."""
    src = tmp_path / "big.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "text"])
        for i in range(1500):
            w.writerow([i, f"doc {i}", f"document {i} " + hashlib.sha256(b"%d" % i).hexdigest() * 2])
    d = build(annpack, tmp_path / "p", src=src, lists=8)
    frames = ranges(d, "pack.meta.jsonl.zst")
    assert len(frames) >= 3  # frames, then the seek table
    flip(d / "pack.meta.jsonl.zst", frames[0][0] + frames[0][1] // 2)
    m = mount(d, expect_errors=True)
    eio(lambda: (m.mnt / "doc" / "0").read_text())  # row 0 lies in frame 0
    last = json.loads((m.mnt / "doc" / "1499").read_text())
    assert last["id"] == 1499
    r = annpack("verify", d, "--deep")
    assert r.rc == 1 and "pack.meta.jsonl.zst: frame 0 (range 0, " in r.err, r
    assert json.loads((m.mnt / "health").read_text())["status"] == "corrupt"


def test_digest_table_not_matching_the_manifest(annpack, tmp_path, mount):
    d = build(annpack, tmp_path / "p")
    flip(d / "pack.digests", 200)  # a range digest: the manifest's hash of the table fails
    with pytest.raises(RuntimeError, match="refusing to mount .*pack.digests: sha256 mismatch"):
        mount(d)
    # a table consistent with its own listing that disagrees with the manifest's sizes
    d2 = build(annpack, tmp_path / "p2")
    b = bytearray((d2 / "pack.digests").read_bytes())
    (n,) = struct.unpack_from("<I", b, 12)
    names = [bytes(b[16 + 64 * i:16 + 64 * i + 32]).rstrip(b"\0") for i in range(n)]
    e = 16 + 64 * names.index(b"pack.meta.idx")
    struct.pack_into("<Q", b, e + 32, struct.unpack_from("<Q", b, e + 32)[0] + 1)
    (d2 / "pack.digests").write_bytes(bytes(b))
    man = json.loads((d2 / "pack.manifest.json").read_text())
    man["files"]["pack.digests"] = {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
    (d2 / "pack.manifest.json").write_text(json.dumps(man))
    with pytest.raises(RuntimeError, match="refusing to mount .*pack.digests: "):
        mount(d2)
    r = annpack("verify", d2)
    assert r.rc == 1 and "pack.digests: " in r.err, r


def test_lists_hashed_once_per_generation(annpack, tmp_path, keys, mount):
    """32 readers during 10 reloads: no failed read, and no generation hashes a range twice
    (verify_hashed never exceeds verify_ranges, and a repeat adds nothing)."""
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", TINY, "--packset", ps, "--lists", 4,
               "--seed", 1)
    annpack.ok("sign", ps, "--key", keys[0])
    m = mount(ps, f"pubkey={keys[1]}")
    errors, stop = [], threading.Event()
    texts = ["espresso", "tide", "rust borrow checker", "kombucha tea", "solar panels"]

    def reader(j):
        n = 0
        while not stop.is_set():
            try:
                q = f"{texts[(j + n) % len(texts)]} {j % 4}?probe={1 + n % 4}"
                assert json.loads((m.mnt / "query" / q).read_text())["results"]
                s = stats(m.mnt)
                assert s["verify_hashed"] <= s["verify_ranges"], s
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(repr(e))
                return
            n += 1

    threads = [threading.Thread(target=reader, args=(j,)) for j in range(32)]
    for t in threads:
        t.start()
    try:
        for k in range(1, 11):
            annpack.ok("packset", "build-delta", "--packset", ps, "--delete-ids", str(k),
                       "--pubkey", keys[1], "--out", ps / "deltas" / f"{k:04d}.delta")
            annpack.ok("sign", ps, "--key", keys[0])
            gen = stats(m.mnt)["generation"]
            m.sighup()
            for _ in range(200):
                if stats(m.mnt)["generation"] > gen:
                    break
                threading.Event().wait(0.05)
            assert stats(m.mnt)["generation"] == gen + 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    s = stats(m.mnt)
    assert s["generation"] == 11 and s["verify_bad"] == 0
    assert s["verify_hashed"] <= s["verify_ranges"]
    (m.mnt / "query" / "espresso?probe=4").read_text()
    again = stats(m.mnt)
    (m.mnt / "query" / "tide?probe=4").read_text()
    assert stats(m.mnt)["verify_hashed"] == again["verify_hashed"]  # all checked already


def test_lazy_mount_hashes_only_what_it_reads(annpack, tmp_path, mount):
    """Right after a lazy mount only the heads are hashed; a probe-1 query hashes one list
    (and the rows it returns); the background verifier then checks the rest."""
    d = build(annpack, tmp_path / "p", "--sq8")
    m = mount(d)
    s0 = stats(m.mnt)
    # heads: ANNP ranges 0 and last, sidecar range 0, the seek table
    assert s0["verify_hashed"] == 4 and s0["verify_ranges"] == 6 + 5 + 2
    centroid_query(m.mnt, d, 0)
    s1 = stats(m.mnt)
    assert s1["verify_hashed"] == 4 + 2 + 1  # list 0 in both files, the one frame
    centroid_query(m.mnt, d, 0)
    assert stats(m.mnt)["verify_hashed"] == s1["verify_hashed"]
    m2 = mount(d, "verify_rate=1")
    for _ in range(100):
        if stats(m2.mnt)["verify_hashed"] == s0["verify_ranges"]:
            break
        threading.Event().wait(0.05)
    assert stats(m2.mnt)["verify_hashed"] == s0["verify_ranges"]
    m3 = mount(d, "verify=full")
    assert stats(m3.mnt)["verify_hashed"] == s0["verify_ranges"]
    assert json.loads((m3.mnt / "health").read_text())["verify"] == "full"


def test_pack_without_digests_mounts_as_before(annpack, tmp_path, mount):
    """A pack built before pack.digests (tests/golden/v0-pack-zstd) is hashed whole at a lazy
    mount and answers."""
    from conftest import ROOT
    m = mount(ROOT / "tests" / "golden" / "v0-pack-zstd")
    assert json.loads((m.mnt / "query" / "espresso").read_text())["results"]
    s = stats(m.mnt)
    assert s["verify_ranges"] == 0 and s["verify_hashed"] == 0


def test_packset_with_deltas_is_checked_lazily(annpack, tmp_path, mount):
    """A packset with a delta mounts without reading its base lists (the live count comes
    from the rows; each list's dead bits are set when it is first probed): a corrupt base
    list fails the queries probing it and the merged virtual files, nothing else."""
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", TINY, "--packset", ps, "--lists", 4,
               "--seed", 1)
    annpack.ok("packset", "build-delta", "--packset", ps, "--delete-ids", "1,2",
               "--add", EXAMPLES / "delta_add.csv", "--out", ps / "deltas" / "0001.delta")
    good = mount(ps)
    live = json.loads((good.mnt / "health").read_text())["n_vectors"]
    before = stats(good.mnt)
    assert before["verify_hashed"] < before["verify_ranges"]
    answers = [json.loads(centroid_query(good.mnt, ps / "base", i))["results"] for i in range(4)]
    man = json.loads((good.mnt / "pack.manifest.json").read_text())  # merged: reads every list
    assert man["n_vectors"] == live and stats(good.mnt)["verify_bad"] == 0
    good.close()

    base = ps / "base"
    o, length, _ = ranges(base, "pack.annpack")[2 + 1]
    flip(base / "pack.annpack", o + length - 3)
    m = mount(ps, expect_errors=True)
    assert json.loads((m.mnt / "health").read_text())["n_vectors"] == live
    for i in range(4):
        if i == 2:
            eio(lambda: centroid_query(m.mnt, base, i))
        else:
            assert json.loads(centroid_query(m.mnt, base, i))["results"] == answers[i]
    eio(lambda: (m.mnt / "pack.annpack").read_bytes())
    eio(lambda: (m.mnt / "pack.manifest.json").read_bytes())
    assert json.loads((m.mnt / "health").read_text())["status"] == "corrupt"
    r = annpack("verify", ps, "--deep")
    assert r.rc == 1 and "base/pack.annpack: list 2 (range 3, " in r.err, r


def test_stored_count_is_checked_on_first_use(annpack, tmp_path, mount):
    """A lazy mount reads no list at open (each list's count is the one its offset-table
    length implies); a stored count that disagrees, under digests that match, fails the
    queries of that list only; verify (and sign) name it."""
    d = build(annpack, tmp_path / "p")
    cent = read_annp(d / "pack.annpack")["centroids"]
    query = lambda i: (mt.mnt / "vquery" / "k=3&probe=1" / vname(cent[i])).read_text()
    bad = 1
    o, _, _ = ranges(d, "pack.annpack")[bad + 1]
    b = bytearray((d / "pack.annpack").read_bytes())
    (count,) = struct.unpack_from("<I", b, o)
    struct.pack_into("<I", b, o, count + 1)
    (d / "pack.annpack").write_bytes(bytes(b))
    m = json.loads((d / "pack.manifest.json").read_text())
    m["files"]["pack.annpack"] = {"size": len(b),
                                  "sha256": hashlib.sha256(bytes(b)).hexdigest()}
    repin_digests(d, m)
    (d / "pack.manifest.json").write_text(json.dumps(m, indent=1))
    want = f"pack.annpack: list {bad} count {count + 1} does not fit its length"
    r = annpack("verify", d)
    assert r.rc == 1 and want in r.err, r
    mt = mount(d, expect_errors=True)
    for i in range(4):
        if i == bad:
            eio(lambda: query(i))
        else:
            assert json.loads(query(i))["results"]
    assert want in mt.stderr(), mt.stderr()
    with pytest.raises(RuntimeError, match="refusing to mount"):
        mount(d, "verify=full")
