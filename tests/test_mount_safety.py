"""annpackfs safety: replay protection that fails closed, bounded memory for unique query
names, quiet no-op reloads, one daemon per mountpoint under its own name, expiry, and
rate-limited refusal logs. Real FUSE mounts (the `mount` fixture fails a test on any
unexpected ERROR line the daemon logs)."""
import base64
import errno
import json
import os
import pathlib
import re
import subprocess
import time
import urllib.parse

import pytest

from conftest import EXAMPLES, make_signed_packset
from mountlib import ANNPACKFS, is_mounted


@pytest.fixture
def signed_ps(annpack, tmp_path):
    return make_signed_packset(annpack, tmp_path)


def run_fs(*args, timeout=60, env=None):
    return subprocess.run([str(ANNPACKFS), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def unmount_all(mnt):
    for _ in range(5):
        if not is_mounted(mnt):
            return
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
        time.sleep(0.1)


def new_version(annpack, d, pem, delete):
    annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", str(delete),
               "--out", d / "deltas" / f"{delete + 1000:04d}.delta",
               "--pubkey", pathlib.Path(pem).with_suffix(".pub"))
    annpack.ok("sign", d, "--key", pem)


def health(mnt):
    return json.loads((mnt / "health").read_text())


def stats(mnt):
    return json.loads((mnt / "stats").read_text())


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---- replay protection: the state file (item 8) ----

def test_missing_state_refuses_without_state_init(signed_ps, tmp_path, mount):
    d, pem, pub = signed_ps
    state = tmp_path / "st" / "state.json"
    state.parent.mkdir()
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = run_fs(d, mnt, "-o", f"pubkey={pub},state={state}")
    try:
        assert r.returncode == 1, r.stderr
        assert not is_mounted(mnt)
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1, r.stderr
        assert str(state) in line and "does not exist" in line and "state_init" in line, line
        assert not state.exists()
    finally:
        unmount_all(mnt)
    # The first mount says so explicitly, and records the version it serves.
    m = mount(d, f"pubkey={pub}", f"state={state}", "state_init")
    assert health(m.mnt)["version"] == 2
    assert json.loads(state.read_text()) == {"version": 2}
    assert os.listdir(state.parent) == ["state.json"]  # no temporary file left


@pytest.mark.parametrize("content", [
    b"", b"garbage", b'{"version":', b'{"version":-1}', b'{"version":"3"}', b'{"version":1.5}',
    b'{"version":1,"version":9}', b'{"Version":3}', b'{"version":3,"other":1}', b"[3]",
    b'{"version":3}\x00', b'{"version":99999999999999999999}', "dir"])
def test_unreadable_or_corrupt_state_refuses(signed_ps, tmp_path, content):
    """An unreadable or corrupt state file is never read as version 0 (which would accept
    any older signed version): the mount is refused, with or without state_init."""
    d, pem, pub = signed_ps
    state = tmp_path / "state.json"
    if content == "dir":
        state.mkdir()
    else:
        state.write_bytes(content)
    mnt = tmp_path / "m"
    mnt.mkdir()
    try:
        for opts in (f"pubkey={pub},state={state}", f"pubkey={pub},state={state},state_init"):
            r = run_fs(d, mnt, "-o", opts)
            assert r.returncode == 1, (content, r.stderr)
            assert not is_mounted(mnt)
            assert f"state file {state}" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        unmount_all(mnt)
    if content != "dir":
        assert state.read_bytes() == content  # left for the operator to look at


def test_state_write_does_not_follow_a_planted_symlink(annpack, signed_ps, tmp_path, mount):
    """The state is written through a fresh temporary file (O_EXCL) and renamed: a symlink
    planted where the old code wrote FILE.tmp is never followed."""
    d, pem, pub = signed_ps
    sd = tmp_path / "st"
    sd.mkdir()
    state = sd / "state.json"
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(victim, sd / "state.json.tmp")
    m = mount(d, f"pubkey={pub}", f"state={state}", "state_init")
    assert json.loads(state.read_text()) == {"version": 2}
    new_version(annpack, d, pem, 5)
    m.sighup()
    wait_for(lambda: health(m.mnt)["version"] == 3, what="version 3")
    assert json.loads(state.read_text()) == {"version": 3}
    assert victim.read_text() == "precious\n"
    assert not state.is_symlink()
    assert sorted(os.listdir(sd)) == ["state.json", "state.json.tmp"]  # nothing else left


def test_state_floor_survives_and_refuses_replay(annpack, signed_ps, tmp_path, mount):
    d, pem, pub = signed_ps
    state = tmp_path / "state.json"
    old = {n: (d / n).read_bytes() for n in ["pack.manifest.json", "pack.manifest.json.sig"]}
    m = mount(d, f"pubkey={pub}", f"state={state}", "state_init")
    m.close()
    new_version(annpack, d, pem, 5)
    m = mount(d, f"pubkey={pub}", f"state={state}")  # an existing state needs no state_init
    assert health(m.mnt)["version"] == 3
    m.close()
    for n, b in old.items():
        (d / n).write_bytes(b)
    mnt = tmp_path / "m3"
    mnt.mkdir()
    r = run_fs(d, mnt, "-o", f"pubkey={pub},state={state},state_init")
    unmount_all(mnt)
    assert r.returncode == 1 and "not newer than 3" in r.stderr, r.stderr


# ---- one daemon per mountpoint, under its own name (item 18) ----

def test_second_mount_on_the_same_mountpoint_is_refused(signed_ps, tmp_path, mount):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    r = run_fs(d, m.mnt, "-o", f"pubkey={pub}")
    stacked = [l for l in open("/proc/mounts") if l.split()[1] == str(m.mnt)]
    if len(stacked) > 1:  # the bug: a second daemon stacked on top; take it off again
        subprocess.run(["fusermount3", "-u", str(m.mnt)], check=False)
    assert r.returncode == 1, r.stderr
    assert len(stacked) == 1, stacked
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1, r.stderr
    assert str(m.mnt) in line and "already" in line and str(d) in line, line
    assert "fuse.annpackfs" in line, line
    assert health(m.mnt)["status"] == "ok"


def test_missing_mountpoint_says_so(signed_ps, tmp_path):
    d, pem, pub = signed_ps
    r = run_fs(d, tmp_path / "nope")
    assert r.returncode == 1, r.stderr
    assert "missing MOUNTPOINT" not in r.stderr
    assert f"{tmp_path / 'nope'}: the mountpoint does not exist" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    (tmp_path / "file").write_text("x")
    r = run_fs(d, tmp_path / "file")
    assert r.returncode == 1 and "is not a directory" in r.stderr, r.stderr
    r = run_fs(d)
    assert r.returncode == 2 and "missing MOUNTPOINT" in r.stderr, r.stderr


def test_daemon_keeps_its_process_name(signed_ps, tmp_path, mount):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}")
    pid = m.pid()
    assert open(f"/proc/{pid}/comm").read().strip() == "annpackfs"
    found = subprocess.run(["pgrep", "-x", "annpackfs"], capture_output=True, text=True).stdout
    assert str(pid) in found.split(), found
    # In the background too (daemon mode), and SIGHUP by name reaches it.
    mnt = tmp_path / "bg"
    mnt.mkdir()
    r = run_fs(d, mnt, "-o", f"pubkey={pub}")
    try:
        assert r.returncode == 0, r.stderr
        pids = subprocess.run(["pgrep", "-f", f"annpackfs {d} {mnt}"], capture_output=True,
                              text=True).stdout.split()
        assert len(pids) == 1, pids
        named = subprocess.run(["pgrep", "-x", "annpackfs"], capture_output=True,
                               text=True).stdout.split()
        assert pids[0] in named, (pids, named)
    finally:
        unmount_all(mnt)


# ---- no-op reloads are not errors (item 17) ----

def test_watch_publish_and_sighup_log_no_errors(annpack, signed_ps, tmp_path, mount,
                                                monkeypatch):
    """A publish (manifest, then signature: two inotify events) and a SIGHUP with nothing
    new log no ERROR (the fixture fails on one) and are not reload failures."""
    monkeypatch.setenv("ANNPACK_LOG_LEVEL", "INFO")
    d, pem, pub = signed_ps
    srv = tmp_path / "srv"
    subprocess.run(["cp", "-a", d, srv], check=True)
    m = mount(srv, f"pubkey={pub}", "watch")
    new_version(annpack, d, pem, 5)
    subprocess.run(["cp", "-a", d / "deltas" / "1005.delta", srv / "deltas"], check=True)
    for name in ("pack.manifest.json", "pack.manifest.json.sig"):
        (srv / (name + ".part")).write_bytes((d / name).read_bytes())
        os.rename(srv / (name + ".part"), srv / name)
        time.sleep(0.05)
    wait_for(lambda: health(m.mnt)["version"] == 3, what="version 3")
    wait_for(lambda: stats(m.mnt)["reloads_noop"] >= 1, what="the second event's reload")
    m.sighup()
    wait_for(lambda: stats(m.mnt)["reloads_noop"] >= 2, what="the SIGHUP's reload")
    s = stats(m.mnt)
    assert s["reloads"] == 1 and s["reload_failures"] == 0, s
    assert health(m.mnt)["generation"] == 2
    log = m.stderr()
    assert "nothing new" in log and "INFO" in log, log
    assert "not newer" not in log


def test_same_version_other_bytes_is_still_refused(annpack, signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}", expect_errors=True)
    man = json.loads((d / "pack.manifest.json").read_text())
    (d / "pack.manifest.json").write_text(json.dumps(man, indent=1))  # same version 2
    annpack.ok("sign", d, "--key", pem)
    m.sighup()
    wait_for(lambda: stats(m.mnt)["reload_failures"] == 1, what="the refusal")
    assert stats(m.mnt)["reloads_noop"] == 0
    assert "version 2 is not newer than 2" in m.stderr()
    assert health(m.mnt)["generation"] == 1


# ---- expiry (item 19) ----

def set_expires(d, when, pem=None, annpack=None):
    """Writes `expires` into the root manifest and signs it again (openssl when the time
    has passed: `annpack sign` refuses an expired manifest)."""
    man = json.loads((d / "pack.manifest.json").read_text())
    if when is None:
        man.pop("expires", None)
    else:
        man["expires"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    (d / "pack.manifest.json").write_text(json.dumps(man))
    if when is not None and when < time.time():
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in",
                        d / "pack.manifest.json", "-out", d / "pack.manifest.json.sig"],
                       check=True)
    else:
        annpack.ok("sign", d, "--key", pem)
    return man.get("expires")


def test_expired_manifest_is_refused_at_mount(annpack, signed_ps, tmp_path, mount):
    d, pem, pub = signed_ps
    stamp = set_expires(d, time.time() - 3600, pem)
    mnt = tmp_path / "m"
    mnt.mkdir()
    for verify in ("full", "none"):
        r = run_fs(d, mnt, "-o", f"pubkey={pub},verify={verify}")
        unmount_all(mnt)
        assert r.returncode == 1, r.stderr
        assert f"expired at {stamp}" in r.stderr and "-o allow_expired" in r.stderr, r.stderr
        assert "--allow-expired" not in r.stderr
    m = mount(d, f"pubkey={pub}", "allow_expired")
    h = health(m.mnt)
    assert h["status"] == "expired" and h["expires"] == stamp, h
    assert json.loads((m.mnt / "query" / "kombucha tea").read_text())["results"]


def test_expiry_while_serving(annpack, signed_ps, tmp_path, mount):
    d, pem, pub = signed_ps
    stamp = set_expires(d, time.time() + 4, pem, annpack)
    serve = mount(d, f"pubkey={pub}")
    refuse = mount(d, f"pubkey={pub}", "on_expiry=refuse")
    for m in (serve, refuse):
        h = health(m.mnt)
        assert h["status"] == "ok" and h["expires"] == stamp, h
        assert (m.mnt / "query" / "kombucha tea").read_bytes()
    dim = health(refuse.mnt)["dim"]
    vector = base64.urlsafe_b64encode(b"\x00\x3c" * dim).decode().rstrip("=")
    with open(refuse.mnt / "pack.meta.jsonl", "rb") as open_early:
        wait_for(lambda: health(serve.mnt)["status"] == "expired", timeout=15, what="expiry")
        wait_for(lambda: health(refuse.mnt)["status"] == "expired", timeout=5, what="expiry")
        assert health(serve.mnt)["expires"] == stamp
        # on_expiry=serve (the default): answers continue.
        assert json.loads((serve.mnt / "query" / "sourdough").read_text())["results"]
        assert json.loads((serve.mnt / "doc" / "3").read_text())["id"] == 3
        assert json.loads((serve.mnt / "vquery" / vector).read_text())["results"]
        # on_expiry=refuse: every answer from the packset stops with EKEYEXPIRED; health,
        # stats and the manifest stay readable.
        for p in ("query/sourdough", "doc/3", "pack.annpack", "pack.meta.jsonl",
                  "vquery/" + vector, "refusal/query/x?k=0"):
            with pytest.raises(OSError) as e:
                (refuse.mnt / p).read_bytes()
            assert e.value.errno == errno.EKEYEXPIRED, p
        with pytest.raises(OSError) as e:
            open_early.read(10)
        assert e.value.errno == errno.EKEYEXPIRED
    assert json.loads((refuse.mnt / "pack.manifest.json").read_text())["packset"]["version"] == 2
    assert stats(refuse.mnt)["generation"] == 1
    # A reload to a newer version that has not expired clears it.
    annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "5",
               "--out", d / "deltas" / "0002.delta",  # carries the passed "expires" over
               "--pubkey", pathlib.Path(pem).with_suffix(".pub"))
    set_expires(d, time.time() + 3600, pem, annpack)
    for m in (serve, refuse):
        m.sighup()
        wait_for(lambda: health(m.mnt)["generation"] == 2, what="generation 2")
        assert health(m.mnt)["status"] == "ok"
        assert json.loads((m.mnt / "query" / "sourdough").read_text())["results"]
    assert "expired at" in refuse.stderr()


def test_reload_to_an_expired_version_is_refused(annpack, signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d, f"pubkey={pub}", expect_errors=True)
    new_version(annpack, d, pem, 5)
    stamp = set_expires(d, time.time() - 60, pem)
    m.sighup()
    wait_for(lambda: stats(m.mnt)["reload_failures"] == 1, what="the refusal")
    assert health(m.mnt)["generation"] == 1
    assert f"expired at {stamp} (pass -o allow_expired" in m.stderr()


def test_bad_on_expiry_is_a_usage_error(signed_ps, tmp_path):
    d, pem, pub = signed_ps
    (tmp_path / "m").mkdir()
    r = run_fs(d, tmp_path / "m", "-o", "on_expiry=maybe")
    assert r.returncode == 2 and "on_expiry must be serve or refuse" in r.stderr, r.stderr


# ---- memory of unique query names (item 11) ----

def rss_kb(pid):
    return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0])


@pytest.fixture
def wide_pack(annpack, tmp_path):
    """1200 rows of ~300 bytes: a k=1000 result is ~400 KB of JSON."""
    csv = tmp_path / "wide.csv"
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    with open(csv, "w") as f:
        f.write("id,text\n")
        for i in range(1200):
            f.write(f"{i}," + " ".join(words[(i * 7 + j) % 8] + str(j) for j in range(40)) + "\n")
    out = tmp_path / "wide"
    annpack.ok("build", "--input", csv, "--text-col", "text", "--id-col", "id", "--output",
               out, "--lists", 4, "--seed", 1)
    return out


def test_unique_query_names_do_not_grow_memory(wide_pack, mount):
    """2,000 distinct ?k=1000 names (held by the kernel's dentry cache) keep the daemon's
    memory near cache_mb, and a result whose bytes left the cache reads identically."""
    cache_mb = 16
    m = mount(wide_pack, f"cache_mb={cache_mb}")
    pid = m.pid()
    keep = [open(m.mnt / "query" / f"held {i}?k=1000&probe=4", "rb") for i in range(3)]
    first = [f.read() for f in keep]
    assert all(len(b) > 300_000 for b in first), [len(b) for b in first]
    for i in range(50):  # warm up threads and allocator
        (m.mnt / "query" / f"warm {i}?k=1000").read_bytes()
    rss0 = rss_kb(pid)
    sizes = set()
    for i in range(2000):
        p = m.mnt / "query" / f"unique {i}?k=1000"
        sizes.add(os.stat(p).st_size)
    grown_mb = (rss_kb(pid) - rss0) / 1024
    s = stats(m.mnt)
    assert s["cache_bytes"] <= cache_mb << 20, s
    assert s["inode_bytes"] < 1 << 20, s  # 2,000 keys, not 2,000 results
    sanitized = "libasan" in subprocess.run(["ldd", ANNPACKFS], capture_output=True,
                                            text=True).stdout
    if not sanitized:  # ASan's quarantine makes RSS meaningless
        assert grown_mb < cache_mb + 32, (grown_mb, s)  # was ~750 MB
    for f, want in zip(keep, first):
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        f.seek(0)
        assert f.read() == want  # recomputed with the same generation, query and took_ms
        assert os.fstat(f.fileno()).st_size == len(want)
        f.close()
    # Names read again after the flood still give whole, valid results of their size.
    for i in (0, 999, 1999):
        p = m.mnt / "query" / f"unique {i}?k=1000"
        b = p.read_bytes()
        assert len(b) == os.stat(p).st_size and len(json.loads(b)["results"]) == 1000


def test_doc_rows_are_not_held_per_name(wide_pack, mount):
    m = mount(wide_pack, "cache_mb=1")
    f = open(m.mnt / "doc" / "7", "rb")
    want = f.read()
    for i in range(1200):
        (m.mnt / "doc" / str(i)).read_bytes()
    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    f.seek(0)
    assert f.read() == want and json.loads(want)["id"] == 7
    f.close()
    assert stats(m.mnt)["cache_bytes"] <= 1 << 20


def test_inodes_of_computed_files_stay_under_budget(tiny_pack, mount):
    """Inodes keep only a key each, but the kernel may keep any number of them: past a
    budget (a quarter of cache_mb, at least 4 MiB) it is asked to forget them."""
    m = mount(tiny_pack, "cache_mb=1")
    budget = 4 << 20
    for i in range(6000):
        os.stat(m.mnt / "query" / (f"{i} " + "q" * 1000))
    s = stats(m.mnt)
    assert s["trims"] >= 1, s
    wait_for(lambda: stats(m.mnt)["inode_bytes"] <= budget, what="the kernel to forget")
    assert json.loads((m.mnt / "query" / "espresso").read_text())["results"]


# ---- refusals: logged at most once a second (item 15) ----

def test_refusal_log_lines_are_rate_limited(signed_ps, mount):
    d, pem, pub = signed_ps
    m = mount(d)
    t0 = time.time()
    for i in range(400):
        with pytest.raises(OSError):
            (m.mnt / "query" / f"x{i}?k=0").read_bytes()
    elapsed = time.time() - t0
    lines = [l for l in m.stderr().splitlines() if "refused" in l]
    assert 1 <= len(lines) <= elapsed + 2, (elapsed, lines)
    time.sleep(1.1)
    with pytest.raises(OSError):
        (m.mnt / "query" / "late?probe=0").read_bytes()
    lines = [l for l in m.stderr().splitlines() if "refused" in l]
    assert re.search(r"\(\d+ more refused since\)", lines[-1]) or \
        any(re.search(r"\d+ more refused", l) for l in lines), lines
    total = sum(int(n) for n in re.findall(r"(\d+) more refused", "\n".join(lines)))
    assert total + len(lines) == 401, (total, lines)
    assert stats(m.mnt)["refused"] == 401


# ---- an empty query is refused everywhere with one message (item 20) ----

EMPTY = "query text is empty or only whitespace"


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "\u00a0\u3000"])
def test_empty_query_refused_by_cli_mount_and_python(annpack, tiny_pack, mount, text):
    from test_python import run_py
    r = annpack("search", tiny_pack, text)
    assert r.rc == 1 and r.out == "", r
    assert r.err.strip() == f"annpack search: {EMPTY}", r
    py = run_py("import sys\nfrom annpack.api import open_pack\n"
                f"p = open_pack({str(tiny_pack)!r})\n"
                "try:\n"
                f"    p.search({text!r})\n"
                "except ValueError as e:\n"
                "    print(e)\n", cwd=tiny_pack.parent)
    assert py.stdout.strip() == EMPTY, py
    m = mount(tiny_pack)
    name = urllib.parse.quote(text) + "?k=3"
    with pytest.raises(OSError) as e:
        (m.mnt / "query" / name).read_bytes()
    assert e.value.errno == errno.ENOENT
    assert json.loads((m.mnt / "refusal" / "query" / name).read_text()) == {"error": EMPTY}
