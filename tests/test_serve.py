"""annpack serve and annpack smoke: real annpackfs mounts behind a real nginx, checked over
HTTP, and nothing left behind afterwards (mounts, processes, temporary directories)."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import EXAMPLES, make_signed_packset
from servelib import Serve, alive, assert_clean, env_with_tmp, fetch, mounts_under


@pytest.fixture
def signed_ps(annpack, tmp_path):
    return make_signed_packset(annpack, tmp_path, delete="0,2")


def smoke(annpack, source, tmp, *args, env=None):
    r = annpack("smoke", source, *args, env=env_with_tmp(tmp, env), timeout=300)
    assert_clean(tmp)
    return r


# ---- help and usage ----

def test_help(annpack):
    for cmd in ("serve", "smoke"):
        r = annpack.ok(cmd, "--help")
        assert r.out.startswith(f"usage: annpack {cmd} DIR")
        assert "--port" in r.out and "--pubkey" in r.out
    top = annpack.ok("--help").out
    assert "serve" in top and "smoke" in top


@pytest.mark.parametrize("args,needle", [
    ([], "expected DIR"),
    (["a", "b"], "expected one DIR"),
    (["d", "--port", "70000"], "--port expects an integer in [0, 65535]"),
    (["d", "--port", "x"], "--port expects an integer"),
    (["d", "--port"], "--port needs a value"),
    (["d", "--bogus"], "unknown option '--bogus'"),
    (["d", "--host", ""], "--host must not be empty"),
])
@pytest.mark.parametrize("cmd", ["serve", "smoke"])
def test_usage_errors(annpack, cmd, args, needle):
    r = annpack(cmd, *args, check=2)
    assert needle in r.err, r
    assert f"Try 'annpack {cmd} --help'" in r.err


# ---- smoke ----

def test_smoke_pack(annpack, tiny_pack, tmp_path):
    r = smoke(annpack, tiny_pack, tmp_path / "t")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[-1] == "PASS smoke"
    for check in ("serve", "page", "health", "manifest", "range", "meta", "doc", "query"):
        assert any(l.startswith(f"ok   {check} ") for l in lines), (check, r.out)
    assert "the text of document 0 finds it first" in r.out
    assert r.err == ""


def test_smoke_signed_packset(annpack, signed_ps, tmp_path):
    d, _, pub = signed_ps
    r = smoke(annpack, d, tmp_path / "t", "--pubkey", pub)
    assert r.rc == 0, r
    assert "signature verified" in r.out
    # Ids 0 and 2 are deleted by the delta: the first live row is document 1.
    assert "the text of document 1 finds it first" in r.out


def test_smoke_reads_the_text_column_from_the_source(annpack, tmp_path):
    """The virtual manifest has no build block: smoke falls back to the source's
    build.text_col (here "body", so a "text"-only fallback would fail)."""
    csv = tmp_path / "docs.csv"
    src = (EXAMPLES / "tiny_docs.csv").read_text()
    assert src.startswith("id,title,text\n")
    csv.write_text("id,title,body\n" + src.split("\n", 1)[1])
    pack = tmp_path / "pack"
    annpack.ok("build", "--input", csv, "--text-col", "body", "--id-col", "id", "--output",
               pack, "--lists", 4, "--seed", 1)
    r = smoke(annpack, pack, tmp_path / "t")
    assert r.rc == 0, r


@pytest.mark.parametrize("what", ["annpack", "meta", "manifest"])
def test_smoke_tampered_pack_fails(annpack, tiny_pack, tmp_path, what):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_pack, bad)
    name = {"annpack": "pack.annpack", "meta": "pack.meta.jsonl.zst",
            "manifest": "pack.manifest.json"}[what]
    data = bytearray((bad / name).read_bytes())
    if what == "manifest":
        changed = re.sub(rb'("n_vectors":\s*)40', rb"\g<1>41", bytes(data), count=1)
        assert changed != data
        data = bytearray(changed)
    else:
        data[len(data) // 2] ^= 0x01
    (bad / name).write_bytes(bytes(data))
    r = smoke(annpack, bad, tmp_path / "t")
    assert r.rc == 1, r
    assert "PASS" not in r.out
    err = r.err.strip().splitlines()
    assert err[-1].startswith("annpack smoke: FAIL serve: annpackfs: refusing to mount"), r
    if what != "manifest":
        assert name in err[-1] and "does not match pack.digests" in err[-1], r


def test_smoke_wrong_key_fails(annpack, signed_ps, tmp_path):
    d, _, _ = signed_ps
    annpack.ok("keygen", "--out", tmp_path / "other")
    r = smoke(annpack, d, tmp_path / "t", "--pubkey", tmp_path / "other.pub")
    assert r.rc == 1, r
    assert "FAIL serve: annpackfs: refusing to mount" in r.err and "signature" in r.err, r


def listening_socket():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


@pytest.mark.parametrize("cmd", ["smoke", "serve"])
def test_port_in_use(annpack, tiny_pack, tmp_path, cmd):
    s, port = listening_socket()
    try:
        r = annpack(cmd, tiny_pack, "--port", port, env=env_with_tmp(tmp_path / "t"),
                    timeout=120)
    finally:
        s.close()
    assert r.rc == 1, r
    assert f"port {port} on 127.0.0.1 is in use" in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert_clean(tmp_path / "t")


def test_smoke_names_a_failing_check(annpack, tiny_pack, tmp_path):
    """A page directory without the app: the 'page' check fails, everything is stopped."""
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>not the page</title>\n")
    r = smoke(annpack, tiny_pack, tmp_path / "t", env={"ANNPACK_WEB_DIR": str(web)})
    assert r.rc == 1, r
    assert r.err.strip().splitlines()[-1].startswith("annpack smoke: FAIL page: GET /"), r


SILENT_NGINX = """#!/usr/bin/python3
# Stands in for nginx: binds the config's address, writes the pid file, then accepts
# connections and never answers.
import os, re, socket, sys
conf = open(sys.argv[sys.argv.index("-c") + 1]).read()
host, port = re.search(r"^\\s*listen (\\S+);", conf, re.M).group(1).rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen()
open(os.path.join(sys.argv[sys.argv.index("-p") + 1], "nginx.pid"), "w").write(str(os.getpid()))
held = []
while True:
    held.append(s.accept()[0])
"""


def test_smoke_interrupted_while_a_request_hangs(annpack, tiny_pack, tmp_path):
    """Ctrl-C while a request waits for an answer that never comes: smoke stops at once
    (not after its 60 s timeout), names the check and the URL, and cleans up."""
    fake = tmp_path / "silent-nginx"
    fake.write_text(SILENT_NGINX)
    fake.chmod(0o755)
    t = tmp_path / "t"
    p = subprocess.Popen([str(annpack.exe), "smoke", str(tiny_pack)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=env_with_tmp(t, {"ANNPACK_NGINX": str(fake)}))
    try:
        first = p.stdout.readline()
        assert first.startswith("ok   serve "), first
        time.sleep(0.5)  # the page request is under way
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert time.time() - t0 < 15, err
    assert p.returncode == 1, (out, err)
    last = err.strip().splitlines()[-1]
    assert re.match(r"annpack smoke: FAIL page: GET http://127\.0\.0\.1:\d+/: interrupted", last), err
    assert_clean(t)


def test_missing_nginx_says_how_to_install(annpack, tiny_pack, tmp_path):
    r = annpack("serve", tiny_pack, "--port", 0,
                env=env_with_tmp(tmp_path / "t", {"ANNPACK_NGINX": str(tmp_path / "none")}))
    assert r.rc == 1, r
    assert "nginx not found" in r.err and "apt-get install nginx-light" in r.err, r
    assert_clean(tmp_path / "t")


@pytest.mark.parametrize("output,needle", [
    ("nginx: [emerg] unknown directive \"frobnicate\" in nginx.conf:3",
     "nginx failed to start: nginx: [emerg] unknown directive"),
    ("nginx: [emerg] bind() to 127.0.0.1:1 failed (98: Address already in use)",
     "is in use (nginx could not bind it)"),
])
def test_nginx_failing_to_start_cleans_up(annpack, tiny_pack, tmp_path, output, needle):
    """The mount is already up when nginx fails: it must be taken down again."""
    fake = tmp_path / "fake-nginx"
    fake.write_text(f"#!/bin/sh\necho '{output}' >&2\nexit 1\n")
    fake.chmod(0o755)
    r = annpack("serve", tiny_pack, "--port", 0,
                env=env_with_tmp(tmp_path / "t", {"ANNPACK_NGINX": str(fake)}), timeout=120)
    assert r.rc == 1, r
    assert needle in r.err, r
    assert_clean(tmp_path / "t")


# ---- serve ----

def test_serve_end_to_end_and_sigterm(tiny_pack, tmp_path):
    t = tmp_path / "t"
    s = Serve(tiny_pack, t)
    try:
        assert s.url.startswith("http://127.0.0.1:") and s.url.endswith("/")
        assert "serving" in s.stderr() and s.url in s.stderr()
        parts = s.parts()
        assert len(parts) >= 3, parts  # annpackfs, nginx master (+ worker, fuse helper)
        assert len(mounts_under(t)) == 1

        st, h, body = fetch(s.url)
        assert st == 200 and h["Content-Type"].startswith("text/html") and b'src="app' in body
        assert h["Access-Control-Allow-Origin"] == "*"
        assert "script-src 'self'" in h["Content-Security-Policy"]
        st, h, body = fetch(s.url + "health")
        health = json.loads(body)
        assert st == 200 and health["status"] == "ok" and health["n_vectors"] == 40
        st, _, body = fetch(s.url + "pack/pack.manifest.json")
        man = json.loads(body)
        assert man["packset"]["signature"] == "unchecked"

        src = (tiny_pack / "pack.annpack").read_bytes()
        st, h, body = fetch(s.url + "pack/pack.annpack", {"Range": "bytes=100-1123"})
        assert st == 206 and body == src[100:1124]
        assert h["Content-Range"] == f"bytes 100-1123/{len(src)}"
        st, _, body = fetch(s.url + "pack/pack.annpack")
        assert hashlib.sha256(body).hexdigest() == man["files"]["pack.annpack"]["sha256"]
        st, _, body = fetch(s.url + "pack/pack.meta.jsonl")
        assert hashlib.sha256(body).hexdigest() == man["files"]["pack.meta.jsonl"]["sha256"]

        # The query string goes into the file name; %2F and %3F stay inside the text.
        st, _, body = fetch(s.url + "query/water%2Fplants%3F%20now?k=2&probe=4")
        res = json.loads(body)
        assert st == 200 and res["query"] == "water/plants? now" and res["k"] == 2
        assert len(res["results"]) == 2
        st, _, body = fetch(s.url + "query/photosynthesis%20sunlight?k=1")
        assert json.loads(body)["results"][0]["id"] == 11
        st, _, body = fetch(s.url + "doc/7")
        assert st == 200 and json.loads(body)["id"] == 7
        assert fetch(s.url + "doc/999")[0] == 404
        assert fetch(s.url + "query/x?k=0")[0] == 400  # the mount refuses k=0
        # Only the three pack files are under /pack/.
        assert fetch(s.url + "pack/health")[0] == 404
        assert fetch(s.url + "pack/query/water")[0] == 404
        assert fetch(s.url + "pack.annpack")[0] == 404
        # CORS preflight for a Range read from another origin.
        st, h, _ = fetch(s.url + "pack/pack.annpack", {"Origin": "http://example.test",
                                                     "Access-Control-Request-Headers": "range"},
                         method="OPTIONS")
        assert st == 204 and "Range" in h["Access-Control-Allow-Headers"]
    finally:
        rc = s.stop(signal.SIGTERM)
    assert rc == 0, s.stderr()
    assert "stopped (signal 15), unmounted and cleaned up" in s.stderr()
    assert_clean(t, parts)


def test_serve_sigint(tiny_pack, tmp_path):
    s = Serve(tiny_pack, tmp_path / "t")
    parts = s.parts()
    assert fetch(s.url + "health")[0] == 200
    assert s.stop(signal.SIGINT) == 0, s.stderr()
    assert_clean(tmp_path / "t", parts)


def test_serve_signed_packset_reload_on_sighup(annpack, signed_ps, tmp_path):
    d, pem, pub = signed_ps
    s = Serve(d, tmp_path / "t", "--pubkey", pub)
    try:
        h = json.loads(fetch(s.url + "health")[2])
        assert h["signature"] == "verified" and h["generation"] == 1 and h["deltas"] == 1
        man = json.loads(fetch(s.url + "pack/pack.manifest.json")[2])
        assert man["packset"]["key_id"] == h["key_id"] and man["packset"]["delta_seqs"] == [1]
        annpack.ok("packset", "build-delta", "--packset", d, "--pubkey", pub, "--delete-ids", "5",
                   "--out", d / "deltas" / "0002.delta")
        annpack.ok("sign", d, "--key", pem)
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while json.loads(fetch(s.url + "health")[2])["generation"] != 2:
            assert time.time() < deadline, s.stderr()
            time.sleep(0.1)
        assert fetch(s.url + "doc/5")[0] == 404
        assert s.proc.poll() is None
    finally:
        parts = s.parts()
        assert s.stop() == 0, s.stderr()
    assert_clean(tmp_path / "t", parts)


def test_serve_exits_when_the_mount_dies(tiny_pack, tmp_path):
    s = Serve(tiny_pack, tmp_path / "t")
    parts = s.parts()
    fs = [p for p in parts if "annpackfs" in open(f"/proc/{p}/cmdline").read()
          and "fusermount3" not in open(f"/proc/{p}/cmdline").read()]
    assert fs, parts
    os.kill(fs[0], signal.SIGKILL)
    rc = s.proc.wait(timeout=60)
    s.stop()
    assert rc == 1
    assert "went away" in s.stderr() and "stopped and cleaned up" in s.stderr()
    assert_clean(tmp_path / "t", parts)


def test_serve_killed_leaves_no_mount_or_process(tiny_pack, tmp_path):
    """SIGKILL cannot be handled: PR_SET_PDEATHSIG stops the children and annpackfs's
    auto_unmount removes the mount; only the temporary directory stays."""
    t = tmp_path / "t"
    s = Serve(tiny_pack, t)
    parts = s.parts()
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    deadline = time.time() + 20
    while (mounts_under(t) or any(alive(p) for p in parts)) and time.time() < deadline:
        time.sleep(0.1)
    assert not mounts_under(t) and not [p for p in parts if alive(p)]
    for d in t.iterdir():
        shutil.rmtree(d)
    assert_clean(t)


def test_serve_exits_when_nginx_dies(tiny_pack, tmp_path):
    """nginx's workers outlive a SIGKILLed master: serve kills its process group."""
    s = Serve(tiny_pack, tmp_path / "t")
    parts = s.parts()
    master = [p for p in parts if open(f"/proc/{p}/cmdline").read().startswith("nginx: master")]
    assert master, parts
    os.kill(master[0], signal.SIGKILL)
    rc = s.proc.wait(timeout=60)
    s.stop()
    assert rc == 1
    assert "nginx exited unexpectedly" in s.stderr(), s.stderr()
    assert_clean(tmp_path / "t", parts)


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_smoke_ipv6(annpack, tiny_pack, tmp_path):
    r = smoke(annpack, tiny_pack, tmp_path / "t", "--host", "::1")
    assert r.rc == 0, r
    assert "on http://[::1]:" in r.out


def test_smoke_tmpdir_with_space_and_tab(annpack, tiny_pack, tmp_path):
    """The kernel's mount table escapes a space or tab in the mountpoint (as \\040, \\011):
    serve still sees its mount come up and go away, and cleans up."""
    t = tmp_path / "a dir\twith blanks"
    r = smoke(annpack, tiny_pack, t)
    assert r.rc == 0, r
    assert r.out.splitlines()[-1] == "PASS smoke"


def test_smoke_ignores_proxy_settings(annpack, tiny_pack, tmp_path):
    """smoke talks to its own nginx on loopback: proxy variables (which HTTP libraries
    honour by default) must not send its requests elsewhere."""
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env = {"http_proxy": dead, "HTTP_PROXY": dead, "all_proxy": dead, "ALL_PROXY": dead,
           "no_proxy": "", "NO_PROXY": ""}
    r = smoke(annpack, tiny_pack, tmp_path / "t", env=env)
    assert r.rc == 0, r


# ---- HTTP semantics of queries: examples/nginx.conf and serve's config alike ----

REFUSED = [
    ("query/x?k=0", "k must be an integer in [1, 1000]"),
    ("query/x?k=1001", "k must be an integer in [1, 1000]"),
    ("query/x?probe=0", "probe must be an integer in [1, 65536]"),
    ("query/x?bogus=1", "unknown or repeated query parameter \"bogus\""),
    ("query/x?k=1&k=2", "unknown or repeated query parameter \"k\""),
    ("query/", "query text is empty or only whitespace"),
    ("query/?k=3", "query text is empty or only whitespace"),
    ("query/%20%09%20", "query text is empty or only whitespace"),
    ("query/%FF", "query text is not valid UTF-8"),
    ("query/caf%C3", "query text is not valid UTF-8"),
    ("query/" + "a" * 1100, "query text of 1100 bytes exceeds the cap of 1024"),
    ("query/" + "a" * 1000 + "%C3%A9" * 20, "query text of 1040 bytes exceeds the cap of 1024"),
    ("query/" + "%41" * 1100, "query path of more than 3072 bytes"),
    ("vquery/!!!!", "not base64url"),
    ("vquery/AAAA?k=0", "k must be an integer in [1, 1000]"),
    ("vquery/k=0/AAAA", "k must be an integer in [1, 1000]"),
    ("query/a/b", "malformed query path"),
    ("query/..", "malformed query path"),
    ("vquery/k=2/..", "malformed query path"),
]


def check_http_queries(base, log):
    """base: the URL the mount's files are under; log(): nginx's error log so far."""
    for path, reason in REFUSED:
        st, h, body = fetch(base + path)
        assert st == 400, (path, st, body[:200])
        assert h["Content-Type"].startswith("application/json"), (path, h["Content-Type"])
        assert h["Access-Control-Allow-Origin"] == "*", path
        err = json.loads(body)["error"]
        assert reason in err, (path, err)
    # A malformed %-escape is refused by nginx itself while parsing the request (its own 400).
    assert fetch(base + "query/bad%zz")[0] == 400
    # Preflight, as `annpack serve` answers it.
    st, h, _ = fetch(base + "query/x?k=3", {"Origin": "http://example.test",
                                          "Access-Control-Request-Method": "GET"},
                     method="OPTIONS")
    assert st == 204 and h["Access-Control-Allow-Origin"] == "*", st
    # Encoded slashes and dots stay inside the text: a query, not /health.
    st, _, body = fetch(base + "query/x%2F..%2F..%2Fhealth")
    r = json.loads(body)
    assert st == 200 and r["query"] == "x/../../health" and "results" in r, body[:200]
    # (One that climbs above the root once decoded is nginx's own 400, never /health.)
    assert fetch(base + "query/..%2F..%2Fhealth?k=2")[0] == 400
    # The name cap counts decoded bytes: 1,800 encoded bytes of 600 decoded ones pass.
    st, _, body = fetch(base + "query/" + "%41" * 600 + "?k=1")
    assert st == 200 and json.loads(body)["query"] == "A" * 600
    # A query file is JSON whatever its name ends with.
    st, h, body = fetch(base + "query/%3Cb%3Ehi%3C%2Fb%3E.html")
    assert st == 200 and h["Content-Type"].startswith("application/json"), h["Content-Type"]
    assert fetch(base + "refusal/query/x?k=0")[0] == 404  # internal only
    assert fetch(base + "doc/999")[0] == 404
    assert "[crit]" not in log() and "[alert]" not in log(), log()


def test_http_queries_through_examples_nginx_conf(signed_ps, tmp_path):
    from conftest import ROOT
    from mountlib import Mount, Nginx
    d, _, pub = signed_ps
    m = Mount(d, tmp_path / "m", f"pubkey={pub}", expect_errors=False)
    ng = None
    try:
        ng = Nginx(m.mnt, tmp_path, ROOT / "examples" / "nginx.conf")
        logf = tmp_path / "nginx-logs" / "error.log"
        check_http_queries(ng.url + "/", lambda: logf.read_text() if logf.exists() else "")
    finally:
        if ng:
            ng.close()
        m.close()


def test_http_queries_through_serve(signed_ps, tmp_path):
    d, _, pub = signed_ps
    s = Serve(d, tmp_path / "t", "--pubkey", pub)
    try:
        check_http_queries(s.url, s.stderr)
    finally:
        parts = s.parts()
        assert s.stop() == 0, s.stderr()
    assert_clean(tmp_path / "t", parts)


def nginx_rules(conf):
    """The parts of an nginx config that decide how a request reaches the mount: the query
    map, the server-level rules, and the mount's locations (comments and spacing aside)."""
    text = "\n".join(l.split("#", 1)[0].rstrip() for l in conf.splitlines()
                     if not l.lstrip().startswith("#"))
    text = re.sub(r"\s+", " ", text)
    out = {"map": re.search(r"map \$request_uri \$annpack_query_file \{.*?\}", text).group(0)}
    for m in re.finditer(r"if \(([^)]*)\) \{([^}]*)\}", text):
        out["if " + m.group(1).strip()] = m.group(2).strip()
    for m in re.finditer(r"location ([^{]*?) \{((?:[^{}]|\{[^{}]*\})*)\}", text):
        out["location " + m.group(1).strip()] = m.group(2).strip()
    return out


def nginx_template():
    """tools/serve/nginx_conf.py (render, pattern, EXAMPLE_VALUES) and the template text."""
    import importlib.util
    from conftest import ROOT
    d = ROOT / "tools" / "serve"
    spec = importlib.util.spec_from_file_location("nginx_conf", d / "nginx_conf.py")
    nc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nc)
    return nc, (d / "nginx.conf.in").read_text()


def test_nginx_configs_agree(tiny_pack, tmp_path):
    """One template, tools/serve/nginx.conf.in: examples/nginx.conf is exactly it with the
    example's values, and the config `annpack serve` writes holds it with serve's values
    (its address, its mountpoint, /pack/, the page) inside the http{} block of its private
    nginx, which adds nothing that routes a request. So both route queries, refusals,
    preflights and the mount's files identically."""
    from conftest import ROOT
    nc, template = nginx_template()
    example_text = (ROOT / "examples" / "nginx.conf").read_text()
    assert example_text == nc.render(template, nc.EXAMPLE_VALUES), \
        "examples/nginx.conf differs from the template: run `ninja -C build nginx-example`"
    example = nginx_rules(example_text)
    s = Serve(tiny_pack, tmp_path / "t")
    try:
        conf = next((tmp_path / "t").glob("annpack-serve-*/nginx/nginx.conf")).read_text()
        mnt = str(next((tmp_path / "t").glob("annpack-serve-*/mnt")).resolve())
    finally:
        parts = s.parts()
        assert s.stop() == 0, s.stderr()
    assert_clean(tmp_path / "t", parts)
    m = nc.pattern(template).search(conf)
    assert m, conf
    v = m.groupdict()
    assert v["LISTEN"] == s.url[len("http://"):-1], v
    assert v["MOUNT"] == mnt and v["PACK_URL"] == "/pack/", v
    assert re.fullmatch(r' root "/[^"]+"; index index\.html;', v["PAGE"]), v
    wrapper = conf[:m.start()] + conf[m.end():]
    for word in ("server", "location", "map", "add_header", "root", "listen", "if"):
        assert not re.search(rf"^\s*{word}\b", wrapper, flags=re.M), (word, wrapper)
    served = nginx_rules(conf)
    keys = ["map", "if $request_method = OPTIONS", "location = /annpack-query",
            "location @annpack_refused", "location /refusal/", "location /query/",
            "location /vquery/", "location /doc/", "location = /health", "location = /stats"]
    keys += [k for k in example if k.startswith("if ")]
    for k in keys:
        assert k in example, (k, sorted(example))
        assert served.get(k) == example[k], (k, served.get(k), example[k])
