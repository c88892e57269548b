"""The installed layout (`meson install`, docs/PRODUCTION.md "Installing"): what goes where,
man pages and bash completion that cover every command, the guide's helper scripts finding
annpack through $ANNPACK, then PATH, then build/, and the demo's set-up installing only what
the demo needs. tests/test_release.py does the same through the Debian package."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, EXAMPLES, ROOT

COMPLETION = ROOT / "tools" / "completion" / "annpack.bash"


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = tmp_path_factory.mktemp("dest")
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--no-rebuild", "--destdir",
                        str(d)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    prefix = subprocess.run(["meson", "introspect", "--buildoptions", str(BUILD)],
                            capture_output=True, text=True, check=True).stdout
    import json
    opts = {o["name"]: o["value"] for o in json.loads(prefix)}
    return d, d / opts["prefix"].lstrip("/"), opts


def test_installed_files(dest):
    _, p, opts = dest
    want = ["bin/annpack", "sbin/annpackfs", "share/man/man1/annpack.1",
            "share/man/man8/annpackfs.8", "share/bash-completion/completions/annpack",
            "share/bash-completion/completions/annpackfs",
            "share/doc/annpack/examples/tiny_docs.csv",
            "share/doc/annpack/examples/delta_add.csv",
            "share/doc/annpack/examples/nginx.conf",
            "share/doc/annpack/examples/annpackfs.service",
            "share/annpack/web/index.html", "share/annpack/tools/pack_integrity.sh",
            "share/annpack/tools/packset_compact.sh", "share/annpack/tools/bench/bench.py",
            "lib/systemd/system/annpackfs.service",
            opts["libdir"] + "/libannpack.so.0", opts["libdir"] + "/pkgconfig/annpack.pc",
            "include/annpack/annpack.h"]
    missing = [w for w in want if not (p / w).exists()]
    assert not missing, missing
    assert not (p / "include/annpack/experimental.h").exists()
    for s in ("pack_integrity.sh", "packset_compact.sh"):
        assert os.access(p / "share/annpack/tools" / s, os.X_OK)
    # The installed unit runs the installed daemon, Type=notify.
    unit = (p / "lib/systemd/system/annpackfs.service").read_text()
    assert f"ExecStart={opts['prefix']}/sbin/annpackfs " in unit
    assert "Type=notify" in unit


def test_man_pages_render_and_cover_every_command(dest, annpack):
    _, p, _ = dest
    text = subprocess.run(["man", "-l", "-P", "cat", str(p / "share/man/man1/annpack.1")],
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, MANWIDTH="100")).stdout
    cmds = re.findall(r"^  (\w+)\s", annpack.ok("--help").out, flags=re.M)
    assert len(cmds) >= 13
    missing = [c for c in cmds if not re.search(rf"^\s+{c}\b", text, flags=re.M)]
    assert not missing, f"commands absent from annpack(1): {missing}"
    fs = subprocess.run([str(BUILD / "fs" / "annpackfs"), "--help"], capture_output=True,
                        text=True).stdout
    fs_text = subprocess.run(["man", "-l", "-P", "cat", str(p / "share/man/man8/annpackfs.8")],
                             capture_output=True, text=True, check=True).stdout
    opts = set(re.findall(r"-o (\w+)", fs))
    assert {"pubkey", "watch", "state", "state_init", "log"} <= opts
    missing = [o for o in opts if f"-o {o}" not in fs_text]
    assert not missing, f"annpackfs -o options absent from annpackfs(8): {missing}"


def complete(line, path):
    """What bash completion offers for `line` (the cursor at its end)."""
    words = line.split(" ")
    script = (f"source {COMPLETION}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              f"COMP_LINE={line!r}; COMP_POINT={len(line)}\n"
              f"_{words[0]}; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    r = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                       env=dict(os.environ, PATH=f"{path}:{os.environ['PATH']}"), timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_bash_completion(tmp_path):
    path = f"{BUILD}/tools:{BUILD}/fs"
    assert complete("annpack pa", path) == ["packset"]
    assert complete("annpack ver", path) == ["verify"]
    assert set(complete("annpack packset re", path)) == {"revert", "rebase"}
    assert complete("annpack build --se", path) == ["--seed"]
    assert "--deep" in complete("annpack verify --", path)
    assert complete("annpack init --template lo", path) == ["log-search"]
    assert set(complete("annpack init --", path)) >= {"--template", "--out", "--force"}
    assert {"pubkey=", "state_init"} <= set(complete("annpackfs x y -o ", path))


def fake_path(tmp_path, name):
    """A PATH directory whose `annpack` records each call, then runs the real one."""
    d = tmp_path / name
    d.mkdir()
    log = tmp_path / f"{name}.calls"
    w = d / "annpack"
    w.write_text(f"#!/bin/sh\necho \"$1\" >> {log}\nexec {BUILD}/tools/annpack \"$@\"\n")
    w.chmod(0o755)
    return d, log


def test_helper_scripts_find_annpack_on_path(annpack, tmp_path):
    """Without $ANNPACK, the guide's scripts run the annpack on PATH (an installed one)."""
    ps = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", ps,
               "--lists", 4, "--seed", 1)
    annpack.ok("keygen", "--out", tmp_path / "k")
    d, log = fake_path(tmp_path, "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("ANNPACK", "ANNPACK_BUILD")}
    env["PATH"] = f"{d}:{env['PATH']}"
    r = subprocess.run([str(ROOT / "tools/pack_integrity.sh"), ps, tmp_path / "k.pem",
                        tmp_path / "k.pub"], capture_output=True, text=True, env=env)
    assert r.stdout == "PASS\n", r.stderr
    assert log.read_text().split() == ["sign", "verify"]
    r = subprocess.run([str(ROOT / "tools/packset_compact.sh"), ps, tmp_path / "re", "4", "1",
                        tmp_path / "k.pub"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert log.read_text().split()[2:] == ["packset", "verify", "packset"]
    r = subprocess.run([sys.executable, str(ROOT / "tools/bench/bench.py"), "--rows", "50",
                        "--lists", "4", "--queries", "2", "--json"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "build" in log.read_text().split()
    # $ANNPACK wins over PATH.
    d2, log2 = fake_path(tmp_path, "bin2")
    env["ANNPACK"] = str(d2 / "annpack")
    r = subprocess.run([str(ROOT / "tools/pack_integrity.sh"), ps, tmp_path / "k.pem",
                        tmp_path / "k.pub"], capture_output=True, text=True, env=env)
    assert r.stdout == "PASS\n" and log2.read_text().split() == ["sign", "verify"]


def test_demo_setup_installs_only_what_the_demo_needs():
    demo = subprocess.run(["bash", str(ROOT / "tools/setup.sh"), "--demo", "--print"],
                          capture_output=True, text=True, check=True).stdout.split()
    full = subprocess.run(["bash", str(ROOT / "tools/setup.sh"), "--print"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert {"meson", "libfuse3-dev", "nginx-light", "libsystemd-dev"} <= set(demo)
    assert not {"chromium", "npm", "nodejs", "clang", "python3-pytest", "lintian"} & set(demo)
    assert set(demo) < set(full)
    assert {"chromium", "scdoc", "debhelper", "lintian"} <= set(full)
    # The demo script asks for the demo set.
    assert "tools/setup.sh --demo" in (ROOT / "tools/demo.sh").read_text()
    assert shutil.which("scdoc"), "tools/setup.sh installs scdoc for the man pages"


def mount_lines():
    """(where, source, mountpoint, options) of every way the docs mount the host's packset:
    the fstab lines (PRODUCTION.md, MOUNT.md, annpackfs(8)), the systemd unit's ExecStart,
    and the guide's first mount (section 7)."""
    out = []
    for f in ("docs/PRODUCTION.md", "docs/MOUNT.md", "docs/man/annpackfs.8.scd"):
        for m in re.finditer(r"^(\S+)\s+(\S+)\s+fuse\.annpackfs\s+(\S+)\s+0\s+0$",
                             (ROOT / f).read_text(), flags=re.M):
            out.append((f + " fstab", m.group(1), m.group(2), m.group(3).split(",")))
    unit = (ROOT / "examples/annpackfs.service").read_text()
    m = re.search(r"^ExecStart=\S+/annpackfs (\S+) (\S+) -f -o (\S+)$", unit, flags=re.M)
    out.append(("examples/annpackfs.service", m.group(1), m.group(2), m.group(3).split(",")))
    m = re.search(r"^ANNPACK_LOG_LEVEL=INFO annpack mount (\S+) (\S+) -o (\S+)$",
                  (ROOT / "docs/PRODUCTION.md").read_text(), flags=re.M)
    out.append(("PRODUCTION.md section 7", m.group(1), m.group(2), m.group(3).split(",")))
    return out


def test_examples_and_docs_mount_the_same_way():
    """The fstab lines, the unit and the guide's first mount name the same packset,
    mountpoint, key, state file and log, with the same options (only what a first mount
    or a boot-time mount needs on top differs: state_init, _netdev, log= where the daemon
    logs elsewhere)."""
    lines = mount_lines()
    assert len(lines) == 5, lines
    extra = {"state_init", "_netdev"}
    want = None
    for where, src, mnt, opts in lines:
        assert (src, mnt) == ("/srv/annpack/ps", "/srv/annpack/mnt"), where
        core = sorted(o for o in opts if o not in extra and not o.startswith("log="))
        logs = [o for o in opts if o.startswith("log=")]
        assert logs in ([], ["log=/var/log/annpack/annpackfs.log"]), where
        want = want or core
        assert core == want, (where, core, want)
    assert want == sorted(["pubkey=/etc/annpack/ci.pub", "allow_other", "watch",
                           "state=/var/lib/annpack/state.json"])
