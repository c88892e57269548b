"""annpackfs under a Type=notify unit (examples/annpackfs.service): it sends READY=1 over
$NOTIFY_SOCKET (sd_notify, as systemd reads it) only once the packset is verified and the
mount answers, and never for a mount it refuses. The socket is a real AF_UNIX datagram
socket standing where systemd's would."""
import os
import socket
import subprocess
import time

import pytest

from conftest import make_signed_packset
from mountlib import ANNPACKFS, is_mounted


def built_with_systemd():
    r = subprocess.run(["nm", "-D", str(ANNPACKFS)], capture_output=True, text=True)
    return "sd_notify" in r.stdout


@pytest.fixture
def notify_socket(tmp_path):
    if not built_with_systemd():
        # Only a machine without libsystemd-dev may build without it (tools/setup.sh
        # installs it): a build that silently dropped it fails here.
        has = subprocess.run(["pkg-config", "--exists", "libsystemd"]).returncode == 0
        assert not has, "libsystemd is installed but annpackfs was built without sd_notify"
        pytest.skip("annpackfs was built without libsystemd (no libsystemd-dev)")
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(30)
    try:
        yield s, path
    finally:
        s.close()


def test_ready_only_once_the_mount_is_live(annpack, tmp_path, notify_socket):
    sock, path = notify_socket
    ps, _, pub = make_signed_packset(annpack, tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([str(ANNPACKFS), str(ps), str(mnt), "-f", "-o", f"pubkey={pub}"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        msg = sock.recv(4096).decode()
        # At the moment READY=1 arrives, the mount is in the table and answers.
        live = is_mounted(mnt)
        health = (mnt / "health").read_text()
        assert msg.startswith("READY=1\n"), msg
        assert "STATUS=serving version 2" in msg, msg
        assert live
        assert '"status":"ok"' in health
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
        rc = proc.wait(timeout=20)
    assert rc == 0, proc.stderr.read()


def test_no_ready_for_a_refused_mount(annpack, tmp_path, notify_socket):
    sock, path = notify_socket
    ps, _, _ = make_signed_packset(annpack, tmp_path)
    annpack.ok("keygen", "--out", tmp_path / "other")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, NOTIFY_SOCKET=path)
    r = subprocess.run([str(ANNPACKFS), str(ps), str(mnt), "-f", "-o",
                        f"pubkey={tmp_path / 'other.pub'}"], env=env, capture_output=True,
                       text=True, timeout=60)
    try:
        assert r.returncode == 1, r.stderr
        assert "refusing to mount" in r.stderr
        sock.settimeout(0.5)
        t0 = time.time()
        with pytest.raises(socket.timeout):
            sock.recv(4096)
        assert time.time() - t0 >= 0.4
        assert not is_mounted(mnt)
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
