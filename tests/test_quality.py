"""Search quality (docs/SEARCH_QUALITY.md): the hash embedder version 2 against version 1
on the judged manual-page set of tests/data/manpages/, annpack eval's figures and its
refusals, and the corpus table a packset's layers share."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from annpack_reader import read_annp
from conftest import BUILD, ROOT
from test_python import sanitizer_env

DATA = ROOT / "tests" / "data" / "manpages"
J = DATA / "judgments.jsonl"


@pytest.fixture(scope="module")
def packs(annpack, tmp_path_factory):
    """The corpus built with hash v1 and v2 (the default)."""
    d = tmp_path_factory.mktemp("quality")
    for v in (1, 2):
        annpack.ok("build", "--input", DATA / "corpus.csv", "--text-col", "text", "--id-col", "id",
                    "--embedder-version", v, "--output", d / f"v{v}")
    return d


def evaluate(annpack, d, *args):
    return annpack.ok("eval", d, "--judgments", J, *args).json()


def test_judged_set_is_what_the_readme_says():
    rows = [json.loads(l) for l in J.read_text().splitlines()]
    assert len(rows) >= 30 and all(r["relevant"] for r in rows)
    lines = (DATA / "corpus.csv").read_text().splitlines()
    assert lines[0] == "id,page,section,names,text" and len(lines) == 1114


def test_v2_is_clearly_better_than_v1(annpack, packs):
    exact = {v: evaluate(annpack, packs / f"v{v}", "--probe", 1000) for v in (1, 2)}
    assert exact[1]["overlap_at_k"] == exact[2]["overlap_at_k"] == 1.0
    assert exact[1]["queries"] == exact[2]["queries"] >= 30
    # measured: P@5 0.400 -> 0.455, nDCG@10 0.731 -> 0.798 (SEARCH_QUALITY.md)
    assert exact[2]["ndcg_at_10"] > exact[1]["ndcg_at_10"] + 0.04
    assert exact[2]["precision_at_5"] > exact[1]["precision_at_5"] + 0.03
    assert exact[2]["recall_at_k"] > exact[1]["recall_at_k"]
    man = json.loads((packs / "v2" / "pack.manifest.json").read_text())
    assert man["embedder"]["version"] == 2 and "pack.idf" in man["files"]
    assert man["embedder"]["idf"]["sha256"] == man["files"]["pack.idf"]["sha256"]
    v1 = json.loads((packs / "v1" / "pack.manifest.json").read_text())
    assert v1["embedder"]["version"] == 1 and "pack.idf" not in v1["files"]


def test_letter_digit_runs_match(annpack, packs):
    """"iso8859" finds the iso_8859-N pages only through its parts iso and 8859."""
    def pages(v, text):
        res = annpack.ok("search", packs / f"v{v}", text, "-k", 5, "--probe", 1000).json()
        return [h["meta"]["page"] for h in res["results"]]
    assert all(p.startswith("iso_8859-") for p in pages(2, "iso8859 character sets"))
    assert not all(p.startswith("iso_8859-") for p in pages(1, "iso8859 character sets"))


def test_eval_figures_by_hand(annpack, packs, tmp_path):
    """One query, its relevant ids placed by hand: the figures follow the definitions."""
    res = annpack.ok("search", packs / "v2", "square root", "-k", 10, "--probe", 1000).json()
    ids = [h["id"] for h in res["results"]]
    j = tmp_path / "j.jsonl"
    # relevant: the 2nd result and one id that is not in the top 10
    absent = next(i for i in range(2000) if i not in ids)
    j.write_text(json.dumps({"query": "square root", "relevant": [ids[1], absent]}) + "\n")
    r = annpack.ok("eval", packs / "v2", "--judgments", j, "--probe", 1000, "--per-query").json()
    assert r["queries"] == 1 and r["k"] == 10 and r["probe"] == r["n_lists"]
    assert r["recall_at_k"] == 0.5 and r["precision_at_5"] == pytest.approx(0.2)
    assert r["mrr"] == 0.5 and r["overlap_at_k"] == 1.0
    # DCG = 1/log2(3); ideal = 1 + 1/log2(3)
    assert r["ndcg_at_10"] == pytest.approx((1 / 1.5849625) / (1 + 1 / 1.5849625), rel=1e-6)
    assert r["per_query"][0]["query"] == "square root"
    low = annpack.ok("eval", packs / "v2", "--judgments", j, "--probe", 1).json()
    assert low["probe"] == 1 and 0 < low["overlap_at_k"] <= 1


@pytest.mark.parametrize("line,msg", [
    ('{"query": "x"}', ":1: not {"),
    ('{"query": "x", "relevant": []}', "at least one id"),
    ('{"query": "x", "relevant": [1.5]}', "integers in [0, 2^53)"),
    ('not json', ":1: not {"),
])
def test_eval_refuses_bad_judgments(annpack, packs, tmp_path, line, msg):
    j = tmp_path / "j.jsonl"
    j.write_text(line + "\n")
    r = annpack("eval", packs / "v2", "--judgments", j)
    assert r.rc == 1 and msg in r.err


def test_eval_usage(annpack, packs, tmp_path):
    assert annpack("eval", packs / "v2").rc == 2
    assert annpack("eval", "--judgments", J).rc == 2
    r = annpack("eval", packs / "v2", "--judgments", tmp_path / "none.jsonl")
    assert r.rc == 1 and "none.jsonl" in r.err


def test_delta_and_rebase_keep_the_base_table(annpack, tmp_path):
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", ROOT / "examples" / "tiny_docs.csv",
               "--packset", ps, "--lists", 4)
    annpack.ok("packset", "build-delta", "--packset", ps, "--add",
               ROOT / "examples" / "delta_add.csv", "--delete-ids", "1", "--out",
               ps / "deltas" / "0001.delta")
    base = (ps / "base" / "pack.idf").read_bytes()
    assert (ps / "deltas" / "0001.delta" / "pack.idf").read_bytes() == base
    annpack.ok("packset", "rebase", "--packset", ps, "--out", tmp_path / "rb")
    assert (tmp_path / "rb" / "base" / "pack.idf").read_bytes() == base
    # a table that does not match the block's hash is refused at open
    bad = tmp_path / "bad"
    annpack.ok("build", "--input", ROOT / "examples" / "tiny_docs.csv", "--text-col", "text",
               "--id-col", "id", "--output", bad)
    raw = bytearray((bad / "pack.idf").read_bytes())
    raw[40] ^= 1
    (bad / "pack.idf").write_bytes(bytes(raw))
    r = annpack("search", bad, "tea")
    assert "pack.idf" in r.err and "differs from the embedder block" in r.err


# --- the calibrated default probe (FORMAT.md "build.calibration") -------------------------

def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    n, d = x.shape
    out = np.empty((n, d + 1), dtype="<f4")
    out[:, 0] = np.array([d], dtype="<i4").view("<f4")[0]
    out[:, 1:] = x
    path.write_bytes(out.tobytes())


@pytest.fixture(scope="module")
def big(annpack, tmp_path_factory):
    """20000 clustered vectors of dim 256 (n x dim above 2^22: the target rule applies)."""
    d = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((300, 256)).astype(np.float32)
    x = centres[rng.integers(0, 300, 20000)] + 2.5 * rng.standard_normal((20000, 256))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    write_fvecs(d / "x.fvecs", x)
    annpack.ok("build", "--vectors", d / "x.fvecs", "--output", d / "pack", "--lists", 64)
    return d, x


def recall_curve(pack_dir, x, k=10, m=256):
    """The calibration recomputed independently: numpy brute force and the ANNP lists."""
    a = read_annp(pack_dir / "pack.annpack")
    list_of = np.empty(len(x), dtype=np.int64)
    for li, (ids, _) in enumerate(a["lists"]):
        list_of[ids] = li
    return curve_of(x, list_of, a["centroids"], k, m)


def curve_of(x, list_of, centroids, k=10, m=256):
    """recall(p) of the exact top k of m spread self-queries (FORMAT.md), p = 1..lists."""
    n, lists = len(x), len(centroids)
    found = np.zeros(lists)
    for i in range(m):
        r = i * n // m
        s = x @ x[r]
        s[r] = -np.inf  # held out
        nb = np.lexsort((np.arange(n), -s))[:k]
        cs = centroids @ x[r]
        order = np.lexsort((np.arange(lists), -cs))
        rank = np.empty(lists, dtype=np.int64)
        rank[order] = np.arange(lists)
        for t in nb:
            found[rank[list_of[t]]] += 1
    return np.cumsum(found) / (m * k)


def test_calibration_matches_brute_force(annpack, big):
    d, x = big
    cal = json.loads((d / "pack" / "pack.manifest.json").read_text())["build"]["calibration"]
    assert cal["target_recall"] == 0.95 and cal["queries"] == 256 and cal["k"] == 10
    assert cal["rule"] == "target" and cal["default_probe"] == cal["target_probe"]
    ref = recall_curve(d / "pack", x)
    for pt in cal["curve"]:
        assert pt["recall"] == pytest.approx(ref[pt["probe"] - 1], abs=0.005), pt
    p = cal["default_probe"]
    assert ref[p - 1] >= 0.95 - 0.005 and (p == 1 or ref[p - 2] < 0.95 + 0.005)
    assert 1 < p < 64 and [pt["probe"] for pt in cal["curve"]][-1] == 64
    # inspect shows it (the build block)
    assert annpack.ok("inspect", d / "pack").json()["build"]["calibration"] == cal


def test_default_probe_is_used(annpack, big, tmp_path):
    d, x = big
    p = json.loads((d / "pack" / "pack.manifest.json").read_text())["build"]["calibration"][
        "default_probe"]
    q = tmp_path / "q.fvecs"
    write_fvecs(q, x[:5])
    r = annpack.ok("search", d / "pack", "--queries", q).json()
    assert r["probe"] == p
    r = annpack.ok("search", d / "pack", "--queries", q, "--probe", 3).json()
    assert r["probe"] == 3
    # Python: probe=None is the calibrated probe
    code = f"""
import json, numpy as np
from annpack.api import open_pack
x = np.fromfile({str(q)!r}, dtype="<f4").reshape(5, 257)[:, 1:]
with open_pack({str(d / "pack")!r}) as pk:
    ids = lambda **kw: [h["id"] for h in pk.search_vec(x[0], top_k=10, **kw)]
    print(json.dumps([ids(), ids(probe={p}), ids(probe=1)]))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"),
               ANNPACK_LIB=str(BUILD / "core" / "libannpack.so"), **sanitizer_env())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout
    default, calibrated, one = json.loads(out)
    assert default == calibrated and calibrated != one


def test_small_packs_default_to_every_list(annpack, packs):
    cal = json.loads((packs / "v2" / "pack.manifest.json").read_text())["build"]["calibration"]
    assert cal["default_probe"] == 33 and cal["rule"].startswith("every list")
    assert cal["target_probe"] < 33
    r = annpack.ok("eval", packs / "v2", "--judgments", J).json()
    assert r["probe"] == 33 and r["overlap_at_k"] == 1.0


def test_no_calibration_and_rebase(annpack, tmp_path):
    csv = DATA / "corpus.csv"
    annpack.ok("build", "--input", csv, "--text-col", "text", "--id-col", "id",
               "--target-recall", 0, "--output", tmp_path / "none")
    m = json.loads((tmp_path / "none" / "pack.manifest.json").read_text())
    assert "calibration" not in m["build"]
    assert annpack.ok("search", tmp_path / "none", "printf").json()["probe"] == 8
    for bad in ("1.5", "-0.1", "x"):
        r = annpack("build", "--input", csv, "--text-col", "text", "--id-col", "id",
                    "--target-recall", bad, "--output", tmp_path / "bad")
        assert r.rc == 2 and "--target-recall" in r.err
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", csv, "--packset", ps, "--target-recall", 0.9,
               "--lists", 20)
    annpack.ok("packset", "rebase", "--packset", ps, "--out", tmp_path / "rb", "--lists", 30)
    cal = json.loads((tmp_path / "rb" / "base" / "pack.manifest.json").read_text())["build"][
        "calibration"]
    assert cal["target_recall"] == 0.9 and cal["curve"][-1]["probe"] == 30


# --- canary: the gate before promoting (CLI.md "canary") ----------------------------------

def test_canary_passes_identical_and_fails_a_different_ranking(annpack, packs):
    r = annpack.ok("canary", "--base", packs / "v2", "--candidate", packs / "v2", "--queries", J)
    j = r.json()
    assert j["pass"] is True and j["queries"] >= 30 and j["top_k"] == 5
    assert j["min_overlap"] == j["avg_overlap"] == 1.0 and j["below_min"] == 0
    # v1 ranks differently from v2: below both default thresholds
    r = annpack("canary", "--base", packs / "v1", "--candidate", packs / "v2", "--queries", J)
    j = r.json()
    assert r.rc == 1 and j["pass"] is False and "FAIL: min overlap@5" in r.err
    assert j["min_overlap"] < 0.7 and j["avg_overlap"] < 0.8 and j["below_min"] > 0
    per = {p["query"]: p["overlap"] for p in j["per_query"]}
    assert len(per) == j["queries"] and min(per.values()) == j["min_overlap"]
    assert sum(per.values()) / len(per) == pytest.approx(j["avg_overlap"])
    # the thresholds decide
    r = annpack("canary", "--base", packs / "v1", "--candidate", packs / "v2", "--queries", J,
                "--min-overlap", 0, "--avg-overlap", 0, "--top-k", 10)
    assert r.rc == 0 and r.json()["pass"] is True and r.json()["top_k"] == 10


def test_canary_refusals(annpack, packs, tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text('{"query": "x"}\n{"text": "y"}\n')
    r = annpack("canary", "--base", packs / "v2", "--candidate", packs / "v2", "--queries", q)
    assert r.rc == 1 and "q.jsonl:2: not {\"query\": TEXT}" in r.err and r.out == ""
    for args in (["--base", packs / "v2", "--queries", J],
                 ["--base", packs / "v2", "--candidate", packs / "v2", "--queries", J,
                  "--min-overlap", "1.5"]):
        assert annpack("canary", *args).rc == 2
    r = annpack("canary", "--base", packs / "v2", "--candidate", tmp_path / "none", "--queries", J)
    assert r.rc == 1 and "none" in r.err


def test_delta_recalibrates_over_base_and_delta(annpack, tmp_path, mount):
    """dim 4096, so 1113 x 4096 is above the small-pack rule and the target decides; the
    delta adds 150 pages again under new ids."""
    rows = (DATA / "corpus.csv").read_text().splitlines(keepends=True)
    (tmp_path / "base.csv").write_text("".join(rows))
    again = [str(5000 + int(r.split(",", 1)[0])) + "," + r.split(",", 1)[1] for r in rows[1:151]]
    (tmp_path / "add.csv").write_text(rows[0] + "".join(again))
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", tmp_path / "base.csv", "--packset", ps,
               "--dim", 4096)
    base_cal = json.loads((ps / "base" / "pack.manifest.json").read_text())["build"]["calibration"]
    assert base_cal["rule"] == "target"
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", tmp_path / "add.csv",
               "--out", ps / "deltas" / "0001.delta")
    d = ps / "deltas" / "0001.delta"
    cal = json.loads((d / "delta.manifest.json").read_text())["calibration"]
    assert cal["target_recall"] == base_cal["target_recall"] and cal["queries"] == 256
    # independently: every vector of base and delta, the delta's under its nearest base list
    base, delta = read_annp(ps / "base" / "pack.annpack"), read_annp(d / "pack.annpack")
    vecs = [v for _, v in base["lists"]] + [v for _, v in delta["lists"]]
    x = np.concatenate(vecs)
    lists = np.concatenate([np.full(len(v), i) for i, (_, v) in enumerate(base["lists"])])
    dv = np.concatenate([v for _, v in delta["lists"]])
    lists = np.concatenate([lists, np.argmax(dv @ base["centroids"].T, axis=1)])
    ref = curve_of(x, lists, base["centroids"])
    for pt in cal["curve"]:
        assert pt["recall"] == pytest.approx(ref[pt["probe"] - 1], abs=0.005), pt
    assert cal["curve"][-1]["probe"] == base["n_lists"]
    # the view searches with the newest delta's default probe
    want = annpack.ok("search", ps, "printf").json()
    assert want["probe"] == cal["default_probe"]
    # ... and so does a copy of the mount's virtual pack (its manifest carries that
    # calibration), with the same answer; the mount's own default is the same probe.
    m = mount(ps)
    got = json.loads((m.mnt / "query" / "printf").read_text())
    assert got["probe"] == cal["default_probe"]
    out = tmp_path / "copied"
    out.mkdir()
    vm = json.loads((m.mnt / "pack.manifest.json").read_text())
    subprocess.run(["cp", *[str(m.mnt / f) for f in ["pack.manifest.json", *vm["files"]]],
                    str(out)], check=True)
    assert vm["build"] == {"calibration": cal}
    copied = annpack.ok("search", out, "printf").json()
    assert copied["probe"] == cal["default_probe"] != 8
    assert [(h["id"], h["score"]) for h in copied["results"]] == \
        [(h["id"], h["score"]) for h in want["results"]]
    annpack.ok("verify", out)
    # with an uncalibrated base, the delta has none either
    ps0 = tmp_path / "ps0"
    annpack.ok("packset", "build-base", "--input", tmp_path / "base.csv", "--packset", ps0,
               "--target-recall", 0)
    annpack.ok("packset", "build-delta", "--packset", ps0, "--add", tmp_path / "add.csv",
               "--out", ps0 / "deltas" / "0001.delta")
    dm = json.loads((ps0 / "deltas" / "0001.delta" / "delta.manifest.json").read_text())
    assert "calibration" not in dm
    assert annpack.ok("search", ps0, "printf").json()["probe"] == 8


# --- hash v2 as FORMAT.md specifies it, reimplemented (libsodium's SipHash via ctypes) -----

def reference_embed_v2(text, idf_bytes, dim=256, seed=0):
    import ctypes
    import math
    import struct
    sodium = ctypes.CDLL("libsodium.so.23")
    assert sodium.sodium_init() >= 0
    key = struct.pack("<Q", seed) + b"annphash"

    def h(feature):
        out = ctypes.create_string_buffer(8)
        sodium.crypto_shorthash(out, feature, ctypes.c_ulonglong(len(feature)), key)
        return struct.unpack("<Q", out.raw)[0]

    magic, version, nb, n_docs, total = struct.unpack_from("<8sIIQQ", idf_bytes, 0)
    assert magic == b"ANNPIDF1" and version == 1
    df = struct.unpack_from(f"<{nb}I", idf_bytes, 32)
    low = bytes(c + 32 if 65 <= c <= 90 else c for c in text.encode("utf-8"))
    tokens, cur = [], bytearray()
    for c in low + b" ":
        if 97 <= c <= 122 or 48 <= c <= 57 or c >= 0x80:
            cur.append(c)
        elif cur:
            tokens.append(bytes(cur))
            cur = bytearray()
    feats = []  # (h, is_gram)
    for t in tokens:
        feats.append((h(b"w\x1f" + t), 0))
        digit = [48 <= c <= 57 for c in t]
        if any(digit) and not all(digit):
            a = 0
            while a < len(t):
                z = a + 1
                while z < len(t) and digit[z] == digit[a]:
                    z += 1
                feats.append((h(b"w\x1f" + t[a:z]), 0))
                a = z
        p = b"<" + t + b">"
        feats += [(h(b"g\x1f" + p[k:k + 3]), 1) for k in range(len(p) - 2)]
    dl = sum(1 for _, g in feats if not g)
    avgdl = total / n_docs if n_docs else 1.0
    kd = 1.2 * (1 - 0.75 + 0.75 * dl / avgdl)
    tf = {}
    for f in feats:
        tf[f[0]] = (tf.get(f[0], (0, f[1]))[0] + 1, f[1])
    v = [0.0] * dim
    for hv in sorted(tf):
        n, gram = tf[hv]
        d = df[(hv >> 32) % nb]
        idf = math.log(1 + (n_docs - d + 0.5) / (d + 0.5))
        w = (0.5 if gram else 1.0) * math.sqrt(idf) * n * 2.2 / (n + kd)
        v[hv % dim] += -w if hv >> 63 else w
    if not any(v):
        hv = h(b"e\x1f")
        v[hv % dim] = -1.0 if hv >> 63 else 1.0
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


@pytest.mark.parametrize("text", ["ssh2 client for x86_64", "PDF Viewer", "iso8859-15 café",
                                  "", "the the the process"])
def test_v2_matches_its_specification(annpack, packs, text):
    idf = (packs / "v2" / "pack.idf").read_bytes()
    got = annpack.ok("embed", packs / "v2", text).json() if text else None
    if got is None:  # an empty argument is refused by the CLI: use the whitespace form
        got = annpack.ok("embed", packs / "v2", " ").json()
        text = " "
    want = reference_embed_v2(text, idf)
    assert got == pytest.approx(want, abs=1e-7)
