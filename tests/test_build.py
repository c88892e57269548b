"""annpack build: the files match the spec (checked with an independent numpy reader)."""
import csv
import hashlib
import json

import numpy as np

from annpack_reader import read_annp, read_idx, read_meta_stream, rows
from conftest import EXAMPLES


def sha256(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_files_match_spec(tiny_pack):
    a = read_annp(tiny_pack / "pack.annpack")
    src = list(csv.DictReader(open(EXAMPLES / "tiny_docs.csv", newline="", encoding="utf-8")))
    assert a["n_vectors"] == len(src) == 40
    assert a["dim"] == 256 and a["n_lists"] == 4
    ids = np.concatenate([l[0] for l in a["lists"]])
    assert sorted(ids.tolist()) == list(range(40))
    # Vectors unit length (fp16 tolerance), centroids unit length (spherical k-means).
    for _, v in a["lists"]:
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=5e-3)
    assert np.allclose(np.linalg.norm(a["centroids"], axis=1), 1.0, atol=1e-5)
    # Every vector sits in the list of its best centroid.
    for li, (_, v) in enumerate(a["lists"]):
        if len(v):
            assert (np.argmax(v @ a["centroids"].T, axis=1) == li).mean() > 0.9


def test_meta_rows_and_index(tiny_pack):
    src = list(csv.DictReader(open(EXAMPLES / "tiny_docs.csv", newline="", encoding="utf-8")))
    got = rows(tiny_pack)
    assert len(got) == 40
    for r, s in zip(got, src):
        assert r["id"] == int(s["id"]) and isinstance(r["id"], int)
        assert r["title"] == s["title"] and r["text"] == s["text"]
    stream = read_meta_stream(tiny_pack)
    # zstd -d of the whole file gives the same plain JSONL.
    import subprocess
    plain = subprocess.run(["zstd", "-d", "-c", "-q", str(tiny_pack / "pack.meta.jsonl.zst")],
                           capture_output=True, check=True).stdout
    assert plain == stream
    idx = read_idx(tiny_pack / "pack.meta.idx")
    assert [e[0] for e in idx] == sorted(e[0] for e in idx)
    for id_, off, ln in idx:
        line = stream[off:off + ln]
        assert json.loads(line)["id"] == id_ and stream[off + ln:off + ln + 1] == b"\n"


def test_manifest(tiny_pack):
    m = json.loads((tiny_pack / "pack.manifest.json").read_text())
    assert m["schema_version"] == 2 and m["dim"] == 256 and m["n_lists"] == 4
    assert m["n_vectors"] == 40
    assert m["shards"] == [{"name": "pack", "annpack": "pack.annpack",
                            "meta": "pack.meta.jsonl.zst", "n_vectors": 40}]
    assert set(m["files"]) == {"pack.annpack", "pack.digests", "pack.idf", "pack.meta.jsonl.zst",
                            "pack.meta.idx"}
    for name, f in m["files"].items():
        assert f["sha256"] == sha256(tiny_pack / name)
        assert f["size"] == (tiny_pack / name).stat().st_size
    assert m["embedder"]["name"] == "hash" and m["embedder"]["dim"] == 256
    assert m["embedder"]["seed"] == 1
    b = m["build"]
    assert b["lists_requested"] == 4 and b["lists_effective"] == 4 and b["rows"] == 40
    assert b["input_sha256"] == sha256(EXAMPLES / "tiny_docs.csv")
    assert b["device"] == "cpu" and b["offline"] is True
    assert "created" not in b  # no timestamps without SOURCE_DATE_EPOCH


def test_plain_meta(annpack, tmp_path):
    out = tmp_path / "p"
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
               "--id-col", "id", "--output", out, "--meta-compression", "none", "--lists", 2)
    assert (out / "pack.meta.jsonl").exists() and not (out / "pack.meta.jsonl.zst").exists()
    assert rows(out) == [json.loads(l) for l in (out / "pack.meta.jsonl").read_text().splitlines()]
    annpack.ok("verify", out, "--deep")


def test_source_date_epoch(annpack, tmp_path):
    out = tmp_path / "p"
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
               "--id-col", "id", "--output", out, env={"SOURCE_DATE_EPOCH": "1700000000"})
    m = json.loads((out / "pack.manifest.json").read_text())
    assert m["build"]["created"] == "2023-11-14T22:13:20Z"


def test_max_rows_says_what_was_left_out(annpack, tmp_path):
    out = tmp_path / "p"
    r = annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                   "--id-col", "id", "--output", out, "--max-rows", 10)
    assert "left out 30 of 40 rows" in r.err
    assert read_annp(out / "pack.annpack")["n_vectors"] == 10
    m = json.loads((out / "pack.manifest.json").read_text())
    assert m["build"]["rows_skipped"] == 30


def test_lists_clamped_and_said(annpack, tmp_path):
    out = tmp_path / "p"
    r = annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                   "--id-col", "id", "--output", out, "--lists", 1000)
    assert "clamped to 40" in r.err
    assert read_annp(out / "pack.annpack")["n_lists"] == 40


def test_rebuild_replaces_earlier_output(annpack, tmp_path):
    out = tmp_path / "p"
    for lists in (2, 3):
        annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                   "--id-col", "id", "--output", out, "--lists", lists)
    assert read_annp(out / "pack.annpack")["n_lists"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temp dirs left behind


def test_inspect(annpack, tiny_pack):
    j = annpack.ok("inspect", tiny_pack).json()
    assert j["dim"] == 256 and j["n_lists"] == 4 and j["n_vectors"] == 40
    assert j["list_size"]["min"] <= j["list_size"]["median"] <= j["list_size"]["max"]
    assert j["embedder"]["name"] == "hash" and j["build"]["rows"] == 40
    assert "pack.annpack" in j["files"]


def test_verify_deep(annpack, tiny_pack):
    j = annpack.ok("verify", tiny_pack, "--deep").json()
    assert j["ok"] is True and j["deep"] is True
    assert {c["file"] for c in j["checks"] if c["check"] == "sha256"} == {
        "pack.annpack", "pack.digests", "pack.idf", "pack.meta.jsonl.zst", "pack.meta.idx"}


def test_version_diagnose_help(annpack):
    assert annpack.ok("--version").out.startswith("annpack ")
    d = annpack.ok("diagnose").json()
    assert d["search_kernel"] in ("avx512", "avx2", "portable")
    assert d["caps"]["ANNPACK_MAX_DIM"] == 4096
    assert d["sha256"]["library"].startswith("OpenSSL 3")
    assert d["sha256"]["gb_per_s"] > 0.05
    for cmd in ("build", "search", "embed", "inspect", "verify", "diagnose"):
        r = annpack.ok(cmd, "--help")
        assert r.out.startswith("usage: annpack " + cmd)
    assert annpack("frobnicate").rc == 2
    assert annpack("build").rc == 2


def test_row_numbers_without_id_col(annpack, tmp_path):
    src = tmp_path / "n.csv"
    src.write_text("title,body\r\na,first doc\r\nb,\"second, quoted\"\r\nc,third\r\n")
    out = tmp_path / "p"
    annpack.ok("build", "--input", src, "--text-col", "body", "--output", out)
    assert rows(out) == [{"id": 0, "title": "a", "body": "first doc"},
                         {"id": 1, "title": "b", "body": "second, quoted"},
                         {"id": 2, "title": "c", "body": "third"}]
