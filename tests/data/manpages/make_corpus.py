#!/usr/bin/python3
"""Writes corpus.csv: one row per manual page of the Debian packages manpages and
manpages-dev (the Linux man-pages project), with the names and the one-line summary of its
NAME section as lexgrog (man-db) reads them -- what `man -k .` prints for those pages.

usage: tests/data/manpages/make_corpus.py [OUT.csv]   (default: beside this script)

Reproducible: the same package versions give the same bytes (README.md records them and
the file's SHA-256). Pages that only include another page (".so") and symlinked pages
are left out: their summary is the target's."""
import csv
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
PACKAGES = ["manpages", "manpages-dev"]


def pages():
    out = subprocess.run(["dpkg", "-L", *PACKAGES], check=True, capture_output=True,
                         text=True).stdout.split("\n")
    for p in sorted(set(out)):
        path = pathlib.Path(p)
        if (path.parent.name.startswith("man") and path.parent.parent.name == "man"
                and p.endswith(".gz") and path.is_file() and not path.is_symlink()):
            yield path


def summary(path):
    """[(name, description)] of a page, or [] for an include-only page."""
    r = subprocess.run(["lexgrog", str(path)], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C.UTF-8"})
    entries = []
    for line in r.stdout.splitlines():
        _, _, quoted = line.partition(": ")
        name, sep, desc = quoted.strip('"').partition(" - ")
        if sep:
            entries.append((name.strip(), desc.strip()))
    return entries


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus.csv"
    rows = []
    for path in pages():
        entries = summary(path)
        if not entries:
            continue
        page = path.name[:-3]  # open.2
        names = []
        for n, _ in entries:
            if n not in names:
                names.append(n)
        desc = entries[0][1]
        rows.append((page, path.parent.name[3:], ", ".join(names), desc))
    rows.sort()
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "page", "section", "names", "text"])
        for i, (page, sec, names, desc) in enumerate(rows):
            w.writerow([i, page, sec, names, f"{names} - {desc}"])
    print(f"{out}: {len(rows)} pages", file=sys.stderr)


if __name__ == "__main__":
    main()
