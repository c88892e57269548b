"""docs/PRODUCTION.md: every ```sh block runs, in order, on the real binaries — a real
mount, a real nginx — from a directory that looks like a checkout (examples/, tools/) with
annpack and annpackfs on PATH. Only the guide's absolute paths and ports are relocated into
the test's directory and free ports; `nginx` on PATH is the real nginx reading the
relocated /etc/nginx/nginx.conf (a stand-in for Debian's, which includes sites-enabled/*).
Whatever the guide started is stopped and unmounted afterwards, pass or fail."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

from conftest import BUILD, ROOT
from mountlib import free_port
from registrylib import Registry
from servelib import mounts_under, procs_mentioning

DOC = ROOT / "docs" / "PRODUCTION.md"
PATHS = ["/srv/annpack", "/etc/annpack", "/etc/nginx", "/var/lib/annpack", "/var/log/annpack",
         "/secure"]

NGINX_MAIN = """# Stand-in for Debian's /etc/nginx/nginx.conf (test only).
{user}worker_processes 1;
pid {w}/run/nginx.pid;
error_log {w}/var/log/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {w}/var/lib/nginx/body;
  proxy_temp_path {w}/var/lib/nginx/proxy;
  fastcgi_temp_path {w}/var/lib/nginx/fastcgi;
  uwsgi_temp_path {w}/var/lib/nginx/uwsgi;
  scgi_temp_path {w}/var/lib/nginx/scgi;
  include {w}/etc/nginx/sites-enabled/*;
}}
"""


def sh_blocks(md):
    return re.findall(r"```sh\n(.*?)```", md, flags=re.S)


def relocate(text, w, ports):
    text = re.sub("|".join(map(re.escape, PATHS)), lambda m: w + m.group(0), text)
    for port, new in ports.items():
        text = re.sub(rf"\b{port}\b", str(new), text)
    return text


def strip_comments(conf):
    lines = [l.rstrip() for l in conf.splitlines() if not l.lstrip().startswith("#")]
    return "\n".join(lines).strip()


def test_nginx_block_is_the_example():
    """The guide shows examples/nginx.conf verbatim (comments aside): they cannot drift."""
    block = next(b for b in sh_blocks(DOC.read_text()) if "sites-enabled/annpack.conf" in b)
    shown = re.search(r"<<'EOF'\n(.*?)\nEOF\n", block, flags=re.S).group(1)
    assert strip_comments(shown) == strip_comments((ROOT / "examples/nginx.conf").read_text())


def deployment_paths(text):
    """Every absolute path under the guide's deployment prefixes, e.g. /srv/annpack/ps."""
    prefixes = [p for p in PATHS if p not in ("/etc/nginx", "/secure")]
    pat = "(?:" + "|".join(map(re.escape, prefixes)) + r")[\w./-]*"
    return {m.rstrip(".") for m in re.findall(pat, text)}


def test_one_set_of_deployment_paths():
    """docs/, the examples and the guide name the same files (the packset is
    /srv/annpack/ps, never /srv/annpack/packset; the log is /var/log/annpack/annpackfs.log)."""
    guide = deployment_paths(DOC.read_text())
    assert {"/srv/annpack/ps", "/srv/annpack/mnt", "/etc/annpack/ci.pub",
            "/var/lib/annpack/state.json", "/var/log/annpack/annpackfs.log"} <= guide
    others = sorted(p for p in (ROOT / "docs").rglob("*.md")) + \
        sorted(p for p in (ROOT / "examples").iterdir() if p.is_file())
    bad = {}
    for f in others:
        text = f.read_text(errors="replace")
        wrong = {old for old in ("/srv/annpack/packset", "/var/log/annpackfs.log") if old in text}
        wrong |= deployment_paths(text) - guide
        if wrong:
            bad[str(f.relative_to(ROOT))] = sorted(wrong)
    assert not bad, f"paths that docs/PRODUCTION.md does not use: {bad}"


def stop_everything(w):
    pid = pathlib.Path(w, "run", "nginx.pid")
    if pid.exists():
        try:
            os.kill(int(pid.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
    for m in mounts_under(w):
        subprocess.run(["fusermount3", "-u", "-z", m], check=False)
    deadline = time.time() + 20
    while procs_mentioning(w) and time.time() < deadline:
        time.sleep(0.1)
    return procs_mentioning(w), mounts_under(w)


def test_production_guide_commands(tmp_path):
    run_guide(tmp_path, examples=ROOT / "examples", tools=ROOT / "tools",
              programs={"annpack": BUILD / "tools" / "annpack",
                        "annpackfs": BUILD / "fs" / "annpackfs"},
              env={"ANNPACK": str(BUILD / "tools" / "annpack")})


def run_guide(tmp_path, examples, tools, programs, env, unset=()):
    """Runs every sh block of the guide in tmp_path/w, where examples/ and tools/ link to
    `examples` and `tools` and bin/ (first on PATH) holds links to `programs` and the nginx
    wrapper; `env` is added to the environment and `unset` removed from it.
    tests/test_release.py runs it with the installed package's files."""
    w = tmp_path / "w"
    for d in ("bin", "run", "var/lib/nginx", "var/log", "etc/nginx/sites-enabled"):
        (w / d).mkdir(parents=True)
    os.symlink(examples, w / "examples")
    os.symlink(tools, w / "tools")
    for name, target in programs.items():
        os.symlink(target, w / "bin" / name)
    real_nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    (w / "etc/nginx/nginx.conf").write_text(
        NGINX_MAIN.format(w=w, user="user root;\n" if os.geteuid() == 0 else ""))
    wrapper = w / "bin" / "nginx"
    wrapper.write_text(f"#!/bin/sh\nexec {real_nginx} -e {w}/var/log/nginx-error.log "
                       f"-c {w}/etc/nginx/nginx.conf \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict({k: v for k, v in os.environ.items() if k not in unset},
               PATH=f"{w}/bin:{os.environ['PATH']}:/usr/sbin:/sbin", ANNPACK_NGINX=real_nginx,
               ANNPACK_THREADS="2", TMPDIR=str(tmp_path), **env)
    ports = {8080: free_port(), 8000: free_port()}
    blocks = sh_blocks(DOC.read_text())
    assert len(blocks) >= 15, len(blocks)
    out = []
    # The guide's registry (section 6): a real docker-registry, here without authentication.
    registry = Registry(tmp_path / "registry", auth=None)
    env["ANNPACK_REGISTRY_URL"] = registry.url
    try:
        registry.start()
        for i, block in enumerate(blocks):
            script = relocate(block, str(w), ports)
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=w, env=env,
                               capture_output=True, text=True, timeout=180)
            assert r.returncode == 0, (f"block {i + 1} failed ({r.returncode}):\n{script}\n"
                                       f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
            out.append(r.stdout)
    finally:
        registry.stop()
        procs, mounts = stop_everything(str(w))
    text = "\n".join(out)
    for needle in ("identical", '"created"', "verified", "signature and hashes ok", "PASS\n",
                   "PASS smoke", '"status":"ok"', '"id":40', "rebased, no deltas",
                   "ANNPACK_MAX_LISTS", '"queries"', "0000000 41 4e 4e 50",
                   '"status":"uploaded"', '"aliases":[{"alias":"latest","target":"v1"',
                   '"status":"switched"'):
        assert needle in text, (needle, text)
    # The guide's last block stopped nginx and unmounted: nothing was left to clean up.
    assert not procs and not mounts, (procs, mounts)
