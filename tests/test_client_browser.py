"""The built search page's direct mode in headless Chromium (tests/browser/direct_page.mjs,
playwright-core) against a real nginx serving plain files — the page (web/dist), a signed
pack directory and the page's direct.json with the public key — no mount, no annpack
process: type a query and see the expected document; count the requests of the open and
of each query in nginx's access log; tamper one list on disk and see the error naming it;
load the page from a server that ignores Range and see the open refused; the same page on a
signed packset, its open and queries counted likewise. Screenshots go to
BUILD/test-artifacts/."""
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import time

import pytest

from conftest import BUILD, EXAMPLES, ROOT
from test_browser import BROWSER_DIR, WEB_DIST, require_browser

STATIC_HOST = ROOT / "web" / "test" / "static_host.conf.in"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class StaticHost:
    """nginx with web/test/static_host.conf.in: ROOT as plain files on url (Range honoured)
    and on url_norange (Range ignored); an access log of one line per request."""

    def __init__(self, root, tmp):
        self.logs = pathlib.Path(tmp) / "nginx"
        self.logs.mkdir(parents=True)
        port, port2 = free_port(), free_port()
        conf = (STATIC_HOST.read_text().replace("@LOGS@", str(self.logs))
                .replace("@ROOT@", str(root)).replace("@PORT_NORANGE@", str(port2))
                .replace("@PORT@", str(port))
                .replace("@USER@", "user root;" if os.geteuid() == 0 else ""))
        (self.logs / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(["nginx", "-c", str(self.logs / "nginx.conf")],
                                     stderr=subprocess.PIPE)
        deadline = time.time() + 20
        for p in (port, port2):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                    break
                except OSError:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")
                    if time.time() > deadline:
                        raise RuntimeError("nginx did not start")
                    time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}/"
        self.url_norange = f"http://127.0.0.1:{port2}/"
        self.access_log = self.logs / "access.log"

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def list_of(annp, doc_id):
    """(list index, byte offset of the list's last byte) of the list holding doc_id."""
    data = annp.read_bytes()
    _, _, _, _, dim, _, n_lists, _, table = struct.unpack_from("<QIIIIIIIQ", data, 0)
    for i in range(n_lists):
        off, length = struct.unpack_from("<QQ", data, table + 16 * i)
        (count,) = struct.unpack_from("<I", data, off)
        ids = struct.unpack_from(f"<{count}Q", data, off + 4)
        if doc_id in ids:
            return i, off + length - 1, n_lists
    raise AssertionError(f"id {doc_id} in no list")


@pytest.fixture
def site(annpack, tmp_path):
    require_browser()
    root = tmp_path / "site"
    shutil.copytree(WEB_DIST, root)
    pack = root / "packs" / "tiny"
    # The CLI's default embedder: the hash embedder v2 (with pack.idf) where annpack has it.
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text", "--id-col",
               "id", "--output", pack, "--lists", 4, "--seed", 1)
    assert (pack / "pack.digests").exists()  # the table the client checks every range by
    v2 = json.loads((pack / "pack.manifest.json").read_text())["embedder"]["version"] == 2
    assert v2 == (pack / "pack.idf").exists()
    key_id = annpack.ok("keygen", "--out", tmp_path / "k").json()["key_id"]
    annpack.ok("sign", pack, "--key", tmp_path / "k.pem")
    # A packset: the same rows as a base, one delta adding delta_add.csv and deleting 1, 2.
    ps = root / "packs" / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", ps,
               "--lists", 4, "--seed", 1)
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", EXAMPLES / "delta_add.csv",
               "--delete-ids", "1,2", "--out", ps / "deltas" / "0001.delta")
    annpack.ok("sign", ps, "--key", tmp_path / "k.pem")
    (root / "direct.json").write_text(json.dumps({"publicKey": (tmp_path / "k.pub").read_text()}))
    host = StaticHost(root, tmp_path)
    try:
        yield root, pack, key_id, host, v2
    finally:
        host.close()


def run_page(spec, tmp_path, name):
    """Runs tests/browser/direct_page.mjs on spec; its screenshots go to test-artifacts."""
    shots = tmp_path / f"shots-{name}"
    shots.mkdir()
    spec = {**spec, "outdir": str(shots)}
    r = subprocess.run(["node", str(BROWSER_DIR / "direct_page.mjs"), json.dumps(spec)],
                       capture_output=True, text=True, timeout=240)
    art = BUILD / "test-artifacts"
    art.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, art / f"{name}_{png.name}")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in seen.items() if k != "queries"}, indent=1))
    return seen


def files_of(lines, prefix):
    """The paths under prefix of nginx access-log lines ("GET /uri "range" status bytes")."""
    out = []
    for l in lines:
        uri = l.split()[1]
        assert uri.startswith(prefix), l
        out.append(uri[len(prefix):])
    return out


def check_queries(seen, probe, lists_file, meta_files):
    """Per query (after the first): one round of list ranges, in parallel (at most probe
    of them, all of lists_file), then the metadata frames of the hits: two round trips as
    the page counts them, and nothing else in nginx's log; a repeated query is cached."""
    *fresh, again = seen["queries"]
    assert any(lists_file in files_of(q["lines"], "/packs/") for q in fresh), fresh
    for q in fresh:
        assert q["banner"] is None and q["ids"], q
        assert all(l.split()[3] == "206" for l in q["lines"]), q["lines"]
        assert all(l.split()[2] != '"-"' for l in q["lines"]), q["lines"]  # every one a Range
        files = files_of(q["lines"], "/packs/")
        # Lists and frames already in the cache are not fetched again (a tiny pack's
        # probed lists may all be): then fewer rounds, or none.
        assert files.count(lists_file) <= probe, q["lines"]
        assert set(files) <= {lists_file, *meta_files}, q["lines"]
        assert q["rounds"] == (lists_file in files) + bool(set(files) & meta_files), q
        assert q["requests"] == len(q["lines"]), q  # the page's count is nginx's
    assert again["banner"] is None and again["ids"] == fresh[-1]["ids"], again
    assert again["requests"] == 0 and again["lines"] == [], again  # the same query again


@pytest.mark.slow
def test_direct_mode_in_chromium(site, tmp_path):
    root, pack, key_id, host, v2 = site
    lst, last_byte, n_lists = list_of(pack / "pack.annpack", 33)
    seen = run_page({
        "url": f"{host.url}?pack=packs/tiny/&probe=2",
        "access_log": str(host.access_log),
        "query": "water my houseplants", "expect_id": 33, "expect_text": "Houseplant watering",
        "queries": ["bicycle chain care", "espresso crema", "chess openings", "chess openings"],
        "tamper": {"file": str(pack / "pack.annpack"), "offset": last_byte, "list": lst,
                   "url": f"{host.url}?pack=packs/tiny/&probe={n_lists}"},
        "norange_url": f"{host.url_norange}?pack=packs/tiny/",
    }, tmp_path, "direct_page")
    assert seen["mode"] == "direct"
    assert seen["facts"]["n_vectors"] == "40" and seen["facts"]["n_lists"] == "4"
    assert seen["facts"]["signature"] == "verified" and seen["facts"]["key_id"] == key_id
    # Open: at most 4 requests, from nginx's log — the manifest, its signature, the digest
    # table, the head (one range). No pack.idf: the hash embedder v2's table comes later.
    opened = files_of(seen["open_requests"], "/packs/tiny/")
    assert len(opened) <= 4, seen["open_requests"]
    assert sorted(opened) == ["pack.annpack", "pack.digests", "pack.manifest.json",
                              "pack.manifest.json.sig"], seen["open_requests"]
    # The typed query (the first): pack.idf (v2) once, the seek table and the small id
    # index (fetched while typing), its lists and frames; nothing else.
    assert 33 in seen["typed"]["ids"]
    typed = files_of(seen["typed"]["lines"], "/packs/tiny/")
    assert typed.count("pack.idf") == v2, seen["typed"]
    assert set(typed) <= {"pack.idf", "pack.annpack", "pack.meta.idx", "pack.meta.jsonl.zst"}, typed
    assert seen["console_errors"] == []
    check_queries(seen, 2, "tiny/pack.annpack", {"tiny/pack.meta.jsonl.zst"})
    # The tampered list is named.
    assert seen["tampered"]["banner"] and f"list {lst} " in seen["tampered"]["banner"], seen["tampered"]
    assert "pack.annpack" in seen["tampered"]["banner"]
    assert "does not match its SHA-256" in seen["tampered"]["banner"]
    # A server that ignores Range is refused.
    assert "answered 200 to Range" in seen["norange_banner"], seen["norange_banner"]
    assert "refused" in seen["norange_banner"]


@pytest.mark.slow
def test_packset_direct_mode_in_chromium(site, tmp_path):
    root, _, key_id, host, v2 = site
    ps = root / "packs" / "ps"
    seen = run_page({
        "url": f"{host.url}?packset=packs/ps/&probe=2",
        "access_log": str(host.access_log),
        # A delta's document: "Delta add: kombucha", id 40.
        "query": "kombucha sweet tea", "expect_id": 40, "expect_text": "kombucha",
        "queries": ["water my houseplants", "chess openings", "volcanoes", "volcanoes"],
    }, tmp_path, "direct_packset")
    assert seen["facts"]["signature"] == "verified" and seen["facts"]["key_id"] == key_id
    assert seen["facts"]["deltas"] == "1"
    # Open, from nginx's log: the root manifest and its signature; per layer its manifest
    # (pinned by the root's), digest table and one range of pack.annpack (the base's head;
    # the delta's head and lists, read whole); the delta's tombstones; the base's id index
    # for the live count (small: one range). No pack.idf. A packset cannot open in 4:
    # each layer is a pack of its own.
    opened = files_of(seen["open_requests"], "/packs/ps/")
    layer = {"pack.manifest.json", "pack.digests", "pack.annpack"}
    assert sorted(opened) == sorted(
        ["pack.manifest.json", "pack.manifest.json.sig"] + [f"base/{f}" for f in layer] +
        ["base/pack.meta.idx"] + [f"deltas/0001.delta/{f}" for f in layer] +
        ["deltas/0001.delta/tombstones.jsonl"]), opened
    assert seen["facts"]["n_vectors"] == "40"  # 40 − 2 deleted + 2 added (id 7 updated)
    assert 40 in seen["typed"]["ids"]
    typed = files_of(seen["typed"]["lines"], "/packs/ps/")
    assert typed.count("base/pack.idf") == v2 and "deltas/0001.delta/pack.idf" not in typed, typed
    assert seen["console_errors"] == []
    # Queries read base lists by range; rows from the base's or the delta's frames.
    check_queries(seen, 2, "ps/base/pack.annpack",
                  {"ps/base/pack.meta.jsonl.zst", "ps/deltas/0001.delta/pack.meta.jsonl.zst",
                   "ps/deltas/0001.delta/pack.meta.idx", "ps/base/pack.meta.idx"})
