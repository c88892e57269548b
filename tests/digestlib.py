"""Keeping a tampered test pack's pack.digests consistent (docs/FORMAT.md, "pack.digests").

Tests that change a pack file *and* re-pin the manifest (so that only a deeper check can
tell) must re-pin the digest table as well, or the range digests catch the change first."""
import hashlib
import struct


def repin_digests(d, m):
    """Rewrites d/pack.digests so that every range digest matches the files' current bytes
    (same ranges) and pins it in manifest dict m (written by the caller). A file whose size
    changed cannot keep its ranges: then the table is removed (the pack is as one written
    before pack.digests existed)."""
    p = d / "pack.digests"
    if "pack.digests" not in m["files"] or not p.exists():
        return
    b = bytearray(p.read_bytes())
    (n,) = struct.unpack_from("<I", b, 12)
    for i in range(n):
        e = 16 + 64 * i
        name = bytes(b[e:e + 32]).rstrip(b"\0").decode()
        size, nr, _, roff, _ = struct.unpack_from("<QIIQQ", b, e + 32)
        data = (d / name).read_bytes()
        if len(data) != size:
            p.unlink()
            del m["files"]["pack.digests"]
            return
        for k in range(nr):
            off, length = struct.unpack_from("<QQ", b, roff + 48 * k)
            b[roff + 48 * k + 16:roff + 48 * k + 48] = hashlib.sha256(data[off:off + length]).digest()
    p.write_bytes(bytes(b))
    m["files"]["pack.digests"] = {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
