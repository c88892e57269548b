#!/usr/bin/env python3
"""Derives the named malformed packs OUT/bad/<name>/ from the golden packs in OUT (run by
make.sh after it has built them; ANNPACK is the annpack binary). Each is a minimal
directory with exactly one defect: every other byte, and every hash that does not cover
the defect itself, is consistent, so a reader must find the defect and not an accident
beside it. What `annpack verify --deep` must say about each is in bad/EXPECTED.

usage: ANNPACK=build/tools/annpack make_bad.py OUT"""
import hashlib
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile

OUT = pathlib.Path(sys.argv[1])
BAD = OUT / "bad"
A = os.environ["ANNPACK"]
KEY = pathlib.Path(__file__).resolve().parent / "keys" / "test-key-DO-NOT-USE.pem"


def sha(b):
    return hashlib.sha256(b).hexdigest()


def run(*args):
    subprocess.run([A, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def new(name, src):
    """bad/<name>/ as a copy of the golden directory src (without its signature)."""
    d = BAD / name
    shutil.copytree(src, d, symlinks=True)
    sig = d / "pack.manifest.json.sig"
    if sig.exists():
        sig.unlink()
    return d


def without_digests(d):
    """d as a pack written before pack.digests: the table and its manifest entry removed
    (for the structural defects, which a pack with a table would fail on its range
    digests first; a signer cannot write a table for a structure that does not parse)."""
    (d / "pack.digests").unlink()
    m = (d / "pack.manifest.json").read_text()
    m2 = re.sub(r'\t\t"pack\.digests":\t\{\n[^}]*\},\n', "", m)
    assert m2 != m
    (d / "pack.manifest.json").write_text(m2)
    return d


def write(root, rel, data, rehash=True):
    """Replaces root/rel with data; with rehash, every manifest under root that pinned the
    old bytes (size and sha256, or sha256 alone) is updated to the new ones, and so on up
    the chain of hashes (pack manifest -> delta manifest -> root manifest)."""
    p = root / rel
    old = p.read_bytes()
    p.write_bytes(data)
    if not rehash or sha(old) == sha(data):
        return
    o, n = sha(old), sha(data)
    for j in sorted(root.rglob("*.json")):
        if j == p or j.is_symlink():
            continue
        t = j.read_text()
        if o not in t:
            continue
        t2 = re.sub(r'("size":\s*)%d(,\s*"sha256":\s*")%s"' % (len(old), o),
                    lambda m: m.group(1) + str(len(data)) + m.group(2) + n + '"', t)
        write(root, j.relative_to(root), t2.replace(o, n).encode())


def edit(root, rel, old, new_, count=1, rehash=True):
    """Textual edit of root/rel (old must occur), then rehash as in write()."""
    t = (root / rel).read_bytes()
    assert old in t, (rel, old)
    write(root, rel, t.replace(old, new_, count), rehash)


def patch(root, rel, offset, data):
    b = bytearray((root / rel).read_bytes())
    b[offset:offset + len(data)] = data
    write(root, rel, bytes(b))


def annp_table(b):
    return struct.unpack_from("<Q", b, 36)[0]


def main():
    BAD.mkdir()
    V = OUT / "pack-vectors"  # the smallest golden pack (dim 16, 48 vectors): 9 KB a case
    PS = OUT / "packset"
    ann = (V / "pack.annpack").read_bytes()

    # --- pack-level defects, derived from pack-vectors ---------------------------------
    d = without_digests(new("truncated-annpack", V))  # cut inside the lists; manifest re-hashed
    write(d, "pack.annpack", ann[:len(ann) // 2])

    d = without_digests(new("wrong-magic", V))  # "XNNP": re-hashed, so only the header can tell
    patch(d, "pack.annpack", 0, b"X")

    d = without_digests(new("list-out-of-file", V))  # list 0's offset points past the end of the file
    patch(d, "pack.annpack", annp_table(ann), struct.pack("<Q", len(ann) + 16))

    d = without_digests(new("count-mismatch", V))  # list 0's count does not fit its length
    off = struct.unpack_from("<Q", ann, annp_table(ann))[0]
    patch(d, "pack.annpack", off, struct.pack("<I", 999))

    d = new("hash-mismatch", V)  # one bit of a stored vector flipped, manifest not updated
    b = bytearray(ann)
    b[len(ann) // 2] ^= 1
    write(d, "pack.annpack", bytes(b), rehash=False)

    d = new("missing-file", V)  # pack.meta.idx listed, absent
    (d / "pack.meta.idx").unlink()

    d = new("unlisted-file", V)  # a second metadata file the manifest does not list
    (d / "pack.meta.jsonl.zst").write_bytes(b"")

    d = new("duplicate-json-key", V)  # "dim" twice: cJSON keeps the first, Python the last
    edit(d, "pack.manifest.json", b'\t"dim":\t16,\n', b'\t"dim":\t16,\n\t"dim":\t17,\n')

    d = new("nul-in-key", V)  # "pack.meta.idx\u0000/../../etc/passwd": C sees pack.meta.idx
    edit(d, "pack.manifest.json", b'"pack.meta.idx":', b'"pack.meta.idx\\u0000/../../x":')

    d = new("path-escape", V)  # the ANNP file taken from ../pack-vectors (hashes match)
    (d / "pack.annpack").unlink()
    edit(d, "pack.manifest.json", b'"pack.annpack"', b'"../../pack-vectors/pack.annpack"', 2)

    d = new("symlink-escape", V)  # pack.annpack is a symlink out of the directory
    (d / "pack.annpack").unlink()
    os.symlink("../../pack-vectors/pack.annpack", d / "pack.annpack")

    # ids 0 and 1 swapped their rows in the idx (from pack-plain: a text search reads rows)
    d = new("idx-points-at-other-row", OUT / "pack-plain")
    idx = bytearray((d / "pack.meta.idx").read_bytes())
    e0, e1 = idx[16 + 8:16 + 24], idx[40 + 8:40 + 24]
    idx[16 + 8:16 + 24], idx[40 + 8:40 + 24] = e1, e0
    write(d, "pack.meta.idx", bytes(idx))

    d = new("manifest-dim-mismatch", V)  # the manifest says dim 17, the ANNP header 16
    edit(d, "pack.manifest.json", b'\t"dim":\t16,\n', b'\t"dim":\t17,\n')

    # --- packset-level defects: a minimal packset, the golden base + its delta 1 -------
    tmp = pathlib.Path(tempfile.mkdtemp(dir=OUT, prefix=".bad-"))
    try:
        run("packset", "create", "--base", PS / "base", "--out", tmp / "ps1",
            "--delta", PS / "deltas" / "0001.delta")
        ps1 = tmp / "ps1"
        run("packset", "build-base", "--input", "examples/tiny_docs.csv", "--packset",
            tmp / "other", "--lists", 3, "--seed", 2, "--embedder-version", 1, "--target-recall", 0)
        run("packset", "build-delta", "--base", tmp / "other" / "base", "--add",
            "examples/delta_add.csv", "--delete-ids", "1,2", "--out", tmp / "foreign")

        # deltas/0001.delta was built against another base (its own files and the root's
        # hashes of them all agree; its recorded base is not this packset's base)
        d = new("delta-other-base", ps1)
        root = (d / "pack.manifest.json").read_bytes()
        base_sha = sha((PS / "base" / "pack.annpack").read_bytes())
        other_sha = sha((tmp / "other" / "base" / "pack.annpack").read_bytes())
        shutil.rmtree(d / "deltas" / "0001.delta")
        shutil.copytree(tmp / "foreign", d / "deltas" / "0001.delta")
        for f in ("pack.annpack", "pack.meta.jsonl.zst", "pack.manifest.json",
                  "tombstones.jsonl", "delta.manifest.json"):
            o = sha((ps1 / "deltas" / "0001.delta" / f).read_bytes())
            root = root.replace(o.encode(), sha((d / "deltas/0001.delta" / f).read_bytes())
                                .encode())
        i = root.index(b'"base_sha256_annpack"')
        root = root[:i] + root[i:].replace(base_sha.encode(), other_sha.encode(), 1)
        (d / "pack.manifest.json").write_bytes(root)

        # delta 1 adds id 40 and also tombstones it (delta.manifest.json counts 3)
        d = new("tombstone-and-add", ps1)
        edit(d, "deltas/0001.delta/tombstones.jsonl", b'{"id":2}\n', b'{"id":2}\n{"id":40}\n')
        edit(d, "deltas/0001.delta/delta.manifest.json", b'"tombstones":\t2', b'"tombstones":\t3')

        d = new("root-dim-mismatch", ps1)  # the root says dim 128, the base 256
        edit(d, "pack.manifest.json", b'\t"dim":\t256,\n', b'\t"dim":\t128,\n')

        d = new("expired", ps1)  # the root manifest expired in 2001
        edit(d, "pack.manifest.json", b'\t"dim":\t256,\n',
             b'\t"dim":\t256,\n\t"expires":\t"2001-01-01T00:00:00Z",\n')

        d = new("layer-path-escape", ps1)  # the base is ../../packset/base (hashes match)
        shutil.rmtree(d / "base")
        edit(d, "pack.manifest.json", b'"path":\t"base"', b'"path":\t"../../packset/base"')
        edit(d, "pack.manifest.json", b'"base/', b'"../../packset/base/', 3)

        d = new("deltas-out-of-order", PS)  # seq 2 listed before seq 1
        t = (d / "pack.manifest.json").read_bytes()
        a, b_ = t.index(b"{\n\t\t\t\"seq\":\t1"), t.index(b"{\n\t\t\t\"seq\":\t2")
        end = t.index(b"}]", b_)
        first, second = t[a:b_ - 2], t[b_:end + 1]  # "{...}" and "{...}" without ", "
        write(d, "pack.manifest.json", t[:a] + second + b", " + first + t[end + 1:])

        # signed with the test key, then the root manifest's version raised
        d = new("signature-mismatch", ps1)
        k = tmp / "key.pem"
        k.write_bytes(KEY.read_bytes())
        k.chmod(0o600)
        run("sign", d, "--key", k)
        edit(d, "pack.manifest.json", b'"version":\t1,', b'"version":\t9,')
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
