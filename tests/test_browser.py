"""The search page in headless Chromium (Debian's chromium, driven by playwright-core from
tests/browser/): load the built page (web/dist, `npm run build`) from `annpack serve`, type a query, find the expected document,
see markup in metadata shown as text, stop the server and see the error banner.
Screenshots go to the test's tmp dir and to BUILD/test-artifacts/."""
import json
import pathlib
import shutil
import subprocess
import urllib.request

import pytest

from conftest import BUILD, EXAMPLES, ROOT
from servelib import Serve, assert_clean

BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
WEB_DIST = ROOT / "web" / "dist"


def require_browser():
    # Not a skip: tools/setup.sh installs both, so a missing one is a broken set-up.
    missing = [str(p) for p in (CHROMIUM, BROWSER_DIR / "node_modules" / "playwright-core",
                                WEB_DIST / "index.html") if not p.exists()]
    assert not missing, f"missing {missing}: run tools/setup.sh"
    assert shutil.which("node"), "node missing: run tools/setup.sh"


@pytest.mark.slow
def test_search_page_in_chromium(annpack, tmp_path):
    require_browser()
    # The examples plus one row whose metadata is markup: it must show as text.
    csv = tmp_path / "docs.csv"
    xss = '<img src=x onerror="window.__xss=1"><b>bold</b>'
    csv.write_text((EXAMPLES / "tiny_docs.csv").read_text().rstrip("\n") +
                   f'\n1000,"{xss.replace(chr(34), chr(34) * 2)}",zanzibar quokka markup row\n')
    pack = tmp_path / "pack"
    annpack.ok("build", "--input", csv, "--text-col", "text", "--id-col", "id", "--output", pack,
               "--lists", 4, "--seed", 1)
    key_id = annpack.ok("keygen", "--out", tmp_path / "k").json()["key_id"]
    annpack.ok("sign", pack, "--key", tmp_path / "k.pem")
    shots = tmp_path / "shots"
    shots.mkdir()
    s = Serve(pack, tmp_path / "t", "--pubkey", tmp_path / "k.pub")
    parts = s.parts()
    # serve prefers the built page (web/dist: hashed names, Subresource Integrity).
    page = urllib.request.urlopen(s.url, timeout=10).read().decode()
    assert page == (WEB_DIST / "index.html").read_text()
    assert page.count('integrity="sha384-') == 2, page
    spec = {"query": "water my houseplants", "expect_id": 33,
            "expect_text": "Houseplant watering",
            "xss_query": "zanzibar quokka", "serve_pid": s.proc.pid}
    try:
        r = subprocess.run(["node", str(BROWSER_DIR / "search_page.mjs"), s.url, str(shots),
                            json.dumps(spec)], capture_output=True, text=True, timeout=180)
    finally:
        rc = s.stop()
    art = BUILD / "test-artifacts"
    art.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, art / f"search_page_{png.name}")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["focused"] == "q"
    assert seen["facts"]["n_vectors"] == "41" and seen["facts"]["n_lists"] == "4"
    assert seen["facts"]["signature"] == "verified" and seen["facts"]["key_id"] == key_id
    assert seen["ids"][0] == 33, seen
    assert "water" in [m.lower() for m in seen["marks"]], seen
    assert seen["xss"] == {"fired": 0, "injected": 0}
    assert "did not answer" in seen["banner"], seen
    assert (shots / "search.png").stat().st_size > 10000
    assert (shots / "error.png").stat().st_size > 10000
    # The page's SIGTERM stopped serve: it cleaned up.
    assert rc == 0, s.stderr()
    assert_clean(tmp_path / "t", parts)
