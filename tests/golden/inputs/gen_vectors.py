#!/usr/bin/env python3
"""Writes the golden vector inputs: vectors.fvecs (48 rows, dim 16) and queries.fvecs
(4 rows, dim 16), from a fixed linear congruential generator and pure-Python arithmetic
(no numpy, no random module), so the files do not depend on any library version. Every
value is a multiple of 1/64 in [-1, 1], exact in float32. Rows are four clusters of 12
around four fixed centres; queries are the four centres themselves.

usage: gen_vectors.py OUT_DIR"""
import pathlib
import struct
import sys

DIM, PER, CENTRES = 16, 12, 4


def lcg(seed):
    """Numerical Recipes' 32-bit LCG: the next state, forever."""
    s = seed & 0xFFFFFFFF
    while True:
        s = (1664525 * s + 1013904223) & 0xFFFFFFFF
        yield s


def fvecs(rows):
    return b"".join(struct.pack("<i", len(r)) + struct.pack(f"<{len(r)}f", *r) for r in rows)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    g = lcg(20240601)
    # centre c: +1 on dimensions 4c..4c+3, small values elsewhere
    centres = [[(1.0 if d // 4 == c else 0.0) for d in range(DIM)] for c in range(CENTRES)]
    rows = []
    for i in range(PER * CENTRES):
        c = centres[i % CENTRES]
        noise = [((next(g) >> 24) % 33 - 16) / 64 for _ in range(DIM)]  # [-0.25, 0.25]
        rows.append([max(-1.0, min(1.0, c[d] + noise[d])) for d in range(DIM)])
    (out / "vectors.fvecs").write_bytes(fvecs(rows))
    (out / "queries.fvecs").write_bytes(fvecs(centres))


if __name__ == "__main__":
    main()
