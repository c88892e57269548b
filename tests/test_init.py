"""`annpack templates` and `annpack init`: every starter project builds, signs and verifies
its packset (build.sh), mounts it with annpackfs and answers its sample query with the
right document first (search.sh), and unmounts; init never replaces a directory the user
did not ask to replace."""
import json
import os
import subprocess

import pytest

from conftest import BUILD, ROOT
from mountlib import is_mounted

# The template, the document its sample query (project.env's QUERY) must find first.
EXPECT = {"docs-search": 1, "log-search": 3, "text-search": 1}


def test_templates_lists_every_template(annpack):
    out = annpack.ok("templates").out
    names = [line.split()[0] for line in out.splitlines()]
    assert names == sorted(EXPECT)
    dirs = sorted(p.name for p in (ROOT / "templates").iterdir()
                  if p.is_dir() and p.name != "common")
    assert names == dirs
    assert "documentation" in out and "log lines" in out


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_template_builds_signs_mounts_and_answers(annpack, tmp_path, name):
    proj = tmp_path / "proj"
    r = annpack.ok("init", "--template", name, "--out", proj)
    assert f"created {proj} from the {name} template" in r.out
    for f in ("README.md", "project.env", "build.sh", "search.sh", ".gitignore"):
        assert (proj / f).is_file(), f
    assert os.access(proj / "build.sh", os.X_OK) and os.access(proj / "search.sh", os.X_OK)
    env = dict(os.environ, ANNPACK=str(BUILD / "tools" / "annpack"), ANNPACK_THREADS="2")
    b = subprocess.run([proj / "build.sh"], capture_output=True, text=True, env=env, timeout=120)
    assert b.returncode == 0, b.stderr
    assert "built, signed and verified ps/" in b.stdout
    assert (proj / "ps" / "pack.manifest.json.sig").exists()
    assert (proj / "keys" / "project.pub").exists()
    try:
        s = subprocess.run([proj / "search.sh"], capture_output=True, text=True, env=env,
                           timeout=120)
        assert s.returncode == 0, s.stderr
        res = json.loads(s.stdout)
        assert res["results"][0]["id"] == EXPECT[name], res
        assert res["generation"] == 1
    finally:
        if is_mounted(proj / "mnt"):
            subprocess.run(["fusermount3", "-u", "-z", str(proj / "mnt")], check=False)
    assert not is_mounted(proj / "mnt")
    # The mount checks the signature: a key that did not sign ps/ refuses it.
    annpack.ok("keygen", "--out", tmp_path / "other")
    s = subprocess.run(["sh", "-c", f"cd {proj} && . ./project.env && "
                        f"$ANNPACK mount ps mnt -o pubkey={tmp_path / 'other.pub'}"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert s.returncode == 1 and "refusing to mount" in s.stderr, s.stderr
    assert not is_mounted(proj / "mnt")


def test_init_refuses_to_replace_without_force(annpack, tmp_path):
    out = tmp_path / "p"
    out.mkdir()
    annpack.ok("init", "--template", "text-search", "--out", out)  # an empty dir is filled
    (out / "mine.txt").write_text("keep me")
    r = annpack("init", "--template", "docs-search", "--out", out)
    assert r.rc == 1 and "exists and is not an empty directory" in r.err, r
    assert (out / "mine.txt").read_text() == "keep me"
    assert "text-search" in (out / "README.md").read_text()
    annpack.ok("init", "--template", "docs-search", "--out", out, "--force")
    assert not (out / "mine.txt").exists()
    assert (out / "data" / "docs.csv").exists() and not (out / "data" / "texts.csv").exists()
    # Nothing left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    f = tmp_path / "file"
    f.write_text("x")
    assert annpack("init", "--template", "docs-search", "--out", f).rc == 1
    assert f.read_text() == "x"


def test_init_usage_errors(annpack, tmp_path):
    r = annpack("init", "--template", "nope", "--out", tmp_path / "x")
    assert r.rc == 2 and "unknown template 'nope' (templates: docs-search, log-search, " \
        "text-search)" in r.err, r
    assert annpack("init", "--out", tmp_path / "x").rc == 2
    assert annpack("init", "--template", "docs-search").rc == 2
    assert annpack("templates", "extra").rc == 2
    assert not (tmp_path / "x").exists()
    assert "--template NAME" in annpack.ok("init", "--help").out
