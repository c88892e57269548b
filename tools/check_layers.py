#!/usr/bin/env python3
"""Checks libannpack's layering (core/LAYERS): every #include of every file in a folder of
core/ names a header of that folder, of a folder below it that LAYERS lets it use, or a
public header (core/include/annpack/) that belongs to such a folder; public headers
include only public headers of their own layer or below; fs/ and tools/ include no
internal header; no files include each other in a cycle.

usage: check_layers.py SOURCE_ROOT [STAMP]   (exit 1 naming each violation; STAMP is
touched on success, for the build)"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def layers(root):
    order, allowed, public = [], {}, {}
    for line in (root / "core" / "LAYERS").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, uses, headers = (p.split() for p in line.split(":"))
        (name,) = name
        order.append(name)
        allowed[name] = set(uses) | {name}
        for h in headers:
            public["annpack/" + h] = name
    for name in order:
        for u in allowed[name] - {name}:
            if u not in order or order.index(u) >= order.index(name):
                sys.exit(f"core/LAYERS: {name} may only use folders listed before it, not {u}")
    return order, allowed, public


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    order, allowed, public = layers(root)
    errors = []
    internal = {}  # header file name -> folder
    for folder in order:
        for h in sorted((root / "core" / folder).glob("*.h")):
            if h.name in internal:
                errors.append(f"core/{folder}/{h.name}: the name is also used in core/{internal[h.name]}/")
            internal[h.name] = folder
    graph = {}
    files = [(f, folder) for folder in order for f in sorted((root / "core" / folder).glob("*.[ch]"))]
    files += [(f, public.get("annpack/" + f.name, "umbrella"))
              for f in sorted((root / "core" / "include" / "annpack").glob("*.h"))]
    for f, folder in files:
        rel = f.relative_to(root)
        deps = graph.setdefault(str(rel), set())
        for inc in INCLUDE.findall(f.read_text()):
            if inc.startswith("annpack/") or (f.parent.name == "annpack" and inc.endswith(".h")
                                              and (root / "core/include/annpack" / inc).exists()):
                name = inc if inc.startswith("annpack/") else "annpack/" + inc
                deps.add("core/include/" + name)
                owner = public.get(name, "umbrella" if (root / "core/include" / name).exists() else None)
                if owner is None:
                    errors.append(f"{rel}: includes {inc}, which is not a public header")
                elif folder == "umbrella":
                    continue
                elif owner == "umbrella" or owner not in allowed[folder]:
                    errors.append(f"{rel} ({folder}): includes public {name} of {owner}")
                continue
            if inc in internal:
                owner = internal[inc]
                deps.add(f"core/{owner}/{inc}")
                if folder == "umbrella" or owner not in allowed.get(folder, set()):
                    errors.append(f"{rel} ({folder}): includes {inc} of {owner}")
    for part in ("fs", "tools"):
        for f in sorted((root / part).rglob("*.[ch]")):
            for inc in INCLUDE.findall(f.read_text()):
                if inc in internal:
                    errors.append(f"{f.relative_to(root)}: includes core's internal {inc}; "
                                  "fs/ and tools/ see only the public headers")
    # Cycles among files (a header including one that includes it back, ...).
    state = {}

    def visit(n, stack):
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                errors.append("include cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    if errors:
        print("\n".join(sorted(set(errors))), file=sys.stderr)
        sys.exit(1)
    if len(sys.argv) > 2:
        pathlib.Path(sys.argv[2]).write_text("/* core/LAYERS checked by tools/check_layers.py */\n")


if __name__ == "__main__":
    main()
