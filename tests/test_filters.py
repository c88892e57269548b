"""Metadata filters (FORMAT.md "pack.filter", CLI.md search --where, PYTHON.md filters=):
the filtered top k equals brute force — every document the unfiltered search at the same
probe returns, filtered by its metadata — on a pack and on a packset whose delta adds,
updates (moving documents between values) and deletes; and the refusals."""
import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

SECTIONS = ["games", "net", "text"]
LANGS = ["en", "fr"]
WORDS = ("chess engine network socket server client editor text buffer font game board "
         "packet route filter stream window terminal shell parser queue").split()


def write_rows(path, ids, seed):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "section", "lang"])
        for i in ids:
            h = (i * 2654435761 + seed) & 0xffffffff
            words = [WORDS[(h >> s) % len(WORDS)] for s in (0, 5, 10, 15, 20)]
            w.writerow([i, " ".join(words), SECTIONS[(h >> 3) % 3], LANGS[(h >> 7) % 2]])


@pytest.fixture(scope="module")
def data(annpack, tmp_path_factory):
    d = tmp_path_factory.mktemp("filters")
    write_rows(d / "base.csv", range(600), 1)
    write_rows(d / "add.csv", list(range(600, 650)) + list(range(0, 40)), 2)  # 40 updates
    annpack.ok("build", "--input", d / "base.csv", "--text-col", "text", "--id-col", "id",
               "--filter-cols", "section,lang", "--lists", 12, "--sq8", "--output", d / "pack")
    ps = d / "ps"
    annpack.ok("packset", "build-base", "--input", d / "base.csv", "--packset", ps,
               "--filter-cols", "section,lang", "--lists", 12)
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", d / "add.csv",
               "--delete-ids", "50,51,52,53,590", "--out", ps / "deltas" / "0001.delta")
    return d


def search(annpack, where_dir, text, k, probe, *extra):
    return annpack.ok("search", where_dir, text, "-k", k, "--probe", probe, *extra).json()


def brute(annpack, d, text, probe, conds, k, *extra):
    """Every document the unfiltered search at this probe reaches, filtered by its row."""
    every = search(annpack, d, text, 1000, probe, *extra)["results"]
    keep = [h for h in every if all(h["meta"][c] == v for c, v in conds.items())]
    return [(h["id"], h["score"], h["layer"]) for h in keep[:k]]


CASES = [({"section": "games"}, "chess board game"), ({"lang": "fr"}, "network socket"),
         ({"section": "text", "lang": "en"}, "text editor buffer"),
         ({"section": "net", "lang": "fr"}, "packet route")]


@pytest.mark.parametrize("which", ["pack", "ps"])
def test_filtered_equals_brute_force(annpack, data, which):
    d = data / which
    for conds, text in CASES:
        where = [a for c, v in conds.items() for a in ("--where", f"{c}={v}")]
        for probe in (1, 3, 12):
            for k in (1, 10, 40):
                got = search(annpack, d, text, k, probe, "--scan", "f16", *where)["results"]
                want = brute(annpack, d, text, probe, conds, k, "--scan", "f16")
                assert [(h["id"], h["score"], h["layer"]) for h in got] == want, \
                    (which, conds, probe, k)
                assert all(h["meta"][c] == v for h in got for c, v in conds.items())


def test_packset_filters_follow_updates_and_deletes(annpack, data):
    ps = data / "ps"
    rows = {int(r["id"]): r for r in csv.DictReader(open(data / "base.csv"))}
    rows.update({int(r["id"]): r for r in csv.DictReader(open(data / "add.csv"))})
    for i in (50, 51, 52, 53, 590):
        del rows[i]
    for sec in SECTIONS:
        got = search(annpack, ps, "game", 1000, 12, "--where", f"section={sec}")["results"]
        assert sorted(h["id"] for h in got) == sorted(i for i, r in rows.items()
                                                      if r["section"] == sec)
    # the delta carries the base's filter columns
    m = json.loads((ps / "deltas" / "0001.delta" / "pack.manifest.json").read_text())
    assert "pack.filter" in m["files"]


def test_sq8_scan_filters_too(annpack, data):
    got = search(annpack, data / "pack", "chess", 10, 12, "--where", "section=games")["results"]
    assert len(got) == 10 and all(h["meta"]["section"] == "games" for h in got)
    want = brute(annpack, data / "pack", "chess", 12, {"section": "games"}, 10, "--scan", "f16")
    assert [h["id"] for h in got] == [w[0] for w in want]  # rerank covers these 10


def test_rebase_keeps_filters(annpack, data, tmp_path):
    out = tmp_path / "rb"
    annpack.ok("packset", "rebase", "--packset", data / "ps", "--out", out)
    for conds, text in CASES:
        where = [a for c, v in conds.items() for a in ("--where", f"{c}={v}")]
        a = search(annpack, data / "ps", text, 20, 1000, *where)["results"]
        b = search(annpack, out, text, 20, 1000, *where)["results"]
        assert [(h["id"], h["score"]) for h in a] == [(h["id"], h["score"]) for h in b]


def test_refusals(annpack, data, tmp_path):
    p = data / "pack"
    for where, msg in [("sect=games", 'unknown filter column "sect" (filter columns: section, lang)'),
                       ("section=sports", "no document has section=sports"),
                       ("section", "--where expects COL=VALUE")]:
        r = annpack("search", p, "chess", "--where", where)
        assert r.rc in (1, 2) and msg in r.err, r
    r = annpack("search", p, "chess", "--where", "section=games", "--where", "section=net")
    assert r.rc == 1 and 'filter column "section" given twice' in r.err
    # a pack built without filter columns
    annpack.ok("build", "--input", data / "base.csv", "--text-col", "text", "--id-col", "id",
               "--output", tmp_path / "plain")
    r = annpack("search", tmp_path / "plain", "chess", "--where", "section=games")
    assert r.rc == 1 and "has no filter columns" in r.err
    for cols, msg in [("nope", 'filter column "nope": not a text column'),
                      ("section,section", 'column "section" twice'), ("id", '"id" is the document id')]:
        r = annpack("build", "--input", data / "base.csv", "--text-col", "text", "--id-col", "id",
                    "--filter-cols", cols, "--output", tmp_path / "bad")
        assert r.rc == 1 and msg in r.err and not (tmp_path / "bad").exists()
    # a damaged pack.filter is refused at open (its hash, then its structure)
    bad = tmp_path / "damaged"
    subprocess.run(["cp", "-r", p, bad], check=True)
    raw = bytearray((bad / "pack.filter").read_bytes())
    raw[-1] ^= 1
    (bad / "pack.filter").write_bytes(bytes(raw))
    assert annpack("verify", bad).rc == 1


def test_python_filters(data):
    code = f"""
import json
from annpack.api import open_pack
with open_pack({str(data / "ps")!r}) as pk:
    r = pk.search("chess board", top_k=5, probe=12, filters={{"section": "games", "lang": "en"}})
    print(json.dumps([(h["id"], h["meta"]["section"], h["meta"]["lang"]) for h in r]))
    try:
        pk.search("chess", filters={{"colour": "red"}})
    except Exception as e:
        print(json.dumps([type(e).__name__, str(e)]))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"),
               ANNPACK_LIB=str(BUILD / "core" / "libannpack.so"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.splitlines()
    hits = json.loads(out[0])
    assert len(hits) == 5 and all(s == "games" and l == "en" for _, s, l in hits)
    name, msg = json.loads(out[1])
    assert "unknown filter column" in msg and "colour" in msg
