"""An independent reader of the annpack formats, written from docs/FORMAT.md with numpy,
used by the tests to check our files against the spec (not against our own C code)."""
import json
import struct

import numpy as np

MAGIC = 0x504E4E41
HEADER = 72


def read_annp(path):
    data = open(path, "rb").read()
    assert len(data) >= HEADER
    magic, version, endian, hsize, dim, metric, n_lists, n_vectors, table = struct.unpack_from(
        "<QIIIIIIIQ", data, 0)
    assert magic == MAGIC and version == 1 and endian == 1 and hsize == HEADER and metric == 1
    assert data[44:72] == b"\0" * 28
    cent = np.frombuffer(data, dtype="<f4", count=n_lists * dim, offset=HEADER).reshape(n_lists, dim)
    lists = []
    for i in range(n_lists):
        off, length = struct.unpack_from("<QQ", data, table + 16 * i)
        (count,) = struct.unpack_from("<I", data, off)
        assert length == 4 + count * (8 + 2 * dim)
        ids = np.frombuffer(data, dtype="<u8", count=count, offset=off + 4)
        vecs = np.frombuffer(data, dtype="<f2", count=count * dim, offset=off + 4 + 8 * count)
        lists.append((ids.copy(), vecs.reshape(count, dim).astype(np.float32)))
    assert table + 16 * n_lists == len(data)
    assert sum(len(l[0]) for l in lists) == n_vectors
    return {"dim": dim, "n_lists": n_lists, "n_vectors": n_vectors, "centroids": cent,
            "lists": lists}


def read_meta_stream(pack_dir):
    """The uncompressed JSONL stream of a pack (plain, or zstd seekable via frames)."""
    import pathlib
    d = pathlib.Path(pack_dir)
    if (d / "pack.meta.jsonl.zst").exists():
        return zstd_seekable_decode((d / "pack.meta.jsonl.zst").read_bytes())
    return (d / "pack.meta.jsonl").read_bytes()


def zstd_seekable_decode(data):
    """Checks the seek table and decompresses frame by frame with the zstd CLI."""
    import subprocess
    footer = data[-9:]
    nframes, desc, smagic = struct.unpack("<IBI", footer)
    assert smagic == 0x8F92EAB1 and desc & 0x80 == 0
    entry = 8
    table_size = 8 + nframes * entry + 9
    skip_magic, fsize = struct.unpack_from("<II", data, len(data) - table_size)
    assert skip_magic == 0x184D2A5E and fsize == table_size - 8
    pos = 0
    out = []
    for i in range(nframes):
        csize, dsize = struct.unpack_from("<II", data, len(data) - table_size + 8 + i * entry)
        frame = data[pos:pos + csize]
        dec = subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, capture_output=True,
                             check=True).stdout
        assert len(dec) == dsize
        out.append(dec)
        pos += csize
    assert pos == len(data) - table_size
    return b"".join(out)


def read_idx(path):
    data = open(path, "rb").read()
    assert data[:8] == b"APMIDX01"
    (count,) = struct.unpack_from("<Q", data, 8)
    assert len(data) == 16 + 24 * count
    return [struct.unpack_from("<QQQ", data, 16 + 24 * i) for i in range(count)]


def rows(pack_dir):
    return [json.loads(l) for l in read_meta_stream(pack_dir).decode().splitlines()]


SQ8_MAGIC = 0x38514E41


def read_sq8(path):
    """The int8 sidecar pack.sq8, from the layout in core/include/annpack/sq8.h: header,
    per-dimension vmin and step, per-list counts, then the codes (stride bytes a vector)."""
    data = open(path, "rb").read()
    (magic, version, hsize, dim, n_lists, n_vectors, stride, zero, params, counts, codes,
     size) = struct.unpack_from("<IIIIIIIIQQQQ", data, 0)
    assert magic == SQ8_MAGIC and version == 1 and hsize == 64 and zero == 0
    assert stride == (dim + 63) // 64 * 64
    align = lambda x: (x + 63) // 64 * 64
    assert params == 64 and counts == align(64 + 8 * dim) and codes == align(counts + 4 * n_lists)
    assert size == len(data) == codes + n_vectors * stride
    vmin = np.frombuffer(data, dtype="<f4", count=dim, offset=params).copy()
    step = np.frombuffer(data, dtype="<f4", count=dim, offset=params + 4 * dim).copy()
    cnt = np.frombuffer(data, dtype="<u4", count=n_lists, offset=counts).copy()
    assert int(cnt.sum()) == n_vectors
    c = np.frombuffer(data, dtype="u1", count=n_vectors * stride, offset=codes)
    return {"dim": dim, "n_lists": n_lists, "n_vectors": n_vectors, "stride": stride,
            "vmin": vmin, "step": step, "counts": cnt,
            "codes": c.reshape(n_vectors, stride).copy(), "params_bytes": data[params:counts]}


def sq8_encode(vecs, vmin, step):
    """The documented code of each value: clamp(round_half_even((x - vmin) / step), 0, 255),
    computed in float32 (vecs are the f16 values as float32)."""
    x = np.asarray(vecs, dtype=np.float32)
    c = np.rint((x - vmin.astype(np.float32)) / step.astype(np.float32))
    return np.clip(c, 0, 255).astype(np.uint8)


DIGEST_MAGIC = b"APDIGST1"
DIGEST_CHUNK = 65536


def read_digests(path):
    """pack.digests per docs/FORMAT.md: {name: (file_size, [(offset, length, sha256 hex)])},
    with every rule of the format asserted (canonical layout, tiling, sorted names)."""
    data = open(path, "rb").read()
    assert data[:8] == DIGEST_MAGIC
    version, n = struct.unpack_from("<II", data, 8)
    assert version == 1 and 1 <= n <= 64
    at = 16 + 64 * n
    out, prev = {}, None
    for i in range(n):
        e = data[16 + 64 * i:16 + 64 * (i + 1)]
        raw = e[:32]
        name = raw.split(b"\0", 1)[0]
        assert name and raw[len(name):] == b"\0" * (32 - len(name))
        name = name.decode("ascii")
        assert prev is None or prev < name
        prev = name
        size, nr, z1, roff, z2 = struct.unpack_from("<QIIQQ", e, 32)
        assert z1 == 0 and z2 == 0 and roff == at
        ranges, pos = [], 0
        for k in range(nr):
            off, length = struct.unpack_from("<QQ", data, at + 48 * k)
            assert off == pos
            pos += length
            ranges.append((off, length, data[at + 48 * k + 16:at + 48 * k + 48].hex()))
        assert pos == size
        at += 48 * nr
        out[name] = (size, ranges)
    assert at == len(data)
    return out


def expected_ranges(pack_dir, name):
    """The (offset, length) ranges FORMAT.md gives file name of a pack, from its structure."""
    import pathlib
    d = pathlib.Path(pack_dir)
    data = (d / name).read_bytes()
    if name in ("pack.annpack", "pack.sq8"):
        a = (d / "pack.annpack").read_bytes()
        (dim,) = struct.unpack_from("<I", a, 20)
        n_lists, _ = struct.unpack_from("<II", a, 28)
        (table,) = struct.unpack_from("<Q", a, 36)
        counts = [struct.unpack_from("<I", a, struct.unpack_from("<Q", a, table + 16 * i)[0])[0]
                  for i in range(n_lists)]
        if name == "pack.annpack":
            r, pos = [(0, 72 + 4 * n_lists * dim)], 72 + 4 * n_lists * dim
            for c in counts:
                r.append((pos, 4 + c * (8 + 2 * dim)))
                pos += r[-1][1]
            return r + [(pos, len(data) - pos)]
        codes = struct.unpack_from("<Q", data, 48)[0]
        stride = struct.unpack_from("<I", data, 24)[0]
        r, pos = [(0, codes)], codes
        for c in counts:
            r.append((pos, c * stride))
            pos += c * stride
        return r
    if name.endswith(".zst"):
        nframes = struct.unpack_from("<I", data, len(data) - 9)[0]
        tsize = 8 + 8 * nframes + 9
        r, pos = [], 0
        for i in range(nframes):
            cs = struct.unpack_from("<I", data, len(data) - tsize + 8 + 8 * i)[0]
            r.append((pos, cs))
            pos += cs
        return r + [(pos, tsize)]
    return [(o, min(DIGEST_CHUNK, len(data) - o)) for o in range(0, len(data), DIGEST_CHUNK)]
