"""HTTP embedders (docs/EMBEDDERS.md): builds and text queries against the loopback embedding
server of tests/embed_server.py, which speaks the OpenAI, TEI and Ollama shapes with
deterministic vectors and switches for failures."""
import base64
import os
import json
import pathlib
import signal
import struct
import subprocess
import sys
import time

import pytest

from conftest import write_csv

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from embed_server import EmbedServer  # noqa: E402

WORDS = ("espresso coffee tea milk sugar bread butter cheese apple banana orange grape lemon "
         "river mountain forest ocean desert valley city").split()


def rows(n, seed=1):
    import random
    r = random.Random(seed)
    return [(i, " ".join(r.sample(WORDS, 4))) for i in range(n)]


@pytest.fixture
def server():
    s = EmbedServer(dim=32)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def docs(tmp_path):
    p = tmp_path / "docs.csv"
    write_csv(p, rows(200))
    return p


def base_url(server, api):
    return server.url + "/v1" if api == "openai" else server.url


def build(annpack, server, docs, out, api="openai", *extra, check=0, env=None):
    args = ["build", "--input", docs, "--text-col", "text", "--id-col", "id", "--output", out,
            "--embedder", api, "--embed-url", base_url(server, api)]
    if api != "tei":
        args += ["--model", "test-model"]
    return annpack(*args, *extra, check=check, env=env)


def manifest(p):
    return json.loads((p / "pack.manifest.json").read_text())


def leftovers(d):
    return sorted(x.name for x in d.iterdir() if x.name not in ("docs.csv",))


@pytest.mark.parametrize("api", ["openai", "tei", "ollama"])
def test_build_and_search_each_api(annpack, server, docs, tmp_path, api):
    out = tmp_path / "P"
    build(annpack, server, docs, out, api)
    m = manifest(out)
    e = m["embedder"]
    assert e["name"] == api and e["api"] == api and e["model"] == "test-model"
    assert e["dim"] == 32 and e["normalize"] == "l2"
    assert e["revision"] == ("rev-test-model" if api == "tei" else None)
    assert len(e["canaries"]["texts"]) == 3 and e["canaries"]["min_cosine"] == 0.99
    for v in e["canaries"]["vectors_f32le_base64"]:
        x = struct.unpack("<32f", base64.b64decode(v))
        assert abs(sum(t * t for t in x) - 1) < 1e-5  # normalised on our side
    assert m["build"]["offline"] is False
    # every document went through the server, in batches of at most 32 (TEI: /info says 16)
    reqs = server.embedding_requests()
    texts = [t for r in reqs for t in r["inputs"]]
    assert {t for _, t in rows(200)} <= set(texts)
    cap = 16 if api == "tei" else 32
    assert max(r["n"] for r in reqs) == cap
    if api == "openai":
        assert all(r["encoding_format"] == "base64" for r in reqs)
        assert all(r["model"] == "test-model" for r in reqs)
    assert all(r["content_type"] == "application/json" for r in reqs)
    assert all(r["user_agent"].startswith("annpack/") for r in reqs)
    # query time: the endpoint is host configuration (option or environment)
    r = annpack.ok("search", out, "espresso coffee tea milk", "--embed-url", base_url(server, api))
    hits = r.json()["results"]
    assert hits and set("espresso coffee tea milk".split()) <= set(hits[0]["meta"]["text"].split()) \
        or hits[0]["score"] > 0.5
    r2 = annpack.ok("search", out, "espresso coffee tea milk",
                    env={"ANNPACK_EMBED_URL": base_url(server, api)})
    assert r2.json()["results"] == hits


def test_search_without_endpoint_says_how(annpack, server, docs, tmp_path):
    out = tmp_path / "P"
    build(annpack, server, docs, out)
    r = annpack("search", out, "espresso", check=1, env={"ANNPACK_EMBED_URL": ""})
    assert 'openai model "test-model"' in r.err and "--embed-url" in r.err
    # the pack still opens: inspect and verify need no endpoint
    annpack.ok("verify", out)


def test_vectors_match_server_and_query_prefix(annpack, server, docs, tmp_path):
    out = tmp_path / "P"
    build(annpack, server, docs, out, "openai", "--doc-prefix", "passage: ", "--query-prefix",
          "query: ")
    e = manifest(out)["embedder"]
    assert e["doc_prefix"] == "passage: " and e["query_prefix"] == "query: "
    assert all(t.startswith("passage: ") for r in server.embedding_requests() for t in r["inputs"])
    server.clear()
    annpack.ok("search", out, "espresso", "--embed-url", server.url + "/v1")
    sent = [t for r in server.embedding_requests() for t in r["inputs"]]
    assert "query: espresso" in sent  # the query, with its prefix
    assert sum(t.startswith("passage: ") for t in sent) == 3  # the canaries, as documents


def test_reverse_order_and_json_floats_are_read(annpack, server, docs, tmp_path):
    server.set(reverse=1)
    a = tmp_path / "A"
    build(annpack, server, docs, a)
    server.set(reverse=0)
    b = tmp_path / "B"
    build(annpack, server, docs, b)
    assert (a / "pack.annpack").read_bytes() == (b / "pack.annpack").read_bytes()


def test_api_key_sent_never_written(annpack, server, docs, tmp_path):
    key = "sk-test-SECRET-0123456789"
    server.set(require_key=key)
    out = tmp_path / "P"
    r = build(annpack, server, docs, out, check=1, env={"ANNPACK_EMBED_API_KEY": ""})
    assert "HTTP 401" in r.err and "Incorrect API key" in r.err and "check the API key" in r.err
    assert leftovers(tmp_path) == []
    server.clear()
    r = build(annpack, server, docs, out, env={"ANNPACK_EMBED_API_KEY": key,
                                               "ANNPACK_LOG_LEVEL": "DEBUG"})
    assert key not in r.err and key not in r.out
    assert all(q["auth"] == "Bearer " + key for q in server.embedding_requests())
    for f in out.iterdir():
        assert key.encode() not in f.read_bytes()
    # a key file: owner-only mode, else refused
    kf = tmp_path / "key"
    kf.write_text(key + "\n")
    kf.chmod(0o644)
    r = build(annpack, server, docs, tmp_path / "Q", "openai", "--embed-key-file", kf, check=1,
              env={"ANNPACK_EMBED_API_KEY": ""})
    assert "mode 0644" in r.err and "chmod 600" in r.err and key not in r.err
    kf.chmod(0o600)
    server.clear()
    build(annpack, server, docs, tmp_path / "Q", "openai", "--embed-key-file", kf,
          env={"ANNPACK_EMBED_API_KEY": ""})
    assert all(q["auth"] == "Bearer " + key for q in server.embedding_requests())


def test_retries_transient_errors(annpack, server, docs, tmp_path):
    server.set(fail_429=2, fail_503=1, fail_500=1)
    out = tmp_path / "P"
    r = build(annpack, server, docs, out, env={"ANNPACK_LOG_LEVEL": "INFO"})
    assert "retrying" in r.err
    assert not any(server.switches.values())  # every failure was consumed, the build went on
    ref = tmp_path / "R"
    build(annpack, server, docs, ref)
    assert (out / "pack.annpack").read_bytes() == (ref / "pack.annpack").read_bytes()


def test_413_halves_the_batch(annpack, server, docs, tmp_path):
    server.set(max_batch=5)
    out = tmp_path / "P"
    build(annpack, server, docs, out, "openai", "--embed-batch", "32")
    sizes = [r["n"] for r in server.embedding_requests()]
    assert sizes[:3] == [1, 3, 32]  # probe, canaries, then 32 refused with 413 ...
    assert 16 in sizes and 8 in sizes  # ... and halved until it fits
    ok = [r["n"] for r in server.embedding_requests()][-10:]
    assert max(ok) <= 5
    server.set(max_batch=0)
    ref = tmp_path / "R"
    build(annpack, server, docs, ref)
    assert (out / "pack.annpack").read_bytes() == (ref / "pack.annpack").read_bytes()


@pytest.mark.parametrize("switch,needle", [
    ({"wrong_count": 1}, "another number of vectors"),
    ({"bad_base64": 1}, "not base64"),
    ({"nan": 1}, "not finite"),
    ({"status": 400}, "HTTP 400: switched to 400"),
    ({"status": 404}, "HTTP 404"),
    ({"status": 500}, "HTTP 500 after retries"),
])
def test_bad_replies_fail_cleanly(annpack, server, docs, tmp_path, switch, needle):
    server.set(**switch)
    r = build(annpack, server, docs, tmp_path / "P", check=1)
    assert needle in r.err, r.err
    assert r.err.count("\n") <= 2
    assert leftovers(tmp_path) == []


def test_wrong_dim_mid_build(annpack, server, docs, tmp_path):
    """The canaries fix the dim; a reply of another dim later is refused."""
    import threading
    out = tmp_path / "P"
    server.set(slow=0.02)

    def flip():
        while len(server.embedding_requests()) < 4:
            time.sleep(0.005)
        server.set(wrong_dim=1)
    t = threading.Thread(target=flip)
    t.start()
    r = build(annpack, server, docs, out, check=1)
    t.join()
    assert "wrong dim" in r.err
    assert leftovers(tmp_path) == []


def test_refused_connection_fails_fast_and_leaves_nothing(annpack, server, docs, tmp_path):
    server.stop()
    t0 = time.monotonic()
    r = build(annpack, server, docs, tmp_path / "P", check=1)
    assert time.monotonic() - t0 < 15
    assert "127.0.0.1" in r.err and ("refused" in r.err.lower() or "connect" in r.err.lower())
    assert leftovers(tmp_path) == []


def test_server_killed_mid_build(annpack, tmp_path, docs):
    """A real process, killed while the build waits on it: exit 1, nothing left behind."""
    big = tmp_path / "big.csv"
    write_csv(big, rows(3000))
    srv = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).parent / "embed_server.py"),
                            "--dim", "16"], stdout=subprocess.PIPE, text=True)
    try:
        url = srv.stdout.readline().strip()
        # slow replies so the build is still embedding when the server dies
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(url + "/_control",
                                                      data=b'{"slow": 0.05}', method="POST"))
        p = subprocess.Popen([str(annpack.exe), "build", "--input", big, "--text-col", "text",
                              "--id-col", "id", "--output", tmp_path / "P", "--embedder", "ollama", "--model", "m",
                              "--embed-url", url],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        srv.send_signal(signal.SIGKILL)
        srv.wait()
        _, err = p.communicate(timeout=60)
        assert p.returncode == 1, err
        assert "api/embed" in err
        assert sorted(x.name for x in tmp_path.iterdir()) == ["big.csv", "docs.csv"]
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def test_canary_mismatch_refuses_text_queries(annpack, server, docs, tmp_path):
    out = tmp_path / "P"
    build(annpack, server, docs, out)
    server.set(variant="retrained")
    r = annpack("search", out, "espresso", "--embed-url", server.url + "/v1", check=1)
    assert 'model "test-model"' in r.err and "does not embed as the build did" in r.err
    assert "cosine" in r.err
    server.set(variant=None)
    annpack.ok("search", out, "espresso", "--embed-url", server.url + "/v1")


def test_tei_model_checked_against_info(annpack, server, docs, tmp_path):
    r = build(annpack, server, docs, tmp_path / "P", "tei", "--model", "other-model", check=1)
    assert 'serves model "test-model", not "other-model"' in r.err


def test_embed_dim_asked_and_checked(annpack, server, docs, tmp_path):
    out = tmp_path / "P"
    build(annpack, server, docs, out, "openai", "--embed-dim", "16")
    assert manifest(out)["embedder"]["dim"] == 16
    assert all(r["dimensions"] == 16 for r in server.embedding_requests())
    r = build(annpack, server, docs, tmp_path / "Q", "ollama", "--embed-dim", "16", check=1)
    assert "dim 32, not the 16 asked for" in r.err


def test_usage_errors(annpack, server, docs, tmp_path):
    r = annpack("build", "--input", docs, "--text-col", "text", "--output", tmp_path / "P",
                "--embedder", "openai", "--embed-url", server.url, check=2)
    assert "needs --model" in r.err
    r = annpack("build", "--input", docs, "--text-col", "text", "--output", tmp_path / "P",
                "--model", "m", check=2)
    assert "need --embedder" in r.err
    r = annpack("build", "--input", docs, "--text-col", "text", "--output", tmp_path / "P",
                "--embedder", "bert", check=2)
    assert "hash, openai, tei or ollama" in r.err
    r = annpack("build", "--input", docs, "--text-col", "text", "--output", tmp_path / "P",
                "--embedder", "openai", "--model", "m", "--embed-url", "ftp://x", check=1)
    assert "not http:// or https://" in r.err
    r = annpack("build", "--input", docs, "--text-col", "text", "--output", tmp_path / "P",
                "--embedder", "openai", "--model", "m", check=1, env={"ANNPACK_EMBED_URL": ""})
    assert "no embedding endpoint" in r.err
    assert "--embed-url" in annpack.ok("build", "--help").out
    assert "--embed-url" in annpack.ok("search", "--help").out
    assert leftovers(tmp_path) == []


def test_progress_events_when_piped(annpack, server, docs, tmp_path):
    r = build(annpack, server, docs, tmp_path / "P", env={"ANNPACK_LOG_JSON": "1"})
    ev = [json.loads(l) for l in r.err.splitlines() if l.strip()]
    emb = [e for e in ev if "rows/s" in e["msg"]]
    assert emb and "200 of about 200 rows" in emb[-1]["msg"]


def test_vectors_pack_names_its_model(annpack, server, tmp_path):
    """--vectors with an HTTP embedder: the given vectors, text queries through the model."""
    rs = rows(50)
    from embed_server import embed_text
    with open(tmp_path / "v.fvecs", "wb") as f:
        for _, t in rs:
            f.write(struct.pack("<i32f", 32, *embed_text(t, 32, "test-model")))
    (tmp_path / "meta.csv").write_text("text\n" + "".join(t + "\n" for _, t in rs))
    out = tmp_path / "P"
    annpack.ok("build", "--vectors", tmp_path / "v.fvecs", "--input", tmp_path / "meta.csv",
               "--output", out, "--embedder", "openai", "--model", "test-model", "--embed-url",
               server.url + "/v1")
    assert manifest(out)["embedder"]["name"] == "openai"
    hit = annpack.ok("search", out, rs[7][1], "--embed-url", server.url + "/v1").json()
    assert hit["results"][0]["id"] == 7 and hit["results"][0]["score"] > 0.999
    # a model of another dim is refused
    r = annpack("build", "--vectors", tmp_path / "v.fvecs", "--output", tmp_path / "Q",
                "--embedder", "openai", "--model", "test-model", "--embed-dim", "16",
                "--embed-url", server.url + "/v1", check=1)
    assert "dim" in r.err


def test_packset_base_delta_rebase(annpack, server, docs, tmp_path):
    ps = tmp_path / "ps"
    url = server.url + "/v1"
    annpack.ok("packset", "build-base", "--input", docs, "--packset", ps, "--embedder", "openai",
               "--model", "test-model", "--embed-url", url)
    add = tmp_path / "add.csv"
    write_csv(add, [(1000, "volcano glacier"), (1001, "espresso volcano")])
    server.clear()
    annpack.ok("packset", "build-delta", "--packset", ps, "--add", add, "--delete-ids", "3",
               "--out", ps / "deltas" / "0001.delta", "--embed-url", url)
    sent = [t for r in server.embedding_requests() for t in r["inputs"]]
    assert "volcano glacier" in sent and len(sent) == 3 + 2  # canaries checked, then the rows
    base_e = manifest(ps / "base")["embedder"]
    assert manifest(ps / "deltas" / "0001.delta")["embedder"] == base_e
    hit = annpack.ok("search", ps, "volcano glacier", "--embed-url", url).json()["results"][0]
    assert hit["id"] == 1000 and hit["layer"] == 1
    # the model options belong to build-base
    r = annpack("packset", "build-delta", "--packset", ps, "--add", add, "--out",
                ps / "deltas" / "0002.delta", "--model", "x", check=2)
    assert "build-base" in r.err
    # another model behind the endpoint: the delta is refused before any row is embedded
    server.set(variant="v2")
    r = annpack("packset", "build-delta", "--packset", ps, "--add", add, "--out",
                ps / "deltas" / "0002.delta", "--embed-url", url, check=1)
    assert "does not embed as the build did" in r.err
    assert not (ps / "deltas" / "0002.delta").exists()
    assert sorted(x.name for x in (ps / "deltas").iterdir()) == ["0001.delta"]
    server.set(model="model-b", variant=None)
    r = annpack("packset", "build-delta", "--packset", ps, "--add", add, "--out",
                ps / "deltas" / "0002.delta", "--embed-url", url, check=1)
    assert 'model test-model not found' in r.err
    server.set(model="test-model")
    # rebase reuses the stored vectors: no endpoint needed, no request sent
    server.clear()
    annpack.ok("packset", "rebase", "--packset", ps, "--out", tmp_path / "ps2",
               env={"ANNPACK_EMBED_URL": ""})
    assert server.embedding_requests() == []
    hit2 = annpack.ok("search", tmp_path / "ps2", "volcano glacier", "--embed-url",
                      url).json()["results"][0]
    assert hit2["id"] == 1000 and abs(hit2["score"] - hit["score"]) < 1e-6


def test_delta_of_another_model_refused(annpack, server, docs, tmp_path):
    """A delta whose pack records another model is refused by the view (the fingerprints
    differ), whatever its rows."""
    url = server.url + "/v1"
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", docs, "--packset", ps, "--embedder", "openai",
               "--model", "test-model", "--embed-url", url)
    add = tmp_path / "add.csv"
    write_csv(add, [(1000, "volcano glacier")])
    d = tmp_path / "d1"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--add", add, "--out", d,
               "--embed-url", url)
    m = json.loads((d / "pack.manifest.json").read_text())
    assert m["embedder"]["model"] == "test-model"
    # the same delta, its manifests (consistently rehashed) claiming another model: refused
    import hashlib
    m["embedder"]["model"] = "other-model"
    raw = json.dumps(m).encode()
    (d / "pack.manifest.json").write_bytes(raw)
    dm = json.loads((d / "delta.manifest.json").read_text())
    dm["embedder"]["model"] = "other-model"
    dm["files"]["pack.manifest.json"] = {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    (d / "delta.manifest.json").write_text(json.dumps(dm))
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", d, check=1)
    assert "embedder" in r.err and "other-model" in r.err, r.err


def test_python_api(server, docs, tmp_path):
    env = dict(os.environ)
    code = f"""
import sys
sys.path.insert(0, {str(pathlib.Path(__file__).resolve().parent.parent / 'python')!r})
from annpack.api import build_pack, open_pack
from annpack import AnnpackValueError
try:
    build_pack({str(docs)!r}, {str(tmp_path / 'X')!r}, id_col="id", embedder="openai",
               model="test-model", embed_url={server.url + '/v1'!r}, offline=True)
    raise SystemExit("offline=True accepted a service")
except AnnpackValueError as e:
    assert "offline=False" in str(e)
r = build_pack({str(docs)!r}, {str(tmp_path / 'P')!r}, id_col="id", embedder="ollama",
               model="test-model", embed_url={server.url!r}, doc_prefix="d: ")
assert r["dim"] == 32, r
with open_pack({str(tmp_path / 'P')!r}, embed_url={server.url!r}) as p:
    hits = p.search("espresso coffee", top_k=3)
    assert len(hits) == 3 and hits[0]["score"] > 0.3, hits
print("ok")
"""
    env["ANNPACK_EMBED_URL"] = ""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    assert any(t.startswith("d: ") for q in server.embedding_requests() for t in q["inputs"])


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    def run(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test-ca",
        "-days", "2")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("srv", ["-extfile", "san.ext"]), ("cli", [])):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *ext)
    return d


def test_tls_ca_file_and_client_certificate(annpack, docs, tmp_path):
    c = make_certs(tmp_path)
    s = EmbedServer(dim=32, tls=(c / "srv.pem", c / "srv.key", c / "ca.pem"))
    try:
        url = s.url + "/v1"
        base = ["build", "--input", docs, "--text-col", "text", "--id-col", "id", "--embedder",
                "openai", "--model", "test-model", "--embed-url", url]
        # the server's certificate is not one the system trusts
        r = annpack(*base, "--output", tmp_path / "A", check=1)
        assert "certificate" in r.err.lower() or "SSL" in r.err
        # trusted, but no client certificate: the server refuses the handshake
        r = annpack(*base, "--output", tmp_path / "A", "--embed-ca-file", c / "ca.pem", check=1)
        assert "https://127.0.0.1" in r.err
        annpack.ok(*base, "--output", tmp_path / "A", "--embed-ca-file", c / "ca.pem",
                   "--embed-cert", c / "cli.pem", "--embed-cert-key", c / "cli.key")
        hit = annpack.ok("search", tmp_path / "A", "espresso", "--embed-url", url,
                         "--embed-ca-file", c / "ca.pem", "--embed-cert", c / "cli.pem",
                         "--embed-cert-key", c / "cli.key").json()
        assert hit["results"]
        r = annpack(*base, "--output", tmp_path / "B", "--embed-cert", c / "cli.pem", check=2)
        assert "go together" in r.err
    finally:
        s.stop()


def test_progress_bar_on_a_terminal(annpack, server, docs, tmp_path):
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(annpack.exe, [annpack.exe, "build", "--input", str(docs), "--text-col", "text",
                               "--id-col", "id",
                               "--output", str(tmp_path / "P"), "--embedder", "ollama",
                               "--model", "m", "--embed-url", server.url])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = out.decode(errors="replace")
    assert "embed" in text and "rows/s" in text and "ETA" in text and "%" in text


def test_bad_canaries_in_a_manifest_are_refused(annpack, server, docs, tmp_path):
    out = tmp_path / "P"
    build(annpack, server, docs, out)
    m = manifest(out)
    m["embedder"]["canaries"]["vectors_f32le_base64"][1] = "AAAA"
    (out / "pack.manifest.json").write_text(json.dumps(m))
    r = annpack("search", out, "espresso", "--embed-url", server.url + "/v1", check=1)
    assert "canary 1 vector is not base64 of 32 finite float32" in r.err
    m["embedder"]["canaries"]["vectors_f32le_base64"][1] = m["embedder"]["canaries"][
        "vectors_f32le_base64"][0]
    m["embedder"]["normalize"] = "none"
    (out / "pack.manifest.json").write_text(json.dumps(m))
    r = annpack("search", out, "espresso", "--embed-url", server.url + "/v1", check=1)
    assert 'normalize "none" is not supported' in r.err


def test_timeouts_are_retried_then_fail(annpack, server, docs, tmp_path):
    server.set(slow=1.0)
    t0 = time.monotonic()
    r = build(annpack, server, docs, tmp_path / "P", "openai", "--embed-timeout", "150", check=1,
              env={"ANNPACK_LOG_LEVEL": "INFO"})
    assert "retrying" in r.err and "5 attempts" in r.err
    assert "timed out" in r.err.lower() or "timeout" in r.err.lower()
    assert time.monotonic() - t0 < 30
    assert leftovers(tmp_path) == []
