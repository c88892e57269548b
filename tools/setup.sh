#!/usr/bin/env bash
# Installs annpack's build and test dependencies on Debian (as root), only if missing,
# then configures the build directory. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential meson ninja-build pkg-config clang libclang-rt-14-dev clang-format clang-tidy
      libsodium-dev libzstd-dev libcjson-dev libopenblas-dev libfuse3-dev fuse3
      libcurl4-openssl-dev libhnswlib-dev
      python3 python3-pytest python3-numpy openssl zstd nginx-light chromium rsync curl)
# The browser test drives chromium with playwright-core (npm, tests/browser/). A node that
# came with the machine (it may bundle npm) is kept; Debian's is installed only when none.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core only (no browser download: the test uses Debian's /usr/bin/chromium).
if [ ! -f tests/browser/node_modules/playwright-core/package.json ] ||
   [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    echo "setup: installing playwright-core into tests/browser/node_modules" >&2
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The test build has the fault-injection hooks the crash-safety tests use (-Dtest_hooks=true,
# docs/ROBUSTNESS.md); a build directory configured before that option is switched over.
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=debugoptimized -Dtest_hooks=true >/dev/null
elif ! meson introspect --buildoptions "$BUILD" | python3 -c \
        'import json, sys; sys.exit(not any(o["name"] == "test_hooks" and o["value"] for o in json.load(sys.stdin)))'; then
    meson configure "$BUILD" -Dtest_hooks=true >/dev/null
fi
ninja -C "$BUILD" >/dev/null
echo "setup: built into $BUILD/" >&2
