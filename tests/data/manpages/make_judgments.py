#!/usr/bin/python3
"""Writes judgments.jsonl from queries.txt and corpus.csv: each query with the ids of the
pages judged relevant (README.md). Fails if a judged page is not in the corpus."""
import csv
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def main():
    ids = {r["page"]: int(r["id"]) for r in csv.DictReader(open(HERE / "corpus.csv"))}
    out = []
    for line in open(HERE / "queries.txt"):
        if not line.strip() or line.startswith("#"):
            continue
        q, _, pages = line.partition("|")
        rel = [ids[p] for p in pages.split()]  # KeyError: a page not in the corpus
        out.append(json.dumps({"query": q.strip(), "relevant": sorted(rel),
                               "pages": pages.split()}))
    (HERE / "judgments.jsonl").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
