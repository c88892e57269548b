#!/usr/bin/env python3
"""Writes a deterministic synthetic CSV (id,title,text) for build benchmarks.

usage: gen_csv.py ROWS OUT.csv [--seed S]
Texts are 20-40 words drawn from a Zipf-like vocabulary of 20,000 words, so documents
share words unevenly, like real text. Not committed: generate it where you measure."""
import argparse
import csv
import itertools
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    vocab = [f"w{i}" for i in range(20000)]
    # Cumulative weights once: rng.choices would rebuild them (20,000 sums) on every row,
    # with the same draws either way.
    cum = list(itertools.accumulate(1.0 / (i + 10) for i in range(len(vocab))))
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "text"])
        for i in range(a.rows):
            words = rng.choices(vocab, cum_weights=cum, k=rng.randint(20, 40))
            w.writerow([i, f"doc {i}", " ".join(words)])


if __name__ == "__main__":
    main()
