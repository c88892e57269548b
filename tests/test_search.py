"""annpack search / embed: semantics against brute force, self-retrieval, determinism."""
import csv
import hashlib
import json

import numpy as np
import pytest

from annpack_reader import read_annp
from conftest import EXAMPLES

QUERIES = ["how do I water my houseplants", "ed25519 public key signature", "espresso coffee",
           "marathon", "zzz unmatched qqq", "café 東京"]  # "" is refused (test_mount_safety)


def brute_force(pack, q, k):
    a = read_annp(pack / "pack.annpack")
    ids = np.concatenate([l[0] for l in a["lists"]])
    vecs = np.concatenate([l[1] for l in a["lists"]])
    scores = vecs @ q
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


@pytest.mark.parametrize("query", QUERIES)
def test_exact_probe_equals_brute_force(annpack, tiny_pack, query):
    q = np.array(annpack.ok("embed", tiny_pack, query).json(), dtype=np.float32)
    assert abs(np.linalg.norm(q) - 1) < 1e-5
    res = annpack.ok("search", tiny_pack, query, "-k", 10, "--probe", 4).json()
    assert res["query"] == query and res["k"] == 10 and res["probe"] == 4
    got = [(r["id"], r["score"]) for r in res["results"]]
    want = brute_force(tiny_pack, q, 10)
    assert len(got) == len(want) == 10
    for (gi, gs), (wi, ws) in zip(got, want):
        assert abs(gs - ws) < 1e-5
        # Ids agree except where scores tie within float rounding.
        if gi != wi:
            assert abs(gs - ws) < 1e-5 and any(i == gi for i, s in want if abs(s - gs) < 1e-5)
    scores = [s for _, s in got]
    assert scores == sorted(scores, reverse=True)


def test_results_carry_metadata(annpack, tiny_pack):
    res = annpack.ok("search", tiny_pack, "sourdough bread starter", "-k", 3).json()
    top = res["results"][0]
    assert top["id"] == 0 and top["meta"]["title"] == "Sourdough basics"
    assert top["meta"]["id"] == 0 and top["layer"] == 0
    assert set(res) >= {"query", "k", "probe", "took_ms", "results"}


def test_own_text_comes_first(annpack, tiny_pack):
    src = list(csv.DictReader(open(EXAMPLES / "tiny_docs.csv", newline="", encoding="utf-8")))
    for row in src:
        res = annpack.ok("search", tiny_pack, row["text"], "-k", 1, "--probe", 4).json()
        assert res["results"][0]["id"] == int(row["id"]), row["title"]
        assert res["results"][0]["score"] > 0.999


def test_lexical_overlap_scores_higher(annpack, tiny_pack):
    q = np.array(annpack.ok("embed", tiny_pack, "bicycle chain").json())
    res = annpack.ok("search", tiny_pack, "bicycle chain", "-k", 40, "--probe", 99).json()
    assert res["results"][0]["id"] == 7
    assert res["results"][0]["score"] > res["results"][5]["score"] + 0.2
    assert len(q) == 256


def test_probe_and_k_bounds(annpack, tiny_pack):
    assert annpack("search", tiny_pack, "x", "-k", 0).rc == 2
    assert annpack("search", tiny_pack, "x", "-k", 1001).rc == 2
    assert annpack("search", tiny_pack, "x", "--probe", 0).rc == 2
    r = annpack.ok("search", tiny_pack, "x", "--probe", 1000).json()
    assert r["probe"] == 4  # clamped to n_lists


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_determinism_runs_and_threads(annpack, tmp_path):
    outs = []
    for i, threads in enumerate(["1", "2", "2"]):
        out = tmp_path / f"p{i}"
        annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                   "--id-col", "id", "--output", out, "--lists", 5, "--seed", 7,
                   env={"ANNPACK_THREADS": threads})
        outs.append(digest(out))
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.slow
def test_determinism_larger(annpack, tmp_path):
    """Enough rows for parallel embedding batches and k-means sampling."""
    src = tmp_path / "big.csv"
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(3000)]
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(20000):
            w.writerow([i * 3, " ".join(rng.choice(words, 12))])
    digests = []
    for i, threads in enumerate(["1", "2"]):
        out = tmp_path / f"p{i}"
        annpack.ok("build", "--input", src, "--text-col", "text", "--id-col", "id",
                   "--output", out, "--lists", 64, "--seed", 3, env={"ANNPACK_THREADS": threads})
        digests.append(digest(out))
    assert digests[0] == digests[1]
    annpack.ok("verify", tmp_path / "p0", "--deep")
