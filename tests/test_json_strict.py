"""Strict JSON on the real tools and mount: hostile manifests are refused quickly, with one
line naming the file, the byte and the rule, and never read differently from other readers."""
import json
import os
import re
import shutil
import time

import pytest

from conftest import EXAMPLES


def huge_object(n):
    return "{" + ",".join(f'"key{i:07d}":0' for i in range(n)) + "}"


def replace_atomically(path, data):
    tmp = path.with_name(path.name + ".planted")
    tmp.write_bytes(data)
    os.rename(tmp, path)


@pytest.fixture
def pack(tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    return d


@pytest.mark.parametrize("cmd", ["verify", "inspect", "search"])
def test_400k_keys_refused_quickly(annpack, pack, cmd):
    """The O(n^2) duplicate-key check made this hang: now it is one pass and a cap."""
    m = pack / "pack.manifest.json"
    text = m.read_text()
    hostile = text[:text.rindex("}")] + ',"padding":' + huge_object(400_000) + "}\n"
    assert len(hostile) > 5_000_000
    m.write_text(hostile)
    args = [cmd, pack] + (["kombucha"] if cmd == "search" else [])
    t0 = time.monotonic()
    r = annpack(*args, timeout=60)
    took = time.monotonic() - t0
    assert r.rc == 1, r
    assert took < 5, f"{cmd} took {took:.1f} s"
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r
    assert "pack.manifest.json" in lines[0]
    assert "more than 65536 keys (the cap on keys per object)" in lines[0], r
    assert "at byte" in lines[0]


def test_deep_nesting_names_the_limit(annpack, pack):
    m = pack / "pack.manifest.json"
    text = m.read_text()
    m.write_text(text[:text.rindex("}")] + ',"x":' + "[" * 100_000 + "]" * 100_000 + "}")
    r = annpack("verify", pack, timeout=60)
    assert r.rc == 1 and "JSON nested deeper than 64 levels at byte" in r.err, r
    assert len(r.err.strip().splitlines()) == 1


def _with_key(text, old, new):
    """The manifest text with the files key `old` renamed to the raw JSON string `new`."""
    assert f'"{old}"' in text
    return text.replace(f'"{old}"', new, 1)


@pytest.mark.parametrize("case", ["nul-key", "invalid-utf8", "leading-zero", "lone-surrogate"])
def test_reader_differentials_refused(annpack, pack, case):
    """Each was accepted before: C and Python would have read different documents."""
    m = pack / "pack.manifest.json"
    text = m.read_text()
    raw = m.read_bytes()
    if case == "nul-key":
        # cJSON cut the key at \u0000, so C checked pack.meta.idx while Python saw the
        # whole path.
        raw = _with_key(text, "pack.meta.idx",
                        '"pack.meta.idx\\u0000/../../etc/passwd"').encode()
        needle = "\\u0000 (NUL) in a string at byte"
    elif case == "invalid-utf8":
        i = raw.index(b'"hash"')
        raw = raw[:i] + b'"h\xffsh"' + raw[i + 6:]
        needle = "invalid UTF-8 at byte"
    elif case == "leading-zero":
        raw, n = re.subn(r'("n_lists":\s*)(\d+)', r"\g<1>0\2", text, count=1)
        assert n == 1
        raw = raw.encode()
        needle = "number with a leading zero at byte"
    else:
        i = raw.index(b'"hash"')
        raw = raw[:i] + b'"\\ud800hash"' + raw[i + 6:]
        needle = "unpaired surrogate \\ud800 at byte"
    m.write_bytes(raw)
    r = annpack("verify", pack)
    assert r.rc == 1 and needle in r.err and "pack.manifest.json" in r.err, r
    assert len(r.err.strip().splitlines()) == 1


def test_watch_picks_up_genuine_version_past_hostile_manifest(annpack, mount, tmp_path):
    """A 400k-key manifest planted in the source directory used to wedge the reload thread
    for hours: a genuine newer signed version published afterwards must be served within
    seconds."""
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", d,
               "--lists", 4, "--seed", 1)
    annpack.ok("keygen", "--out", tmp_path / "k")
    annpack.ok("sign", d, "--key", tmp_path / "k.pem")
    # The next genuine version, prepared elsewhere.
    d2 = tmp_path / "ps2"
    shutil.copytree(d, d2)
    src = tmp_path / "z.csv"
    src.write_text("id,text\n99,brand new zebra document\n")
    annpack.ok("packset", "build-delta", "--packset", d2, "--add", src,
               "--out", d2 / "deltas" / "0001.delta", "--pubkey", tmp_path / "k.pub")
    annpack.ok("sign", d2, "--key", tmp_path / "k.pem")

    m = mount(d, f"pubkey={tmp_path / 'k.pub'}", "watch", expect_errors=True)
    h = json.loads((m.mnt / "health").read_text())
    assert h["generation"] == 1 and h["signature"] == "verified"
    v1 = h["version"]

    genuine = (d / "pack.manifest.json").read_text()
    hostile = genuine[:genuine.rindex("}")] + ',"padding":' + huge_object(400_000) + "}\n"
    replace_atomically(d / "pack.manifest.json", hostile.encode())
    time.sleep(0.5)  # the watch notices and the reload thread takes the hostile file

    # Publish the genuine newer version: the delta, then the signature and the manifest.
    shutil.copytree(d2 / "deltas" / "0001.delta", d / "deltas" / "0001.delta")
    replace_atomically(d / "pack.manifest.json.sig", (d2 / "pack.manifest.json.sig").read_bytes())
    replace_atomically(d / "pack.manifest.json", (d2 / "pack.manifest.json").read_bytes())
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:
        h = json.loads((m.mnt / "health").read_text())
        if h["generation"] >= 2:
            break
        time.sleep(0.05)
    assert h["version"] > v1 and h["signature"] == "verified", h
    assert json.loads((m.mnt / "doc" / "99").read_text())["text"] == "brand new zebra document"
    refused = [l for l in m.stderr().splitlines() if "reload" in l and "refused" in l]
    assert refused, m.stderr()
    assert all(len(l) < 2000 for l in m.stderr().splitlines())
