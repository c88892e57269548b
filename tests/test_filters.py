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
from test_python import sanitizer_env

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
               ANNPACK_LIB=str(BUILD / "core" / "libannpack.so"), **sanitizer_env())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.splitlines()
    hits = json.loads(out[0])
    assert len(hits) == 5 and all(s == "games" and l == "en" for _, s, l in hits)
    name, msg = json.loads(out[1])
    assert "unknown filter column" in msg and "colour" in msg


# ---- the mount: query/<text>?col=value&... and vquery/<vector>?col=value&... ----

def mount_query(m, text, conds, **params):
    import urllib.parse
    parts = [f"{urllib.parse.quote(c, safe='')}={urllib.parse.quote(v, safe='')}"
             for c, v in conds.items()] + [f"{k}={v}" for k, v in params.items()]
    name = urllib.parse.quote(text, safe=" ") + ("?" + "&".join(parts) if parts else "")
    return m.mnt / "query" / name


@pytest.mark.parametrize("which", ["pack", "ps"])
def test_mount_filters_equal_search_where(annpack, data, mount, which):
    d = data / which
    m = mount(d)
    for conds, text in CASES:
        where = [a for c, v in conds.items() for a in ("--where", f"{c}={v}")]
        for probe, k in ((1, 10), (3, 40), (12, 10)):
            got = json.loads(mount_query(m, text, conds, k=k, probe=probe).read_text())
            want = search(annpack, d, text, k, probe, *where)
            assert [(h["id"], h["score"], h["layer"]) for h in got["results"]] == \
                [(h["id"], h["score"], h["layer"]) for h in want["results"]], \
                (which, conds, probe, k)
            assert got["results"] and all(h["meta"][c] == v for h in got["results"]
                                          for c, v in conds.items())
    # The default k and probe (the pack's calibrated probe), as the CLI's defaults.
    got = json.loads(mount_query(m, "chess board", {"section": "games"}).read_text())
    want = annpack.ok("search", d, "chess board", "--where", "section=games").json()
    assert [h["id"] for h in got["results"]] == [h["id"] for h in want["results"]]


def test_mount_filter_order_shares_one_answer(data, mount):
    m = mount(data / "ps")
    q = "text editor buffer"
    a = mount_query(m, q, {"section": "text", "lang": "en"}, k=7, probe=5).read_bytes()
    # The same conditions in another order, with k and probe between them and a column
    # percent-encoded: one canonical key, so the cached answer itself (took_ms included).
    import urllib.parse
    name = urllib.parse.quote(q, safe=" ") + "?lang=en&probe=5&%73ection=text&k=7"
    b = (m.mnt / "query" / name).read_bytes()
    assert a == b
    assert json.loads(a)["k"] == 7
    unfiltered = json.loads(mount_query(m, q, {}, k=7, probe=5).read_text())
    assert [h["id"] for h in json.loads(a)["results"]] != \
        [h["id"] for h in unfiltered["results"]]


def test_mount_vquery_filters(data, mount):
    import base64
    import numpy as np
    m = mount(data / "ps")
    dim = json.loads((m.mnt / "pack.manifest.json").read_text())["dim"]
    rng = np.random.default_rng(7)
    for conds in ({"lang": "fr"}, {"section": "net", "lang": "en"}):
        vec = rng.standard_normal(dim).astype("<f4")
        name = base64.urlsafe_b64encode(vec.tobytes()).decode().rstrip("=")
        every = json.loads((m.mnt / "vquery" / f"{name}?k=1000&probe=12").read_text())
        want = [h["id"] for h in every["results"]
                if all(h["meta"][c] == v for c, v in conds.items())][:10]
        q = "&".join(f"{c}={v}" for c, v in conds.items())
        got = json.loads((m.mnt / "vquery" / f"{name}?{q}&k=10&probe=12").read_text())
        assert [h["id"] for h in got["results"]] == want and want, conds


def test_mount_filter_refusals(data, mount, annpack, tmp_path):
    import errno
    m = mount(data / "pack", expect_errors=True)
    why = lambda name: json.loads((m.mnt / "refusal" / "query" / name).read_text())["error"]
    cases = {
        "x?colour=red": 'unknown filter column "colour" (filter columns: section, lang)',
        "x?section=nope": "no document has section=nope",
        "x?section=games&section=net": 'filter column "section" given twice',
        "x?section=": "filter value is empty, blank or not valid UTF-8",
        "x?section=%FF": "filter value is empty, blank or not valid UTF-8",
        "x?section=%zz": "filter value has a malformed %-escape",
        "x?section=games&k=0": "k must be an integer in [1, 1000]",
        "x?" + "&".join(f"c{i}=v" for i in range(9)): "more than 8 filter conditions",
        "x?section=" + "g" * 300: "filter value of 300 bytes exceeds the cap of 256",
    }
    for name, reason in cases.items():
        assert why(name) == reason, name
        with pytest.raises(OSError) as e:
            (m.mnt / "query" / name).read_bytes()
        # A cap exceeded is ENAMETOOLONG, as for the text (MOUNT.md, "Errors").
        code = errno.ENAMETOOLONG if "the cap" in reason or "more than" in reason else errno.ENOENT
        assert e.value.errno == code, name
    assert why("x?section=games%26lang%3Den") == "no document has section=games&lang=en"
    with pytest.raises(OSError) as e:  # a fine name has no refusal file
        (m.mnt / "refusal" / "query" / "x?section=games").read_bytes()
    assert e.value.errno == errno.ENOENT
    dim = json.loads((m.mnt / "pack.manifest.json").read_text())["dim"]
    import base64
    vec = base64.urlsafe_b64encode(b"\0<" * dim).decode().rstrip("=")  # float16 ones
    assert json.loads((m.mnt / "refusal" / "vquery" / f"{vec}?lang=de").read_text())["error"] \
        == "no document has lang=de"
    # A pack without filter columns: the unknown parameter it is there.
    plain = tmp_path / "plain"
    write_rows(tmp_path / "p.csv", range(40), 3)
    annpack.ok("build", "--input", tmp_path / "p.csv", "--text-col", "text", "--id-col", "id",
               "--lists", 2, "--output", plain)
    m2 = mount(plain)
    assert json.loads((m2.mnt / "refusal" / "query" / "x?section=games").read_text())["error"] \
        == 'unknown or repeated query parameter "section" (the pack has no filter columns)'


def test_http_filters_through_serve(data, tmp_path):
    """Through annpack serve's nginx: a filtered query answers 200 with matching documents
    only; an unknown column or value is a 400 whose error says why."""
    import urllib.parse
    from servelib import Serve, assert_clean, fetch
    s = Serve(data / "ps", tmp_path / "t")
    try:
        st, h, body = fetch(s.url + "query/" + urllib.parse.quote("chess board") +
                            "?section=games&lang=en&k=5")
        assert st == 200, body[:200]
        res = json.loads(body)["results"]
        assert res and all(r["meta"]["section"] == "games" and r["meta"]["lang"] == "en"
                           for r in res)
        for q, reason in (("x?colour=red", 'unknown filter column "colour"'),
                          ("x?lang=de", "no document has lang=de")):
            st, h, body = fetch(s.url + "query/" + q)
            assert st == 400 and reason in json.loads(body)["error"], (q, st, body[:200])
    finally:
        parts = s.parts()
        assert s.stop() == 0, s.stderr()
    assert_clean(tmp_path / "t", parts)


def test_lazy_filtered_query_checks_only_the_lists_it_scans(annpack, mount, tmp_path):
    """On a lazily verified packset a filtered query readies (hashes, sets the dead bits of)
    only the base lists it probes: with one base list corrupt, filtered probe-1 queries aimed
    at the other lists answer, the one aimed at it fails with EIO, and each query hashes
    only its own list (the whole-base pass it once made would hash, and fail on, them all)."""
    import errno
    from annpack_reader import read_annp, read_digests
    from test_lazy_verify import flip, vname
    write_rows(tmp_path / "base.csv", range(400), 5)
    write_rows(tmp_path / "add.csv", list(range(400, 420)) + list(range(0, 10)), 6)
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", tmp_path / "base.csv", "--packset", ps,
               "--filter-cols", "section,lang", "--lists", 4, "--seed", 1)
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", tmp_path / "add.csv",
               "--out", ps / "deltas" / "0001.delta")
    base = next(p for p in ps.iterdir() if (p / "pack.digests").exists())
    centroids = read_annp(base / "pack.annpack")["centroids"]
    bad = 2
    o, length, _ = read_digests(base / "pack.digests")["pack.annpack"][1][bad + 1]
    flip(base / "pack.annpack", o + length - 3)  # a vector byte of list 2
    m = mount(ps, expect_errors=True)  # verify=lazy is the default
    stats = lambda: json.loads((m.mnt / "stats").read_text())
    for i in (0, 1, 3):
        before = stats()["verify_hashed"]
        got = json.loads((m.mnt / "vquery" / f"{vname(centroids[i])}?section=games&k=3&probe=1")
                         .read_text())
        assert got["results"] and all(h["meta"]["section"] == "games" for h in got["results"])
        # its list, and at most one metadata frame per hit (16 KiB frames: the 3 rows may
        # sit in 3 frames)
        assert stats()["verify_hashed"] - before <= 1 + 3, i
    assert stats()["verify_bad"] == 0
    with pytest.raises(OSError) as e:
        (m.mnt / "vquery" / f"{vname(centroids[bad])}?section=games&k=3&probe=1").read_text()
    assert e.value.errno == errno.EIO
    assert stats()["verify_bad"] == 1


def read_filter(path):
    """pack.filter (FORMAT.md) as [(column, [(value, [ids])])]."""
    import struct
    b = path.read_bytes()
    assert b[:8] == b"ANNPFLT1"
    (ncols,) = struct.unpack_from("<I", b, 12)
    at, cols = 16, []
    for _ in range(ncols):
        (nl,) = struct.unpack_from("<H", b, at)
        name = b[at + 2:at + 2 + nl].decode()
        (nv,) = struct.unpack_from("<I", b, at + 2 + nl)
        at += 6 + nl
        vals = []
        for _ in range(nv):
            (vl,) = struct.unpack_from("<H", b, at)
            val = b[at + 2:at + 2 + vl].decode()
            (cnt,) = struct.unpack_from("<I", b, at + 2 + vl)
            ids = list(struct.unpack_from(f"<{cnt}Q", b, at + 6 + vl))
            at += 6 + vl + 8 * cnt
            vals.append((val, ids))
        cols.append((name, vals))
    assert at == len(b)
    return cols


def write_filter(path, cols):
    import struct
    out = [b"ANNPFLT1", struct.pack("<II", 1, len(cols))]
    for name, vals in cols:
        out += [struct.pack("<H", len(name)), name.encode(), struct.pack("<I", len(vals))]
        for val, ids in vals:
            out += [struct.pack("<H", len(val)), val.encode(), struct.pack("<I", len(ids)),
                    struct.pack(f"<{len(ids)}Q", *ids)]
    path.write_bytes(b"".join(out))


def test_verify_deep_checks_the_filter_sets(annpack, data, tmp_path):
    """verify --deep checks pack.filter against the pack (every id a row, in one value of
    each column, the value its row has) and names the column and value; a filter file
    changed by hand, re-pinned and re-signed passes the hashes and the plain verify."""
    import shutil
    from test_vectors import rehash
    annpack.ok("keygen", "--out", tmp_path / "k")
    src = data / "pack"
    cols = read_filter(src / "pack.filter")
    assert [c for c, _ in cols] == ["section", "lang"]
    sec = dict(cols[0][1])
    g, n = sec["games"], sec["net"]
    moved = g[3]

    def case(tag, section):
        d = tmp_path / tag
        shutil.copytree(src, d)
        bad = [("section", sorted((v, sorted(ids)) for v, ids in section.items())), cols[1]]
        write_filter(d / "pack.filter", bad)
        assert read_filter(d / "pack.filter") == bad
        rehash(d, "pack.filter")
        annpack.ok("sign", d, "--key", tmp_path / "k.pem", "--force")
        ok = annpack.ok("verify", d, "--pubkey", tmp_path / "k.pub").json()
        assert ok["ok"] is True
        r = annpack("verify", d, "--pubkey", tmp_path / "k.pub", "--deep")
        assert r.rc == 1, tag
        e = r.json()["error"]
        assert e["file"] == "pack.filter", e
        return e["reason"]

    # An id moved to another value: the sets still partition the rows, the rows disagree.
    out = case("moved", {**sec, "games": [i for i in g if i != moved], "net": n + [moved]})
    assert out.endswith(f'pack.filter: column "section" value "net" lists id {moved}, whose row '
                        f'has "games"'), out
    out = case("ghost", {**sec, "net": n + [10**6]})
    assert out.endswith(f'pack.filter: column "section" value "net": id {10**6} is not in the '
                        'pack'), out
    out = case("twice", {**sec, "net": n + [moved]})
    assert out.endswith(f'pack.filter: column "section": id {moved} is in value "games" and in '
                        'value "net"'), out
    out = case("lost", {**sec, "games": [i for i in g if i != moved]})
    assert out.endswith(f'pack.filter: column "section": id {moved} is in no value'), out
    # The untouched pack passes the deep check.
    assert annpack.ok("verify", src, "--deep").json()["ok"] is True
