"""HTTP embedders on a real mount (docs/EMBEDDERS.md, "Serving"): text queries embedded
through the loopback embedding server (tests/embed_server.py), the query-embedding cache,
coalescing, the circuit breaker and recovery, canaries at mount and reload, through cat
and through a real nginx."""
import concurrent.futures
import errno
import json
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, write_csv
from mountlib import Nginx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from embed_server import EmbedServer  # noqa: E402
from test_embedders import rows  # noqa: E402


def qpath(mnt, text, **params):
    name = urllib.parse.quote(text, safe=" ")
    if params:
        name += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return mnt / "query" / name


@pytest.fixture
def server():
    s = EmbedServer(dim=32)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def signed(annpack, server, tmp_path):
    """A signed packset whose base was embedded through the server: (dir, pem, pub)."""
    docs = tmp_path / "docs.csv"
    write_csv(docs, rows(300))
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", docs, "--packset", d, "--embedder", "openai",
               "--model", "test-model", "--embed-url", server.url + "/v1", "--lists", 8)
    annpack.ok("keygen", "--out", tmp_path / "k")
    annpack.ok("sign", d, "--key", tmp_path / "k.pem")
    return d, tmp_path / "k.pem", tmp_path / "k.pub"


def stats(m):
    return json.loads((m.mnt / "stats").read_text())


def health(m):
    return json.loads((m.mnt / "health").read_text())


def test_query_cache_and_nginx(annpack, server, signed, mount, tmp_path):
    d, pem, pub = signed
    url = server.url + "/v1"
    m = mount(d, f"pubkey={pub}", f"embed_url={url}")
    h = health(m)
    assert h["embed"]["state"] == "ok" and h["embed"]["canaries"] == "ok"
    assert h["embed"]["canary_min_cosine"] > 0.999
    server.clear()
    got = json.loads(qpath(m.mnt, "espresso coffee tea").read_text())
    want = annpack.ok("search", d, "espresso coffee tea", "--embed-url", url).json()
    assert [r["id"] for r in got["results"]] == [r["id"] for r in want["results"]]
    sent = [t for r in server.embedding_requests() for t in r["inputs"]]
    assert sent.count("espresso coffee tea") == 2  # the mount's and the CLI's
    # the same text with another k: the query embedding comes from the cache
    server.clear()
    json.loads(qpath(m.mnt, "espresso coffee tea", k=3).read_text())
    assert server.embedding_requests() == []
    e = stats(m)["embed"]
    assert e["cache_hits"] >= 1 and e["cache_entries"] >= 1 and e["cache_bytes"] > 128
    # through nginx
    ng = Nginx(m.mnt, tmp_path, ROOT / "examples" / "nginx.conf")
    try:
        with urllib.request.urlopen(ng.url + "/query/" + urllib.parse.quote("milk sugar") +
                                    "?k=2") as r:
            assert len(json.loads(r.read())["results"]) == 2
        with urllib.request.urlopen(ng.url + "/health") as r:
            assert json.loads(r.read())["embed"]["breaker"] == "closed"
    finally:
        ng.close()


def test_identical_concurrent_queries_coalesce(server, signed, mount):
    d, pem, pub = signed
    m = mount(d, f"pubkey={pub}", f"embed_url={server.url}/v1")
    server.clear()
    server.set(slow=0.5)
    # eight names (distinct k, so the answer cache cannot merge them), one text
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda k: json.loads(qpath(m.mnt, "river forest", k=k).read_text()),
                           range(1, 9)))
    assert [len(o["results"]) for o in outs] == list(range(1, 9))
    reqs = [r for r in server.embedding_requests() if "river forest" in r["inputs"]]
    assert len(reqs) == 1
    # joined to the one request in flight, or (when the kernel serialises lookups in one
    # directory, as this test machine's does) answered from the cache it filled
    e = stats(m)["embed"]
    assert e["coalesced"] + e["cache_hits"] >= 7


def test_outage_breaker_and_recovery(server, signed, mount, tmp_path):
    d, pem, pub = signed
    port = server.port
    m = mount(d, f"pubkey={pub}", f"embed_url={server.url}/v1", expect_errors=True)
    assert json.loads(qpath(m.mnt, "apple banana").read_text())["results"]
    server.stop()
    for i in range(3):
        with pytest.raises(OSError) as e:
            qpath(m.mnt, f"lemon {i}").read_text()
        assert e.value.errno == errno.EIO
    h = health(m)
    assert h["status"] == "ok" and h["embed"]["state"] == "unavailable"
    assert h["embed"]["breaker"] == "open" and "127.0.0.1" in h["embed"]["last_error"]
    # open: a new text fails at once, without waiting on the service
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        qpath(m.mnt, "orange grape").read_text()
    assert e.value.errno == errno.EIO and time.monotonic() - t0 < 0.5
    assert stats(m)["embed"]["fast_failures"] >= 1
    # what needs no embedding keeps working; a cached answer too
    assert json.loads((m.mnt / "doc" / "5").read_text())["id"] == 5
    import base64
    import struct
    from embed_server import embed_text
    vec = base64.urlsafe_b64encode(struct.pack("<32f", *embed_text("apple banana", 32,
                                                                   "test-model"))).rstrip(b"=")
    assert json.loads((m.mnt / "vquery" / vec.decode()).read_text())["results"]
    assert json.loads(qpath(m.mnt, "apple banana").read_text())["results"]
    ng = Nginx(m.mnt, tmp_path, ROOT / "examples" / "nginx.conf")
    try:
        with pytest.raises(urllib.error.HTTPError) as he:
            urllib.request.urlopen(ng.url + "/query/" + urllib.parse.quote("cheese bread"))
        assert 500 <= he.value.code < 600
        with urllib.request.urlopen(ng.url + "/health") as r:
            assert json.loads(r.read())["embed"]["state"] == "unavailable"
    finally:
        ng.close()
    assert "circuit open" in m.stderr()
    # the service returns: after the cooldown one query closes the breaker
    back = EmbedServer(dim=32, port=port)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                assert json.loads(qpath(m.mnt, "orange grape").read_text())["results"]
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert health(m)["embed"]["breaker"] == "closed"
        assert "circuit closed" in m.stderr()
    finally:
        back.stop()


def test_canary_mismatch_at_mount_and_reload(annpack, server, signed, mount, tmp_path):
    d, pem, pub = signed
    url = server.url + "/v1"
    server.set(variant="retrained")
    m = mount(d, f"pubkey={pub}", f"embed_url={url}")
    with pytest.raises(FileNotFoundError):
        qpath(m.mnt, "espresso").read_text()
    why = json.loads((m.mnt / "refusal" / "query" / "espresso").read_text())["error"]
    assert 'model "test-model"' in why and "cosine" in why
    h = health(m)
    assert h["embed"]["state"] == "mismatch" and h["embed"]["canaries"] == "mismatch"
    assert json.loads((m.mnt / "doc" / "1").read_text())["id"] == 1  # the rest serves
    m.close()
    # the right model again: served; then switched under a reload: refused again
    server.set(variant=None)
    m2 = mount(d, f"pubkey={pub}", f"embed_url={url}")
    assert json.loads(qpath(m2.mnt, "espresso").read_text())["results"]
    annpack.ok("packset", "build-delta", "--packset", d, "--pubkey", pub, "--delete-ids", "3",
               "--out", d / "deltas" / "0001.delta", "--embed-url", url)
    annpack.ok("sign", d, "--key", pem)
    server.set(variant="retrained")
    m2.sighup()
    for _ in range(100):
        if health(m2)["generation"] == 2:
            break
        time.sleep(0.05)
    assert health(m2)["embed"]["canaries"] == "mismatch"
    with pytest.raises(FileNotFoundError):
        qpath(m2.mnt, "tea milk").read_text()


def test_bad_endpoint_option(server, signed, tmp_path):
    import subprocess
    from mountlib import ANNPACKFS
    d, pem, pub = signed
    (tmp_path / "m").mkdir()
    r = subprocess.run([str(ANNPACKFS), str(d), str(tmp_path / "m"), "-o",
                        f"pubkey={pub},embed_url=ftp://x", "-f"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "not http:// or https://" in r.stderr


def test_key_file_for_the_daemon(server, signed, mount, tmp_path):
    import subprocess
    from mountlib import ANNPACKFS
    d, pem, pub = signed
    key = "sk-daemon-SECRET-42"
    kf = tmp_path / "key"
    kf.write_text(key + "\n")
    kf.chmod(0o640)
    (tmp_path / "m").mkdir()
    r = subprocess.run([str(ANNPACKFS), str(d), str(tmp_path / "m"), "-o",
                        f"pubkey={pub},embed_url={server.url}/v1,embed_key_file={kf}", "-f"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "mode 0640" in r.stderr and key not in r.stderr
    kf.chmod(0o600)
    server.set(require_key=key)
    server.clear()
    m = mount(d, f"pubkey={pub}", f"embed_url={server.url}/v1", f"embed_key_file={kf}")
    assert json.loads(qpath(m.mnt, "desert valley").read_text())["results"]
    assert health(m)["embedder"] == "openai"
    assert all(q["auth"] == "Bearer " + key for q in server.embedding_requests())
    assert key not in m.stderr()


def test_serve_passes_the_endpoint(server, signed, tmp_path):
    from servelib import Serve, fetch
    d, pem, pub = signed
    tmp = tmp_path / "serve-tmp"
    tmp.mkdir()
    s = Serve(d, tmp, "--pubkey", pub, "--embed-url", server.url + "/v1",
              env={"ANNPACK_EMBED_URL": ""})
    try:
        st, _, body = fetch(s.url + "query/" + urllib.parse.quote("espresso coffee") + "?k=2")
        assert st == 200 and len(json.loads(body)["results"]) == 2
        st, _, body = fetch(s.url + "health")
        assert json.loads(body)["embed"]["canaries"] == "ok"
    finally:
        assert s.stop() == 0
