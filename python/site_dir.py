#!/usr/bin/env python3
"""Prints the directory, relative to PREFIX, that this interpreter's sys.path searches for
packages installed under PREFIX (python/meson.build installs annpack there):
/usr/local/lib/python3.X/dist-packages for /usr/local, /usr/lib/python3/dist-packages
for /usr on Debian; for a prefix the interpreter does not search, the standard
PREFIX/lib/python3.X/site-packages (then PYTHONPATH must name it).

usage: site_dir.py PREFIX"""
import os
import sys
import sysconfig

prefix = os.path.normpath(sys.argv[1])
under = [p for p in sys.path
         if p.endswith(("site-packages", "dist-packages"))
         and p.startswith(os.path.join(prefix, "lib") + os.sep)]
path = under[0] if under else sysconfig.get_path(
    "purelib", "posix_prefix", vars={"base": prefix, "platbase": prefix})
print(os.path.relpath(path, prefix))
