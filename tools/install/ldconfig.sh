#!/bin/sh
# meson install script (skipped for --destdir installs: a package runs ldconfig itself).
# Refreshes the dynamic linker's cache so the freshly installed libannpack.so.0 is found
# without a manual ldconfig, then checks that the cache resolves it; when the library
# directory is not one the linker searches (a prefix like /opt/annpack) it says what to do.
# usage: install_ldconfig.sh LIBDIR
libdir=$1
if [ "$(id -u)" != 0 ]; then
    echo "annpack: not root, ldconfig not run: run it as root so libannpack.so.0 is found" >&2
    exit 0
fi
ldconfig || exit 0
real=$(readlink -f "$libdir")
if ldconfig -p | grep -E "libannpack\.so\.0 .*=> ($libdir|$real)/" >/dev/null; then
    echo "annpack: ran ldconfig: libannpack.so.0 is found in $libdir"
else
    echo "annpack: $libdir is not in the dynamic linker's path: add it to" \
         "/etc/ld.so.conf.d/annpack.conf and run ldconfig, or set LD_LIBRARY_PATH" >&2
fi
