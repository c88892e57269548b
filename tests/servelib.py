"""Helpers for `annpack serve` tests: start it on a free port in a private TMPDIR, read its
URL, fetch with urllib, and check afterwards that nothing it started is left: no mount, no
process mentioning its temporary directory, no temporary directory."""
import os
import pathlib
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BUILD

ANNPACK = BUILD / "tools" / "annpack"


def mounts_under(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return [l.split()[1] for l in f if l.split()[1].startswith(path)]


def procs_mentioning(needle):
    """(pid, cmdline) of live, non-zombie processes whose command line contains needle."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = pathlib.Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            state = pathlib.Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmd and state != "Z":
            out.append((int(d), cmd))
    return out


def cmdline(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def orphan_nginx_workers():
    """nginx workers whose master is gone (their command line names no directory, so
    they are found by their parent instead)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and cmdline(d).startswith("nginx: worker process") and alive(d):
            try:
                ppid = int(pathlib.Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if not cmdline(ppid).startswith("nginx: master process"):
                out.append(int(d))
    return out


def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids


def alive(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_clean(tmpdir, pids=(), timeout=10):
    """Nothing of a serve/smoke run under tmpdir is left (waits a little for stragglers)."""
    tmpdir = str(os.path.realpath(tmpdir))
    deadline = time.time() + timeout
    while True:
        left = {
            "mounts": mounts_under(tmpdir),
            "procs": procs_mentioning(tmpdir),
            "pids": [p for p in pids if alive(p)],
            "files": os.listdir(tmpdir) if os.path.isdir(tmpdir) else [],
            "orphan nginx workers": orphan_nginx_workers(),
        }
        if not any(left.values()) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert not any(left.values()), left


def env_with_tmp(tmpdir, extra=None):
    os.makedirs(tmpdir, exist_ok=True)
    e = dict(os.environ, TMPDIR=str(tmpdir), ANNPACK_THREADS="2")
    if extra:
        e.update(extra)
    return e


def fetch(url, headers=None, method="GET", timeout=30):
    """(status, headers, body) also for HTTP errors."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Serve:
    """`annpack serve DIR --port 0 ...` in the background; .url once it serves."""

    def __init__(self, source, tmpdir, *args, env=None, exe=ANNPACK):
        self.tmpdir = pathlib.Path(tmpdir)
        self.errpath = self.tmpdir.parent / (self.tmpdir.name + ".serve.err")
        self.errf = open(self.errpath, "w")
        self.proc = subprocess.Popen(
            [str(exe), "serve", str(source), "--port", "0", *map(str, args)],
            stdout=subprocess.PIPE, stderr=self.errf, text=True,
            env=env_with_tmp(self.tmpdir, env))
        self.url = self._read_url(timeout=120)

    def _read_url(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                if line.startswith("http://"):
                    return line.strip()
                if not line and self.proc.poll() is not None:
                    break
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"annpack serve did not serve: rc={self.proc.returncode} "
                           f"{self.stderr()}")

    def stderr(self):
        if not self.errf.closed:
            self.errf.flush()
        return self.errpath.read_text()

    def parts(self):
        """pids of the children (annpackfs, nginx) and their children (nginx workers,
        the fusermount3 auto_unmount helper)."""
        kids = children_of(self.proc.pid)
        return kids + [g for k in kids for g in children_of(k)]

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.errf.close()
        self.proc.stdout.close()
        return rc
