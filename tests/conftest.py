"""Shared fixtures for the integration tests: the built binaries and a CLI runner."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("ANNPACK_BUILD", ROOT / "build"))
EXAMPLES = ROOT / "examples"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (skipped in the sanitizer pass)")


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"rc={self.rc}\nstdout={self.out[:2000]}\nstderr={self.err[:2000]}"


class Cli:
    def __init__(self, exe):
        self.exe = str(exe)

    def __call__(self, *args, env=None, check=None, input=None, timeout=600):
        e = dict(os.environ)
        e.setdefault("ANNPACK_THREADS", "2")
        if env:
            e.update(env)
        proc = subprocess.run([self.exe, *map(str, args)], capture_output=True, text=True,
                              env=e, input=input, timeout=timeout)
        r = Result(proc)
        if check is not None:
            assert r.rc == check, repr(r)
        return r

    def ok(self, *args, **kw):
        return self(*args, check=0, **kw)


@pytest.fixture(scope="session")
def annpack():
    exe = BUILD / "tools" / "annpack"
    assert exe.exists(), f"{exe} not built: run tools/setup.sh"
    return Cli(exe)


@pytest.fixture(scope="session")
def crash_hooks(annpack):
    """For tests that crash the CLI at a named step (ANNPACK_TEST_CRASH_AT): skipped, with
    the reason, when the library was built without its test hooks (-Dtest_hooks=true)."""
    if not annpack.ok("diagnose").json()["test_hooks"]:
        pytest.skip(f"{BUILD} has no test hooks, so ANNPACK_TEST_CRASH_AT does nothing: "
                    "configure it with -Dtest_hooks=true (tools/setup.sh does)")


@pytest.fixture(scope="session")
def tiny_pack(annpack, tmp_path_factory):
    """The examples built once per session (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny") / "pack"
    annpack.ok("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
               "--id-col", "id", "--output", out, "--lists", 4, "--seed", 1)
    return out


@pytest.fixture
def mount(tmp_path):
    """Real annpackfs mounts (mountlib.Mount) that are all unmounted at the end, even when
    closing one of them fails (its daemon exited nonzero or logged an error): the first
    failure is raised after every mount is gone."""
    from mountlib import Mount  # mountlib imports this module

    mounts = []

    def make(source, *opts, **kw):
        m = Mount(source, tmp_path / f"mnt{len(mounts)}", *opts, **kw)
        mounts.append(m)
        return m
    yield make
    failures = []
    for m in mounts:
        try:
            m.close()
        except Exception as e:  # keep unmounting the others
            failures.append(e)
    if failures:
        raise failures[0]


def make_signed_packset(annpack, tmp_path, delete="1,2"):
    """A packset from examples/ (base + one delta adding delta_add.csv and deleting
    `delete`), signed with a fresh key: (dir, private key, public key)."""
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", d,
               "--lists", 4, "--seed", 1)
    annpack.ok("packset", "build-delta", "--packset", d, "--add", EXAMPLES / "delta_add.csv",
               "--delete-ids", delete, "--out", d / "deltas" / "0001.delta")
    annpack.ok("keygen", "--out", tmp_path / "k")
    annpack.ok("sign", d, "--key", tmp_path / "k.pem")
    return d, tmp_path / "k.pem", tmp_path / "k.pub"


def write_csv(path, rows):
    """An id,text CSV of (id, text) rows."""
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i, t in rows:
            w.writerow([i, t])
