#!/usr/bin/env bash
# Installs annpack's build and test dependencies on Debian (as root), only if missing,
# then configures the build directory. Safe to run again.
# Usage: tools/setup.sh [--demo] [--print]
#   --demo: only what building and the demo need; --print: list the packages and stop.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=test PRINT=
for a in "$@"; do
    case $a in
        --demo) MODE=--demo ;;
        --print) PRINT=1 ;;
        *) echo "usage: $0 [--demo] [--print]" >&2; exit 2 ;;
    esac
done

# Building annpack and running the demo (tools/demo.sh: build, sign, mount, smoke).
PKGS=(build-essential meson ninja-build pkg-config
      libsodium-dev libssl-dev libzstd-dev libcjson-dev libopenblas-dev libfuse3-dev fuse3
      libcurl4-openssl-dev libsystemd-dev
      python3 nginx-light curl)
if [ "$MODE" != --demo ]; then
    # The tests, lint, fuzzing and the browser test.
    PKGS+=(clang libclang-rt-14-dev clang-format clang-tidy
           python3-pytest python3-numpy openssl zstd chromium rsync)
    # The distribution tests: a real registry, its bcrypt htpasswd, a Bearer token server's
    # JWTs, skopeo and the OCI JSON schemas for interop, network namespaces for the
    # many-hosts test.
    PKGS+=(docker-registry skopeo apache2-utils python3-cryptography python3-jsonschema
           golang-github-opencontainers-image-spec-dev iproute2)
    # The release gates (tools/build_artifacts.sh, tools/release.sh, tests/test_release.py):
    # man pages, the Debian package, the Python wheel, bash completion.
    PKGS+=(scdoc debhelper lintian python3-build python3-wheel python3-setuptools
           bash-completion man-db)
    # The WebAssembly reader (web/wasm/build.sh): clang's wasm32 target, wasi-libc, lld.
    PKGS+=(lld wasi-libc libclang-rt-14-dev-wasm32)
    # The performance harness's anchors (tools/bench/harness.py): hnswlib's headers (compiled
    # there with -march=native), Debian's FAISS and matplotlib for the plot; CRoaring for
    # tools/bench/filter_bench.c (pack.filter's sorted lists against compressed bitmaps).
    PKGS+=(libhnswlib-dev python3-faiss python3-matplotlib libroaring-dev)
    # The browser test drives chromium with playwright-core (npm, tests/browser/). A node
    # that came with the machine (it may bundle npm) is kept; Debian's is installed only
    # when none.
    command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
    command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi

if [ -n "$PRINT" ]; then printf '%s\n' "${PKGS[@]}"; exit 0; fi

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
if [ "$MODE" != --demo ] &&
   { [ ! -f tests/browser/node_modules/playwright-core/package.json ] ||
     [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; }; then
    echo "setup: installing playwright-core into tests/browser/node_modules" >&2
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The page's build (web/package.json: esbuild, fzstd, libsodium.js) into web/node_modules,
# then `npm run build` (the core in WebAssembly with clang --target=wasm32-wasi, the
# bundle) into web/dist/, which `annpack serve` prefers to the page's sources.
# The demo serves the page's sources and needs none of it.
if [ "$MODE" != --demo ]; then
    if [ ! -f web/node_modules/esbuild/package.json ] ||
       [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
        echo "setup: installing the page's build tools into web/node_modules" >&2
        (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    (cd web && npm run --silent build >/dev/null)
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
