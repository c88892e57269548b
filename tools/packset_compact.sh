#!/usr/bin/env bash
# Compacts a packset: rebase it into OUT, verify the result deeply, print its summary.
# Usage: tools/packset_compact.sh PACKSET OUT LISTS SEED
set -euo pipefail
if [ $# -ne 4 ]; then
    echo "usage: $0 PACKSET OUT LISTS SEED" >&2
    exit 2
fi
A=${ANNPACK:-$(dirname "$0")/../build/tools/annpack}
"$A" packset rebase --packset "$1" --out "$2" --lists "$3" --seed "$4" >/dev/null
"$A" verify "$2" --deep >/dev/null
"$A" packset status "$2"
