"""The release path on this machine (docs/PRODUCTION.md, "Install" and "Releasing"):
tools/release.sh's version checks, and the Debian packages built by
tools/build_artifacts.sh, installed with dpkg, used exactly as an operator would — every sh
block of the guide with the installed binaries from a directory outside the source tree,
`man annpack`, bash completion, the Python package from a neutral directory — and removed
cleanly. The packages are removed even when a check fails."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

pytestmark = pytest.mark.slow  # ~1 min: builds the packages (CI runs it; the sanitizer pass skips it)

PACKAGES = ["annpack", "python3-annpack", "libannpack-dev", "libannpack0"]
VERSION = re.search(r"version : '([^']+)'", (ROOT / "meson.build").read_text()).group(1)


def sh(*args, cwd=None, env=None, timeout=600):
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in r.stdout


# ---------------------------------------------------------------- release.sh's checks

def make_clone(d):
    """A clone of this repository's HEAD (what a release is built from) in d."""
    rc, out = sh("git", "clone", "-q", "--no-hardlinks", ROOT, d)
    assert rc == 0, out
    for k, v in (("user.email", "t@example.org"), ("user.name", "t")):
        sh("git", "-C", d, "config", k, v)
    return d


@pytest.fixture
def clone(tmp_path):
    return make_clone(tmp_path / "clone")


def release_check(d):
    return sh("bash", d / "tools/release.sh", "--check-only", cwd=d, timeout=60)


def test_release_checks_the_version_everywhere(clone):
    rc, out = release_check(clone)
    assert rc == 1 and "FAIL release: version: HEAD has no tag" in out, out
    sh("git", "-C", clone, "tag", "-a", "v9.9.9", "-m", "wrong")
    rc, out = release_check(clone)
    assert rc == 1 and f"tag v9.9.9 does not match the meson project version {VERSION}" in out
    sh("git", "-C", clone, "tag", "-d", "v9.9.9")
    sh("git", "-C", clone, "tag", "-a", f"v{VERSION}", "-m", "release")
    rc, out = release_check(clone)
    assert rc == 0 and f"PASS release checks {VERSION}" in out, out
    # A changelog that lags behind the version.
    cl = clone / "debian" / "changelog"
    cl.write_text(cl.read_text().replace(f"({VERSION}-1)", "(0.0.9-1)", 1))
    sh("git", "-C", clone, "commit", "-qam", "old changelog")
    sh("git", "-C", clone, "tag", "-f", "-a", f"v{VERSION}", "-m", "release")
    rc, out = release_check(clone)
    assert rc == 1 and "debian/changelog's latest entry is 0.0.9-1" in out, out
    sh("git", "-C", clone, "revert", "--no-edit", "HEAD")
    sh("git", "-C", clone, "tag", "-f", "-a", f"v{VERSION}", "-m", "release")
    assert release_check(clone)[0] == 0
    # A dirty tree is not released.
    (clone / "README.md").write_text("changed\n")
    rc, out = release_check(clone)
    assert rc == 1 and "uncommitted changes" in out, out


# ---------------------------------------------------------------- the Debian packages

@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """tools/release.sh run once on a tagged clone with an annpack key: the artifacts every
    test below uses (built once: the packages take the longest)."""
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root")
    already = [p for p in PACKAGES if installed(p)]
    if already:
        pytest.skip(f"{already} already installed here: the test would replace and remove them")
    base = tmp_path_factory.mktemp("release")
    d = make_clone(base / "clone")
    sh("git", "-C", d, "tag", "-a", f"v{VERSION}", "-m", "release")
    rc, out = sh(BUILD / "tools" / "annpack", "keygen", "--out", base / "rel")
    assert rc == 0, out
    dist = base / "dist"
    rc, log = sh("bash", d / "tools/release.sh", "--key", base / "rel.pem", "--out", dist,
                 cwd=d, timeout=1200)
    assert rc == 0, log[-4000:]
    return dist, log


@pytest.fixture(scope="module")
def deb(artifacts):
    """The packages installed with dpkg; removed (purged) afterwards, pass or fail."""
    out, _ = artifacts
    debs = [str(p) for p in sorted(out.glob("*.deb")) if "dbgsym" not in p.name]
    assert len(debs) == 4, debs
    try:
        rc, log = sh("dpkg", "-i", *debs, timeout=300)
        assert rc == 0, log
        yield out
    finally:
        rc, log = sh("dpkg", "--purge", *PACKAGES, timeout=300)
        assert rc == 0, log


def test_artifacts_and_checksums(artifacts):
    out, _ = artifacts
    names = {p.name for p in out.iterdir()}
    want = {f"annpack-{VERSION}.tar.xz", f"annpack-{VERSION}.tar.gz",
            f"annpack-{VERSION}-py3-none-any.whl", "SHA256SUMS"}
    want |= {f"{p}_{VERSION}-1_amd64.deb" for p in PACKAGES}
    assert want <= names, sorted(names)
    rc, log = sh("sha256sum", "-c", "SHA256SUMS", cwd=out)
    assert rc == 0, log
    listed = [line.split()[1] for line in (out / "SHA256SUMS").read_text().splitlines()]
    assert want - {"SHA256SUMS"} <= set(listed)


def test_installed_package_runs_the_guide(deb, tmp_path):
    """Every sh block of docs/PRODUCTION.md with /usr/bin/annpack and /usr/sbin/annpackfs,
    in a directory outside the source tree whose examples/ and tools/ are the installed
    ones (the guide's "Install" section)."""
    from test_production_doc import run_guide
    assert shutil.which("annpack") == "/usr/bin/annpack"
    rc, out = sh("annpack", "--version", cwd=tmp_path)
    assert rc == 0 and out == f"annpack {VERSION}\n", out
    rc, out = sh("/usr/sbin/annpackfs", "--version", cwd=tmp_path)
    assert rc == 0 and out.startswith(f"annpackfs {VERSION}"), out
    assert not str(tmp_path).startswith(str(ROOT))
    run_guide(tmp_path, examples=pathlib.Path("/usr/share/doc/annpack/examples"),
              tools=pathlib.Path("/usr/share/annpack/tools"), programs={}, env={},
              unset=("ANNPACK", "ANNPACK_BUILD", "ANNPACKFS", "ANNPACK_WEB_DIR",
                     "ANNPACK_LIB", "PYTHONPATH"))


def test_installed_man_pages_and_completion(deb, tmp_path):
    rc, out = sh("man", "-P", "cat", "annpack", cwd=tmp_path,
                 env=dict(os.environ, MANWIDTH="100"))
    assert rc == 0 and "annpack - build, sign, verify" in out, out[:500]
    rc, out = sh("man", "-P", "cat", "8", "annpackfs", cwd=tmp_path)
    assert rc == 0 and "-o state_init" in out, out[:500]
    # bash-completion's own loader finds the installed file by the command's name.
    script = ("source /usr/share/bash-completion/bash_completion\n"
              "__load_completion annpack || exit 3\n"
              "complete -p annpack\n"
              "COMP_WORDS=(annpack packset bui); COMP_CWORD=2; COMP_LINE='annpack packset bui'\n"
              "COMP_POINT=${#COMP_LINE}; _annpack; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
              "COMP_WORDS=(annpack sm); COMP_CWORD=1; COMP_LINE='annpack sm'\n"
              "COMP_POINT=${#COMP_LINE}; _annpack; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    rc, out = sh("bash", "--norc", "-c", script, cwd=tmp_path)
    assert rc == 0, out
    lines = out.split("\n")
    assert lines[0] == "complete -F _annpack annpack", out
    assert lines[1:4] == ["build-base", "build-delta", "smoke"], out


def test_installed_python_package(deb, tmp_path):
    """`import annpack` from a neutral directory loads the package from dist-packages and
    the library libannpack0 installed; the guide's python blocks run with it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANNPACK_LIB")}
    code = "import annpack, annpack._lib as l; print(annpack.__file__); print(l.lib._name)"
    rc, out = sh("/usr/bin/python3", "-c", code, cwd=tmp_path, env=env)
    assert rc == 0, out
    pkg, lib = out.split()
    assert pkg == "/usr/lib/python3/dist-packages/annpack/__init__.py"
    assert os.path.realpath(lib).startswith("/usr/lib/")
    assert os.path.basename(os.path.realpath(lib)) == f"libannpack.so.{VERSION}"
    for name in ("tiny_docs.csv", "delta_add.csv"):
        shutil.copy(f"/usr/share/doc/annpack/examples/{name}", tmp_path)
    assert sh("annpack", "keygen", "--out", "ci", cwd=tmp_path)[0] == 0
    doc = (ROOT / "docs" / "PRODUCTION.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 4
    # One interpreter for all of them, as tests/test_python.py runs them.
    rc, out = sh("/usr/bin/python3", "-c", "\n".join(blocks), cwd=tmp_path, env=env)
    assert rc == 0, out


def test_wheel_installs_in_a_venv(artifacts, deb, tmp_path):
    """The wheel (pyproject.toml), installed the standard way into a virtual environment,
    finds the installed libannpack through the dynamic linker."""
    out, _ = artifacts
    venv = tmp_path / "venv"
    assert sh("/usr/bin/python3", "-m", "venv", venv)[0] == 0
    wheel = next(out.glob("*.whl"))
    rc, log = sh(venv / "bin/python", "-m", "pip", "install", "-q", "--no-index",
                 "--no-deps", wheel)
    assert rc == 0, log
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANNPACK_LIB")}
    rc, o = sh(venv / "bin/python", "-c",
               "import annpack, annpack._lib as l; print(annpack.__file__, l.lib.ap_version())",
               cwd=tmp_path, env=env)
    assert rc == 0, o
    assert str(venv) in o and VERSION in o


def test_removed_cleanly(artifacts, tmp_path):
    """Runs last: installs again, removes with dpkg -r, and nothing is left (the
    programs, the shared library in the linker's cache, the files)."""
    out, _ = artifacts
    debs = [str(p) for p in sorted(out.glob("*.deb")) if "dbgsym" not in p.name]
    try:
        rc, log = sh("dpkg", "-i", *debs, timeout=300)
        assert rc == 0, log
        assert "libannpack.so.0 " in sh("ldconfig", "-p")[1]
        rc, log = sh("dpkg", "-r", *PACKAGES, timeout=300)
        assert rc == 0, log
    finally:
        sh("dpkg", "--purge", *PACKAGES, timeout=300)
    assert not any(installed(p) for p in PACKAGES)
    for f in ("/usr/bin/annpack", "/usr/sbin/annpackfs", "/usr/share/annpack",
              "/lib/systemd/system/annpackfs.service", "/usr/lib/python3/dist-packages/annpack",
              "/usr/share/man/man1/annpack.1.gz"):
        assert not os.path.exists(f), f
    assert "libannpack.so.0 " not in sh("ldconfig", "-p")[1]


def test_release_lintian_clean_and_signed(artifacts):
    """release.sh on the tagged clone passed lintian without errors or warnings (the
    overrides in debian/ give their reasons) and signed SHA256SUMS with the annpack key:
    openssl checks the signature, and a changed SHA256SUMS no longer verifies."""
    dist, log = artifacts
    assert f"PASS release {VERSION}" in log.splitlines(), log[-2000:]
    assert "== lintian" in log
    verify = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", dist / "SHA256SUMS.pub",
              "-rawin", "-in", dist / "SHA256SUMS", "-sigfile", dist / "SHA256SUMS.sig"]
    rc, o = sh(*verify)
    assert rc == 0 and "Signature Verified Successfully" in o, o
    sums = (dist / "SHA256SUMS").read_text()
    try:
        (dist / "SHA256SUMS").write_text(sums + "\n")
        assert sh(*verify)[0] != 0
    finally:
        (dist / "SHA256SUMS").write_text(sums)
