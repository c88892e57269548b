"""Keys, signatures and tamper evidence (issue: trust), with real openssl for interop."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from conftest import ROOT

OPENSSL = shutil.which("openssl")


def openssl(*args, check=True):
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=check)


@pytest.fixture
def signed(annpack, tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    annpack.ok("keygen", "--out", tmp_path / "k")
    annpack.ok("sign", d, "--key", tmp_path / "k.pem")
    return d, tmp_path / "k.pem", tmp_path / "k.pub"


def test_keygen_files(annpack, tmp_path):
    r = annpack.ok("keygen", "--out", tmp_path / "k").json()
    pem, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert len(r["key_id"]) == 16
    # OpenSSL reads our private key and derives exactly our public key.
    assert openssl("pkey", "-in", pem, "-pubout").stdout.decode() == pub.read_text()
    # Never overwrites.
    assert annpack("keygen", "--out", tmp_path / "k").rc == 1


def test_sign_verify_and_key_id(annpack, signed):
    d, pem, pub = signed
    sig = d / "pack.manifest.json.sig"
    assert sig.stat().st_size == 64
    rep = annpack.ok("verify", d, "--pubkey", pub, "--deep").json()
    assert rep["ok"] and rep["signature"]["valid"] and rep["signature"]["checked"]
    import hashlib
    raw = openssl("pkey", "-pubin", "-in", pub, "-outform", "DER").stdout[-32:]
    assert rep["signature"]["key_id"] == hashlib.sha256(raw).hexdigest()[:16]


def test_openssl_verifies_our_signature(signed):
    d, pem, pub = signed
    r = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in",
                d / "pack.manifest.json", "-sigfile", d / "pack.manifest.json.sig", check=False)
    assert r.returncode == 0, r.stderr


def test_we_verify_openssl_signature_and_keys(annpack, tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    key, pub = tmp_path / "o.pem", tmp_path / "o.pub"
    openssl("genpkey", "-algorithm", "ed25519", "-out", key)
    openssl("pkey", "-in", key, "-pubout", "-out", pub)
    openssl("pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", d / "pack.manifest.json",
            "-out", d / "pack.manifest.json.sig")
    annpack.ok("verify", d, "--pubkey", pub)
    # An OpenSSL-generated key signs with annpack, and both verifiers agree.
    os.chmod(key, 0o600)
    annpack.ok("sign", d, "--key", key, "--out", tmp_path / "ours.sig")
    annpack.ok("verify", d, "--pubkey", pub, "--sig", tmp_path / "ours.sig")
    assert openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in",
                   d / "pack.manifest.json", "-sigfile", tmp_path / "ours.sig",
                   check=False).returncode == 0


def test_wrong_key_and_missing_signature(annpack, signed, tmp_path):
    d, pem, pub = signed
    annpack.ok("keygen", "--out", tmp_path / "other")
    r = annpack("verify", d, "--pubkey", tmp_path / "other.pub")
    assert r.rc == 1 and "pack.manifest.json.sig" in r.err and "does not verify" in r.err
    # Several keys in one file (rotation): the matching one is used.
    both = tmp_path / "both.pub"
    both.write_text((tmp_path / "other.pub").read_text() + pub.read_text())
    rep = annpack.ok("verify", d, "--pubkey", both).json()
    assert rep["signature"]["valid"]
    os.unlink(d / "pack.manifest.json.sig")
    r = annpack("verify", d, "--pubkey", pub)
    assert r.rc == 1 and "signature missing" in r.err


def test_private_key_mode_warning(annpack, signed):
    d, pem, pub = signed
    os.chmod(pem, 0o644)
    r = annpack.ok("sign", d, "--key", pem)
    assert "readable by group or others" in r.err


def test_sign_refuses_unverifiable(annpack, tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    annpack.ok("keygen", "--out", tmp_path / "k")
    b = bytearray((d / "pack.annpack").read_bytes())
    b[100] ^= 1
    (d / "pack.annpack").write_bytes(bytes(b))
    r = annpack("sign", d, "--key", tmp_path / "k.pem")
    assert r.rc == 1 and "refusing to sign" in r.err and "pack.annpack" in r.err
    assert not (d / "pack.manifest.json.sig").exists()


def test_expires(annpack, tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    m = json.loads((d / "pack.manifest.json").read_text())
    m["expires"] = "2001-01-01T00:00:00Z"
    (d / "pack.manifest.json").write_text(json.dumps(m))
    annpack.ok("keygen", "--out", tmp_path / "k")
    r = annpack("verify", d)
    assert r.rc == 1 and "expired at 2001-01-01T00:00:00Z" in r.err
    annpack.ok("verify", d, "--allow-expired")
    m["expires"] = "2999-01-01T00:00:00Z"
    (d / "pack.manifest.json").write_text(json.dumps(m))
    annpack.ok("verify", d)
    m["expires"] = "tomorrow"
    (d / "pack.manifest.json").write_text(json.dumps(m))
    assert "RFC 3339" in annpack("verify", d).err


def tamper_cases(d):
    """(description, file, mutate-function) for every file of a signed pack."""
    cases = []
    for f in sorted(p.name for p in d.iterdir()):
        size = (d / f).stat().st_size
        for pos in sorted({0, 20, 72, size // 2, size - 20, size - 1}):
            if 0 <= pos < size:
                cases.append((f"flip {f}@{pos}", f, ("flip", pos)))
        cases.append((f"truncate {f}", f, ("truncate", size // 2)))
        cases.append((f"delete {f}", f, ("delete", 0)))
    return cases


def apply(d, f, action):
    kind, pos = action
    p = d / f
    if kind == "flip":
        b = bytearray(p.read_bytes())
        b[pos] ^= 0x01
        p.write_bytes(bytes(b))
    elif kind == "truncate":
        p.write_bytes(p.read_bytes()[:pos])
    else:
        p.unlink()


def test_tamper_matrix_pack(annpack, signed, tmp_path):
    d, pem, pub = signed
    failures = []
    for desc, f, action in tamper_cases(d):
        t = tmp_path / "t"
        if t.exists():
            shutil.rmtree(t)
        shutil.copytree(d, t)
        apply(t, f, action)
        r = annpack("verify", t, "--pubkey", pub, "--deep")
        if r.rc != 1 or f not in r.err or r.rc < 0:
            failures.append((desc, r.rc, r.err.strip()))
    assert not failures, failures


def test_manifest_signed_by_other_key(annpack, signed, tmp_path):
    d, pem, pub = signed
    annpack.ok("keygen", "--out", tmp_path / "evil")
    m = json.loads((d / "pack.manifest.json").read_text())
    m["build"]["rows"] = 41
    (d / "pack.manifest.json").write_text(json.dumps(m))
    annpack.ok("sign", d, "--key", tmp_path / "evil.pem")
    r = annpack("verify", d, "--pubkey", pub)
    assert r.rc == 1 and "does not verify" in r.err


def test_path_escape_symlink(annpack, tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    outside = tmp_path / "outside.annpack"
    shutil.move(d / "pack.annpack", outside)
    os.symlink(outside, d / "pack.annpack")
    r = annpack("verify", d)
    assert r.rc == 1 and "path escape" in r.err
    assert annpack("search", d, "x").rc == 1


def test_pack_integrity_script(annpack, tiny_pack, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    annpack.ok("keygen", "--out", tmp_path / "k")
    env = dict(os.environ, ANNPACK=annpack.exe)
    r = subprocess.run([ROOT / "tools" / "pack_integrity.sh", d, tmp_path / "k.pem",
                        tmp_path / "k.pub"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "PASS"
    (d / "pack.meta.idx").write_bytes(b"x")
    r = subprocess.run([ROOT / "tools" / "pack_integrity.sh", d, tmp_path / "k.pem",
                        tmp_path / "k.pub"], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and r.stdout.startswith("FAIL") and "pack.meta.idx" in r.stdout


@pytest.fixture
def signed_packset(annpack, tmp_path):
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", ROOT / "examples" / "tiny_docs.csv",
               "--packset", d, "--lists", 4, "--seed", 1)
    annpack.ok("packset", "build-delta", "--packset", d, "--add",
               ROOT / "examples" / "delta_add.csv", "--delete-ids", "1,2",
               "--out", d / "deltas" / "0001.delta")
    annpack.ok("keygen", "--out", tmp_path / "k")
    annpack.ok("sign", d, "--key", tmp_path / "k.pem")
    return d, tmp_path / "k.pem", tmp_path / "k.pub"


def test_tamper_matrix_packset(annpack, signed_packset, tmp_path):
    d, pem, pub = signed_packset
    annpack.ok("verify", d, "--pubkey", pub, "--deep")
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    assert any(f.endswith("tombstones.jsonl") for f in files)
    failures = []
    for rel in files:
        size = (d / rel).stat().st_size
        actions = [("flip", pos) for pos in sorted({0, size // 2, size - 1}) if size] + \
                  [("truncate", size // 2), ("delete", 0)]
        for action in actions:
            t = tmp_path / "t"
            if t.exists():
                shutil.rmtree(t)
            shutil.copytree(d, t)
            import pathlib
            sub = pathlib.Path(rel)
            apply(t / sub.parent, sub.name, action)
            r = annpack("verify", t, "--pubkey", pub, "--deep")
            name = sub.name if sub.name != "pack.manifest.json.sig" else "pack.manifest.json.sig"
            if r.rc != 1 or name not in r.err:
                failures.append((rel, action, r.rc, r.err.strip()[:300]))
    assert not failures, failures


def test_swapped_delta_refused(annpack, signed_packset, tmp_path):
    """Replacing a delta directory with another validly built delta breaks the hashes."""
    d, pem, pub = signed_packset
    other = tmp_path / "other.delta"
    annpack.ok("packset", "build-delta", "--base", d / "base", "--delete-ids", "9", "--out", other)
    shutil.rmtree(d / "deltas" / "0001.delta")
    shutil.copytree(other, d / "deltas" / "0001.delta")
    r = annpack("verify", d, "--pubkey", pub)
    assert r.rc == 1 and "deltas/0001.delta/" in r.err and "sha256 mismatch" in r.err


def test_packset_manifest_signed_by_other_key(annpack, signed_packset, tmp_path):
    d, pem, pub = signed_packset
    annpack.ok("keygen", "--out", tmp_path / "evil")
    annpack.ok("sign", d, "--key", tmp_path / "evil.pem")
    r = annpack("verify", d, "--pubkey", pub)
    assert r.rc == 1 and "does not verify" in r.err


def test_packset_compact_script(annpack, signed_packset, tmp_path):
    d, pem, pub = signed_packset
    env = dict(os.environ, ANNPACK=annpack.exe)
    r = subprocess.run([ROOT / "tools" / "packset_compact.sh", d, tmp_path / "c", "3", "1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "--pubkey" in r.stderr    # signed: its key is needed
    r = subprocess.run([ROOT / "tools" / "packset_compact.sh", d, tmp_path / "c", "3", "1", pub],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["live"] == 40 and s["deltas"] == [] and s["version"] == 3


def test_pem_bytes_outside_base64_refused(annpack, signed, tmp_path):
    """A key whose body holds bytes outside the base64 alphabet is refused, not decoded to
    some other key (libsodium 1.0.18 reads bytes >= 0x80 as digits)."""
    d, pem, pub = signed
    lines = pub.read_bytes().split(b"\n")
    bad = tmp_path / "bad.pub"
    lines[1] = lines[1][:10] + b"\xc3\xa9" + lines[1][10:]
    bad.write_bytes(b"\n".join(lines))
    r = annpack("verify", d, "--pubkey", bad)
    assert r.rc == 1 and "bad.pub" in r.err
    assert annpack.ok("verify", d, "--pubkey", pub).json()["signature"]["valid"]
