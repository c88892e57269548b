"""Vector packs end to end: `annpack build --vectors` (fvecs in, rows, metadata, refusals,
determinism), `annpack search --queries` (the JSON summary, --ids-out, --gt, threads),
the int8 sidecar (layout, codes, verify --deep, scan modes, packsets and rebase), and the
mount's /vquery/ names, pack.sq8, scan= and rerank= options.

References are computed here with numpy from the stored float16 vectors, summing each
dot product in the kernels' canonical order (core/kernel_f16.c), so at probe >= n_lists
the results must equal brute force exactly: same ids, same float32 scores."""
import base64
import errno
import hashlib
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest

from annpack_reader import read_annp, read_digests, read_sq8, rows, sq8_encode
from digestlib import repin_digests
from conftest import EXAMPLES
from mountlib import ANNPACKFS, Mount, is_mounted

N, DIM, NQ, LISTS = 3000, 90, 40, 32  # dim 90: two 32-chunks, a 16-chunk and a tail
STRIDE = (DIM + 63) // 64 * 64  # sidecar bytes per vector
DUP = (100, 2500, 2999)  # identical rows: equal scores, ordered by ascending id


# --- files and references ---------------------------------------------------------------

def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    n, d = x.shape
    out = np.empty((n, d + 1), dtype="<f4")
    out[:, 0] = np.array([d], dtype="<i4").view("<f4")[0]
    out[:, 1:] = x
    pathlib.Path(path).write_bytes(out.tobytes())


def write_ivecs(path, a):
    a = np.asarray(a, dtype="<i4")
    out = np.empty((a.shape[0], a.shape[1] + 1), dtype="<i4")
    out[:, 0] = a.shape[1]
    out[:, 1:] = a
    pathlib.Path(path).write_bytes(out.tobytes())


def read_ivecs(path):
    raw = np.fromfile(path, dtype="<i4")
    d = int(raw[0])
    a = raw.reshape(-1, d + 1)
    assert (a[:, 0] == d).all()
    return a[:, 1:]


def normalize(x):
    """ap_l2_normalize: a sequential double sum of squares, then each value / norm in
    double, rounded to float32."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    norm = np.sqrt(np.cumsum(x64 * x64, axis=-1)[..., -1:])
    return (x64 / norm).astype(np.float32)


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def canonical_scores(q, V):
    """Scores of one float32 query against float32 (float16-valued) rows V, in the f16
    kernels' summation order: 32 lane sums, folded to 16, a last 16-chunk, the pairwise
    reduction, then the tail in order; every product rounded before it is added."""
    n, dim = V.shape
    P = V * q[None, :].astype(np.float32)
    m32 = dim // 32 * 32
    a = np.zeros((n, 32), np.float32)
    for i in range(0, m32, 32):
        a = a + P[:, i:i + 32]
    s = a[:, :16] + a[:, 16:]
    if dim & 16:
        s = s + P[:, m32:m32 + 16]
    s = s[:, :8] + s[:, 8:]
    s = s[:, :4] + s[:, 4:]
    s = s[:, :2] + s[:, 2:]
    r = s[:, 0] + s[:, 1]
    for i in range(dim // 16 * 16, dim):
        r = r + P[:, i]
    return r


def top(scores, ids, k):
    order = np.lexsort((ids, -scores.astype(np.float64)))[:k]
    return ids[order], scores[order]


class Stored:
    """A pack's lists read with the independent reader: vectors by id, list of each id."""

    def __init__(self, pack_dir):
        a = read_annp(pathlib.Path(pack_dir) / "pack.annpack")
        self.annp = a
        ids = np.concatenate([l[0] for l in a["lists"]]).astype(np.int64)
        vecs = np.concatenate([l[1] for l in a["lists"]])
        self.list_of = np.concatenate([np.full(len(l[0]), i) for i, l in enumerate(a["lists"])])
        order = np.argsort(ids)
        self.ids = ids[order]
        self.V = vecs[order]
        self.list_of = self.list_of[order]
        self.centroids = a["centroids"]

    def exact(self, qn, k):
        return top(canonical_scores(qn, self.V), self.ids, k)

    def probed_lists(self, qn, probe):
        s = self.centroids.astype(np.float64) @ qn.astype(np.float64)
        return np.lexsort((np.arange(len(s)), -s))[:probe]

    def within(self, qn, probe, k):
        """Brute force over exactly the probe best lists (what an IVF search scans)."""
        keep = np.isin(self.list_of, self.probed_lists(qn, probe))
        return top(canonical_scores(qn, self.V[keep]), self.ids[keep], k)


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":")[1].split())
    return set()


def expected_kernels():
    f = cpu_flags()
    f16k = "avx512" if "avx512f" in f else "avx2" if {"avx2", "f16c"} <= f else "portable"
    sq8k = ("avx512vnni" if {"avx512bw", "avx512_vnni"} <= f else "avx512bw"
            if "avx512bw" in f else "avx2" if "avx2" in f else "portable")
    return f16k, sq8k


def sha256(p):
    return hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def vname(q, width=16):
    """The /vquery/ name of q: base64url of its little-endian float16 (or float32) values."""
    return b64url(np.asarray(q, dtype="<f2" if width == 16 else "<f4").tobytes())


def tree_bytes(d):
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(d).iterdir())}


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("vectors")
    rng = np.random.default_rng(20261201)
    centers = rng.normal(size=(30, DIM))
    x = (centers[rng.integers(0, 30, N)] + 0.7 * rng.normal(size=(N, DIM))).astype(np.float32)
    for i in DUP[1:]:
        x[i] = x[DUP[0]]
    q = (x[rng.choice(N, NQ, replace=False)] + 0.4 * rng.normal(size=(NQ, DIM))).astype(np.float32)
    q[0] = x[DUP[0]] * 3.0  # not unit length: the search normalises it
    write_fvecs(d / "base.fvecs", x)
    write_fvecs(d / "q.fvecs", q)
    return {"dir": d, "x": x, "q": q, "base": d / "base.fvecs", "queries": d / "q.fvecs"}


@pytest.fixture(scope="module")
def packs(data, tmp_path_factory):
    """The same vectors built without and with the sidecar, plus the exact references."""
    from conftest import BUILD, Cli
    annpack = Cli(BUILD / "tools" / "annpack")
    d = tmp_path_factory.mktemp("packs")
    reports = {}
    for name, extra in [("plain", []), ("sq8", ["--sq8"])]:
        reports[name] = annpack.ok("build", "--vectors", data["base"], "--output", d / name,
                                   "--lists", LISTS, "--seed", 3, "--json", *extra).json()
    st = Stored(d / "plain")
    qn = normalize(data["q"])
    ref = [st.exact(qn[i], 100) for i in range(NQ)]
    gt = np.array([r[0][:10] for r in ref])
    write_ivecs(d / "gt.ivecs", gt)
    return {"plain": d / "plain", "sq8": d / "sq8", "reports": reports, "stored": st, "qn": qn,
            "ref": ref, "gt": gt, "gt_path": d / "gt.ivecs", "dir": d}


def evaluate(annpack, pack, queries, out, *args, env=None):
    s = annpack.ok("search", pack, "--queries", queries, "--ids-out", out, *args, env=env).json()
    return s, read_ivecs(out)


# --- build --vectors --------------------------------------------------------------------

def test_build_vectors_files_and_report(annpack, data, packs):
    rep = packs["reports"]["plain"]
    assert rep["rows"] == N and rep["dim"] == DIM and rep["lists"] == LISTS
    assert rep["sq8"] is False and packs["reports"]["sq8"]["sq8"] is True
    assert rep["threads"] == 2  # ANNPACK_THREADS from conftest
    assert 1 <= rep["kmeans_passes"] <= 20 and rep["train_rows"] == N
    assert set(rep["seconds"]) >= {"total", "embed", "kmeans", "assign", "sq8", "write"}
    assert rep["seconds"]["total"] > 0 and all(v >= 0 for v in rep["seconds"].values())
    assert rep["seconds"]["sq8"] == 0 and packs["reports"]["sq8"]["seconds"]["sq8"] > 0

    p = packs["plain"]
    # Without --input: {"id":N} rows, metadata not compressed.
    assert sorted(os.listdir(p)) == ["pack.annpack", "pack.digests", "pack.manifest.json",
                                     "pack.meta.idx", "pack.meta.jsonl"]
    assert (p / "pack.meta.jsonl").read_text() == "".join(f'{{"id":{i}}}\n' for i in range(N))
    man = json.loads((p / "pack.manifest.json").read_text())
    assert man["embedder"] == {"name": "vectors", "dim": DIM, "seed": 0}
    assert man["dim"] == DIM and man["n_vectors"] == N and man["n_lists"] == LISTS
    assert set(man["files"]) == {"pack.annpack", "pack.digests", "pack.meta.jsonl", "pack.meta.idx"}
    for f, e in man["files"].items():
        assert e == {"size": (p / f).stat().st_size, "sha256": sha256(p / f)}, f
    b = man["build"]
    assert b["vectors_sha256"] == sha256(data["base"]) and b["vectors_size"] == data["base"].stat().st_size
    assert b["input"] == "vectors only" and b["meta_compression"] == "none" and b["rows"] == N

    # Ids are row numbers; each stored vector is float16 of the L2-normalised row.
    st = packs["stored"]
    assert st.annp["dim"] == DIM and st.annp["n_lists"] == LISTS and st.annp["n_vectors"] == N
    assert (st.ids == np.arange(N)).all()
    assert np.array_equal(st.V, f16(normalize(data["x"])))
    # Every vector sits in the list of its best centroid (probing agrees with assignment).
    best = np.argmax(normalize(data["x"]).astype(np.float64) @ st.centroids.T.astype(np.float64), axis=1)
    assert (best == st.list_of).mean() > 0.999
    annpack.ok("verify", p, "--deep")


def test_build_sq8_sidecar_layout_and_codes(annpack, packs):
    p, s = packs["plain"], packs["sq8"]
    # The sidecar changes nothing else: same ANNP and metadata bytes, manifest + pack.sq8.
    a, b = tree_bytes(p), tree_bytes(s)
    assert set(b) == set(a) | {"pack.sq8"}
    for f in ["pack.annpack", "pack.meta.jsonl", "pack.meta.idx"]:
        assert a[f] == b[f], f
    ma, mb = json.loads(a["pack.manifest.json"]), json.loads(b["pack.manifest.json"])
    assert mb["files"].pop("pack.sq8") == {"size": (s / "pack.sq8").stat().st_size,
                                           "sha256": sha256(s / "pack.sq8")}
    # The digest table also covers the sidecar's ranges (FORMAT.md, pack.digests).
    assert "pack.sq8" in read_digests(s / "pack.digests")
    assert "pack.sq8" not in read_digests(p / "pack.digests")
    ma["files"].pop("pack.digests"), mb["files"].pop("pack.digests")
    assert ma == mb
    # Header, params and codes as documented, in pack.annpack's list order.
    sq = read_sq8(s / "pack.sq8")
    annp = packs["stored"].annp
    assert sq["dim"] == DIM and sq["n_lists"] == LISTS and sq["n_vectors"] == N and sq["stride"] == STRIDE
    assert (sq["codes"][:, DIM:] == 0).all()
    assert [int(c) for c in sq["counts"]] == [len(l[0]) for l in annp["lists"]]
    vecs = np.concatenate([l[1] for l in annp["lists"]])
    assert np.array_equal(sq["vmin"], vecs.min(axis=0))
    assert np.array_equal(sq["step"], (vecs.max(axis=0) - vecs.min(axis=0)) / np.float32(255))
    assert np.array_equal(sq["codes"][:, :DIM], sq8_encode(vecs, sq["vmin"], sq["step"]))
    assert (sq["codes"][:, :DIM] == 0).any() and (sq["codes"][:, :DIM] == 255).any()
    annpack.ok("verify", s, "--deep")


def test_build_deterministic_whatever_the_threads(annpack, data, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("title,n\n" + "".join(f"doc {i},{i * 7}\n" for i in range(N)))
    outs = {}
    for threads in ("1", "4"):
        for kind, extra in [("v", []), ("m", ["--input", meta])]:
            out = tmp_path / f"{kind}{threads}"
            annpack.ok("build", "--vectors", data["base"], "--output", out, "--lists", LISTS,
                       "--sq8", "--seed", 9, *extra, env={"ANNPACK_THREADS": threads})
            outs[kind, threads] = tree_bytes(out)
    for kind in ("v", "m"):
        assert outs[kind, "1"] == outs[kind, "4"], kind
    # Rebuilding into the same directory gives the same bytes again.
    annpack.ok("build", "--vectors", data["base"], "--output", tmp_path / "v1", "--lists", LISTS,
               "--sq8", "--seed", 9, env={"ANNPACK_THREADS": "3"})
    assert tree_bytes(tmp_path / "v1") == outs["v", "1"]
    # Another seed gives other lists (the comparison above could not pass by accident).
    annpack.ok("build", "--vectors", data["base"], "--output", tmp_path / "s", "--lists", LISTS,
               "--sq8", "--seed", 10)
    assert tree_bytes(tmp_path / "s")["pack.annpack"] != outs["v", "1"]["pack.annpack"]


def test_build_hashes_without_holding_its_files(annpack, tmp_path):
    """Hashing the written files (pack.digests, the manifest) reads them through bounded
    buffers: it adds nothing near their size to the builder's peak RSS, which still holds
    every row (the lean build; docs/BENCHMARKS.md). The phases' peaks come from the
    build's debug log."""
    n, dim = 160_000, 384
    x = np.random.default_rng(5).standard_normal((n, dim), dtype=np.float32)
    write_fvecs(tmp_path / "big.fvecs", x)
    del x
    out = tmp_path / "big"
    r = annpack.ok("build", "--vectors", tmp_path / "big.fvecs", "--output", out, "--lists", 64,
                   "--iters", 2, "--sq8", env={"ANNPACK_LOG_LEVEL": "debug"})
    peak = {m[1]: int(m[2]) for m in re.finditer(
        r"DEBUG: build: (.+?): [0-9.]+ s, peak RSS so far ([0-9]+) MiB", r.err)}
    assert {"read and hash the inputs", "lists", "digests and manifest"} <= set(peak), r.err
    written = ((out / "pack.annpack").stat().st_size + (out / "pack.sq8").stat().st_size) >> 20
    assert written > 150 and peak["read and hash the inputs"] >= n * dim * 4 >> 20
    # Mapping the files whole (as builds once did) would add `written` MiB here.
    assert peak["digests and manifest"] - peak["lists"] < 32, (peak, written)
    annpack.ok("verify", out, "--deep")


def test_build_vectors_with_csv_metadata(annpack, data, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("title,tag\n" + "".join(f'"doc, {i}",t{i % 5}\n' for i in range(N)))
    out = tmp_path / "m"
    annpack.ok("build", "--vectors", data["base"], "--input", meta, "--output", out, "--lists", 8)
    assert (out / "pack.meta.jsonl.zst").exists() and not (out / "pack.meta.jsonl").exists()
    got = rows(out)
    assert got == [{"id": i, "title": f"doc, {i}", "tag": f"t{i % 5}"} for i in range(N)]
    annpack.ok("verify", out, "--deep")
    plain = tmp_path / "mp"
    annpack.ok("build", "--vectors", data["base"], "--input", meta, "--output", plain, "--lists", 8,
               "--meta-compression", "none")
    assert (plain / "pack.meta.jsonl").read_bytes().decode().splitlines()[3] == \
        '{"id":3,"title":"doc, 3","tag":"t3"}'
    # The vectors are the same whatever the metadata.
    assert (plain / "pack.annpack").read_bytes() == (out / "pack.annpack").read_bytes()


@pytest.mark.parametrize("case", ["fewer-rows", "more-rows", "id-column"])
def test_build_vectors_csv_refusals(annpack, data, tmp_path, case):
    meta = tmp_path / "meta.csv"
    if case == "fewer-rows":
        meta.write_text("title\n" + "".join(f"d{i}\n" for i in range(N - 1)))
        needle = f"has {N - 1} data rows but"
    elif case == "more-rows":
        meta.write_text("title\n" + "".join(f"d{i}\n" for i in range(N + 1)))
        needle = f"more data rows than the {N} vectors"
    else:
        meta.write_text("id,title\n" + "".join(f"{i},d{i}\n" for i in range(N)))
        needle = 'column "id" is reserved'
    out = tmp_path / "out"
    r = annpack("build", "--vectors", data["base"], "--input", meta, "--output", out)
    assert r.rc == 1 and needle in r.err and "meta.csv" in r.err, r
    assert not out.exists()


def test_build_vectors_usage_refusals(annpack, data, tmp_path):
    out = tmp_path / "out"
    for extra, needle in [(["--id-col", "id"], "--id-col cannot be used with --vectors"),
                          (["--dim", "64"], "--dim cannot be used with --vectors"),
                          (["--iters", "0"], "--iters"), (["--iters", "1001"], "--iters")]:
        r = annpack("build", "--vectors", data["base"], "--output", out, *extra)
        assert r.rc == 2 and needle in r.err, r
    r = annpack("build", "--output", out)
    assert r.rc == 2 and "--input or --vectors" in r.err
    assert not out.exists()


def bad_fvecs(d, case):
    x = np.arange(8 * 6, dtype=np.float32).reshape(8, 6) + 1
    p = d / f"{case}.fvecs"
    write_fvecs(p, x)
    raw = bytearray(p.read_bytes())
    row = 4 + 4 * 6
    if case == "empty":
        raw = b""
    elif case == "truncated":
        raw = raw[:-3]
    elif case == "dim-mismatch":
        struct.pack_into("<i", raw, 5 * row, 7)
    elif case == "nan":
        struct.pack_into("<f", raw, 6 * row + 4 + 4 * 2, float("nan"))
    elif case == "inf":
        struct.pack_into("<f", raw, 3 * row + 4, float("-inf"))
    elif case == "zero-row":
        raw[4 * row + 4:5 * row] = bytes(4 * 6)
    p.write_bytes(bytes(raw))
    return p


@pytest.mark.parametrize("case,needle", [
    ("empty", "empty"), ("truncated", "truncated"), ("dim-mismatch", "row 5: dim 7"),
    ("nan", "row 6: value 2 is not finite"), ("inf", "row 3: value 0 is not finite"),
    ("zero-row", "row 4 is the zero vector"), ("max-dim", "ANNPACK_MAX_DIM"),
    ("missing", "missing.fvecs")])
def test_build_vectors_bad_files(annpack, tmp_path, case, needle):
    env = None
    if case == "max-dim":
        p = bad_fvecs(tmp_path, "ok")
        env = {"ANNPACK_MAX_DIM": "5"}
    elif case == "missing":
        p = tmp_path / "missing.fvecs"
    else:
        p = bad_fvecs(tmp_path, case)
    out = tmp_path / "out"
    r = annpack("build", "--vectors", p, "--output", out, "--lists", 2, env=env)
    assert r.rc == 1 and needle in r.err and p.name in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert not out.exists()


def test_build_vectors_clamps_max_rows_iters(annpack, data, tmp_path):
    small = tmp_path / "five.fvecs"
    write_fvecs(small, data["x"][:5])
    r = annpack.ok("build", "--vectors", small, "--output", tmp_path / "five", "--lists", 10, "--json")
    assert r.json()["lists"] == 5 and "clamped to 5" in r.err
    r = annpack.ok("build", "--vectors", data["base"], "--output", tmp_path / "mr", "--max-rows", 100,
                   "--lists", 4, "--json")
    assert r.json()["rows"] == 100 and "left out 2900" in r.err
    assert (tmp_path / "mr" / "pack.meta.jsonl").read_text().splitlines()[-1] == '{"id":99}'
    st = Stored(tmp_path / "mr")
    assert (st.ids == np.arange(100)).all() and np.array_equal(st.V, f16(normalize(data["x"][:100])))
    r = annpack.ok("build", "--vectors", data["base"], "--output", tmp_path / "it", "--lists", LISTS,
                   "--iters", 1, "--json").json()
    assert r["kmeans_passes"] == 1
    man = json.loads((tmp_path / "it" / "pack.manifest.json").read_text())
    assert man["build"]["kmeans_iterations_max"] == 1


def test_text_query_on_vector_pack(annpack, packs):
    r = annpack("search", packs["plain"], "hello world")
    assert r.rc == 1 and 'built from vectors (embedder "vectors")' in r.err and "--queries" in r.err


# --- search --queries -------------------------------------------------------------------

def test_search_queries_exact_at_full_probe(annpack, packs, data, tmp_path):
    f16k, sq8k = expected_kernels()
    want = np.array([r[0][:10] for r in packs["ref"]])
    # Ties by ascending id: query 0 is the duplicated row.
    assert list(want[0][:3]) == list(DUP)
    cases = [
        (packs["plain"], [], "f16", 0, f16k, 2 * DIM),
        (packs["plain"], ["--scan", "f16"], "f16", 0, f16k, 2 * DIM),
        (packs["sq8"], ["--scan", "f16"], "f16", 0, f16k, 2 * DIM),
        (packs["sq8"], ["--scan", "sq8", "--rerank", N], "sq8", N, sq8k, STRIDE),
        (packs["sq8"], ["--rerank", N + 1], "sq8", N + 1, sq8k, STRIDE),
    ]
    for i, (pack, extra, scan, rerank, kernel, per_vec) in enumerate(cases):
        s, ids = evaluate(annpack, pack, data["queries"], tmp_path / f"ids{i}.ivecs", "--probe", LISTS,
                          "--gt", packs["gt_path"], *extra)
        assert ids.shape == (NQ, 10) and (ids == want).all(), (extra, s)
        assert s["queries"] == NQ and s["k"] == 10 and s["probe"] == LISTS and s["threads"] == 1
        assert s["scan"] == scan and s["rerank"] == rerank and s["kernel"] == kernel, s
        assert s["recall_at_k"] == 1.0
        assert s["lists_per_query"] == LISTS and s["vectors_per_query"] == N
        assert s["bytes_per_query"] == N * per_vec
        assert s["reranked_per_query"] == (min(rerank, N) if scan == "sq8" else 0)
        assert 0 < s["latency_us"]["p50"] <= s["latency_us"]["p99"] and s["latency_us"]["mean"] > 0
        assert s["qps"] > 0 and s["scan_us_p50"] > 0 and s["scan_gbps"] > 0
        assert s["probe_us_p50"] >= 0 and s["overhead_us_p50"] >= 0
        assert s["scan_us_p50"] <= s["latency_us"]["p50"] + 1.0
    # A probe above n_lists is clamped (and still exact); k = 100 too.
    s, ids = evaluate(annpack, packs["plain"], data["queries"], tmp_path / "k100.ivecs", "--probe",
                      1000, "-k", 100)
    assert s["probe"] == LISTS and s["recall_at_k"] is None
    assert ids.shape == (NQ, 100) and (ids == np.array([r[0] for r in packs["ref"]])).all()


def test_search_queries_partial_probe(annpack, packs, data, tmp_path):
    st, qn = packs["stored"], packs["qn"]
    for probe in (1, 2, 5):
        s, ids = evaluate(annpack, packs["plain"], data["queries"], tmp_path / f"p{probe}.ivecs",
                          "--probe", probe, "--gt", packs["gt_path"])
        # An IVF search at probe p is brute force over the p best lists.
        want = np.array([st.within(qn[i], probe, 10)[0] for i in range(NQ)])
        assert (ids == want).all(), probe
        assert s["lists_per_query"] == probe
        sizes = np.bincount(st.list_of, minlength=LISTS)
        vpq = np.mean([sizes[st.probed_lists(qn[i], probe)].sum() for i in range(NQ)])
        assert abs(s["vectors_per_query"] - vpq) <= 0.051 and s["bytes_per_query"] == round(vpq * 2 * DIM)
        # recall_at_k is the mean share of the true top-k found.
        mine = np.mean([len(set(ids[i]) & set(packs["gt"][i])) / 10 for i in range(NQ)])
        assert abs(s["recall_at_k"] - mine) < 6e-5
        if probe == 1:
            assert s["recall_at_k"] < 1.0


def test_search_queries_sq8_default_and_threads(annpack, packs, data, tmp_path):
    s, ids = evaluate(annpack, packs["sq8"], data["queries"], tmp_path / "auto.ivecs", "--probe", 8,
                      "--gt", packs["gt_path"])
    assert s["scan"] == "sq8" and s["rerank"] == 80 and s["reranked_per_query"] == 80
    assert 0.9 <= s["recall_at_k"] <= 1.0
    # Equal integer scores tie by ascending id when candidates are cut: query 0 is the row
    # stored three times, so the two candidates kept are its two lowest ids.
    _, ids = evaluate(annpack, packs["sq8"], data["queries"], tmp_path / "tie.ivecs", "--probe",
                      LISTS, "-k", 2, "--rerank", 2)
    assert list(ids[0]) == list(DUP[:2])
    # A rerank below k is raised to k, and reported as used.
    s = annpack.ok("search", packs["sq8"], "--queries", data["queries"], "--rerank", 3).json()
    assert s["rerank"] == 10 and s["reranked_per_query"] == 10
    # Threads and warmup passes do not change results.
    for pack in (packs["plain"], packs["sq8"]):
        one = tmp_path / "t1.ivecs"
        base, _ = evaluate(annpack, pack, data["queries"], one, "--probe", 4)
        for extra in (["--threads", 2], ["--threads", 3, "--warmup", 2]):
            two = tmp_path / "t2.ivecs"
            s2, _ = evaluate(annpack, pack, data["queries"], two, "--probe", 4, *extra)
            assert s2["threads"] == extra[1] and s2["queries"] == NQ
            assert one.read_bytes() == two.read_bytes(), (pack, extra)


def test_search_queries_pads_short_results(annpack, data, tmp_path):
    small = tmp_path / "five.fvecs"
    write_fvecs(small, data["x"][:5])
    annpack.ok("build", "--vectors", small, "--output", tmp_path / "five", "--lists", 2)
    s, ids = evaluate(annpack, tmp_path / "five", data["queries"], tmp_path / "o.ivecs", "-k", 8,
                      "--probe", 2)
    assert ids.shape == (NQ, 8)
    assert (ids[:, 5:] == -1).all() and (np.sort(ids[:, :5], axis=1) == np.arange(5)).all()


def test_search_queries_refusals(annpack, packs, data, tmp_path, tiny_pack):
    p = packs["plain"]
    q32 = tmp_path / "q32.fvecs"
    write_fvecs(q32, data["q"][:, :32])
    r = annpack("search", p, "--queries", q32)
    assert r.rc == 1 and f"queries have dim 32; the pack has dim {DIM}" in r.err
    zero = tmp_path / "zero.fvecs"
    qz = data["q"].copy()
    qz[3] = 0
    write_fvecs(zero, qz)
    r = annpack("search", p, "--queries", zero)
    assert r.rc == 1 and "query 3 is the zero vector" in r.err
    nan = tmp_path / "nan.fvecs"
    qn = data["q"].copy()
    qn[2, 5] = np.nan
    write_fvecs(nan, qn)
    r = annpack("search", p, "--queries", nan)
    assert r.rc == 1 and "row 2: value 5 is not finite" in r.err
    gt_short = tmp_path / "gt_short.ivecs"
    write_ivecs(gt_short, packs["gt"][:10])
    r = annpack("search", p, "--queries", data["queries"], "--gt", gt_short)
    assert r.rc == 1 and f"need {NQ} rows" in r.err
    r = annpack("search", p, "--queries", data["queries"], "--gt", packs["gt_path"], "-k", 20)
    assert r.rc == 1 and "at least k = 20" in r.err
    r = annpack("search", p, "--queries", data["queries"], "--scan", "sq8")
    assert r.rc == 1 and "no int8 sidecar" in r.err and "--sq8" in r.err
    r = annpack("search", tiny_pack, "kombucha", "--scan", "sq8")
    assert r.rc == 1 and "no int8 sidecar" in r.err
    for args, needle in [
        (["--gt", packs["gt_path"], "x"], "need --queries"),
        (["--threads", 2, "x"], "need --queries"),
        (["--queries", data["queries"], "extra"], "no TEXT"),
        (["--queries", data["queries"], "--scan", "int4"], "--scan must be auto, f16, sq8 or bits"),
        (["--queries", data["queries"], "--rerank", 0], "--rerank"),
        (["--queries", data["queries"], "--rerank", 100001], "--rerank"),
        (["--queries", data["queries"], "--threads", 0], "--threads"),
        (["--queries", data["queries"], "--warmup", 101], "--warmup")]:
        r = annpack("search", p, *args)
        assert r.rc == 2 and needle in r.err, (args, r)
    # Nothing written on failure.
    out = tmp_path / "never.ivecs"
    r = annpack("search", p, "--queries", q32, "--ids-out", out)
    assert r.rc == 1 and not out.exists()


def test_text_search_scan_and_rerank(annpack, tmp_path):
    p = tmp_path / "t"
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text", "--id-col",
               "id", "--output", p, "--lists", 4, "--seed", 1, "--sq8")
    strip = lambda r: [(h["id"], h["score"], h["layer"], h["meta"]) for h in r["results"]]
    for text in ["kombucha tea", "bicycle chain", "chess opening", "sourdough starter"]:
        exact = annpack.ok("search", p, text, "-k", 40, "--probe", 4, "--scan", "f16").json()
        assert len(exact["results"]) == 40
        for extra in (["--scan", "sq8", "--rerank", 40], ["--scan", "auto"], []):
            got = annpack.ok("search", p, text, "-k", 40, "--probe", 4, *extra).json()
            assert strip(got) == strip(exact), extra
        # Few candidates: the scores stay exact f16 scores of the ids returned.
        few = annpack.ok("search", p, text, "-k", 5, "--probe", 4, "--rerank", 5).json()
        by_id = {h["id"]: h["score"] for h in exact["results"]}
        assert [h["score"] for h in few["results"]] == [by_id[h["id"]] for h in few["results"]]
    r = annpack("search", p, "x", "--scan", "f32")
    assert r.rc == 2


# --- the sidecar under verify ------------------------------------------------------------

def rehash(pack, name):
    """Re-pins file name in the manifest and the digest table, so only a deeper check sees
    a change (a resized file drops the table: the pack reads as one from before it)."""
    m = json.loads((pack / "pack.manifest.json").read_text())
    m["files"][name] = {"size": (pack / name).stat().st_size, "sha256": sha256(pack / name)}
    repin_digests(pack, m)
    (pack / "pack.manifest.json").write_text(json.dumps(m, indent=1))


def test_verify_deep_recomputes_codes(annpack, packs, data, tmp_path):
    p = tmp_path / "p"
    shutil.copytree(packs["sq8"], p)
    sq = read_sq8(p / "pack.sq8")
    counts = [int(c) for c in sq["counts"]]
    # The 3rd vector of the first list with at least 3 vectors, dimension 10.
    li = next(i for i, c in enumerate(counts) if c >= 3)
    row = sum(counts[:li]) + 2
    codes_off = (p / "pack.sq8").stat().st_size - N * STRIDE
    raw = bytearray((p / "pack.sq8").read_bytes())
    raw[codes_off + row * STRIDE + 10] ^= 0x40
    (p / "pack.sq8").write_bytes(bytes(raw))
    # The hash no longer matches: every verify refuses, naming the file.
    r = annpack("verify", p)
    assert r.rc == 1 and "pack.sq8" in r.err
    # With the hash updated, the plain verify passes and only --deep sees the bad code.
    rehash(p, "pack.sq8")
    annpack.ok("verify", p)
    r = annpack("verify", p, "--deep")
    assert r.rc == 1 and "pack.sq8" in r.err and f"list {li} vector 2" in r.err, r
    assert json.loads(r.out)["ok"] is False
    # A header the reader refuses is refused by verify and by search alike.
    raw = bytearray(packs["sq8"].joinpath("pack.sq8").read_bytes())
    struct.pack_into("<I", raw, 20, N - 1)
    (p / "pack.sq8").write_bytes(bytes(raw))
    rehash(p, "pack.sq8")
    for args in (["verify", p], ["search", p, "--queries", data["queries"]]):
        r = annpack(*args)
        assert r.rc == 1, args
    assert f"{N - 1} vectors" in annpack("verify", p).err
    # A listed sidecar that is missing.
    (p / "pack.sq8").unlink()
    r = annpack("verify", p)
    assert r.rc == 1 and "pack.sq8" in r.err


@pytest.mark.parametrize("old,new,needle", [
    # Same-length edits of a row: the plain {"id":N} rows take a shortcut past the JSON
    # parser; anything else must still get the strict parser's verdict.
    ('{"id":10}', '{"id":01}', "row of id 10"),          # a leading zero is not JSON
    ('{"id":10}', '{"id":1 }', "index says id 10, row says 1"),
    ('{"id":10}', '{"ID":10}', 'row of id 10: not an object with an "id"'),
    ('{"id":10}', '{"id":-0}', "index says id 10, row says 0"),  # JSON's -0 is 0
    ('{"id":100}', '{"id":1e2}', None),                  # JSON's 100 all the same
    ('{"id":100}', '{"id": 10}', "index says id 100, row says 10"),
])
def test_verify_deep_rows_shortcut_agrees_with_parser(annpack, packs, tmp_path, old, new,
                                                      needle):
    p = tmp_path / "p"
    shutil.copytree(packs["plain"], p)
    rows = (p / "pack.meta.jsonl").read_text()
    assert len(old) == len(new) and f"\n{old}\n" in rows
    (p / "pack.meta.jsonl").write_text(rows.replace(f"\n{old}\n", f"\n{new}\n", 1))
    rehash(p, "pack.meta.jsonl")
    annpack.ok("verify", p)
    r = annpack("verify", p, "--deep")
    if needle is None:
        assert r.rc == 0, r
    else:
        assert r.rc == 1 and needle in r.err and "pack.meta.jsonl" in r.err, r


def test_unlisted_sidecar_is_ignored(annpack, packs, data, tmp_path):
    p = tmp_path / "p"
    shutil.copytree(packs["plain"], p)
    shutil.copy(packs["sq8"] / "pack.sq8", p / "pack.sq8")
    # verify names the file the manifest does not cover; searches never read it.
    r = annpack("verify", p)
    assert r.rc == 1 and "pack.sq8" in r.err and "not listed" in r.err, r
    s = annpack.ok("search", p, "--queries", data["queries"]).json()
    assert s["scan"] == "f16"
    r = annpack("search", p, "--queries", data["queries"], "--scan", "sq8")
    assert r.rc == 1 and "no int8 sidecar" in r.err


# --- packsets ----------------------------------------------------------------------------

def strip(r):
    return [(h["id"], h["score"], h["layer"], h["meta"]) for h in r["results"]]


TEXTS = ["kombucha sweet tea", "bicycle chain degreaser", "chess opening", "sourdough", "espresso"]


WORDS = ("tea bread coffee chain bicycle chess opening kayak tide paddle starter flour "
         "espresso pressure roast garden soil compost river stone glass").split()
LIVE = 40 + 2 + 30 - 2


@pytest.fixture
def sq8_packset(annpack, tmp_path):
    """A base with the sidecar and a delta of 33 rows (2 new, 1 update, 30 generated, so
    each list gets several delta vectors) and 2 deletes."""
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", ps,
               "--lists", 4, "--seed", 1, "--sq8")
    add = tmp_path / "add.csv"
    gen = "".join(f'{100 + i},Generated {i},"{" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(6))}"\n'
                  for i in range(30))
    add.write_text((EXAMPLES / "delta_add.csv").read_text() + gen)
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", add, "--delete-ids", "1,2",
               "--out", ps / "deltas" / "0001.delta")
    return ps


def test_packset_sq8_search_and_rebase(annpack, sq8_packset, tmp_path):
    ps = sq8_packset
    base_man = json.loads((ps / "base" / "pack.manifest.json").read_text())
    assert "pack.sq8" in base_man["files"] and (ps / "base" / "pack.sq8").exists()
    assert not (ps / "deltas" / "0001.delta" / "pack.sq8").exists()
    annpack.ok("verify", ps, "--deep")
    for text in TEXTS:
        exact = annpack.ok("search", ps, text, "-k", LIVE, "--probe", 4, "--scan", "f16").json()
        assert len(exact["results"]) == LIVE
        assert sum(h["layer"] == 1 for h in exact["results"]) == 33
        for extra in (["--scan", "sq8", "--rerank", LIVE], []):
            assert strip(annpack.ok("search", ps, text, "-k", LIVE, "--probe", 4, *extra).json()) \
                == strip(exact), extra
        # Top 10 of a partial probe: the int8 scan over base and delta vectors agrees.
        a = annpack.ok("search", ps, text, "-k", 10, "--probe", 2, "--scan", "f16").json()
        b = annpack.ok("search", ps, text, "-k", 10, "--probe", 2, "--rerank", 1000).json()
        assert strip(a) == strip(b)
    new = tmp_path / "rebased"
    annpack.ok("packset", "rebase", "--packset", ps, "--out", new, "--lists", 3, "--seed", 2)
    assert (new / "base" / "pack.sq8").exists()
    assert "pack.sq8" in json.loads((new / "base" / "pack.manifest.json").read_text())["files"]
    annpack.ok("verify", new, "--deep")
    for text in TEXTS:
        a = annpack.ok("search", ps, text, "-k", LIVE, "--probe", 99, "--scan", "f16").json()
        for scan in (["--scan", "f16"], ["--scan", "sq8", "--rerank", 100]):
            b = annpack.ok("search", new, text, "-k", LIVE, "--probe", 99, *scan).json()
            assert [(h["id"], h["score"], h["meta"]) for h in a["results"]] == \
                   [(h["id"], h["score"], h["meta"]) for h in b["results"]]
    # A base without the sidecar rebases to a base without one.
    plain = tmp_path / "plain"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", plain,
               "--lists", 4)
    annpack.ok("packset", "rebase", "--packset", plain, "--out", tmp_path / "plain2")
    assert not (tmp_path / "plain2" / "base" / "pack.sq8").exists()
    r = annpack("search", tmp_path / "plain2", "tea", "--scan", "sq8")
    assert r.rc == 1 and "no int8 sidecar" in r.err


# --- the mount ---------------------------------------------------------------------------

def vread(mnt, name, sub=None):
    p = mnt / "vquery" / sub / name if sub else mnt / "vquery" / name
    b = p.read_bytes()
    assert os.stat(p).st_size == len(b)
    return json.loads(b)


def test_mount_vquery_exact(annpack, packs, data, mount, tmp_path):
    mp = mount(packs["plain"])
    ms = mount(packs["sq8"], f"scan=sq8,rerank={N}")
    st = packs["stored"]
    h = json.loads((mp.mnt / "health").read_text())
    assert h["embedder"] == "vectors" and h["sq8"] is False and h["n_vectors"] == N
    assert h["dim"] == DIM and h["n_lists"] == LISTS
    assert json.loads((ms.mnt / "health").read_text())["sq8"] is True
    assert "pack.sq8" not in os.listdir(mp.mnt) and "pack.sq8" in os.listdir(ms.mnt)
    with pytest.raises(FileNotFoundError):
        os.stat(mp.mnt / "pack.sq8")
    for i in range(0, NQ, 4):
        qv = normalize(f16(data["q"][i]))  # what the mount searches: the name's f16 values
        want_ids, want_scores = st.exact(qv, 10)
        name = vname(data["q"][i])
        for m in (mp, ms):
            r = vread(m.mnt, name + f"?k=10&probe={LISTS}")
            assert r["query"] == "vector" and r["k"] == 10 and r["probe"] == LISTS
            assert r["generation"] == 1
            assert [h["id"] for h in r["results"]] == list(want_ids), (i, m.args)
            assert [np.float32(h["score"]) for h in r["results"]] == list(want_scores)
            assert all(h["layer"] == 0 and h["meta"] == {"id": h["id"]} for h in r["results"])
    # Defaults (k 10, the calibrated probe: every list, a small pack), a parameter
    # directory, and the name's own parameters winning.
    name = vname(data["q"][5])
    d = vread(mp.mnt, name)
    cal = json.loads((packs["plain"] / "pack.manifest.json").read_text())["build"]["calibration"]
    assert cal["default_probe"] == LISTS and cal["rule"].startswith("every list")
    assert d["k"] == 10 and d["probe"] == LISTS and len(d["results"]) == 10
    a = vread(mp.mnt, name + "?k=5&probe=4")
    b = vread(mp.mnt, name, sub="k=5&probe=4")
    c = vread(mp.mnt, name, sub="probe=4&k=5")
    for x in (a, b, c):
        x.pop("took_ms")
    assert a == b == c and len(a["results"]) == 5 and a["probe"] == 4
    e = vread(mp.mnt, name + "?k=3", sub="k=5&probe=4")
    assert e["k"] == 3 and e["probe"] == 4 and [h["id"] for h in e["results"]] == \
        [h["id"] for h in a["results"]][:3]
    assert os.path.isdir(mp.mnt / "vquery" / "k=5&probe=4")
    # At a partial probe the mount equals the CLI on the same (float16-rounded) queries.
    qf = tmp_path / "qf16.fvecs"
    write_fvecs(qf, f16(data["q"]))
    _, ids = evaluate(annpack, packs["plain"], qf, tmp_path / "o.ivecs", "--probe", 3, "-k", 7)
    for i in range(0, NQ, 5):
        r = vread(mp.mnt, vname(data["q"][i]) + "?k=7&probe=3")
        assert [h["id"] for h in r["results"]] == list(ids[i]), i
    # float32 names: the exact float32 query (480 characters: longer than NAME_MAX, but
    # FUSE takes them).
    for i in (0, 7, 13):
        r = vread(mp.mnt, vname(data["q"][i], 32) + f"?probe={LISTS}")
        want_ids, want_scores = st.exact(normalize(data["q"][i]), 10)
        assert [h["id"] for h in r["results"]] == list(want_ids)
        assert [np.float32(h["score"]) for h in r["results"]] == list(want_scores)
        # A float16-representable vector sent either way gives the same results.
        qh = f16(data["q"][i])
        a, b = vread(mp.mnt, vname(qh, 32) + "?probe=2"), vread(mp.mnt, vname(qh, 16) + "?probe=2")
        assert a["results"] == b["results"]


def test_mount_vquery_concurrent(packs, data, mount):
    """Queries from many client threads at once (the daemon's worker threads each with
    their own search scratch) give what one client gets, name by name."""
    from concurrent.futures import ThreadPoolExecutor
    names = [vname(data["q"][i]) + f"?k={5 + i % 7}&probe={1 + i % 9}" for i in range(NQ)]
    drop = lambda r: {k: v for k, v in r.items() if k != "took_ms"}
    for opts in ((), ("scan=f16",)):
        one, many = mount(packs["sq8"], *opts), mount(packs["sq8"], *opts)
        want = [drop(vread(one.mnt, n)) for n in names]
        with ThreadPoolExecutor(16) as ex:
            got = list(ex.map(lambda n: drop(vread(many.mnt, n)), names * 3))
        assert got == want * 3


def test_mount_vquery_bad_names(packs, data, mount):
    m = mount(packs["plain"])
    good = vname(data["q"][1])
    inf = np.zeros(DIM, np.float16)
    inf[0], inf[7] = 1, np.inf
    cases = {
        "!!!!": errno.ENOENT,
        "A" * 20: errno.ENOENT,                                 # a length that is neither width
        "A" * 600: errno.ENAMETOOLONG,                          # longer than float32
        "A" * 1100: errno.ENAMETOOLONG,
        vname(data["q"][1][:DIM - 1]): errno.ENOENT,            # dim - 1 values
        b64url(inf.astype("<f2").tobytes()): errno.ENOENT,      # not finite
        vname(np.zeros(DIM)): errno.ENOENT,                     # the zero vector
        good + "?k=0": errno.ENOENT,
        good + "?k=1001": errno.ENOENT,
        good + "?probe=0": errno.ENOENT,
        good + "?bogus=1": errno.ENOENT,
        good + "?k=2&k=3": errno.ENOENT,
        "?k=3": errno.ENOENT,                                   # no vector
        good[:-1] + "+": errno.ENOENT,                          # standard base64, not url
        "\u00e9" * 40: errno.ENOENT,                            # bytes outside the alphabet
        good[:10] + "\udcff" + good[11:]: errno.ENOENT,         # ... one byte 0xff
        "k=0": errno.ENOENT,                                    # bad parameter directory
        "k=3&x=1": errno.ENOENT,
        "k=3&k=4": errno.ENOENT,
    }
    before = json.loads((m.mnt / "stats").read_text())["errors"]
    for name, code in cases.items():
        with pytest.raises(OSError) as e:
            os.stat(m.mnt / "vquery" / name)
        assert e.value.errno == code, name
    after = json.loads((m.mnt / "stats").read_text())["errors"]
    assert after - before >= len(cases) - 3  # parameter directories are refused before counting
    for bad, why in [("k=0", "k must be"), ("k=3&x=1", "unknown or repeated query parameter")]:
        with pytest.raises(OSError) as e:
            (m.mnt / "vquery" / bad / good).read_bytes()
        assert e.value.errno == errno.ENOENT
        refusal = json.loads((m.mnt / "refusal" / "vquery" / bad / good).read_text())
        assert refusal["error"].startswith(why), refusal
    with pytest.raises(OSError) as e:
        (m.mnt / "vquery" / good / "x").read_bytes()
    assert e.value.errno == errno.ENOTDIR
    # Still serving, and the failures were logged as warnings (close() fails on ERROR lines).
    assert json.loads((m.mnt / "health").read_text())["status"] == "ok"
    assert len(vread(m.mnt, good)["results"]) == 10
    assert "refused name" in m.stderr() or "vquery" in m.stderr()


def test_mount_text_query_on_vector_pack(packs, mount):
    m = mount(packs["plain"])
    with pytest.raises(OSError) as e:
        (m.mnt / "query" / "hello").read_bytes()
    assert e.value.errno == errno.ENOENT  # refused by name: not an I/O error
    assert "built from vectors" in m.stderr()
    why = json.loads((m.mnt / "refusal" / "query" / "hello").read_text())["error"]
    assert "cannot embed text" in why and "/vquery/" in why
    assert json.loads((m.mnt / "health").read_text())["status"] == "ok"


def test_mount_scan_options(annpack, packs, data, mount, tmp_path):
    st = packs["stored"]
    qf = tmp_path / "qf16.fvecs"
    write_fvecs(qf, f16(data["q"]))
    _, f16ids = evaluate(annpack, packs["sq8"], qf, tmp_path / "f.ivecs", "--probe", 4, "--scan", "f16")
    mf = mount(packs["sq8"], "scan=f16")
    mr = mount(packs["sq8"], "rerank=10")
    ma = mount(packs["sq8"])
    for i in range(0, NQ, 4):
        name = vname(data["q"][i]) + "?k=10&probe=4"
        assert [h["id"] for h in vread(mf.mnt, name)["results"]] == list(f16ids[i])
        qv = normalize(f16(data["q"][i]))
        exact = dict(zip(st.ids, canonical_scores(qv, st.V)))
        for m in (mr, ma):
            res = vread(m.mnt, name)["results"]
            # sq8 candidates, exact f16 scores, best first.
            assert len(res) == 10
            assert [np.float32(h["score"]) for h in res] == [exact[h["id"]] for h in res]
            assert all((a["score"], -a["id"]) > (b["score"], -b["id"]) for a, b in zip(res, res[1:]))
    for opts, needle in [("scan=sq8", "int8 sidecar"), ("scan=int4", "scan must be"),
                         ("rerank=100001", "rerank")]:
        mnt = tmp_path / ("m_" + opts.replace("=", "_"))
        mnt.mkdir()
        r = subprocess.run([ANNPACKFS, packs["plain"], mnt, "-o", opts], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0 and needle in r.stderr, (opts, r.stderr)
        assert not is_mounted(mnt)


def copy_out(m, out, with_sq8=True):
    out.mkdir()
    names = ["pack.manifest.json", "pack.annpack", "pack.meta.jsonl"] + (["pack.sq8"] if with_sq8 else [])
    # hash version 2: the base's corpus table, which the manifest lists (FORMAT.md)
    names += ["pack.idf"] if "pack.idf" in os.listdir(m.mnt) else []
    for f in names:
        subprocess.run(["cp", m.mnt / f, out / f], check=True)
    return out


def test_mount_copy_out_single_pack(annpack, packs, data, mount, tmp_path):
    m = mount(packs["sq8"])
    man = json.loads((m.mnt / "pack.manifest.json").read_text())
    assert man["files"]["pack.sq8"] == {"size": os.stat(m.mnt / "pack.sq8").st_size,
                                        "sha256": sha256(m.mnt / "pack.sq8")}
    out = copy_out(m, tmp_path / "copy")
    assert annpack.ok("verify", out, "--deep").json()["ok"]
    # One pack: the virtual files are the pack's own bytes.
    for f in ["pack.annpack", "pack.sq8"]:
        assert (out / f).read_bytes() == (packs["sq8"] / f).read_bytes(), f
    for probe in (1, 4, LISTS):
        for scan in ("auto", "f16"):
            a = tmp_path / "a.ivecs"
            b = tmp_path / "b.ivecs"
            evaluate(annpack, packs["sq8"], data["queries"], a, "--probe", probe, "--scan", scan)
            evaluate(annpack, out, data["queries"], b, "--probe", probe, "--scan", scan)
            assert a.read_bytes() == b.read_bytes(), (probe, scan)


def test_mount_copy_out_packset_with_deltas(annpack, sq8_packset, mount, tmp_path):
    ps = sq8_packset
    m = mount(ps)
    h = json.loads((m.mnt / "health").read_text())
    assert h["sq8"] is True and h["embedder"] == "hash" and h["deltas"] == 1 and h["n_vectors"] == LIVE
    assert "pack.sq8" in os.listdir(m.mnt)
    man = json.loads((m.mnt / "pack.manifest.json").read_text())
    assert man["files"]["pack.sq8"]["sha256"] == sha256(m.mnt / "pack.sq8")
    out = copy_out(m, tmp_path / "copy")
    # verify --deep recomputes every code, the delta vectors' included.
    assert annpack.ok("verify", out, "--deep").json()["ok"]
    merged, base = read_sq8(out / "pack.sq8"), read_sq8(ps / "base" / "pack.sq8")
    assert merged["n_vectors"] == LIVE and base["n_vectors"] == 40 and merged["n_lists"] == base["n_lists"]
    assert merged["params_bytes"] == base["params_bytes"]  # the delta uses the base's params
    annp = read_annp(out / "pack.annpack")
    assert [int(c) for c in merged["counts"]] == [len(l[0]) for l in annp["lists"]]
    # Many delta vectors share a list (so a delta code at the wrong position shows).
    delta_ids = set(range(100, 130)) | {7, 40, 41}
    per_list = [sum(int(i) in delta_ids for i in l[0]) for l in annp["lists"]]
    assert sum(per_list) == 33 and max(per_list) >= 10, per_list
    vecs = np.concatenate([l[1] for l in annp["lists"]])
    assert np.array_equal(merged["codes"][:, :merged["dim"]], sq8_encode(vecs, base["vmin"], base["step"]))
    for text in TEXTS:
        for probe in (1, 2, 4):
            q = urlquote(text)
            mnt_res = json.loads((m.mnt / "query" / f"{q}?k=10&probe={probe}").read_text())
            for scan in (["--scan", "f16"], ["--scan", "sq8"], ["--scan", "sq8", "--rerank", 10]):
                a = annpack.ok("search", ps, text, "-k", 10, "--probe", probe, *scan).json()
                b = annpack.ok("search", out, text, "-k", 10, "--probe", probe, *scan).json()
                assert [(x["id"], x["score"], x["meta"]) for x in a["results"]] == \
                       [(x["id"], x["score"], x["meta"]) for x in b["results"]], (text, probe, scan)
                if scan == ["--scan", "sq8"]:
                    assert [(x["id"], x["score"], x["layer"]) for x in mnt_res["results"]] == \
                           [(x["id"], x["score"], x["layer"]) for x in a["results"]]


def test_mount_packset_vquery_and_sq8_reload(annpack, sq8_packset, mount, tmp_path):
    """/vquery/ over base + deltas (hash embedder, dim 256), and pack.sq8 across a reload:
    the new generation's sidecar covers the new delta; an open one keeps the old bytes."""
    import time
    ps = sq8_packset
    m = mount(ps)
    emb = np.array(json.loads(annpack.ok("embed", ps, "kombucha sweet tea").out), np.float32)
    assert emb.shape == (256,)
    r = vread(m.mnt, vname(emb) + "?k=10&probe=4")
    assert r["query"] == "vector" and r["results"][0]["id"] == 40 and r["results"][0]["layer"] == 1
    assert r["results"][0]["meta"]["title"] == "Delta add: kombucha"
    q = tmp_path / "q.fvecs"
    write_fvecs(q, f16(emb)[None, :])
    for scan in ("f16", "sq8"):
        _, ids = evaluate(annpack, ps, q, tmp_path / "o.ivecs", "-k", 10, "--probe", 4, "--scan", scan)
        assert [h["id"] for h in r["results"]] == list(ids[0]), scan
    old = (m.mnt / "pack.sq8").read_bytes()
    ino = os.stat(m.mnt / "pack.sq8").st_ino
    assert os.stat(m.mnt / "pack.sq8").st_ino == ino  # one inode per file and generation
    f = open(m.mnt / "pack.sq8", "rb")
    head = f.read(64)
    add = tmp_path / "more.csv"
    add.write_text("id,title,text\n" + "".join(f"{200 + i},More {i},more text {i} about tea\n"
                                               for i in range(5)))
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", add,
               "--out", ps / "deltas" / "0002.delta")
    m.sighup()
    for _ in range(100):
        if json.loads((m.mnt / "health").read_text())["generation"] == 2:
            break
        time.sleep(0.05)
    h = json.loads((m.mnt / "health").read_text())
    assert h["generation"] == 2 and h["n_vectors"] == LIVE + 5 and h["sq8"] is True
    # The daemon drops the kernel's cached names just after the switch (MOUNT.md: a reload
    # is visible within a second); on a loaded machine health can be read in between.
    deadline = time.time() + 2
    while os.stat(m.mnt / "pack.sq8").st_ino == ino and time.time() < deadline:
        time.sleep(0.05)
    new = (m.mnt / "pack.sq8").read_bytes()
    assert len(new) == len(old) + 5 * 256 and os.stat(m.mnt / "pack.sq8").st_size == len(new)
    assert os.stat(m.mnt / "pack.sq8").st_ino != ino
    assert head + f.read() == old  # the open file is the old generation's, whole
    f.close()
    out = copy_out(m, tmp_path / "copy2")
    assert annpack.ok("verify", out, "--deep").json()["ok"]
    assert read_sq8(out / "pack.sq8")["n_vectors"] == LIVE + 5


def urlquote(text):
    import urllib.parse
    return urllib.parse.quote(text, safe=" ")


# --- many lists: coarse probing ----------------------------------------------------------

def test_coarse_probing_many_lists(annpack, data, mount, tmp_path):
    """With >= 256 lists the search picks lists with int8 centroid codes and an exact
    re-score of a shortlist; the lists must still be the exact top-probe ones."""
    p = tmp_path / "many"
    annpack.ok("build", "--vectors", data["base"], "--output", p, "--lists", 320, "--iters", 4,
               "--sq8")
    st, qn = Stored(p), normalize(data["q"])
    assert st.annp["n_lists"] == 320
    for probe in (1, 8, 11, 12, 40):  # probe <= 11 uses the codes for 320 lists
        for scan in ("f16", "sq8"):
            extra = ["--scan", scan] + (["--rerank", N] if scan == "sq8" else [])
            s, ids = evaluate(annpack, p, data["queries"], tmp_path / "o.ivecs", "--probe", probe,
                              *extra)
            # Lists hold about 9 vectors: short results are padded with -1.
            want = np.full((NQ, 10), -1)
            for i in range(NQ):
                w = st.within(qn[i], probe, 10)[0]
                want[i, :len(w)] = w
            assert (ids == want).all(), (probe, scan)
            assert s["lists_per_query"] == probe
    m = mount(p, "scan=f16")
    for i in range(0, NQ, 8):
        r = vread(m.mnt, vname(data["q"][i]) + "?k=10&probe=8")
        want_ids, want_scores = st.within(normalize(f16(data["q"][i])), 8, 10)
        assert [h["id"] for h in r["results"]] == list(want_ids)
        assert [np.float32(h["score"]) for h in r["results"]] == list(want_scores)
