#!/usr/bin/env bash
# The C core in WebAssembly: web/wasm/build.sh [OUT] (default web/dist/annpack.wasm).
# Debian's clang for wasm32-wasi with wasi-libc and lld (tools/setup.sh installs clang,
# lld, wasi-libc, libclang-rt-14-dev-wasm32), from the same sources in core/ as
# libannpack, with the same -ffp-contract=off (the kernels' summation order is a
# contract: no fused multiply-add). A reactor module (no main): web/client/ calls its
# apw_* exports (annpack_wasm.c); its one import besides WASI's is libsodium.js's
# crypto_shorthash (include/sodium.h).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/web/dist/annpack.wasm}
CC=${WASM_CC:-clang}
resdir=$("$CC" -print-resource-dir)
sysinc=/usr/include/wasm32-wasi
[ -d "$sysinc" ] || { echo "wasm/build.sh: $sysinc missing: apt-get install wasi-libc" >&2; exit 1; }
[ -f "$resdir/lib/wasi/libclang_rt.builtins-wasm32.a" ] ||
    { echo "wasm/build.sh: clang's wasm32 builtins missing: apt-get install libclang-rt-14-dev-wasm32" >&2; exit 1; }
command -v wasm-ld >/dev/null || { echo "wasm/build.sh: wasm-ld missing: apt-get install lld" >&2; exit 1; }

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$root/meson.build" | head -1)
# Only wasi-libc's headers and clang's own (never the host's /usr/include).
CFLAGS=(--target=wasm32-wasi -mexec-model=reactor -nostdinc -isystem "$resdir/include" -isystem "$sysinc"
        -std=c17 -O2 -msimd128 -ffp-contract=off -fno-strict-aliasing
        -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wcast-qual -Wvla
        -DAP_EXPERIMENTAL "-DANNPACK_VERSION=\"$version\"" -DNDEBUG
        -I"$here" -I"$here/include" -I"$root/core/include" -I"$root/core/include/annpack"
        -I"$root/core/base" -I"$root/core/codec" -I"$root/core/crypto" -I"$root/core/format"
        -I"$root/core/embed" -I"$root/core/search" -I"$root/core/packset")
SRC=("$here/annpack_wasm.c"
     "$root/core/base/status.c" "$root/core/base/cpu.c"
     "$root/core/codec/fp16.c"
     "$root/core/format/annp_header.c"
     "$root/core/embed/hash.c"
     "$root/core/search/kernels.c" "$root/core/search/kernel_f16.c" "$root/core/search/scan.c"
     "$root/core/search/topk.c" "$root/core/packset/liveness.c")
mkdir -p "$(dirname "$out")"
"$CC" "${CFLAGS[@]}" "${SRC[@]}" -o "$out.tmp" \
    -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections
mv "$out.tmp" "$out"
echo "wasm/build.sh: $out ($(stat -c %s "$out") bytes)" >&2
