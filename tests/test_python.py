"""The Python package (ctypes over libannpack): the seed snippets verbatim, round trips
with the CLI, errors, and the Python snippets of docs/PRODUCTION.md."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import BUILD, EXAMPLES, ROOT

PY = "/usr/bin/python3"


def sanitizer_env():
    """An ASan-instrumented libannpack loads into Python only with the runtime preloaded."""
    lib = BUILD / "core" / "libannpack.so"
    ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    if "libasan" not in ldd:
        return {}
    rt = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                        text=True).stdout.strip()
    return {"LD_PRELOAD": rt, "ASAN_OPTIONS": "detect_leaks=0"}


def run_py(code, cwd, check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"),
               ANNPACK_LIB=str(BUILD / "core" / "libannpack.so"), **sanitizer_env())
    r = subprocess.run([PY, "-c", code], cwd=cwd, capture_output=True, text=True, env=env,
                       timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


SNIPPET = '''
from annpack.packset import build_packset_base, build_delta, update_packset_manifest
build_packset_base("tiny_docs.csv", "./packset", text_col="text", id_col="id",
                   lists=256, seed=1234, offline=True)
build_delta(base_dir="./packset/base", add_csv="delta_add.csv", delete_ids=[1, 2],
            out_delta_dir="./packset/deltas/0001.delta", text_col="text", id_col="id",
            lists=256, seed=1234, offline=True)
update_packset_manifest("./packset", "./packset/deltas/0001.delta", seq=1)

from annpack.api import build_pack, open_pack
build_pack("tiny_docs.csv", "./out/tiny", text_col="text", id_col="id", lists=4, seed=0, offline=True)
with open_pack("./packset") as pack:          # a pack or a packset
    hits = pack.search("delta add", top_k=5)  # [{"id":..., "score":..., "meta":{...}, "layer":...}]
    vector = pack.embed("kombucha sweet tea")
    hits = pack.search_vec(vector, top_k=5)
'''


@pytest.fixture
def work(tmp_path):
    for f in ("tiny_docs.csv", "delta_add.csv"):
        shutil.copy(EXAMPLES / f, tmp_path / f)
    return tmp_path


def test_seed_snippets_verbatim(annpack, work):
    code = SNIPPET + textwrap.dedent('''
        import json
        with open_pack("./packset") as pack:
            out = {"text": pack.search("delta add", top_k=5, probe=1000),
                   "vec": pack.search_vec(pack.embed("kombucha sweet tea"), top_k=3, probe=1000),
                   "n": pack.n_vectors, "version": pack.version, "doc1": pack.get(1)}
        print(json.dumps(out))
    ''')
    r = run_py(code, work)
    assert r.stdout.count("\n") == 1  # nothing else printed to stdout
    out = json.loads(r.stdout)
    assert out["n"] == 40 and out["version"] == 2 and out["doc1"] is None
    assert set(out["text"][0]) == {"id", "score", "meta", "layer"}
    assert out["text"][0]["layer"] == 1 and out["text"][0]["id"] in (40, 41)
    assert out["vec"][0]["id"] == 40
    annpack.ok("verify", work / "packset", "--deep")
    annpack.ok("verify", work / "out" / "tiny", "--deep")
    # Python and the CLI agree on the same packset.
    cli = annpack.ok("search", work / "packset", "delta add", "-k", 5, "--probe", 1000).json()
    assert [h["id"] for h in cli["results"]] == [h["id"] for h in out["text"]]
    for a, b in zip(cli["results"], out["text"]):
        assert abs(a["score"] - b["score"]) < 1e-6 and a["meta"] == b["meta"]


def test_cli_pack_reads_identically_in_python(annpack, work):
    annpack.ok("build", "--input", work / "tiny_docs.csv", "--text-col", "text", "--id-col", "id",
               "--output", work / "cli", "--lists", 4, "--seed", 0)
    run_py('from annpack.api import build_pack\n'
           'build_pack("tiny_docs.csv", "./py", text_col="text", id_col="id", lists=4, seed=0)', work)
    # Same input and flags: byte-identical packs whichever front end built them.
    for f in ("pack.annpack", "pack.meta.jsonl.zst", "pack.meta.idx", "pack.manifest.json"):
        assert (work / "cli" / f).read_bytes() == (work / "py" / f).read_bytes(), f
    r = run_py('import json\nfrom annpack.api import open_pack\n'
               'with open_pack("./cli") as p: print(json.dumps(p.search("espresso coffee", top_k=3)))',
               work)
    py = json.loads(r.stdout)
    cli = annpack.ok("search", work / "cli", "espresso coffee", "-k", 3).json()["results"]
    assert [h["id"] for h in py] == [h["id"] for h in cli]


def test_verify_sign_and_signature(annpack, work):
    annpack.ok("keygen", "--out", work / "k")
    code = SNIPPET + textwrap.dedent('''
        from annpack.verify import verify_pack, sign_manifest, verify_manifest_signature
        rep = verify_pack("./packset", deep=True)
        assert rep["ok"] and rep["kind"] == "packset"
        kid = sign_manifest("./packset", "k.pem")
        assert verify_manifest_signature("./packset", "k.pub") == kid
        print(kid)
    ''')
    kid = run_py(code, work).stdout.strip()
    rep = annpack.ok("verify", work / "packset", "--pubkey", work / "k.pub").json()
    assert rep["signature"]["key_id"] == kid
    # A tampered file raises AnnpackVerifyError carrying the report.
    p = work / "packset" / "base" / "pack.meta.idx"
    b = bytearray(p.read_bytes())
    b[-1] ^= 1
    p.write_bytes(bytes(b))
    r = run_py(textwrap.dedent('''
        from annpack import AnnpackVerifyError
        from annpack.verify import verify_manifest_signature
        try:
            verify_manifest_signature("./packset", "k.pub")
        except AnnpackVerifyError as e:
            print(e.report["error"]["file"], "|", e)
    '''), work)
    assert r.stdout.startswith("base/pack.meta.idx |") and "sha256 mismatch" in r.stdout


def test_packset_operations(annpack, work):
    code = SNIPPET + textwrap.dedent('''
        import json
        from annpack.packset import (promote_delta, revert_packset, rebase_packset,
                                     create_packset, open_packset)
        build_delta(base_dir="./packset/base", delete_ids=[5], out_delta_dir="./outside.delta")
        seq = promote_delta("./packset", "./outside.delta")
        with open_packset("./packset") as p:
            assert p.get(5) is None and p.version == 3
        s = revert_packset("./packset", 1)
        assert s["version"] == 4 and [d["seq"] for d in s["deltas"]] == [1]
        s = rebase_packset("./packset", "./rebased", lists=3, seed=1)
        assert s["deltas"] == [] and s["live"] == 40
        build_delta(base_dir="./out/tiny", delete_ids=[5], out_delta_dir="./tiny.delta")
        s = create_packset("./out/tiny", ["./tiny.delta"], "./created")
        print(json.dumps({"seq": seq, "created_live": s["live"]}))
    ''')
    out = json.loads(run_py(code, work).stdout)
    assert out == {"seq": 2, "created_live": 39}
    annpack.ok("verify", work / "rebased", "--deep")


@pytest.mark.parametrize("code,exc,needle", [
    ('from annpack.api import build_pack\n'
     'build_pack("tiny_docs.csv", "./o", text_col="body", id_col="id")',
     "ValueError", 'text column "body" not found'),
    ('from annpack.api import build_pack\nbuild_pack("missing.csv", "./o", text_col="text")',
     "FileNotFoundError", "missing.csv"),
    ('from annpack.packset import build_delta\n'
     'build_delta(base_dir="./out/tiny", delete_ids=["7"], out_delta_dir="./d")',
     "ValueError", "delete id must be an integer"),
    ('from annpack.packset import build_delta\n'
     'build_delta(base_dir="./out/tiny", delete_ids="1,2", out_delta_dir="./d")',
     "ValueError", "list of integers"),
    ('from annpack.packset import build_packset_base, build_delta, update_packset_manifest\n'
     'build_packset_base("tiny_docs.csv", "./ps")\n'
     'build_delta(base_dir="./ps/base", delete_ids=[1], out_delta_dir="./ps/deltas/0001.delta")\n'
     'update_packset_manifest("./ps", "./ps/deltas/0001.delta", seq=1)\n'
     'build_delta(base_dir="./ps/base", delete_ids=[2], out_delta_dir="./ps/deltas/0002.delta")\n'
     'update_packset_manifest("./ps", "./ps/deltas/0002.delta", seq=1)',
     "ValueError", "seq 1 is not greater than the last seq 1"),
    ('from annpack.api import open_pack\nopen_pack("./nowhere")', "FileNotFoundError", "nowhere"),
])
def test_errors(work, code, exc, needle):
    run_py('from annpack.api import build_pack\n'
           'build_pack("tiny_docs.csv", "./out/tiny", text_col="text", id_col="id", lists=2)', work)
    r = run_py(code, work, check=False)
    assert r.returncode == 1 and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert needle in last, last
    check = run_py(f"import builtins\ntry:\n" + textwrap.indent(code, "    ") +
                   f"\nexcept builtins.{exc} as e:\n    print('caught', type(e).__mro__[1].__name__)",
                   work)
    assert check.stdout.startswith("caught")


def python_blocks(md):
    return re.findall(r"```python\n(.*?)```", md, flags=re.S)


def test_production_guide_python_snippets(annpack, work):
    blocks = python_blocks((ROOT / "docs" / "PRODUCTION.md").read_text())
    assert len(blocks) >= 3
    annpack.ok("keygen", "--out", work / "ci")
    run_py("\n".join(blocks), work)
    annpack.ok("verify", work / "ps", "--pubkey", work / "ci.pub", "--deep")


def test_library_results_are_freed_with_ap_free(work):
    """Every string the library hands over (status and verify reports, rows) is copied and
    released through ap_free, the library's own allocator, never libc's free."""
    code = textwrap.dedent('''
        import annpack._lib as L
        from annpack.api import build_pack, open_pack
        from annpack.verify import verify_pack
        real, freed = L.lib.ap_free, []
        def spy(ptr):
            freed.append(ptr)
            real(ptr)
        L.lib.ap_free = spy
        build_pack("tiny_docs.csv", "./p", text_col="text", id_col="id", lists=2)
        with open_pack("./p") as p:
            p.status()
            p.get(1)
            p.search("espresso", top_k=2)
        verify_pack("./p")
        print(len(freed), all(freed))
    ''')
    assert run_py(code, work).stdout.split() == ["5", "True"]  # status, get, 2 hits, report


def test_search_vec_normalises_like_the_library(work):
    """A query vector is taken as float32 and normalised by ap_l2_normalize, as by the CLI's
    --queries and the mount's /vquery/: the result depends only on the float32 values."""
    code = textwrap.dedent('''
        import ctypes, json, random, struct
        import annpack._lib as L
        from annpack.api import build_pack, open_pack
        f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
        build_pack("tiny_docs.csv", "./p", text_col="text", id_col="id", lists=2)
        random.seed(1)
        same = True
        with open_pack("./p") as p:
            for _ in range(10):
                v = [random.gauss(0, 1) * 3.7 for _ in range(p.dim)]
                q = (ctypes.c_float * p.dim)(*v)
                L.lib.ap_l2_normalize(q, p.dim)
                a = p.search_vec(v, top_k=10, probe=4)
                b = p.search_vec([f32(x) for x in v], top_k=10, probe=4)
                c = p.search_vec(list(q), top_k=10, probe=4)
                same &= a == b and [h["id"] for h in a] == [h["id"] for h in c]
        print(json.dumps(same))
    ''')
    assert run_py(code, work).stdout.strip() == "true"


def test_search_limits_come_from_the_library(work):
    """top_k's bound and probe's default are the library's AP_MAX_K and AP_DEFAULT_PROBE."""
    code = textwrap.dedent('''
        import annpack._lib as L
        from annpack.api import build_pack, open_pack
        print(L.MAX_K, L.lib.ap_max_k(), L.DEFAULT_PROBE, L.lib.ap_default_probe())
        build_pack("tiny_docs.csv", "./p", text_col="text", id_col="id", lists=16)
        with open_pack("./p") as p:
            v = p.embed("espresso coffee")
            print(p.search_vec(v, top_k=5) == p.search_vec(v, top_k=5, probe=L.DEFAULT_PROBE))
            try:
                p.search_vec(v, top_k=L.MAX_K + 1)
            except ValueError as e:
                print(e)
    ''')
    out = run_py(code, work).stdout.splitlines()
    assert out == ["1000 1000 8 8", "True", "top_k must be an integer in [1, 1000], got 1001"]


def test_installed_package_finds_the_installed_library(annpack, tmp_path):
    """`meson install` puts the package in /usr/bin/python3's site-packages and the library
    in libdir; the installed package loads that library (no ANNPACK_LIB, no build tree)
    and works. The static archive and the experimental header are not installed."""
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
                        "--destdir", dest], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    inits = list(dest.rglob("annpack/__init__.py"))
    assert len(inits) == 1, inits
    site = inits[0].parent.parent
    assert site.name in ("dist-packages", "site-packages")
    assert not list(dest.rglob("*.a")) and not list(dest.rglob("experimental.h"))
    assert list(dest.rglob("include/annpack/annpack.h"))
    libs = list(dest.rglob("libannpack.so.0"))
    assert len(libs) == 1
    shutil.copy(EXAMPLES / "tiny_docs.csv", tmp_path / "tiny_docs.csv")
    env = {k: v for k, v in os.environ.items() if k not in ("ANNPACK_LIB", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), **sanitizer_env())
    code = textwrap.dedent('''
        import os
        import annpack._lib as L
        from annpack.api import build_pack, open_pack
        print(os.path.realpath(L.lib._name))
        build_pack("tiny_docs.csv", "./p", text_col="text", id_col="id", lists=2)
        with open_pack("./p") as p:
            print(p.search("espresso coffee", top_k=1)[0]["id"])
    ''')
    r = subprocess.run([PY, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    loaded, top = r.stdout.split()
    assert loaded == os.path.realpath(libs[0])
    cli = annpack.ok("search", tmp_path / "p", "espresso coffee", "-k", 1).json()["results"]
    assert int(top) == cli[0]["id"]
