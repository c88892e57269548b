"""The 1-bit code sidecar pack.bits (docs/FORMAT.md, "pack.bits"; `build --bits`,
`search --scan bits`): recall against exact search on a clustered set, every kernel giving the
same integers over a real pack, a corrupt list named by verify --deep and failing only the
mount queries that touch it, packsets (deltas and tombstones, rebase) answering as the exact
scan does, and a clear refusal without the sidecar. Real CLI and real annpackfs mounts."""
import base64
import errno
import json
import struct
import subprocess

import numpy as np
import pytest

from annpack_reader import read_annp, read_digests
from conftest import BUILD, EXAMPLES

TINY = EXAMPLES / "tiny_docs.csv"


def write_fvecs(path, a):
    a = np.asarray(a, dtype=np.float32)
    rec = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.int32)
    rec[:, 0] = a.shape[1]
    rec[:, 1:] = a.view(np.int32)
    path.write_bytes(rec.tobytes())


def read_ivecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:]


def clustered(n, dim, centres, sigma, seed):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + sigma / np.sqrt(dim) * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vec_pack(annpack, tmp_path_factory):
    """3000 x 96 clustered unit vectors with held-out queries, built with --bits --sq8, and the
    exact top 10 of every query over the f16 values the pack stores."""
    t = tmp_path_factory.mktemp("bits")
    x = clustered(3200, 96, 60, 1.2, 5)
    base, queries = x[:3000], x[3000:]
    write_fvecs(t / "base.fvecs", base)
    write_fvecs(t / "q.fvecs", queries)
    b16 = base.astype(np.float16).astype(np.float64)
    gt = np.argsort(-(queries.astype(np.float64) @ b16.T), axis=1, kind="stable")[:, :10]
    rec = np.empty((gt.shape[0], 11), dtype=np.int32)
    rec[:, 0], rec[:, 1:] = 10, gt
    (t / "gt.ivecs").write_bytes(rec.tobytes())
    annpack.ok("build", "--vectors", t / "base.fvecs", "--output", t / "p", "--lists", 32,
               "--seed", 2, "--bits", "--sq8")
    return t


def run_queries(annpack, t, scan, probe, tag):
    out = t / f"{tag}.ivecs"
    r = annpack.ok("search", t / "p", "--queries", t / "q.fvecs", "--gt", t / "gt.ivecs",
                   "--probe", probe, "--scan", scan, "--ids-out", out)
    return r.json(), read_ivecs(out)


def test_build_lists_and_hashes_the_sidecar(annpack, vec_pack):
    p = vec_pack / "p"
    man = json.loads((p / "pack.manifest.json").read_text())
    assert list(man["files"])[:3] == ["pack.annpack", "pack.bits", "pack.digests"]
    size = (p / "pack.bits").stat().st_size
    assert man["files"]["pack.bits"]["size"] == size
    b = (p / "pack.bits").read_bytes()
    magic, version, hsize, dim, n_lists, n_vec, dpad = struct.unpack_from("<7I", b, 0)
    (eps0,) = struct.unpack_from("<f", b, 28)
    seed, counts_off, data_off, fsize = struct.unpack_from("<4Q", b, 32)
    assert (b[:4], version, hsize, dim, n_lists, n_vec, dpad) == (b"ANB1", 1, 64, 96, 32, 3000, 128)
    assert eps0 > 0 and counts_off == 64 and data_off == 192 and fsize == size
    assert size == data_off + n_vec * (dpad // 8 + 8) + 4 * n_lists
    # one digest range per list, each list's records back to back after the header
    annp = read_annp(p / "pack.annpack")
    counts = struct.unpack_from(f"<{n_lists}I", b, 64)
    assert list(counts) == [len(ids) for ids, _ in annp["lists"]]
    rs = read_digests(p / "pack.digests")["pack.bits"][1]
    assert len(rs) == n_lists + 1 and rs[0][:2] == (0, data_off)
    assert [r[1] for r in rs[1:]] == [c * (dpad // 8 + 8) + 4 for c in counts]
    assert annpack.ok("verify", p, "--deep").rc == 0
    assert "--bits" in annpack.ok("build", "--help").out


MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def rotate(x, seed, dpad):
    """The rotation of FORMAT.md, "pack.bits", in float32 (the same operations in the same
    order as the writer, so the same bits)."""
    w = dpad // 64
    signs, s = [], seed
    for _ in range(4 * w):
        s, v = splitmix64(s)
        signs.append(v)
    block = 1
    while block * 2 <= dpad:
        block *= 2
    scale = np.float32(1.0 / np.sqrt(block))
    x = x.astype(np.float32).copy()
    for r in range(4):
        flip = np.array([(signs[r * w + i // 64] >> (i % 64)) & 1 for i in range(dpad)], bool)
        x[flip] = -x[flip]
        lo = 0 if r % 2 == 0 else dpad - block
        y = x[lo:lo + block]
        h = 1
        while h < block:
            v = y.reshape(-1, 2, h)
            a, b = v[:, 0, :].copy(), v[:, 1, :].copy()
            v[:, 0, :], v[:, 1, :] = a + b, a - b
            h *= 2
        x[lo:lo + block] = y * scale
    return x


def test_codes_follow_the_documented_encoding(vec_pack):
    """Every code of two lists recomputed from pack.annpack as FORMAT.md says: alpha the
    list's mean of x . c, the signs of the rotated residual to alpha * c, F = |r|^2 / |Pr|_1,
    G from o = |Pr|_1 / (sqrt(dpad) |r|)."""
    p = vec_pack / "p"
    b = (p / "pack.bits").read_bytes()
    dim, n_lists, _, dpad = struct.unpack_from("<4I", b, 12)
    (seed,) = struct.unpack_from("<Q", b, 32)
    (data,) = struct.unpack_from("<Q", b, 48)
    annp = read_annp(p / "pack.annpack")
    at, cb = data, dpad // 8
    checked = 0
    for li, (ids, vecs) in enumerate(annp["lists"][:2]):
        n = len(ids)
        codes = np.frombuffer(b, np.uint8, n * cb, at).reshape(n, cb)
        F = np.frombuffer(b, "<f4", n, at + n * cb)
        G = np.frombuffer(b, "<f4", n, at + n * (cb + 4))
        (alpha,) = struct.unpack_from("<f", b, at + n * (cb + 8))
        c = annp["centroids"][li]
        want_alpha = np.float32(np.sum(vecs.astype(np.float64) @ c.astype(np.float64)) / n)
        assert alpha == pytest.approx(want_alpha, rel=1e-6)
        ref = np.float32(alpha) * c
        for j in range(n):
            r = np.zeros(dpad, np.float32)
            r[:dim] = vecs[j].astype(np.float32) - ref
            pr = rotate(r, seed, dpad)
            want = np.packbits(pr > 0, bitorder="little")
            assert np.array_equal(want, codes[j]), (li, j)
            nn = float(np.sum(r.astype(np.float64) ** 2))
            l1 = float(np.sum(np.abs(pr.astype(np.float64))))
            o = l1 / (np.sqrt(dpad) * np.sqrt(nn))
            assert F[j] == pytest.approx(nn / l1, rel=1e-6)
            assert G[j] == pytest.approx(np.sqrt(nn) * np.sqrt(1 - o * o) / o / np.sqrt(dpad - 1),
                                         rel=1e-5)
            checked += 1
        at += n * (cb + 8) + 4
    assert checked > 100


def test_recall_against_exact(annpack, vec_pack):
    exact, ids_exact = run_queries(annpack, vec_pack, "f16", 32, "exact")
    assert exact["recall_at_k"] >= 0.999  # every list: exact up to f16 rounding
    for probe in (4, 8):
        f16, ids_f16 = run_queries(annpack, vec_pack, "f16", probe, f"f16_{probe}")
        bits, ids_bits = run_queries(annpack, vec_pack, "bits", probe, f"bits_{probe}")
        assert bits["scan"] == "bits" and bits["kernel"] == annpack.ok("diagnose").json()[
            "search_kernel_bits"]
        # the error bound keeps the exact scan's answers within the probed lists ...
        same = np.mean([set(a) == set(b) for a, b in zip(ids_f16, ids_bits)])
        assert same >= 0.99, same
        assert bits["recall_at_k"] >= f16["recall_at_k"] - 0.003, (bits, f16)
        # ... while re-ranking only part of what it scans, from 1/16 of the bytes per vector
        assert 10 <= bits["reranked_per_query"] < 0.5 * bits["vectors_per_query"], bits
        assert bits["bytes_per_query"] < f16["bytes_per_query"] / 6
    # auto keeps to the int8 codes (measured faster at equal recall; bits is asked for)
    auto = annpack.ok("search", vec_pack / "p", "--queries", vec_pack / "q.fvecs", "--probe", 8)
    assert auto.json()["scan"] == "sq8"


def test_every_kernel_gives_the_same_integers(vec_pack):
    exe = BUILD / "tests" / "unit" / "bits_kernels"
    r = subprocess.run([str(exe), str(vec_pack / "p")], capture_output=True, text=True,
                       check=True)
    out = json.loads(r.stdout)
    ks = out["kernels"]
    assert "portable" in ks and out["dispatch"] in ks and len(ks) >= 2, out
    assert len({k["fnv"] for k in ks.values()}) == 1, out
    assert all(k["codes"] == 3 * 3000 for k in ks.values())


def build_tiny(annpack, out, *extra, lists=4):
    annpack.ok("build", "--input", TINY, "--text-col", "text", "--id-col", "id", "--output", out,
               "--lists", lists, "--seed", 1, *extra)
    return out


def vname(vec):
    return base64.urlsafe_b64encode(np.asarray(vec, dtype="<f2").tobytes()).decode().rstrip("=")


def test_corrupt_list_named_and_only_its_queries_fail(annpack, tmp_path, mount):
    d = build_tiny(annpack, tmp_path / "p", "--bits")
    rs = read_digests(d / "pack.digests")["pack.bits"][1]
    bad = max(range(4), key=lambda i: rs[i + 1][1])  # a non-empty list
    o, length, _ = rs[bad + 1]
    b = bytearray((d / "pack.bits").read_bytes())
    b[o + length // 3] ^= 0x04
    (d / "pack.bits").write_bytes(bytes(b))
    r = annpack("verify", d, "--deep")
    assert r.rc == 1 and f"pack.bits: list {bad} (range {bad + 1}, " in r.err, r
    m = mount(d, expect_errors=True)
    cents = read_annp(d / "pack.annpack")["centroids"]
    for i in range(4):
        path = m.mnt / "vquery" / "k=3&probe=1" / vname(cents[i])
        if i == bad:
            with pytest.raises(OSError) as e:
                path.read_text()
            assert e.value.errno == errno.EIO
        else:
            assert json.loads(path.read_text())["results"]
    h = json.loads((m.mnt / "health").read_text())
    assert h["status"] == "corrupt" and h["bits"] is True
    assert f"pack.bits: list {bad} " in h["first_bad"]
    with pytest.raises(RuntimeError, match=f"refusing to mount .*pack.bits: list {bad} "):
        mount(d, "verify=full")


def results(r):
    return [(x["id"], x["layer"], x["score"]) for x in r.json()["results"]]


def test_packset_deltas_tombstones_and_rebase(annpack, tmp_path, mount):
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", TINY, "--packset", ps, "--lists", 4,
               "--seed", 1, "--bits")
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", EXAMPLES / "delta_add.csv",
               "--delete-ids", "1,2,22", "--out", ps / "deltas" / "0001.delta")
    texts = ["espresso", "coffee", "vector search", "tide", "rust borrow checker",
             "solar panels", "kombucha tea"]
    for text in texts:
        for probe in (1, 2, 4):
            f16 = results(annpack.ok("search", ps, text, "--probe", probe, "--scan", "f16"))
            bits = results(annpack.ok("search", ps, text, "--probe", probe, "--scan", "bits"))
            assert bits == f16, (text, probe)
            assert not {1, 2, 22} & {i for i, _, _ in bits}
    # a scan=bits mount serves the same answers, and its virtual pack is consistent: every
    # file its manifest lists is there, pack.bits not among them
    m = mount(ps, "scan=bits")
    h = json.loads((m.mnt / "health").read_text())
    assert h["bits"] is True and h["deltas"] == 1
    man = json.loads((m.mnt / "pack.manifest.json").read_text())
    names = {p.name for p in m.mnt.iterdir()}
    assert set(man["files"]) <= names and "pack.bits" not in names
    for text in texts[:3]:
        got = json.loads((m.mnt / "query" / f"{text}?probe=2").read_text())["results"]
        want = annpack.ok("search", ps, text, "--probe", 2, "--scan", "f16").json()["results"]
        assert [(x["id"], x["layer"]) for x in got] == [(x["id"], x["layer"]) for x in want]
    # rebase keeps the sidecar
    annpack.ok("packset", "rebase", "--packset", ps, "--out", tmp_path / "ps2", "--lists", 3)
    assert (tmp_path / "ps2" / "base" / "pack.bits").exists()
    assert annpack.ok("verify", tmp_path / "ps2", "--deep").rc == 0
    for text in texts[:3]:
        assert results(annpack.ok("search", tmp_path / "ps2", text, "--scan", "bits")) == \
            results(annpack.ok("search", tmp_path / "ps2", text, "--scan", "f16"))


def test_scan_bits_without_the_sidecar(annpack, tiny_pack, mount):
    r = annpack("search", tiny_pack, "espresso", "--scan", "bits")
    assert r.rc != 0 and "no 1-bit code sidecar (pack.bits): build with --bits" in r.err, r
    assert r.out == ""
    r = annpack("search", tiny_pack, "espresso", "--scan", "bitz")
    assert r.rc != 0 and "auto, f16, sq8 or bits" in r.err, r
    with pytest.raises(RuntimeError, match="scan=bits but the base has no 1-bit code sidecar"):
        mount(tiny_pack, "scan=bits")
