"""The built search page's direct mode in headless Chromium (tests/browser/direct_page.mjs,
playwright-core) against a real nginx serving plain files — the page (web/dist), a signed
pack directory and the page's direct.json with the public key — no mount, no annpack
process: type a query and see the expected document; count the requests of the open and
of each query in nginx's access log; tamper one list on disk and see the error naming it;
load the page from a server that ignores Range and see the open refused.
Screenshots go to BUILD/test-artifacts/."""
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
    # The client runs the hash embedder v1 (an annpack whose default is v2 is asked for v1).
    v1 = (["--embedder-version", 1]
          if "--embedder-version" in annpack.ok("build", "--help").out else [])
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text", "--id-col",
               "id", "--output", pack, "--lists", 4, "--seed", 1, *v1)
    assert (pack / "pack.digests").exists()  # the table the client checks every range by
    key_id = annpack.ok("keygen", "--out", tmp_path / "k").json()["key_id"]
    annpack.ok("sign", pack, "--key", tmp_path / "k.pem")
    (root / "direct.json").write_text(json.dumps({"publicKey": (tmp_path / "k.pub").read_text()}))
    host = StaticHost(root, tmp_path)
    try:
        yield root, pack, key_id, host
    finally:
        host.close()


@pytest.mark.slow
def test_direct_mode_in_chromium(site, tmp_path):
    root, pack, key_id, host = site
    shots = tmp_path / "shots"
    shots.mkdir()
    lst, last_byte, n_lists = list_of(pack / "pack.annpack", 33)
    spec = {
        "url": f"{host.url}?pack=packs/tiny/&probe=2",
        "access_log": str(host.access_log),
        "query": "water my houseplants", "expect_id": 33, "expect_text": "Houseplant watering",
        "queries": ["bicycle chain care", "espresso crema", "bicycle chain care"],
        "tamper": {"file": str(pack / "pack.annpack"), "offset": last_byte, "list": lst,
                   "url": f"{host.url}?pack=packs/tiny/&probe={n_lists}"},
        "norange_url": f"{host.url_norange}?pack=packs/tiny/",
        "outdir": str(shots),
    }
    r = subprocess.run(["node", str(BROWSER_DIR / "direct_page.mjs"), json.dumps(spec)],
                       capture_output=True, text=True, timeout=240)
    art = BUILD / "test-artifacts"
    art.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, art / f"direct_page_{png.name}")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in seen.items() if k != "queries"}, indent=1))
    assert seen["mode"] == "direct"
    assert seen["facts"]["n_vectors"] == "40" and seen["facts"]["n_lists"] == "4"
    assert seen["facts"]["signature"] == "verified" and seen["facts"]["key_id"] == key_id
    # Open: the manifest, its signature, the digest table, the head (one range).
    opened = [l.split()[1] for l in seen["open_requests"]]
    assert len(opened) <= 4 and sorted(opened) == [
        "/packs/tiny/pack.annpack", "/packs/tiny/pack.digests", "/packs/tiny/pack.manifest.json",
        "/packs/tiny/pack.manifest.json.sig"], seen["open_requests"]
    assert 33 in seen["typed"]["ids"]
    assert seen["console_errors"] == []
    # Per query: ranges of pack.annpack (the probed lists, merged, one parallel round), then
    # only the zstd frames of the hits (the small id index came whole with the first
    # query); a repeated query comes from the cache.
    for q in seen["queries"]:
        assert q["banner"] is None and q["ids"], q
        files = [l.split()[1].rsplit("/", 1)[1] for l in q["lines"]]
        assert all(l.split()[3] == "206" for l in q["lines"]), q["lines"]
        assert files.count("pack.annpack") <= 2, q["lines"]  # probe 2: at most 2 ranges
        assert set(files) <= {"pack.annpack", "pack.meta.jsonl.zst"}, q["lines"]
    assert seen["queries"][2]["requests"] == 0, seen["queries"][2]  # the same query again
    # The tampered list is named.
    assert seen["tampered"]["banner"] and f"list {lst} " in seen["tampered"]["banner"], seen["tampered"]
    assert "pack.annpack" in seen["tampered"]["banner"]
    assert "does not match its SHA-256" in seen["tampered"]["banner"]
    # A server that ignores Range is refused.
    assert "answered 200 to Range" in seen["norange_banner"], seen["norange_banner"]
    assert "refused" in seen["norange_banner"]
