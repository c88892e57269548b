"""Data safety of every write command (issue 13, items 1-5, 9, 19): an existing output
that is not what the command would write is refused unless --force (which replaces it
atomically); nothing outside the named directory is deleted; no symlink is followed;
packset changes verify the packset first (its signature when a key is given) and never
launder tampering; a SIGKILL at any moment or a full disk leaves the old or the new
state, verifying."""
import hashlib
import json
import os
import re
import random
import shutil
import signal
import subprocess
import time

import pytest

from conftest import EXAMPLES, write_csv
from digestlib import repin_digests

TINY = EXAMPLES / "tiny_docs.csv"
ADD = EXAMPLES / "delta_add.csv"


def snap(d):
    """{relative path: sha256} of every file and symlink under d (a directory's state)."""
    out = {}
    for root, dirs, files in os.walk(d):
        for n in files + [x for x in dirs if os.path.islink(os.path.join(root, x))]:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, d)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            else:
                out[rel] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture
def keys(annpack, tmp_path):
    annpack.ok("keygen", "--out", tmp_path / "k")
    return tmp_path / "k.pem", tmp_path / "k.pub"


def make_ps(annpack, d, deltas=1):
    annpack.ok("packset", "build-base", "--input", TINY, "--packset", d, "--lists", 4, "--seed", 1)
    for i in range(1, deltas + 1):
        annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", str(i),
                   "--out", d / "deltas" / f"{i:04d}.delta")
    return d


@pytest.fixture
def signed_ps(annpack, tmp_path, keys):
    d = make_ps(annpack, tmp_path / "ps")
    (d / "NOTES.txt").write_text("operator notes\n")
    annpack.ok("sign", d, "--key", keys[0])
    return d


# --- item 1: build --output never replaces a packset, a layer or a signed directory ------


@pytest.mark.parametrize("target", ["", "base", "deltas/0001.delta"])
def test_build_refuses_packset_and_layers(annpack, signed_ps, keys, target):
    out = signed_ps / target if target else signed_ps
    before = snap(signed_ps)
    r = annpack("build", "--input", TINY, "--text-col", "text", "--id-col", "id",
                "--output", out, "--lists", 2)
    assert r.rc == 1, repr(r)
    assert str(out) in r.err and "--force" in r.err
    assert snap(signed_ps) == before
    annpack.ok("verify", signed_ps, "--pubkey", keys[1], "--deep")


def test_build_refuses_signed_pack_and_foreign_files(annpack, tiny_pack, tmp_path, keys):
    signed = tmp_path / "signed"
    shutil.copytree(tiny_pack, signed)
    annpack.ok("sign", signed, "--key", keys[0])
    other = tmp_path / "other"
    shutil.copytree(tiny_pack, other)
    (other / "README").write_text("mine\n")
    for out in (signed, other):
        before = snap(out)
        r = annpack("build", "--input", TINY, "--text-col", "text", "--output", out)
        assert r.rc == 1 and str(out) in r.err and "--force" in r.err, repr(r)
        assert snap(out) == before
    # An earlier plain build output is replaced; --force replaces anything, atomically.
    plain = tmp_path / "plain"
    shutil.copytree(tiny_pack, plain)
    annpack.ok("build", "--input", ADD, "--text-col", "text", "--id-col", "id", "--output", plain)
    assert annpack.ok("inspect", plain).json()["n_vectors"] == 3
    annpack.ok("build", "--input", ADD, "--text-col", "text", "--id-col", "id", "--output", signed,
               "--force")
    assert not (signed / "pack.manifest.json.sig").exists()
    annpack.ok("verify", signed, "--deep")
    assert [p for p in os.listdir(tmp_path) if ".tmp-" in p] == []


# --- item 2: build-base never silently replaces a packset ---------------------------------


def test_build_base_refuses_existing_packset(annpack, signed_ps, keys):
    before = snap(signed_ps)
    r = annpack("packset", "build-base", "--input", TINY, "--packset", signed_ps, "--lists", 4)
    assert r.rc == 1 and str(signed_ps) in r.err and "--force" in r.err, repr(r)
    assert snap(signed_ps) == before
    annpack.ok("verify", signed_ps, "--pubkey", keys[1])
    # --force replaces it (atomically: a new version-1 packset, nothing else left).
    s = annpack.ok("packset", "build-base", "--input", TINY, "--packset", signed_ps,
                   "--lists", 4, "--force").json()
    assert s["version"] == 1 and s["deltas"] == []
    assert sorted(os.listdir(signed_ps)) == ["base", "pack.manifest.json"]


def test_build_base_rerun_replaces_its_own_output(annpack, tmp_path):
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", TINY, "--packset", d, "--lists", 4)
    s = annpack.ok("packset", "build-base", "--input", ADD, "--packset", d, "--lists", 2).json()
    assert s["live"] == 3
    # Not once it has a delta.
    annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "7",
               "--out", d / "deltas" / "0001.delta")
    r = annpack("packset", "build-base", "--input", TINY, "--packset", d)
    assert r.rc == 1 and "--force" in r.err


# --- item 3: promote-delta never removes a delta it did not write ------------------------


def test_promote_keeps_referenced_target(annpack, tmp_path):
    """A delta appended under the name promote would pick for the next seq."""
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", TINY, "--packset", d, "--lists", 4)
    annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "3",
               "--out", d / "deltas" / "0002.delta")          # seq 1, named 0002
    x = tmp_path / "x.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--add", ADD, "--out", x)
    s = annpack.ok("packset", "promote-delta", "--packset", d, "--delta", x).json()
    assert [e["seq"] for e in s["deltas"]] == [1, 2]
    assert s["deltas"][0]["path"] == "deltas/0002.delta"
    assert s["deltas"][1]["path"] != "deltas/0002.delta"
    annpack.ok("verify", d, "--deep")
    assert s["live"] == 40 - 1 + 2


def test_promote_refuses_staged_delta_at_target(annpack, tmp_path):
    d = make_ps(annpack, tmp_path / "ps", deltas=0)
    staged = d / "deltas" / "0001.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--delete-ids", "4", "--out", staged)
    before = snap(staged)
    x = tmp_path / "x.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--add", ADD, "--out", x)
    r = annpack("packset", "promote-delta", "--packset", d, "--delta", x)
    assert r.rc == 1 and "deltas/0001.delta" in r.err and "--force" in r.err, repr(r)
    assert snap(staged) == before
    assert annpack.ok("packset", "status", d).json()["version"] == 1
    s = annpack.ok("packset", "promote-delta", "--packset", d, "--delta", x, "--force").json()
    assert s["version"] == 2 and s["live"] == 42
    annpack.ok("verify", d, "--deep")


def test_promote_the_target_directory_itself(annpack, tmp_path):
    d = make_ps(annpack, tmp_path / "ps", deltas=0)
    staged = d / "deltas" / "0001.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--delete-ids", "4", "--out", staged)
    s = annpack.ok("packset", "promote-delta", "--packset", d, "--delta", staged).json()
    assert s["version"] == 2 and s["deltas"][0]["path"] == "deltas/0001.delta" and s["live"] == 39
    annpack.ok("verify", d, "--deep")


def test_interrupted_append_leftover(annpack, crash_hooks, tmp_path):
    d = make_ps(annpack, tmp_path / "ps", deltas=0)
    out = d / "deltas" / "0001.delta"
    args = ["packset", "build-delta", "--packset", d, "--delete-ids", "5", "--out", out]
    r = annpack(*args, env={"ANNPACK_TEST_CRASH_AT": "append:before-manifest"})
    assert r.rc == -signal.SIGKILL and out.exists()
    annpack.ok("verify", d, "--deep")
    # The same command again: the leftover is exactly what it builds, so it succeeds.
    s = annpack.ok(*args).json()
    assert s["version"] == 2 and s["live"] == 39
    # A different delta where an unreferenced leftover sits: refused, naming the leftover.
    r = annpack("packset", "build-delta", "--packset", d, "--delete-ids", "6", "--out", out,
                env={"ANNPACK_TEST_CRASH_AT": "append:before-manifest"})
    assert r.rc == 1 and "seq 1" in r.err, repr(r)     # referenced: never replaced
    out2 = d / "deltas" / "0002.delta"
    r = annpack("packset", "build-delta", "--packset", d, "--delete-ids", "6", "--out", out2,
                env={"ANNPACK_TEST_CRASH_AT": "append:before-manifest"})
    assert r.rc == -signal.SIGKILL
    r = annpack("packset", "build-delta", "--packset", d, "--delete-ids", "8", "--out", out2)
    assert r.rc == 1 and "leftover" in r.err and "--force" in r.err and "0002.delta" in r.err, repr(r)
    s = annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "8", "--out", out2,
                   "--force").json()
    assert s["version"] == 3 and s["live"] == 38
    annpack.ok("verify", d, "--deep")


# --- item 4: revert never deletes through a symlink or outside the packset ---------------


def test_revert_symlinked_deltas_outside(annpack, tmp_path):
    d = make_ps(annpack, tmp_path / "ps", deltas=2)
    outside = tmp_path / "outside"
    shutil.move(d / "deltas", outside)
    os.symlink(outside, d / "deltas")
    before = snap(outside)
    r = annpack("packset", "revert", "--packset", d, "--to", 1)
    assert r.rc == 1, repr(r)
    assert snap(outside) == before


def test_revert_symlinked_deltas_inside(annpack, tmp_path):
    """Even a symlink that stays inside the packset is not followed when deleting."""
    d = make_ps(annpack, tmp_path / "ps", deltas=2)
    shutil.move(d / "deltas", d / "real")
    os.symlink("real", d / "deltas")
    annpack.ok("verify", d)
    s = annpack.ok("packset", "revert", "--packset", d, "--to", 1).json()
    assert [e["seq"] for e in s["deltas"]] == [1]
    assert (d / "real" / "0002.delta" / "delta.manifest.json").exists()
    annpack.ok("verify", d, "--deep")


# --- item 5: sign --out never overwrites a file that is not a signature -------------------


def test_sign_out_refuses_other_files(annpack, tiny_pack, tmp_path, keys):
    pem, pub = keys
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    key_bytes = pem.read_bytes()
    r = annpack("sign", d, "--key", pem, "--out", pem)
    assert r.rc == 1 and str(pem) in r.err and "--force" in r.err, repr(r)
    assert pem.read_bytes() == key_bytes
    manifest = (d / "pack.manifest.json").read_bytes()
    r = annpack("sign", d, "--key", pem, "--out", d / "pack.manifest.json")
    assert r.rc == 1 and (d / "pack.manifest.json").read_bytes() == manifest
    # An earlier signature is replaced; a new file is created.
    sig = tmp_path / "x.sig"
    annpack.ok("sign", d, "--key", pem, "--out", sig)
    annpack.ok("sign", d, "--key", pem, "--out", sig)
    annpack.ok("verify", d, "--pubkey", pub, "--sig", sig)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    annpack.ok("sign", d, "--key", pem, "--out", other, "--force")
    annpack.ok("verify", d, "--pubkey", pub, "--sig", other)


def test_sign_out_does_not_follow_symlink(annpack, tiny_pack, tmp_path, keys):
    pem, pub = keys
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    victim = tmp_path / "victim"
    victim.write_bytes(b"v" * 64)
    os.symlink(victim, d / "pack.manifest.json.sig")
    r = annpack("sign", d, "--key", pem)
    assert r.rc == 1 and "not a signature" in r.err and "--force" in r.err, repr(r)
    assert os.path.islink(d / "pack.manifest.json.sig")
    annpack.ok("sign", d, "--key", pem, "--force")
    assert victim.read_bytes() == b"v" * 64
    assert not os.path.islink(d / "pack.manifest.json.sig")
    annpack.ok("verify", d, "--pubkey", pub)


# --- the other outputs: rebase/create --out, build-delta --base --out, keygen -----------


def test_rebase_and_create_outputs(annpack, tmp_path, tiny_pack):
    d = make_ps(annpack, tmp_path / "ps", deltas=1)
    out = tmp_path / "r"
    annpack.ok("packset", "rebase", "--packset", d, "--out", out, "--lists", 3)
    # The same again: the output is exactly what it writes, so it is kept (a retry works).
    before = snap(out)
    annpack.ok("packset", "rebase", "--packset", d, "--out", out, "--lists", 3)
    assert snap(out) == before
    # Another result is refused unless --force, which replaces it atomically.
    r = annpack("packset", "rebase", "--packset", d, "--out", out, "--lists", 2)
    assert r.rc == 1 and str(out) in r.err and "--force" in r.err, repr(r)
    assert snap(out) == before
    annpack.ok("packset", "rebase", "--packset", d, "--out", out, "--lists", 2, "--force")
    assert annpack.ok("inspect", out).json()["n_lists"] == 2
    # A directory that is not a packset is never compared, only refused.
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    for args in (["rebase", "--packset", d, "--out", other],
                 ["create", "--base", tiny_pack, "--out", other]):
        r = annpack("packset", *args)
        assert r.rc == 1 and "not a packset" in r.err, repr(r)
        assert (other / "keep.txt").read_text() == "x"
    c = tmp_path / "c"
    annpack.ok("packset", "create", "--base", tiny_pack, "--out", c)
    annpack.ok("packset", "create", "--base", tiny_pack, "--out", c)
    r = annpack("packset", "create", "--base", out / "base", "--out", c)
    assert r.rc == 1 and "--force" in r.err
    annpack.ok("packset", "create", "--base", out / "base", "--out", c, "--force")
    annpack.ok("verify", c, "--deep")


def test_build_delta_base_output(annpack, tmp_path):
    d = make_ps(annpack, tmp_path / "ps", deltas=0)
    out = tmp_path / "x.delta"
    args = ["packset", "build-delta", "--base", d / "base", "--delete-ids", "3", "--out", out]
    annpack.ok(*args)
    before = snap(out)
    annpack.ok(*args)                                   # identical: kept
    assert snap(out) == before
    r = annpack("packset", "build-delta", "--base", d / "base", "--delete-ids", "4", "--out", out)
    assert r.rc == 1 and "--force" in r.err and str(out) in r.err, repr(r)
    assert snap(out) == before
    annpack.ok("packset", "build-delta", "--base", d / "base", "--delete-ids", "4", "--out", out,
               "--force")
    assert (out / "tombstones.jsonl").read_text() == '{"id":4}\n'
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.bin").write_bytes(b"1")
    r = annpack("packset", "build-delta", "--base", d / "base", "--delete-ids", "4", "--out", plain)
    assert r.rc == 1 and "not a delta" in r.err
    assert (plain / "data.bin").read_bytes() == b"1"


def test_keygen_never_replaces(annpack, tmp_path):
    victim = tmp_path / "victim"
    os.symlink(victim, tmp_path / "k.pem")               # dangling: would create victim
    r = annpack("keygen", "--out", tmp_path / "k")
    assert r.rc == 1 and "k.pem exists" in r.err
    assert not victim.exists() and not (tmp_path / "k.pub").exists()
    (tmp_path / "j.pub").write_text("mine")
    r = annpack("keygen", "--out", tmp_path / "j")
    assert r.rc == 1 and not (tmp_path / "j.pem").exists()
    assert (tmp_path / "j.pub").read_text() == "mine"
    assert no_temporaries(tmp_path) == []


# --- item 9: changes verify first, never launder, and drop the stale signature -----------


def tamper_base_consistently(d):
    """Changes a stored vector of the base (the lowest mantissa bit of its last f16) and
    rewrites the base's own pack manifest to match: the base verifies as a pack, but the
    root manifest's hashes no longer do."""
    base = d / "base"
    m = json.loads((base / "pack.manifest.json").read_text())
    b = bytearray((base / "pack.annpack").read_bytes())
    b[len(b) - 16 * m["n_lists"] - 2] ^= 1
    (base / "pack.annpack").write_bytes(bytes(b))
    m["files"]["pack.annpack"] = {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
    repin_digests(base, m)
    (base / "pack.manifest.json").write_text(json.dumps(m, indent="\t") + "\n")


def test_changes_do_not_launder_tampering(annpack, tmp_path, keys):
    d = make_ps(annpack, tmp_path / "ps", deltas=1)
    annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "2",
               "--out", d / "deltas" / "0002.delta")
    tamper_base_consistently(d)
    annpack.ok("verify", d / "base")                       # a consistent pack on its own
    assert annpack("verify", d).rc == 1                    # but not the packset
    before = snap(d)
    x = tmp_path / "x.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--delete-ids", "9", "--out", x)
    for args in (["build-delta", "--packset", d, "--delete-ids", "3",
                  "--out", d / "deltas" / "0003.delta"],
                 ["promote-delta", "--packset", d, "--delta", x],
                 ["revert", "--packset", d, "--to", 1],
                 ["rebase", "--packset", d, "--out", tmp_path / "rebased"]):
        r = annpack("packset", *args)
        assert r.rc == 1 and re.search(r"base/pack\.(annpack|manifest\.json): sha256 mismatch", r.err), (args, repr(r))
        assert snap(d) == before, args
    assert not (tmp_path / "rebased").exists()
    r = annpack("sign", d, "--key", keys[0])
    assert r.rc == 1 and not (d / "pack.manifest.json.sig").exists()


def test_signed_packset_needs_pubkey(annpack, signed_ps, keys, tmp_path):
    pem, pub = keys
    d = signed_ps
    before = snap(d)
    r = annpack("packset", "build-delta", "--packset", d, "--delete-ids", "3",
                "--out", d / "deltas" / "0002.delta")
    assert r.rc == 1 and "--pubkey" in r.err and "signed" in r.err, repr(r)
    assert snap(d) == before
    for args in (["revert", "--packset", d, "--to", 0],
                 ["rebase", "--packset", d, "--out", tmp_path / "r"]):
        r = annpack("packset", *args)
        assert r.rc == 1 and "--pubkey" in r.err, repr(r)
    # A key that does not verify the signature is refused too.
    annpack.ok("keygen", "--out", tmp_path / "other")
    r = annpack("packset", "revert", "--packset", d, "--to", 0, "--pubkey", tmp_path / "other.pub")
    assert r.rc == 1 and "does not verify" in r.err
    assert snap(d) == before
    # With the key: the change is made, and the signature of the old version is removed.
    r = annpack("packset", "build-delta", "--packset", d, "--delete-ids", "3",
                "--out", d / "deltas" / "0002.delta", "--pubkey", pub)
    assert r.rc == 0, repr(r)
    assert r.json()["version"] == 3 and "re-sign" in r.err
    assert not (d / "pack.manifest.json.sig").exists()
    assert (d / "NOTES.txt").exists()
    annpack.ok("verify", d, "--deep")
    annpack.ok("sign", d, "--key", pem)
    annpack.ok("verify", d, "--pubkey", pub)
    # Rebase reads a signed packset with its key and leaves it untouched.
    before = snap(d)
    annpack.ok("packset", "rebase", "--packset", d, "--out", tmp_path / "r", "--pubkey", pub)
    assert snap(d) == before
    for args in (["revert", "--packset", d, "--to", 1, "--pubkey", pub],):
        annpack.ok("packset", *args)
        assert not (d / "pack.manifest.json.sig").exists()


def test_kept_layer_entries_unchanged(annpack, tmp_path):
    """The new root manifest carries the verified entries of the layers it keeps as they
    were (a contract check: re-hashing unchanged bytes would give the same entries)."""
    d = make_ps(annpack, tmp_path / "ps", deltas=2)
    old = json.loads((d / "pack.manifest.json").read_text())
    annpack.ok("packset", "build-delta", "--packset", d, "--delete-ids", "9",
               "--out", d / "deltas" / "0003.delta")
    new = json.loads((d / "pack.manifest.json").read_text())
    assert new["base"] == old["base"] and new["deltas"][:2] == old["deltas"]
    annpack.ok("packset", "revert", "--packset", d, "--to", 1)
    assert json.loads((d / "pack.manifest.json").read_text())["deltas"] == old["deltas"][:1]


# --- item 19: sign --expires, verify --allow-expired -------------------------------------


def test_sign_expires_packset(annpack, tmp_path, keys):
    pem, pub = keys
    d = make_ps(annpack, tmp_path / "ps", deltas=1)
    annpack.ok("sign", d, "--key", pem)
    t0 = time.time()
    r = annpack.ok("sign", d, "--key", pem, "--expires", "30d").json()
    m = json.loads((d / "pack.manifest.json").read_text())
    assert m["version"] == 3
    exp = time.mktime(time.strptime(m["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(exp - (t0 + 30 * 86400)) < 60
    assert r["expires"] == m["expires"]
    rep = annpack.ok("verify", d, "--pubkey", pub, "--deep").json()
    assert rep["expires"] == m["expires"]
    # A date replaces it (another new version); the signature always matches.
    annpack.ok("sign", d, "--key", pem, "--expires", "2999-01-01T00:00:00Z")
    m = json.loads((d / "pack.manifest.json").read_text())
    assert m["expires"] == "2999-01-01T00:00:00Z" and m["version"] == 4
    annpack.ok("verify", d, "--pubkey", pub)
    # Later changes keep it.
    annpack.ok("packset", "revert", "--packset", d, "--to", 0, "--pubkey", pub)
    assert json.loads((d / "pack.manifest.json").read_text())["expires"] == "2999-01-01T00:00:00Z"


def test_sign_expires_pack_and_expiry(annpack, tiny_pack, tmp_path, keys):
    pem, pub = keys
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    annpack.ok("sign", d, "--key", pem, "--expires", "2s")
    m = json.loads((d / "pack.manifest.json").read_text())
    assert m["expires"].endswith("Z")
    annpack.ok("verify", d, "--pubkey", pub, "--deep")
    time.sleep(3)
    r = annpack("verify", d, "--pubkey", pub)
    assert r.rc == 1 and "expired at" in r.err and "--allow-expired" in r.err
    annpack.ok("verify", d, "--pubkey", pub, "--allow-expired")
    # Re-signing with a new expiry renews it.
    annpack.ok("sign", d, "--key", pem, "--expires", "12h")
    annpack.ok("verify", d, "--pubkey", pub)


@pytest.mark.parametrize("bad", ["30x", "0d", "-1d", "d", "2001-01-01T00:00:00Z", "tomorrow",
                                 "99999999999d"])
def test_sign_expires_refused(annpack, tiny_pack, tmp_path, keys, bad):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    before = snap(d)
    r = annpack("sign", d, "--key", keys[0], "--expires", bad)
    assert r.rc == 2 and f"--expires {bad}:" in r.err, repr(r)
    assert snap(d) == before


def test_sign_expires_refuses_a_layer(annpack, tmp_path, keys):
    d = make_ps(annpack, tmp_path / "ps", deltas=1)
    before = snap(d)
    r = annpack("sign", d / "base", "--key", keys[0], "--expires", "1d")
    assert r.rc == 1 and "packset" in r.err, repr(r)
    assert snap(d) == before


# --- every write command: SIGKILL at a random moment, a full disk -----------------------
#
# Each command is described by how to set up its inputs in a fresh directory (from
# templates built once), its arguments, and the state it changes: the state after a kill or
# a failure must be the old one or the new one (what an uninterrupted run gives), the
# directory must verify, and when it is still old, running the command again must succeed.


def ps_state(d):
    """A packset's (or pack's) state: its manifest and signature bytes (verify --deep then
    pins every other byte through the hashes)."""
    m = d / "pack.manifest.json"
    s = d / "pack.manifest.json.sig"
    return (m.read_bytes() if m.exists() else None, s.read_bytes() if s.exists() else None)


def dir_state(d):
    return snap(d) if d.exists() else None


def key_state(prefix):
    pem, pub = prefix.with_suffix(".pem"), prefix.with_suffix(".pub")
    return (pem.exists(), pub.exists())


def rows_csv(path, ids, seed):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(3000)]
    write_csv(path, [(i, " ".join(rng.choice(words) for _ in range(12))) for i in ids])


class Cmd:
    """name; setup(work) -> (argv, state_fn, verify_args or None); the templates in t."""

    def __init__(self, name, setup, new_check=None):
        self.name, self.setup, self.new_check = name, setup, new_check


def commands(t, small):
    """The write commands over the templates t (big inputs, or small ones for the full-disk
    runs)."""
    csv1, csv2 = t["csv"], t["add"]
    P0, T0, T1, D, keys = t["pack"], t["ps0"], t["ps1"], t["delta"], t["keys"]
    lists = "4" if small else "16"

    def build(w):
        shutil.copytree(P0, w / "out")
        return (["build", "--input", csv1, "--text-col", "text", "--id-col", "id",
                 "--output", w / "out", "--lists", lists, "--seed", 2],
                lambda: dir_state(w / "out"), [w / "out"])

    def build_base(w):
        shutil.copytree(T0, w / "ps")
        return (["packset", "build-base", "--input", csv1, "--packset", w / "ps", "--lists",
                 lists, "--seed", 2], lambda: dir_state(w / "ps"), [w / "ps"])

    def build_delta_ps(w):
        shutil.copytree(T0, w / "ps")
        return (["packset", "build-delta", "--packset", w / "ps", "--add", csv2,
                 "--delete-ids", "1,2", "--out", w / "ps" / "deltas" / "0001.delta"],
                lambda: ps_state(w / "ps"), [w / "ps"])

    def build_delta_base(w):
        shutil.copytree(T0, w / "ps")
        return (["packset", "build-delta", "--base", w / "ps" / "base", "--add", csv2,
                 "--out", w / "d"], lambda: dir_state(w / "d"), None)

    def promote(w):
        shutil.copytree(T0, w / "ps")
        shutil.copytree(D, w / "d")
        return (["packset", "promote-delta", "--packset", w / "ps", "--delta", w / "d"],
                lambda: ps_state(w / "ps"), [w / "ps"])

    def revert(w):
        shutil.copytree(T1, w / "ps")
        return (["packset", "revert", "--packset", w / "ps", "--to", 0],
                lambda: ps_state(w / "ps"), [w / "ps"])

    def rebase(w):
        shutil.copytree(T1, w / "ps")
        return (["packset", "rebase", "--packset", w / "ps", "--out", w / "r", "--lists", lists],
                lambda: dir_state(w / "r"), None)

    def create(w):
        shutil.copytree(T0, w / "ps")
        shutil.copytree(D, w / "d")
        return (["packset", "create", "--base", w / "ps" / "base", "--delta", w / "d",
                 "--out", w / "c"], lambda: dir_state(w / "c"), None)

    def sign(w):
        shutil.copytree(T1, w / "ps")
        return (["sign", w / "ps", "--key", keys[0]], lambda: ps_state(w / "ps"),
                [w / "ps", "--pubkey", keys[1]])

    def sign_expires(w):
        shutil.copytree(T1, w / "ps")
        return (["sign", w / "ps", "--key", keys[0], "--expires", "30d"],
                lambda: ps_state(w / "ps"), [w / "ps"])

    def keygen(w):
        return (["keygen", "--out", w / "k"], lambda: key_state(w / "k"), None)

    def expires_new(old, now):
        """sign --expires: the new state is time-dependent: version + 1, signed."""
        m0, m1 = json.loads(old[0]), json.loads(now[0])
        return m1["version"] == m0["version"] + 1 and "expires" in m1 and now[1] is not None

    return [Cmd("build", build), Cmd("build-base", build_base),
            Cmd("build-delta --packset", build_delta_ps), Cmd("build-delta --base", build_delta_base),
            Cmd("promote-delta", promote), Cmd("revert", revert), Cmd("rebase", rebase),
            Cmd("create", create), Cmd("sign", sign),
            Cmd("sign --expires", sign_expires, expires_new), Cmd("keygen", keygen)]


def make_templates(annpack, d, n_rows, n_add):
    d.mkdir(parents=True, exist_ok=True)
    t = {"csv": d / "rows.csv", "add": d / "add.csv"}
    rows_csv(t["csv"], range(n_rows), 1)
    rows_csv(t["add"], range(n_rows - n_add // 2, n_rows + n_add // 2), 2)
    lists = "4" if n_rows < 1000 else "16"
    t["pack"] = d / "pack"
    annpack.ok("build", "--input", t["csv"], "--text-col", "text", "--id-col", "id",
               "--output", t["pack"], "--lists", lists, "--seed", 1)
    t["ps0"] = d / "ps0"
    annpack.ok("packset", "build-base", "--input", t["csv"], "--packset", t["ps0"],
               "--lists", lists)
    t["ps1"] = d / "ps1"
    shutil.copytree(t["ps0"], t["ps1"])
    annpack.ok("packset", "build-delta", "--packset", t["ps1"], "--add", t["add"],
               "--out", t["ps1"] / "deltas" / "0001.delta")
    t["delta"] = d / "delta"
    annpack.ok("packset", "build-delta", "--base", t["ps0"] / "base", "--add", t["add"],
               "--delete-ids", "1,2", "--out", t["delta"])
    annpack.ok("keygen", "--out", d / "k")
    t["keys"] = (d / "k.pem", d / "k.pub")
    return t


@pytest.fixture(scope="module")
def big(annpack, tmp_path_factory):
    """Inputs big enough that each command runs for a few hundred ms; each command's new
    state and runtime, from one uninterrupted run."""
    root = tmp_path_factory.mktemp("safety")
    t = make_templates(annpack, root / "t", 5000, 2000)
    ref = {}
    for c in commands(t, small=False):
        w = root / ("ref-" + c.name.replace(" ", "_"))
        w.mkdir()
        argv, state, _ = c.setup(w)
        t0 = time.monotonic()
        annpack.ok(*argv)
        ref[c.name] = (state(), time.monotonic() - t0)
    return root, t, ref


def no_temporaries(d):
    return [os.path.join(r, n) for r, ds, fs in os.walk(d) for n in ds + fs
            if ".tmp-" in n or ".keygen-" in n]


def check_after(annpack, c, old, now, new, verify):
    """The state is the old or the new one, and it verifies."""
    if c.new_check and now != old:
        assert c.new_check(old, now), (c.name, "neither old nor new")
    else:
        assert now in (old, new), (c.name, "neither old nor new")
    if verify and now is not None:
        if "--pubkey" in verify and now[1] is None:     # not signed (yet): hashes only
            verify = verify[:verify.index("--pubkey")]
        annpack.ok("verify", *verify, "--deep")


@pytest.mark.slow
def test_sigkill_at_random_moments(annpack, big):
    root, t, ref = big
    cmds = commands(t, small=False)
    rng = random.Random(13)
    runs = 50
    outcomes = []
    for i in range(runs):
        c = cmds[i % len(cmds)]
        w = root / f"run{i}"
        w.mkdir()
        argv, state, verify = c.setup(w)
        old = state()
        new, took = ref[c.name]
        # Half the kills anywhere in the run, half in its last part, where the results are
        # published (renames, the manifest, the signature).
        delay = took * (rng.uniform(0, 1) if i % 2 else rng.uniform(0.8, 1.0))
        env = dict(os.environ, ANNPACK_THREADS="2")
        p = subprocess.Popen([annpack.exe, *map(str, argv)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        rc = p.wait()
        now = state()
        check_after(annpack, c, old, now, new, verify)
        outcomes.append((c.name, rc, "old" if now == old else "new"))
        if now == old:
            annpack.ok(*argv)                       # the retry succeeds
            check_after(annpack, c, old, state(), new, verify)
            assert state() != old, c.name
        shutil.rmtree(w)
    # The kills landed inside the commands, not only before or after them.
    killed = [o for o in outcomes if o[1] == -signal.SIGKILL]
    assert len(killed) >= runs // 4, outcomes
    assert any(o[2] == "old" for o in killed) and any(o[2] == "new" for o in outcomes), outcomes


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount tmpfs")
    d = tmp_path / "fs"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d], check=True)
    yield d
    subprocess.run(["umount", "-l", d], check=False)


def fill(fs, leave):
    """Fills the filesystem, then frees `leave` bytes."""
    f = fs / "filler"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * chunk) > 0:
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    os.truncate(f, max(0, f.stat().st_size - leave))
    return f


def test_full_disk_during_every_write_command(annpack, tmp_path, tmpfs):
    t = make_templates(annpack, tmp_path / "t", 40, 6)
    cmds = commands(t, small=True)
    ref = {}
    for c in cmds:
        w = tmp_path / ("ref-" + c.name.replace(" ", "_"))
        w.mkdir()
        argv, state, _ = c.setup(w)
        annpack.ok(*argv)
        ref[c.name] = state()
    failures = []
    for c in cmds:
        for leave in (0, 4096, 16384, 40960):
            for p in tmpfs.iterdir():
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            w = tmpfs / "w"
            w.mkdir()
            argv, state, verify = c.setup(w)
            old = state()
            filler = fill(tmpfs, leave)
            r = annpack(*argv)
            os.unlink(filler)
            now = state()
            if r.rc not in (0, 1) or (r.rc == 1 and "No space left" not in r.err) or \
                    (leave == 0 and r.rc == 0):
                failures.append((c.name, leave, repr(r)))
                continue
            try:
                check_after(annpack, c, old, now, ref[c.name], verify)
            except AssertionError as e:
                failures.append((c.name, leave, str(e)))
            if no_temporaries(tmpfs):
                failures.append((c.name, leave, no_temporaries(tmpfs)))
            if r.rc == 1:
                annpack.ok(*argv)                   # with space again, it succeeds
    assert not failures, failures


# --- the stale-signature window, the Python API --------------------------------------------


def test_crash_between_manifest_and_signature_removal(annpack, crash_hooks, signed_ps, keys):
    """The one instant a change leaves the old signature beside the new manifest: the
    signature then does not verify, so nothing accepts it until the packset is re-signed."""
    pem, pub = keys
    d = signed_ps
    r = annpack("packset", "revert", "--packset", d, "--to", 0, "--pubkey", pub,
                env={"ANNPACK_TEST_CRASH_AT": "revert:after-manifest"})
    assert r.rc == -signal.SIGKILL
    annpack.ok("verify", d, "--deep")
    r = annpack("verify", d, "--pubkey", pub)
    assert r.rc == 1 and "does not verify" in r.err
    annpack.ok("sign", d, "--key", pem)
    annpack.ok("verify", d, "--pubkey", pub)
    r = annpack("sign", d, "--key", pem, "--expires", "1d",
                env={"ANNPACK_TEST_CRASH_AT": "sign:after-manifest"})
    assert r.rc == -signal.SIGKILL
    assert annpack("verify", d, "--pubkey", pub).rc == 1
    annpack.ok("sign", d, "--key", pem)
    annpack.ok("verify", d, "--pubkey", pub)


def test_python_changes_verify_first(annpack, signed_ps, keys):
    from conftest import BUILD, ROOT
    from test_python import sanitizer_env
    pem, pub = keys
    d = signed_ps
    code = f"""
import annpack.packset as P
from annpack._lib import AnnpackError
try:
    P.revert_packset({str(d)!r}, 0)
    raise SystemExit("not refused")
except AnnpackError as e:
    assert "--pubkey" in str(e), e
s = P.revert_packset({str(d)!r}, 0, pubkey={str(pub)!r})
assert s["deltas"] == [] and s["version"] == 3
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"),
               ANNPACK_LIB=str(BUILD / "core" / "libannpack.so"), **sanitizer_env())
    r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert not (d / "pack.manifest.json.sig").exists()
