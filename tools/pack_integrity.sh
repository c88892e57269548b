#!/usr/bin/env bash
# Signs a pack (or packset) directory, then verifies it with the public key and --deep.
# Usage: tools/pack_integrity.sh PACK_DIR KEY.pem KEY.pub
# Prints PASS, or FAIL with the reason; exit status 0 / 1.
set -uo pipefail
if [ $# -ne 3 ]; then
    echo "usage: $0 PACK_DIR KEY.pem KEY.pub" >&2
    exit 2
fi
# annpack: $ANNPACK, else the one on PATH (an installed package), else this tree's build/.
A=${ANNPACK:-$(command -v annpack || echo "$(dirname "$0")/../build/tools/annpack")}
dir=$1 key=$2 pub=$3
if ! out=$("$A" sign "$dir" --key "$key" 2>&1 >/dev/null); then
    echo "FAIL sign: $out"
    exit 1
fi
if ! out=$("$A" verify "$dir" --pubkey "$pub" --deep 2>&1 >/dev/null); then
    echo "FAIL verify: $out"
    exit 1
fi
echo PASS
