#!/usr/bin/env bash
# Makes a release of annpack (docs/PRODUCTION.md, "Releasing"): checks that the version
# agrees everywhere, builds the artifacts (tools/build_artifacts.sh: the meson dist tarball,
# the Debian packages, the Python sdist and wheel, SHA256SUMS), checks the packages with
# lintian (errors and warnings fail; debian/*.lintian-overrides give the reasons for what is
# accepted), and signs SHA256SUMS with an annpack key (Ed25519 PEM, `annpack keygen`) when
# one is given: SHA256SUMS.sig, 64 raw bytes, checked with
#   openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
# Ends with `PASS release V` or `FAIL release: STAGE: REASON` (exit 1).
# Usage: tools/release.sh [--key KEY.pem] [--out DIR] [--check-only]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=dist KEY= CHECK_ONLY=
while [ $# -gt 0 ]; do
    case $1 in
        --key) KEY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --check-only) CHECK_ONLY=1; shift ;;
        *) echo "usage: $0 [--key KEY.pem] [--out DIR] [--check-only]" >&2; exit 2 ;;
    esac
done
fail() { echo "FAIL release: $1: $2"; exit 1; }

echo "== version"
V=$(sed -n "s/^ *version : '\([^']*\)',*$/\1/p" meson.build | head -n 1)
[ -n "$V" ] || fail version "no project version in meson.build"
tag=$(git describe --exact-match --tags HEAD 2>/dev/null) ||
    fail version "HEAD has no tag (tag it: git tag -a v$V)"
[ "$tag" = "v$V" ] || fail version "tag $tag does not match the meson project version $V (want v$V)"
deb=$(dpkg-parsechangelog -l debian/changelog -S Version)
[ "${deb%-*}" = "$V" ] ||
    fail version "debian/changelog's latest entry is $deb, not $V-N (add one: dch -v $V-1)"
py=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
[ "$py" = "$V" ] || fail version "pyproject.toml has version $py, not $V"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
    fail version "uncommitted changes (a release is built from the tagged commit only)"
echo "version $V: tag $tag, debian/changelog $deb, pyproject.toml $py"
if [ -n "$CHECK_ONLY" ]; then echo "PASS release checks $V"; exit 0; fi

echo "== artifacts"
tools/build_artifacts.sh --out "$OUT" || fail artifacts "tools/build_artifacts.sh failed (above)"

echo "== lintian"
changes=$(ls "$OUT"/annpack_"$V"-*_*.changes | tail -n 1)
log=$(mktemp)
lintian_rc=0
lintian --fail-on error,warning "$changes" >"$log" 2>&1 || lintian_rc=$?
grep -v "^running with root privileges" "$log" || true
rm -f "$log"
[ "$lintian_rc" = 0 ] || fail lintian "lintian found errors or warnings in $changes (above)"

echo "== checksums"
(cd "$OUT" && sha256sum --quiet -c SHA256SUMS) || fail checksums "SHA256SUMS does not match $OUT"
if [ -n "$KEY" ]; then
    openssl pkeyutl -sign -rawin -inkey "$KEY" -in "$OUT/SHA256SUMS" -out "$OUT/SHA256SUMS.sig" ||
        fail sign "cannot sign SHA256SUMS with $KEY"
    openssl pkey -in "$KEY" -pubout -out "$OUT/SHA256SUMS.pub" 2>/dev/null
    openssl pkeyutl -verify -pubin -inkey "$OUT/SHA256SUMS.pub" -rawin -in "$OUT/SHA256SUMS" \
        -sigfile "$OUT/SHA256SUMS.sig" >/dev/null || fail sign "the signature does not verify"
    echo "signed SHA256SUMS with $KEY (SHA256SUMS.sig, public key SHA256SUMS.pub)"
fi
echo "PASS release $V"
