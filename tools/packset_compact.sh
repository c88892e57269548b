#!/usr/bin/env bash
# Compacts a packset: rebase it into OUT, verify the result deeply, print its summary.
# Usage: tools/packset_compact.sh PACKSET OUT LISTS SEED [PUBKEY]
# PUBKEY (needed when PACKSET is signed) checks PACKSET's signature before it is read.
set -euo pipefail
if [ $# -ne 4 ] && [ $# -ne 5 ]; then
    echo "usage: $0 PACKSET OUT LISTS SEED [PUBKEY]" >&2
    exit 2
fi
# annpack: $ANNPACK, else the one on PATH (an installed package), else this tree's build/.
A=${ANNPACK:-$(command -v annpack || echo "$(dirname "$0")/../build/tools/annpack")}
key=()
if [ $# -eq 5 ]; then key=(--pubkey "$5"); fi
"$A" packset rebase --packset "$1" --out "$2" --lists "$3" --seed "$4" "${key[@]}" >/dev/null
"$A" verify "$2" --deep >/dev/null
"$A" packset status "$2"
