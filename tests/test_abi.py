"""The library's ABI and public-API contract (docs/API.md):

* every struct Python mirrors (python/annpack/_lib.py) has the layout of the C struct, field
  by field (sizeof/offsetof printed by tests/unit/test_abi.c, after libfuse's test_abi.c),
  and the field names of the header; the status values and other constants Python copies
  are the header's;
* the shared library exports exactly the AP_API declarations of the stable headers, which
  is exactly core/libannpack.map, all under the version node ANNPACK_0, with soname
  libannpack.so.0; the experimental declarations are hidden from it;
* every public header compiles alone (C99 -pedantic, C17 with AP_EXPERIMENTAL, C++17), and
  annpack/experimental.h refuses to compile without AP_EXPERIMENTAL."""
import json
import os
import re
import subprocess

import pytest

from conftest import BUILD, ROOT

INCLUDE = ROOT / "core" / "include"
HEADERS = sorted((INCLUDE / "annpack").glob("*.h"))
STABLE = [h for h in HEADERS if h.name != "experimental.h"]
MAP = ROOT / "core" / "libannpack.map"
LIB = BUILD / "core" / "libannpack.so"


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def c_abi():
    """test_abi's table: structs {name: (size, [(member, offset, size)])}, enums, consts."""
    exe = BUILD / "tests" / "unit" / "test_abi"
    r = subprocess.run([exe], capture_output=True, text=True, check=True)
    structs, enums, consts = {}, {}, {}
    for line in r.stdout.splitlines():
        kind, name, *rest = line.split()
        if kind == "struct":
            structs[name] = (int(rest[0]), [])
        elif kind == "field":
            structs[name][1].append((rest[0], int(rest[1]), int(rest[2])))
        elif kind == "enum":
            enums[name] = int(rest[0])
        elif kind == "const":
            consts[name] = int(rest[0])
    return structs, enums, consts


PY_ABI = r'''
import ctypes, json
from annpack import _lib as L
out = {"structs": {}, "consts": {}}
for cname, cls in L.MIRRORS.items():
    out["structs"][cname] = [ctypes.sizeof(cls),
                             [(f[0], getattr(cls, f[0]).offset, getattr(cls, f[0]).size)
                              for f in cls._fields_]]
for name in dir(L):
    if name.startswith("AP_") and isinstance(getattr(L, name), int):
        out["consts"][name] = getattr(L, name)
print(json.dumps(out))
'''


def py_abi():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), ANNPACK_LIB=str(LIB))
    ldd = subprocess.run(["ldd", LIB], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        rt = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                            text=True).stdout.strip()
        env.update(LD_PRELOAD=rt, ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run(["/usr/bin/python3", "-c", PY_ABI], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def header_struct_members(name):
    """Member names, in order, of `typedef struct NAME { ... } NAME;` in the public headers."""
    for h in STABLE:
        text = strip_comments(h.read_text())
        m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), text, flags=re.S)
        if not m:
            continue
        names = []
        for decl in m.group(1).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
            if fp:
                names.append(fp.group(1))
                continue
            for part in decl.split(","):
                part = re.sub(r"\[.*?\]", "", part)
                names.append(re.findall(r"\w+", part)[-1])
        return names
    raise AssertionError(f"struct {name} not found in the public headers")


def test_mirrored_structs_match_the_c_layout():
    structs, enums, _ = c_abi()
    py = py_abi()["structs"]
    # test_abi.c prints exactly the structs Python mirrors.
    assert sorted(py) == sorted(structs)
    for name, (size, fields) in structs.items():
        assert [f[0] for f in fields] == header_struct_members(name), \
            f"test_abi.c lists other fields than the header for {name}"
        psize, pfields = py[name]
        assert [tuple(f) for f in pfields] == fields, f"{name}: ctypes layout differs from C"
        assert psize == size, f"{name}: sizeof {size} in C, {psize} in ctypes"
    assert enums == {"ap_status": 4, "ap_meta_codec": 4}


def test_status_values_and_constants_match_the_headers():
    _, _, consts = c_abi()
    py = py_abi()["consts"]
    # Every ap_status enumerator of status.h, with its explicit value, is printed and
    # mirrored: none added on one side only.
    text = strip_comments((INCLUDE / "annpack" / "status.h").read_text())
    body = re.search(r"typedef enum ap_status \{(.*?)\} ap_status;", text, flags=re.S).group(1)
    values = dict((n, int(v)) for n, v in re.findall(r"(AP_\w+)\s*=\s*(\d+)", body))
    assert len(values) == body.count(",") + 1, "every status value is explicit"
    assert sorted(values.values()) == list(range(len(values)))
    for name, v in values.items():
        assert consts[name] == v and py[name] == v, name
    for name, v in consts.items():
        assert py.get(name) == v, f"python/annpack/_lib.py: {name} is {py.get(name)}, C says {v}"


def stable_api():
    """Names of the functions the stable headers declare with AP_API."""
    names = set()
    for h in STABLE:
        text = strip_comments(h.read_text())
        names.update(re.findall(r"\bAP_API\b[^;{]*?\b(ap_\w+)\s*\(", text, flags=re.S))
    return names


def version_script():
    text = strip_comments(MAP.read_text())
    m = re.fullmatch(r"\s*ANNPACK_0\s*\{\s*global:(.*?)local:\s*\*;\s*\};\s*", text, flags=re.S)
    assert m, "core/libannpack.map: one node ANNPACK_0 { global: ...; local: *; };"
    return [s.strip() for s in m.group(1).split(";") if s.strip()]


def exported():
    r = subprocess.run(["nm", "-D", "--defined-only", "--with-symbol-versions", LIB],
                       capture_output=True, text=True, check=True)
    syms = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDRBW":
            name, _, ver = parts[2].partition("@@")
            syms[name] = ver
    return syms


def test_exports_are_the_stable_api_and_the_version_script():
    script = version_script()
    assert script == sorted(set(script)), "libannpack.map: sorted, each name once"
    api = stable_api()
    assert set(script) == api, (f"declared AP_API but not in libannpack.map: "
                                f"{sorted(api - set(script))}; in the map but not declared: "
                                f"{sorted(set(script) - api)}")
    syms = exported()
    assert set(syms) == api, (f"exported but not stable: {sorted(set(syms) - api)}; "
                              f"stable but not exported: {sorted(api - set(syms))}")
    assert set(syms.values()) == {"ANNPACK_0"}


def test_soname_is_the_abi_version():
    r = subprocess.run(["readelf", "-d", LIB], capture_output=True, text=True, check=True)
    assert re.search(r"\(SONAME\)\s+Library soname: \[libannpack\.so\.0\]", r.stdout)


def experimental_api():
    text = strip_comments((INCLUDE / "annpack" / "experimental.h").read_text())
    return set(re.findall(r"\bAP_EXPERIMENTAL_API\b[^;{]*?\b(ap_\w+)\s*\(", text, flags=re.S))


def test_experimental_api_is_hidden_and_needs_the_macro():
    exp = experimental_api()
    assert len(exp) > 50 and not exp & stable_api()
    assert not exp & set(exported()), "experimental functions are not exported"
    # Without AP_EXPERIMENTAL the umbrella header declares none of them; with it, all.
    def identifiers(*defs):
        r = subprocess.run(["cc", "-E", "-P", *defs, "-I", INCLUDE, "-x", "c", "-"],
                           input='#include "annpack/annpack.h"\n', capture_output=True,
                           text=True, check=True)
        return set(re.findall(r"\bap_\w+", r.stdout))
    assert not exp & identifiers()
    assert exp <= identifiers("-DAP_EXPERIMENTAL")


def compile_c(src, cc="cc", std="c17"):
    return subprocess.run([cc, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic",
                           "-fsyntax-only", "-I", INCLUDE, "-x", "c++" if "++" in cc else "c",
                           "-"], input=src, capture_output=True, text=True)


@pytest.mark.parametrize("header", [h.name for h in STABLE])
def test_public_header_compiles_alone(header):
    for cc, std, pre in (("cc", "c99", ""), ("cc", "c17", "#define AP_EXPERIMENTAL\n"),
                         ("c++", "c++17", ""), ("c++", "c++17", "#define AP_EXPERIMENTAL\n")):
        r = compile_c(f'{pre}#include "annpack/{header}"\n', cc, std)
        assert r.returncode == 0, f"{cc} -std={std} {pre}: {r.stderr}"


USE = ("void use_it(ap_topk *t, ap_hit *h);\n"
       "void use_it(ap_topk *t, ap_hit *h) { ap_topk_init(t, h, 1); }\n")


def test_experimental_header_needs_the_macro():
    r = compile_c('#include "annpack/experimental.h"\n')
    assert r.returncode != 0 and "define AP_EXPERIMENTAL first" in r.stderr
    # Without the macro the stable headers do not declare an experimental function ...
    r = compile_c('#include "annpack/annpack.h"\n' + USE)
    assert r.returncode != 0 and "ap_topk" in r.stderr
    # ... with it they do, and experimental.h included first (before the headers it
    # extends) still declares their sections.
    for first in ("", '#include "annpack/experimental.h"\n'):
        r = compile_c("#define AP_EXPERIMENTAL\n" + first + '#include "annpack/search.h"\n' + USE)
        assert r.returncode == 0, r.stderr
