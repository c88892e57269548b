"""annpackfs: real FUSE mounts of signed packsets, with real nginx in front."""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from conftest import EXAMPLES, ROOT, make_signed_packset
from mountlib import ANNPACKFS, Mount, Nginx, is_mounted


@pytest.fixture
def signed_ps(annpack, tmp_path):
    return make_signed_packset(annpack, tmp_path)


def qpath(mnt, text, **params):
    name = urllib.parse.quote(text, safe=" ")
    if params:
        name += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return mnt / "query" / name


def test_query_equals_search(annpack, signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    for text in ["kombucha tea", "bicycle chain degreaser", "a/b?c%d", "東京 café"]:
        got = json.loads(qpath(m.mnt, text, k=5, probe=4).read_text())
        want = annpack.ok("search", d, text, "-k", 5, "--probe", 4).json()
        assert got["query"] == text and got["generation"] == 1
        strip = lambda r: [(h["id"], h["score"], h["layer"], h["meta"]) for h in r["results"]]
        assert strip(got) == strip(want)
    # The same name gives identical bytes, and st_size is exact.
    p = qpath(m.mnt, "kombucha tea")
    a, b = p.read_bytes(), p.read_bytes()
    assert a == b and os.stat(p).st_size == len(a)


def test_single_thread_loop_serves_the_same(annpack, signed_ps, mount):
    """-o single_thread: libfuse's single-threaded loop answers what the default pool does,
    also with concurrent readers (each request then waits for the one before it)."""
    d, pem, pub = signed_ps
    multi = mount(d, f"pubkey={pub}")
    single = mount(d, f"pubkey={pub}", "single_thread")
    texts = [f"tea {i} bicycle" for i in range(24)]

    def read_all(m):
        got, errors = {}, []

        def reader(chunk):
            try:
                for t in chunk:
                    got[t] = qpath(m.mnt, t, k=5, probe=4).read_bytes()
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        th = [threading.Thread(target=reader, args=(texts[i::6],)) for i in range(6)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        assert not errors, errors
        return got
    want, got = read_all(multi), read_all(single)
    answer = lambda b: {k: v for k, v in json.loads(b).items() if k != "took_ms"}
    assert {t: answer(b) for t, b in got.items()} == {
        t: answer(b) for t, b in want.items()}
    assert json.loads((single.mnt / "health").read_text())["status"] == "ok"
    # The daemon runs one FUSE worker: its threads are fewer than the pool's after load.
    tasks = lambda m: len(os.listdir(f"/proc/{m.pid()}/task"))
    assert tasks(single) < tasks(multi), (tasks(single), tasks(multi))


def test_doc_health_listing(signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    assert json.loads((m.mnt / "doc" / "7").read_text())["title"].endswith("(updated)")
    assert json.loads((m.mnt / "doc" / "40").read_text())["id"] == 40
    assert json.loads((m.mnt / "doc" / "3").read_text())["id"] == 3
    for missing in ["1", "2", "12345", "abc"]:
        assert not (m.mnt / "doc" / missing).exists()
    h = json.loads((m.mnt / "health").read_text())
    assert h["status"] == "ok" and h["generation"] == 1 and h["n_vectors"] == 40
    assert h["signature"] == "verified" and len(h["key_id"]) == 16
    assert sorted(os.listdir(m.mnt)) == sorted(["pack.manifest.json", "pack.annpack", "pack.idf",
                                                "pack.meta.jsonl", "health", "stats", "query",
                                                "vquery", "doc", "refusal"])
    assert sorted(os.listdir(m.mnt / "refusal")) == ["query", "vquery"]
    ls = subprocess.run(["ls", "-la", m.mnt], capture_output=True, text=True, check=True).stdout
    assert "pack.annpack" in ls
    found = subprocess.run(["find", m.mnt], capture_output=True, text=True, check=True).stdout
    assert "pack.meta.jsonl" in found
    s = json.loads((m.mnt / "stats").read_text())
    assert s["docs"] >= 3


def test_bad_query_names(signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d, expect_errors=True)
    # A refused name does not exist (ENOENT); refusal/query/<name> says why.
    cases = {"x?k=0": "ENOENT", "x?k=1001": "ENOENT", "x?probe=0": "ENOENT", "x?bogus=1": "ENOENT",
             "bad%zz": "ENOENT", "x?k=1&k=2": "ENOENT", "?k=3": "ENOENT", "%20": "ENOENT"}
    import errno
    for name, code in cases.items():
        with pytest.raises(OSError) as e:
            (m.mnt / "query" / name).read_bytes()
        assert e.value.errno == getattr(errno, code), name
    with pytest.raises(OSError) as e:
        os.stat(m.mnt / "query" / ("q" * 1100))
    assert e.value.errno == errno.ENAMETOOLONG
    # A refusal is logged at WARN, one line with the name's length and the reason; the
    # rest within the same second are counted, not logged (test_mount_safety.py).
    log = m.stderr().splitlines()
    assert log[0] == ("annpackfs: WARN: query: refused name (5 bytes): "
                      "k must be an integer in [1, 1000]"), log
    assert all(l.startswith("annpackfs: WARN: query: refused name (") for l in log), log


@pytest.mark.parametrize("case", ["wrong-key", "no-signature", "tampered", "path-escape", "cap"])
def test_refusals_leave_nothing_mounted(annpack, signed_ps, tmp_path, case):
    d, pem, pub = signed_ps
    opts = f"pubkey={pub}"
    env = dict(os.environ)
    if case == "wrong-key":
        annpack.ok("keygen", "--out", tmp_path / "other")
        opts = f"pubkey={tmp_path / 'other.pub'}"
        needle = "does not verify"
    elif case == "no-signature":
        os.unlink(d / "pack.manifest.json.sig")
        needle = "signature missing"
    elif case == "tampered":
        p = d / "deltas" / "0001.delta" / "pack.annpack"
        b = bytearray(p.read_bytes())
        b[-3] ^= 1
        p.write_bytes(bytes(b))
        needle = "deltas/0001.delta/pack.annpack"
    elif case == "path-escape":
        m = json.loads((d / "pack.manifest.json").read_text())
        m["base"]["annpack"] = "../../etc/passwd"
        (d / "pack.manifest.json").write_text(json.dumps(m))
        annpack.ok("keygen", "--out", tmp_path / "k2")
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in",
                        d / "pack.manifest.json", "-out", d / "pack.manifest.json.sig"], check=True)
        needle = "path escape"
    else:
        env["ANNPACK_MAX_DIM"] = "128"
        needle = "ANNPACK_MAX_DIM"
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = subprocess.run([ANNPACKFS, d, mnt, "-o", opts], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 1 and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not is_mounted(mnt)


def test_copy_out_is_a_pack(annpack, signed_ps, mount, tmp_path):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    out = tmp_path / "copy"
    out.mkdir()
    # pack.idf: the base's corpus table of the hash embedder version 2, byte for byte
    assert (m.mnt / "pack.idf").read_bytes() == (d / "base" / "pack.idf").read_bytes()
    for f in ["pack.annpack", "pack.meta.jsonl", "pack.manifest.json", "pack.idf"]:
        subprocess.run(["cp", m.mnt / f, out / f], check=True)
    rep = annpack.ok("verify", out, "--deep").json()
    assert rep["ok"]
    for text in ["kombucha tea", "sourdough", "bicycle chain", "chess opening"]:
        for probe in (1, 2, 4):
            a = json.loads(qpath(m.mnt, text, k=10, probe=probe).read_text())["results"]
            b = annpack.ok("search", out, text, "-k", 10, "--probe", probe).json()["results"]
            assert [(h["id"], h["score"], h["meta"]) for h in a] == \
                   [(h["id"], h["score"], h["meta"]) for h in b]
    man = json.loads((m.mnt / "pack.manifest.json").read_text())
    assert man["packset"]["version"] == 2 and man["packset"]["delta_seqs"] == [1]
    assert man["packset"]["signature"] == "verified"


def test_random_ranges_equal_whole(signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d)
    whole = (m.mnt / "pack.annpack").read_bytes()
    assert len(whole) == os.stat(m.mnt / "pack.annpack").st_size
    rng = random.Random(5)
    with open(m.mnt / "pack.annpack", "rb") as f:
        for _ in range(300):
            off = rng.randrange(len(whole))
            n = rng.randrange(1, 5000)
            f.seek(off)
            assert f.read(n) == whole[off:off + n]
    meta = (m.mnt / "pack.meta.jsonl").read_bytes()
    ids = [json.loads(l)["id"] for l in meta.decode().splitlines()]
    assert ids == sorted(ids) and 1 not in ids and 40 in ids and len(ids) == 40


def test_daemon_mode_and_sigterm(signed_ps, tmp_path):
    d, pem, pub = signed_ps
    mnt = tmp_path / "bg"
    mnt.mkdir()
    r = subprocess.run([ANNPACKFS, d, mnt, "-o", f"pubkey={pub}"], capture_output=True,
                       text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        # Usable as soon as the command returns.
        assert json.loads((mnt / "health").read_text())["status"] == "ok"
        pid = int(subprocess.run(["pgrep", "-f", f"annpackfs {d} {mnt}"], capture_output=True,
                                 text=True).stdout.split()[0])
        os.kill(pid, 15)
        for _ in range(200):
            if not is_mounted(mnt):
                break
            time.sleep(0.05)
        assert not is_mounted(mnt)
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])


def test_reload_and_replay(annpack, signed_ps, mount, tmp_path):
    d, pem, pub = signed_ps
    state = tmp_path / "state.json"
    m = mount(d, f"pubkey={pub}", f"state={state}", "state_init", expect_errors=True)
    old_manifest = (d / "pack.manifest.json").read_bytes()
    old_sig = (d / "pack.manifest.json.sig").read_bytes()
    before = os.stat(m.mnt / "pack.annpack").st_mtime_ns
    src = tmp_path / "z.csv"
    src.write_text("id,text\n99,brand new zebra document\n")
    annpack.ok("packset", "build-delta", "--packset", d, "--pubkey", pub, "--add", src,
               "--out", d / "deltas" / "0002.delta")
    annpack.ok("sign", d, "--key", pem)
    m.sighup()
    for _ in range(100):
        if json.loads((m.mnt / "health").read_text())["generation"] == 2:
            break
        time.sleep(0.05)
    assert json.loads((m.mnt / "health").read_text())["generation"] == 2
    assert json.loads((m.mnt / "doc" / "99").read_text())["text"] == "brand new zebra document"
    assert json.loads(qpath(m.mnt, "zebra").read_text())["results"][0]["id"] == 99
    assert os.stat(m.mnt / "pack.annpack").st_mtime_ns != before
    assert json.loads(state.read_text())["version"] == 3
    # A replayed older signed packset is refused; the new generation keeps serving.
    (d / "pack.manifest.json").write_bytes(old_manifest)
    (d / "pack.manifest.json.sig").write_bytes(old_sig)
    m.sighup()
    time.sleep(1)
    h = json.loads((m.mnt / "health").read_text())
    assert h["generation"] == 2 and h["version"] == 3
    assert "not newer" in m.stderr()
    # An unsigned change is refused too.
    os.unlink(d / "pack.manifest.json.sig")
    m.sighup()
    time.sleep(1)
    assert json.loads((m.mnt / "health").read_text())["generation"] == 2
    assert "signature missing" in m.stderr()


def test_open_file_keeps_generation(annpack, signed_ps, mount, tmp_path):
    d, pem, pub = signed_ps
    m = mount(d, "watch")
    f = open(m.mnt / "pack.meta.jsonl", "rb")
    first = f.read(100)
    annpack.ok("packset", "build-delta", "--packset", d, "--pubkey", pub, "--delete-ids", "3,4,5",
               "--out", d / "deltas" / "0002.delta")
    for _ in range(100):  # -o watch notices the new root manifest
        if json.loads((m.mnt / "health").read_text())["generation"] == 2:
            break
        time.sleep(0.05)
    assert json.loads((m.mnt / "health").read_text())["generation"] == 2
    rest = f.read()
    f.close()
    old = first + rest
    assert len([l for l in old.splitlines()]) == 40  # the old generation, whole
    assert len((m.mnt / "pack.meta.jsonl").read_bytes().splitlines()) == 37


def test_nginx_serves_the_mount(signed_ps, mount, tmp_path):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    ng = Nginx(m.mnt, tmp_path, ROOT / "examples" / "nginx.conf")
    try:
        url = ng.url + "/query/" + urllib.parse.quote("kombucha tea") + "?k=3"
        with urllib.request.urlopen(url) as r:
            body = r.read()
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert body == qpath(m.mnt, "kombucha tea", k=3).read_bytes()
        whole = (m.mnt / "pack.annpack").read_bytes()
        req = urllib.request.Request(ng.url + "/pack.annpack", headers={"Range": "bytes=100-299"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 206 and r.read() == whole[100:300]
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(ng.url + "/doc/1")
        assert e.value.code == 404
        with urllib.request.urlopen(ng.url + "/health") as r:
            assert json.loads(r.read())["status"] == "ok"
    finally:
        ng.close()


@pytest.mark.slow
def test_load_with_reloads(annpack, signed_ps, mount, tmp_path):
    """32 concurrent readers for 30 s while 10 reloads happen: no failed read, every
    response valid JSON from one generation, RSS bounded."""
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    stop = time.time() + 30
    failures, seen = [], set()
    words = ["kombucha", "tea", "bicycle", "chain", "coffee", "solar", "bees", "volcano"]

    def reader(i):
        rng = random.Random(i)
        while time.time() < stop:
            text = " ".join(rng.sample(words, 2)) + f" {rng.randrange(50)}"
            try:
                j = json.loads(qpath(m.mnt, text, k=5).read_text())
                seen.add(j["generation"])
                assert len(j["results"]) == 5
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    pid = m.pid()
    rss = []
    for i in range(10):
        time.sleep(2.5)
        annpack.ok("packset", "build-delta", "--packset", d, "--pubkey", pub, "--delete-ids",
                   str(10 + i), "--out", d / "deltas" / f"{i + 2:04d}.delta")
        annpack.ok("sign", d, "--key", pem)
        m.sighup()
        rss.append(int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]))
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    # The last SIGHUP may still be reloading when the readers stop (a loaded machine).
    deadline = time.time() + 10
    while json.loads((m.mnt / "health").read_text())["generation"] < 11 and time.time() < deadline:
        time.sleep(0.1)
    assert json.loads((m.mnt / "health").read_text())["generation"] == 11
    assert len(seen) >= 5
    assert max(rss) < 200 * 1024, rss


def test_mount_helper_and_cli(annpack, signed_ps, tmp_path):
    """`mount -t fuse.annpackfs` (what an fstab line does, via mount.fuse3) and the
    `annpack mount/umount` conveniences."""
    d, pem, pub = signed_ps
    link = "/usr/local/sbin/annpackfs"
    created = not os.path.lexists(link)
    if created:
        os.symlink(ANNPACKFS, link)
    mnt = tmp_path / "fstab"
    mnt.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "fuse.annpackfs", d, mnt, "-o", f"pubkey={pub}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads((mnt / "health").read_text())["signature"] == "verified"
        annpack.ok("umount", mnt)
        assert not is_mounted(mnt)
        annpack.ok("mount", d, mnt, "-o", f"pubkey={pub}")
        assert json.loads((mnt / "health").read_text())["status"] == "ok"
        annpack.ok("umount", mnt)
        assert not is_mounted(mnt)
        assert annpack("umount", mnt).rc == 1
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])
        if created:
            os.unlink(link)


def test_replay_refused_across_restarts(annpack, signed_ps, tmp_path):
    d, pem, pub = signed_ps
    state = tmp_path / "state.json"
    old = {n: (d / n).read_bytes() for n in ["pack.manifest.json", "pack.manifest.json.sig"]}
    m = Mount(d, tmp_path / "m1", f"pubkey={pub}", f"state={state}", "state_init")
    m.close()
    assert json.loads(state.read_text())["version"] == 2
    annpack.ok("packset", "build-delta", "--packset", d, "--pubkey", pub, "--delete-ids", "5",
               "--out", d / "deltas" / "0002.delta")
    annpack.ok("sign", d, "--key", pem)
    m = Mount(d, tmp_path / "m2", f"pubkey={pub}", f"state={state}")
    m.close()
    assert json.loads(state.read_text())["version"] == 3
    for n, b in old.items():
        (d / n).write_bytes(b)
    mnt = tmp_path / "m3"
    mnt.mkdir()
    r = subprocess.run([ANNPACKFS, d, mnt, "-o", f"pubkey={pub},state={state}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not newer than 3" in r.stderr and not is_mounted(mnt)


def test_source_truncated_under_the_mount(annpack, tiny_pack, mount, tmp_path, monkeypatch):
    """A source file truncated after mounting gives EIO and a log line, never a crash or
    wrong bytes: the change is seen before its pages are touched (a changed source turns
    every answer into EIO, test_verified_open.py), and health says so. (A request abandoned
    at a SIGBUS would leak its buffers, so leak checking is off here.)"""
    import errno
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0")
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    m = mount(d, expect_errors=True)
    good = (m.mnt / "pack.annpack").read_bytes()
    assert json.loads(qpath(m.mnt, "espresso").read_text())["results"]
    os.truncate(d / "pack.annpack", 100)
    with pytest.raises(OSError) as e:
        with open(m.mnt / "pack.annpack", "rb", buffering=0) as f:
            # The kernel may still cache the verified pages it read before; drop them so
            # the read reaches the daemon and the truncated source.
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            f.seek(5000)
            f.read(4096)
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        qpath(m.mnt, "sourdough bread").read_bytes()
    assert e.value.errno == errno.EIO
    assert json.loads((m.mnt / "health").read_text())["status"] == "source-changed"
    assert "changed since it was verified" in m.stderr()
    assert good[:4] == b"ANNP"


def test_no_descriptor_or_memory_leak(signed_ps, mount):
    """Thousands of open/close cycles and a client killed mid-read leave the daemon's
    descriptor count and RSS flat."""
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}", "cache_mb=1")
    pid = m.pid()

    def fds():
        return len(os.listdir(f"/proc/{pid}/fd"))

    def rss():
        return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0])

    for i in range(300):  # warm up caches and thread pool
        qpath(m.mnt, f"warm {i}").read_bytes()
    fd0, rss0 = fds(), rss()
    for i in range(3000):
        with open(m.mnt / ("pack.annpack" if i % 3 else "health"), "rb") as f:
            f.read(4096)
        qpath(m.mnt, f"cycle {i % 500}").read_bytes()
    # A client killed in the middle of reading a large file.
    for _ in range(5):
        p = subprocess.Popen(["sh", "-c", f"exec cat {m.mnt / 'pack.annpack'} > /dev/null"])
        p.kill()
        p.wait()
    time.sleep(0.5)
    assert fds() <= fd0 + 2
    sanitized = "libasan" in subprocess.run(["ldd", ANNPACKFS], capture_output=True,
                                            text=True).stdout
    if not sanitized:  # ASan's quarantine and shadow memory make RSS meaningless
        assert rss() < rss0 + 20 * 1024, (rss0, rss())
    assert json.loads((m.mnt / "health").read_text())["status"] == "ok"


def test_refusal_files_say_why(signed_ps, mount):
    """refusal/query/<name> and refusal/vquery/[<params>/]<name> hold why the same name is
    refused, as {"error": ...}; a name that is not refused has no refusal file."""
    import errno
    d, pem, pub = signed_ps
    m = mount(d)
    why = lambda p: json.loads((m.mnt / "refusal" / p).read_text())["error"]
    assert why("query/x?k=0") == "k must be an integer in [1, 1000]"
    assert why("query/x?probe=0") == "probe must be an integer in [1, 65536]"
    assert why("query/bad%zz") == "query name has a malformed %-escape"
    assert why("query/%FF") == "query text is not valid UTF-8"
    assert why("query/" + "q" * 1100) == "query text of 1100 bytes exceeds the cap of 1024"
    assert why("query/x?k=1&\x01=2").startswith("unknown or repeated query parameter")
    assert "\x01" not in (m.mnt / "refusal" / "query" / "x?k=1&\x01=2").read_text()
    assert "not base64url" in why("vquery/!!!!")
    assert why("vquery/k=0/AAAA") == "k must be an integer in [1, 1000]"
    assert why("vquery/k=3&x=1/AAAA").startswith("unknown or repeated query parameter")
    for fine in ("query/kombucha", "query/kombucha?k=3"):
        with pytest.raises(OSError) as e:
            (m.mnt / "refusal" / fine).read_bytes()
        assert e.value.errno == errno.ENOENT, fine
    p = m.mnt / "refusal" / "query" / "x?k=0"
    assert os.stat(p).st_size == len(p.read_bytes())
    assert json.loads(qpath(m.mnt, "kombucha", k=3).read_text())["k"] == 3


def test_data_over_a_cap_is_eio(annpack, tmp_path, mount):
    """errno per context (MOUNT.md, "Errors"): a cap exceeded by the data served — here a
    row nested deeper than the JSON cap — is EIO for the answers that read it, never the
    ENAMETOOLONG of a name too long; other answers are unaffected."""
    import errno
    d = tmp_path / "pack"
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text", "--id-col",
               "id", "--output", d, "--lists", 4, "--seed", 1, "--meta-compression", "none")
    rows = (d / "pack.meta.jsonl").read_bytes().split(b"\n")
    assert rows[3].startswith(b'{"id":3,')
    deep = b'{"id":3,"x":' + b"[" * 70 + b"]" * 70 + b',"p":"'
    rows[3] = deep + b"." * (len(rows[3]) - len(deep) - 2) + b'"}'  # same length: the index holds
    (d / "pack.meta.jsonl").write_bytes(b"\n".join(rows))
    m = mount(d, "verify=none", expect_errors=True)  # the hashes no longer match
    assert json.loads((m.mnt / "doc" / "4").read_text())["id"] == 4
    for p in (m.mnt / "doc" / "3", qpath(m.mnt, "sourdough", k=40, probe=4)):
        with pytest.raises(OSError) as e:
            p.read_bytes()
        assert e.value.errno == errno.EIO, p
    assert "nested deeper than 64 levels" in m.stderr()
    # A name too long is still ENAMETOOLONG.
    with pytest.raises(OSError) as e:
        qpath(m.mnt, "q" * 1100).read_bytes()
    assert e.value.errno == errno.ENAMETOOLONG


def test_many_deltas_past_the_soft_descriptor_limit(annpack, tmp_path, mount):
    """The daemon keeps about three descriptors open per layer (four with pack.sq8), so a
    packset of 256 deltas needs ~780: more than a soft RLIMIT_NOFILE of 512. annpackfs
    raises its soft limit to the hard one at start, so it mounts and answers. (The default
    soft limit, 1024, is passed at ~340 layers; 512 shows the same on any machine.)"""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) is too low for this test")
    base = tmp_path / "base"
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text", "--id-col",
               "id", "--output", base, "--lists", 4, "--seed", 1)
    delta = tmp_path / "delta"
    annpack.ok("packset", "build-delta", "--base", base, "--delete-ids", "5", "--out", delta)
    ps = tmp_path / "ps"
    annpack.ok("packset", "create", "--base", base, "--out", ps, *["--delta", delta] * 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        m = mount(ps)  # the daemon inherits the soft limit of 512
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    h = json.loads((m.mnt / "health").read_text())
    assert h["deltas"] == 256 and h["n_vectors"] == 39
    assert len(os.listdir(f"/proc/{m.pid()}/fd")) > 512
    assert not (m.mnt / "doc" / "5").exists()
    assert json.loads(qpath(m.mnt, "espresso").read_text())["results"]
    limits = open(f"/proc/{m.pid()}/limits").read()
    assert re.search(r"Max open files\s+(\d+)\s+\1\s", limits), limits


def test_health_and_stats_json_as_documented(signed_ps, mount):
    """health, stats and the manifest's packset block keep their documented keys in their
    documented order, each file one compact JSON line (MOUNT.md, "The virtual tree")."""
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    compact = lambda o: json.dumps(o, separators=(",", ":"), ensure_ascii=False) + "\n"
    raw = (m.mnt / "health").read_text()
    h = json.loads(raw)
    assert raw == compact(h)
    assert list(h) == ["status", "generation", "version", "n_vectors", "dim", "n_lists",
                       "deltas", "embedder", "sq8", "bits", "signature", "key_id", "expires", "verify"]
    assert (h["status"], h["generation"], h["deltas"], h["embedder"], h["sq8"], h["expires"]) \
        == ("ok", 1, 1, "hash", False, None)
    qpath(m.mnt, "espresso").read_bytes()
    raw = (m.mnt / "stats").read_text()
    s = json.loads(raw)
    assert raw == compact(s)
    assert list(s) == ["generation", "version", "queries", "cache_hits", "cache_entries",
                       "cache_bytes", "recomputed", "inodes", "inode_bytes", "trims", "docs",
                       "reads", "errors", "refused", "reloads", "reloads_noop",
                       "reload_failures", "latency_us", "verify_ranges", "verify_hashed",
                       "verify_bad", "requests"]
    assert list(s["requests"]) == ["lookup", "getattr", "open", "read", "opendir", "readdir",
                                   "forget"]
    assert list(s["latency_us"]) == ["lt_100", "lt_250", "lt_500", "lt_1000", "lt_2500",
                                     "lt_5000", "lt_10000", "lt_25000", "lt_50000",
                                     "lt_100000", "lt_1000000", "ge_1000000"]
    assert s["queries"] == 1 and sum(s["latency_us"].values()) == 1
    man = json.loads((m.mnt / "pack.manifest.json").read_text())
    assert list(man["packset"])[-3:] == ["generation", "signature", "key_id"]
    assert man["packset"]["key_id"] == h["key_id"] and len(h["key_id"]) == 16
    # Unsigned: key_id is null in both.
    u = mount(d)
    assert json.loads((u.mnt / "health").read_text())["key_id"] is None
    assert json.loads((u.mnt / "pack.manifest.json").read_text())["packset"]["key_id"] is None
