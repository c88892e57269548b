#!/usr/bin/env python3
"""Bounded soak of a live mount: concurrent query readers through the mount and through
nginx, and periodic reloads (a new signed delta each time), for SECONDS (default 60).
Reports queries served, errors, p99 latency and the daemon's RSS at start and end.
Everything runs on 127.0.0.1 and stops by itself; mounts and servers are cleaned up."""
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from mountlib import Mount, Nginx  # noqa: E402

A = os.environ.get("ANNPACK", str(ROOT / "build" / "tools" / "annpack"))


def sh(*args):
    subprocess.run([A, *map(str, args)], check=True, capture_output=True)


def rss_kb(pid):
    return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0])


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="annpack-soak-"))
    ps = tmp / "ps"
    sh("packset", "build-base", "--input", ROOT / "examples" / "tiny_docs.csv", "--packset", ps,
       "--lists", 4)
    sh("keygen", "--out", tmp / "k")
    sh("sign", ps, "--key", tmp / "k.pem")
    m = Mount(ps, tmp / "mnt", f"pubkey={tmp / 'k.pub'}")
    ng = None
    stats = {"fs_queries": 0, "http_queries": 0, "errors": 0, "reloads": 0}
    lat, lock = [], threading.Lock()
    try:
        ng = Nginx(m.mnt, tmp, ROOT / "examples" / "nginx.conf")
        pid = m.pid()
        rss_start = rss_kb(pid)
        stop = time.time() + secs
        words = "tea coffee bicycle chain solar volcano bees chess guitar bread".split()

        def reader(i, http):
            rng = random.Random(i)
            while time.time() < stop:
                q = " ".join(rng.sample(words, 2)) + f" {rng.randrange(200)}"
                t0 = time.perf_counter()
                try:
                    if http:
                        url = ng.url + "/query/" + urllib.parse.quote(q) + "?k=5"
                        with urllib.request.urlopen(url, timeout=10) as r:
                            body = r.read()
                    else:
                        body = (m.mnt / "query" / (q + "?k=5")).read_bytes()
                    json.loads(body)
                    with lock:
                        stats["http_queries" if http else "fs_queries"] += 1
                        lat.append((time.perf_counter() - t0) * 1e3)
                except Exception:  # noqa: BLE001 - every failure counts
                    with lock:
                        stats["errors"] += 1

        threads = [threading.Thread(target=reader, args=(i, i % 2 == 1)) for i in range(8)]
        for t in threads:
            t.start()
        seq = 0
        while time.time() < stop - 2:
            time.sleep(min(5, max(0, stop - 2 - time.time())))
            seq += 1
            csv = tmp / f"d{seq}.csv"
            csv.write_text(f"id,text\n{1000 + seq},soak document number {seq}\n")
            sh("packset", "build-delta", "--packset", ps, "--pubkey", tmp / "k.pub", "--add", csv,
               "--out", ps / "deltas" / f"{seq:04d}.delta")
            sh("sign", ps, "--key", tmp / "k.pem")
            m.sighup()
            stats["reloads"] += 1
        for t in threads:
            t.join()
        lat.sort()
        stats["p99_ms"] = round(lat[int(0.99 * (len(lat) - 1))], 3) if lat else None
        stats["rss_start_kb"], stats["rss_end_kb"] = rss_start, rss_kb(pid)
        stats["generation"] = json.loads((m.mnt / "health").read_text())["generation"]
    finally:
        if ng:
            ng.close()
        m.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(stats, indent=1))
    return 1 if stats["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
