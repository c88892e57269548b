#!/usr/bin/env bash
# Builds annpack's release artifacts into dist/ (docs/PRODUCTION.md, "Releasing"), without
# the release checks of tools/release.sh:
#   annpack-V.tar.xz            the source tarball (meson dist: the committed HEAD)
#   *.deb                       annpack, libannpack0, libannpack-dev, python3-annpack,
#                               built by dpkg-buildpackage -b from that tarball
#   annpack-V.tar.gz, *.whl     the Python sdist and wheel (pyproject.toml, python3-build)
#   SHA256SUMS                  of all of them
# The search page is built first (cd web && npm run build) when web/package.json exists;
# its web/dist goes into the package.
# Usage: tools/build_artifacts.sh [--out DIR] [--deb-only]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=dist ONLY=
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --deb-only) ONLY=deb; shift ;;
        *) echo "usage: $0 [--out DIR] [--deb-only]" >&2; exit 2 ;;
    esac
done
VERSION=$(sed -n "s/^ *version : '\([^']*\)',*$/\1/p" meson.build | head -n 1)
[ -n "$VERSION" ] || { echo "build_artifacts: no project version in meson.build" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/annpack-artifacts.XXXXXX")
trap 'rm -rf "$W"' EXIT
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)" >&2; }

if ! git diff --quiet HEAD -- 2>/dev/null; then
    echo "build_artifacts: note: uncommitted changes are not in the artifacts (they are built from HEAD)" >&2
fi

if [ -f web/package.json ]; then
    step "web: npm run build"
    (cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run build) >&2
fi

step "source tarball (meson dist)"
meson setup "$W/build" -Dtests=false -Dfs=false >/dev/null
meson dist -C "$W/build" --no-tests --formats xztar --allow-dirty >/dev/null
TARBALL=annpack-$VERSION.tar.xz
cp "$W/build/meson-dist/$TARBALL" "$OUT/"

# The tree the packages are built from: the tarball, plus the built page if there is one.
tar -C "$W" -xf "$OUT/$TARBALL"
SRC=$W/annpack-$VERSION
if [ -d web/dist ]; then cp -r web/dist "$SRC/web/dist"; fi

step "Debian packages (dpkg-buildpackage -b)"
if ! (cd "$SRC" && nice dpkg-buildpackage -b -uc -us -j"$(nproc)") >"$W/dpkg.log" 2>&1; then
    tail -n 40 "$W/dpkg.log" >&2
    echo "build_artifacts: dpkg-buildpackage failed (log above)" >&2
    exit 1
fi
cp "$W"/*.deb "$OUT/"
cp "$W"/*.buildinfo "$W"/*.changes "$OUT/" 2>/dev/null || true

if [ "$ONLY" != deb ]; then
    step "Python sdist and wheel (python3 -m build)"
    (cd "$SRC" && /usr/bin/python3 -m build --no-isolation --outdir "$OUT" . >"$W/pybuild.log" 2>&1) || {
        tail -n 40 "$W/pybuild.log" >&2
        echo "build_artifacts: python3 -m build failed" >&2
        exit 1
    }
fi

step "checksums"
(cd "$OUT" && sha256sum -- *.tar.xz *.deb $(ls -- *.whl annpack-*.tar.gz 2>/dev/null) > SHA256SUMS)
echo "artifacts in $OUT ($(($(date +%s) - t0)) s):"
(cd "$OUT" && for f in $(cut -d' ' -f3 SHA256SUMS) SHA256SUMS; do
    printf '  %-48s %10d bytes\n' "$f" "$(stat -c %s "$f")"; done)
