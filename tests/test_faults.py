"""Faults: builds into a full filesystem and a read-only one fail cleanly, leaving no
half-written pack or temporary directory behind."""
import os
import subprocess

import pytest

from conftest import EXAMPLES

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount tmpfs")


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def make(name, opts):
        d = tmp_path / name
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d], check=True)
        mounted.append(d)
        return d
    yield make
    for d in mounted:
        subprocess.run(["umount", "-l", d], check=False)


@pytest.mark.parametrize("cmd", ["build", "packset"])
def test_full_filesystem(annpack, tmpfs, cmd):
    small = tmpfs("small", "size=24k")
    out = small / "out"
    if cmd == "build":
        r = annpack("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                    "--id-col", "id", "--output", out, "--lists", 4)
    else:
        r = annpack("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv",
                    "--packset", out, "--lists", 4)
    assert r.rc == 1 and "No space left on device" in r.err, repr(r)
    assert os.listdir(small) == []


def test_read_only_filesystem(annpack, tmpfs):
    ro = tmpfs("ro", "ro,size=1m")
    r = annpack("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                "--id-col", "id", "--output", ro / "out")
    assert r.rc == 1 and "Read-only file system" in r.err, repr(r)
    assert os.listdir(ro) == []


def test_full_filesystem_during_promote(annpack, tmpfs, tmp_path):
    """A packset on a filesystem that fills up during promote keeps its old state."""
    fs = tmpfs("ps", "size=200k")
    ps = fs / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", ps,
               "--lists", 4)
    before = annpack.ok("packset", "status", ps).json()
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    delta = tmp_path / "d"
    annpack.ok("packset", "build-delta", "--base", ps / "base", "--add",
               EXAMPLES / "delta_add.csv", "--out", delta)
    r = annpack("packset", "promote-delta", "--packset", ps, "--delta", delta)
    assert r.rc == 1 and "No space left on device" in r.err, repr(r)
    os.unlink(filler)
    assert annpack.ok("packset", "status", ps).json() == before
    annpack.ok("verify", ps, "--deep")
