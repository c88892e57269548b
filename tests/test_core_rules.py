"""Rules of core/ that a grep checks (issue 14): where the environment is read, where the
test hooks live, that unit tests call the library instead of compiling its sources."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = ROOT / "core"


def c_files(top):
    return sorted(p for p in top.rglob("*") if p.suffix in (".c", ".h"))


def hits(files, pattern):
    rx = re.compile(pattern)
    return [f"{p.relative_to(ROOT)}:{i}" for p in files
            for i, line in enumerate(p.read_text().splitlines(), 1) if rx.search(line)]


def test_core_reads_the_environment_in_env_c_only():
    found = [h for h in hits(c_files(CORE), r"\b(secure_)?getenv\s*\(")
             if not h.startswith("core/base/env.c:")]
    assert found == [], found


def test_process_killing_hook_only_in_faults_c():
    # faults.c is compiled only with -Dtest_hooks=true (core/base/meson.build).
    found = [h for h in hits(c_files(CORE), r"\b(raise|kill)\s*\(|\bSIGKILL\b")
             if not h.startswith("core/base/faults.")]
    assert found == [], found
    assert "if get_option('test_hooks')" in (CORE / "base" / "meson.build").read_text()


def test_unit_tests_call_the_library_not_its_sources():
    # Each kernel version is reached by name (ap_kernel_f16_for, ap_kernel_sq8_for).
    found = hits(c_files(ROOT / "tests"), r'#\s*include\s*[<"][^">]*\.c[">]')
    assert found == [], found
