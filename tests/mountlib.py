"""Fixtures for real FUSE mounts and a real nginx: start, wait until live, and always
clean up (unmount with fusermount3 -u -z, stop servers), failing the test when the
daemon died or printed an unexpected error line."""
import os
import pathlib
import signal
import socket
import subprocess
import time

from conftest import BUILD

ANNPACKFS = BUILD / "fs" / "annpackfs"


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Mount:
    def __init__(self, source, mnt, *opts, foreground=True, expect_errors=False):
        self.source, self.mnt = pathlib.Path(source), pathlib.Path(mnt)
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.log = self.mnt.parent / (self.mnt.name + ".log")
        o = ",".join(opts)
        self.args = [str(ANNPACKFS), str(source), str(mnt)] + (["-o", o] if o else [])
        self.expect_errors = expect_errors
        self.proc = None
        if foreground:
            self.args.append("-f")
            self.errf = open(self.log, "w")
            self.proc = subprocess.Popen(self.args, stderr=self.errf, stdout=subprocess.DEVNULL)
            deadline = time.time() + 30
            while not is_mounted(self.mnt):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"annpackfs exited {self.proc.returncode}: "
                                       f"{self.log.read_text()}")
                if time.time() > deadline:
                    raise RuntimeError("annpackfs did not mount in 30 s")
                time.sleep(0.02)
        else:
            r = subprocess.run(self.args, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"annpackfs exited {r.returncode}: {r.stderr}")
            assert is_mounted(self.mnt)

    def pid(self):
        if self.proc:
            return self.proc.pid
        out = subprocess.run(["pgrep", "-f", f"annpackfs {self.source} {self.mnt}"],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def sighup(self):
        os.kill(self.pid(), signal.SIGHUP)

    def stderr(self):
        return self.log.read_text() if self.log.exists() else ""

    def close(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], check=False)
        rc = None
        if self.proc:
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            self.errf.close()
        assert not is_mounted(self.mnt)
        if self.proc:
            assert rc == 0, f"annpackfs exited {rc}: {self.stderr()}"
            if not self.expect_errors:
                bad = [l for l in self.stderr().splitlines() if ": ERROR:" in l]
                assert not bad, bad


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


NGINX_CONF = """
worker_processes 1;
user root;
daemon off;
error_log {logs}/error.log warn;
pid {logs}/nginx.pid;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {logs}/body;
  proxy_temp_path {logs}/proxy;
  fastcgi_temp_path {logs}/fcgi;
  uwsgi_temp_path {logs}/uwsgi;
  scgi_temp_path {logs}/scgi;
  include {conf};
}}
"""


class Nginx:
    """Runs nginx with the server block of examples/nginx.conf (root and port replaced)."""

    def __init__(self, root, tmp, example):
        self.port = free_port()
        logs = pathlib.Path(tmp) / "nginx-logs"
        logs.mkdir(parents=True, exist_ok=True)
        server = pathlib.Path(example).read_text()
        server = server.replace("/srv/annpack/mnt", str(root)).replace("127.0.0.1:8080",
                                                                         f"127.0.0.1:{self.port}")
        (logs / "server.conf").write_text(server)
        main = logs / "nginx.conf"
        main.write_text(NGINX_CONF.format(logs=logs, conf=logs / "server.conf"))
        self.proc = subprocess.Popen(["nginx", "-c", str(main)], stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")
                if time.time() > deadline:
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
