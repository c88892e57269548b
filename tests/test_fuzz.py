"""The fuzz corpus replayer (tests/fuzz/replay_main.c): every corpus file must be run, so a
file it cannot read, a path that does not exist or an empty corpus fails the test instead
of passing silently."""
import os
import subprocess

import pytest

from conftest import BUILD, ROOT

REPLAY = BUILD / "tests" / "fuzz" / "replay_json"


def replay(*args):
    assert REPLAY.exists(), f"{REPLAY} not built"
    return subprocess.run([str(REPLAY), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_replay_runs_every_file():
    r = replay(ROOT / "tests" / "fuzz" / "corpus" / "json")
    n = len(os.listdir(ROOT / "tests" / "fuzz" / "corpus" / "json"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{n} passed, 0 failed"


def test_replay_fails_on_empty_corpus(tmp_path):
    """An empty corpus directory fails even next to a good one (a corpus lost in a merge
    must not pass as "replayed")."""
    for args in ([tmp_path], [ROOT / "tests" / "fuzz" / "corpus" / "json", tmp_path]):
        r = replay(*args)
        assert r.returncode == 1
        assert f"{tmp_path}: no corpus files" in r.stderr


def test_replay_fails_on_missing_path(tmp_path):
    r = replay(ROOT / "tests" / "fuzz" / "corpus" / "json", tmp_path / "nope")
    assert r.returncode == 1
    assert str(tmp_path / "nope") in r.stderr


@pytest.mark.parametrize("kind", ["dangling-symlink", "directory"])
def test_replay_fails_on_unreadable_file(tmp_path, kind):
    (tmp_path / "ok.json").write_text("{}")
    bad = tmp_path / "bad"
    if kind == "dangling-symlink":
        bad.symlink_to(tmp_path / "missing")
    else:
        bad.mkdir()
    r = replay(tmp_path)
    assert r.returncode == 1, r.stdout
    assert str(bad) in r.stderr


@pytest.mark.parametrize("args,msg", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--budget"], "--budget needs a positive number of seconds"),
    (["--per-target", "0"], "--per-target needs a positive number of seconds"),
    (["--only", "nope", "--budget", "5"], "no target 'nope'"),
])
def test_fuzz_script_usage_errors(args, msg):
    """Usage errors exit 2 with one message before anything is built or run."""
    r = subprocess.run([str(ROOT / "tools" / "fuzz.sh"), *args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert msg in r.stderr
