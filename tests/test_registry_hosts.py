"""Many serving hosts following an alias (docs/DISTRIBUTION.md, "Topology"), all in network
namespaces this test makes: a registry namespace, three host namespaces each running
`annpack pull --follow` + annpackfs -o watch + nginx, and a balancer namespace running an
nginx in front of the hosts and the client loop. The namespaces are joined by veth pairs on
a bridge that lives in a namespace of its own, so no traffic touches the machine's network.
While the client loops through the balancer, v2 is published and `latest` moves: zero
failed requests, every host on v2; then a rebased v3 (the base layer changes under the
hosts' open files), the same; then `latest` moves back to v1: every host refuses the
downgrade and keeps serving v3 (meanwhile the registry was down for a while: the hosts
logged it and kept serving). Everything is torn down even on failure."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BUILD, EXAMPLES, ROOT
from mountlib import NGINX_CONF
from registrylib import Registry, available
from servelib import mounts_under

ANNPACK = BUILD / "tools" / "annpack"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SUBNET = "10.213.0"
HOSTS = 3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="docker-registry is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

CLIENT = r"""
import json, os, sys, time, urllib.request
url, stop, out = sys.argv[1:4]
res = {"ok": 0, "fail": 0, "errors": [], "versions": {}, "first": None, "last": None}
n = 0
while not os.path.exists(stop):
    n += 1  # a new query text each time: computed by the mount, never a cached answer
    for path in ("/health", f"/query/water%20my%20plants%20{n}?k=3&probe=8",
                 "/pack.manifest.json", "/pack.annpack"):
        try:
            req = urllib.request.Request(url + path)
            if path == "/pack.annpack":  # a Range read of the merged pack's lists
                req.add_header("Range", f"bytes={(n * 4099) % 20000}-{(n * 4099) % 20000 + 4095}")
            with urllib.request.urlopen(req, timeout=10) as r:
                body = r.read()
                if r.status not in (200, 206):
                    raise RuntimeError(f"HTTP {r.status}")
                if path == "/pack.annpack":
                    if r.status != 206 or not body:
                        raise RuntimeError(f"Range answered {r.status} with {len(body)} bytes")
                    res["ok"] += 1
                    continue
                doc = json.loads(body)
                if path == "/health":
                    v = str(doc["version"])
                    res["versions"][v] = res["versions"].get(v, 0) + 1
                elif path.startswith("/query/") and not doc.get("results"):
                    raise RuntimeError(f"no results: {body[:200]!r}")
            res["ok"] += 1
        except Exception as e:
            res["fail"] += 1
            res["errors"].append(f"{time.time():.3f} {path}: {e!r}"[:300])
json.dump(res, open(out, "w"))
"""

LB = """
upstream annpack_hosts {{
{servers}
}}
server {{
    listen 127.0.0.1:8080;
    location / {{
        proxy_pass http://annpack_hosts;
        proxy_next_upstream off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}
}}
"""


def run(*cmd, check=True, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: rc={r.returncode} {r.stderr}")
    return r


def inns(ns, *cmd):
    return ["nsenter", f"--net=/run/netns/{ns}", *map(str, cmd)]


class Net:
    """The namespaces and links; close() deletes them all (their links go with them)."""

    def __init__(self, tag):
        self.tag = tag
        self.names = []
        self.sw = self.ns("sw")
        run("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.sw, "link", "set", "br0", "up")

    def ns(self, role):
        name = f"{self.tag}-{role}"
        run("ip", "netns", "add", name)
        self.names.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def join(self, role, addr):
        """A namespace for role with address SUBNET.addr on the bridge."""
        name = self.ns(role)
        a, b = f"v{self.tag[-5:]}{addr}", f"s{self.tag[-5:]}{addr}"
        run("ip", "-n", self.sw, "link", "add", b, "type", "veth", "peer", "name", a, "netns", name)
        run("ip", "-n", self.sw, "link", "set", b, "master", "br0", "up")
        run("ip", "-n", name, "addr", "add", f"{SUBNET}.{addr}/24", "dev", a)
        run("ip", "-n", name, "link", "set", a, "up")
        return name

    def close(self):
        for n in reversed(self.names):
            run("ip", "netns", "del", n, check=False)


def curl(ns, url, timeout=5):
    r = run(*inns(ns, "curl", "-fsS", "--max-time", timeout, url), check=False)
    return r.stdout if r.returncode == 0 else None


def host_version(ns, addr):
    out = curl(ns, f"http://{SUBNET}.{addr}:8080/health")
    try:
        return json.loads(out)["version"] if out else None
    except ValueError:
        return None


def wait(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_hosts_follow_an_alias_with_zero_failed_requests(annpack, tmp_path):
    w = tmp_path
    # Two signed versions of one packset.
    annpack.ok("keygen", "--out", w / "ci")
    v1, v2 = w / "v1", w / "v2"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", v1,
               "--text-col", "text", "--id-col", "id", "--lists", 4, "--seed", 1)
    annpack.ok("sign", v1, "--key", w / "ci.pem")
    shutil.copytree(v1, v2)
    annpack.ok("packset", "build-delta", "--packset", v2, "--pubkey", w / "ci.pub", "--add",
               EXAMPLES / "delta_add.csv", "--delete-ids", "1,2", "--out",
               v2 / "deltas/0001.delta")
    annpack.ok("sign", v2, "--key", w / "ci.pem")
    # v3 rebases: the base layer itself changes under the hosts' open files.
    v3 = w / "v3"
    annpack.ok("packset", "rebase", "--packset", v2, "--out", v3, "--lists", 8, "--seed", 1,
               "--pubkey", w / "ci.pub")
    annpack.ok("sign", v3, "--key", w / "ci.pem")

    net = procs = None
    procs, mnts = [], []
    tag = f"ap{os.getpid() % 100000}"
    reg = Registry(w / "registry")
    try:
        net = Net(tag)
        regns = net.join("reg", 2)
        reg.port = 5000
        reg.start(addr="0.0.0.0:5000", netns=regns)
        local = "http://127.0.0.1:5000"
        remote = f"http://{SUBNET}.2:5000"

        def publish(*args):
            return run(*inns(regns, ANNPACK, "registry", *args, "--org", "demo", "--project",
                             "search", "--registry", local, "--auth-file", reg.userpass))

        publish("upload", "--version", "v1", "--pack-dir", v1)
        publish("alias", "set", "--alias", "latest", "--version", "v1")

        hosts = []
        for i in range(HOSTS):
            addr = 11 + i
            ns = net.join(f"h{i + 1}", addr)
            h = w / f"h{i + 1}"
            (h / "mnt").mkdir(parents=True)
            ref = f"{remote}/demo/search:latest"
            pullargs = [ANNPACK, "pull", ref, "--into", h / "ps", "--pubkey", w / "ci.pub",
                        "--auth-file", reg.reader_pass]
            run(*inns(ns, *pullargs))
            run(*inns(ns, ANNPACK, "mount", h / "ps", h / "mnt", "-o",
                      f"pubkey={w / 'ci.pub'},watch,log={h / 'annpackfs.log'}"),
                env=dict(os.environ, ANNPACK_LOG_LEVEL="INFO"))
            mnts.append(h / "mnt")
            server = (ROOT / "examples/nginx.conf").read_text()
            server = server.replace("/srv/annpack/mnt", str(h / "mnt")).replace(
                "127.0.0.1:8080", f"{SUBNET}.{addr}:8080")
            logs = h / "nginx"
            logs.mkdir()
            (logs / "server.conf").write_text(server)
            (logs / "nginx.conf").write_text(NGINX_CONF.format(logs=logs,
                                                               conf=logs / "server.conf"))
            procs.append(subprocess.Popen(inns(ns, NGINX, "-c", logs / "nginx.conf"),
                                          stderr=subprocess.DEVNULL))
            follow = subprocess.Popen(inns(ns, *pullargs, "--follow", "--interval", "300ms"),
                                      stdout=open(h / "follow.out", "w"),
                                      stderr=open(h / "follow.err", "w"))
            procs.append(follow)
            hosts.append((ns, addr, h))

        lbns = net.join("lb", 100)
        for ns, addr, _ in hosts:
            wait(lambda: host_version(lbns, addr) == 1, 30, f"host {ns} serving v1")
        lb = w / "lb"
        lb.mkdir()
        servers = "\n".join(f"    server {SUBNET}.{a}:8080;" for _, a, _ in hosts)
        (lb / "server.conf").write_text(LB.format(servers=servers))
        (lb / "nginx.conf").write_text(NGINX_CONF.format(logs=lb, conf=lb / "server.conf"))
        procs.append(subprocess.Popen(inns(lbns, NGINX, "-c", lb / "nginx.conf"),
                                      stderr=subprocess.DEVNULL))
        wait(lambda: curl(lbns, "http://127.0.0.1:8080/health"), 20, "the balancer")

        (w / "client.py").write_text(CLIENT)
        stop, out = w / "client.stop", w / "client.json"
        client = subprocess.Popen(inns(lbns, sys.executable, w / "client.py",
                                       "http://127.0.0.1:8080", stop, out))
        procs.append(client)
        time.sleep(1.0)

        # Publish v2 and move latest: every host pulls, verifies, switches, reloads.
        publish("upload", "--version", "v2", "--pack-dir", v2)
        moved = time.time()
        publish("alias", "set", "--alias", "latest", "--version", "v2")
        done = [wait(lambda: host_version(lbns, a) == 2, 60, f"host {ns} serving v2")
                for ns, a, _ in hosts]
        rollout = max(done) - moved
        time.sleep(1.0)
        publish("upload", "--version", "v3", "--pack-dir", v3)
        moved3 = time.time()
        publish("alias", "set", "--alias", "latest", "--version", "v3")
        done = [wait(lambda: host_version(lbns, a) == 3, 60, f"host {ns} serving v3")
                for ns, a, _ in hosts]
        rollout3 = max(done) - moved3
        time.sleep(1.0)

        # The registry goes down: every host logs it and keeps serving; then it comes back.
        reg.stop()
        for _, _, h in hosts:
            wait(lambda: "keeps serving what it has" in (h / "follow.err").read_text(), 30,
                 f"{h.name} noticing the outage")
        assert all(host_version(lbns, a) == 3 for _, a, _ in hosts)
        reg.start(addr="0.0.0.0:5000", netns=regns)

        # Moving latest back to v1: refused by every host, which keeps serving v3.
        publish("alias", "set", "--alias", "latest", "--version", "v1")
        for _, _, h in hosts:
            wait(lambda: "refusing version 1" in (h / "follow.err").read_text(), 30,
                 f"{h.name} refusing the downgrade")
        time.sleep(1.0)
        stop.write_text("")
        client.wait(30)
        res = json.loads(out.read_text())
        print(json.dumps({"rollout_s": round(rollout, 3), "rollout_rebase_s": round(rollout3, 3),
                          "requests_ok": res["ok"],
                          "requests_failed": res["fail"], "versions": res["versions"]}))
        assert res["fail"] == 0, res["errors"][:10]
        assert res["ok"] > 50 and set(res["versions"]) == {"1", "2", "3"}, res
        for ns, a, h in hosts:
            assert host_version(lbns, a) == 3
            log = (h / "annpackfs.log").read_text()
            assert "serving version 2" in log and "serving version 3" in log, log
            assert "refused" not in log, log
            assert "refusing version 1 of demo/search:latest" in (h / "follow.err").read_text()
            lines = [json.loads(l) for l in (h / "follow.out").read_text().splitlines()]
            assert [l["version"] for l in lines if l["status"] == "switched"] == [2, 3], lines
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
            if p.poll() is None:
                p.kill()
        for m in mnts:
            subprocess.run(["fusermount3", "-u", "-z", str(m)], check=False,
                           capture_output=True)
        reg.stop()
        if net:
            net.close()
    assert not mounts_under(str(w))
    left = run("ip", "netns", "list").stdout
    assert tag not in left, left
