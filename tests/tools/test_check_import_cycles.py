"""The import-cycle check: the project has none, a planted cycle is found, and a
``__main__`` entry is no cycle."""
import subprocess
import sys

from tests.conftest import REPO_ROOT

sys.path.insert(0, REPO_ROOT)
from tools import check_import_cycles as cic  # noqa: E402


def _run(*args):
    return subprocess.run([sys.executable, "tools/check_import_cycles.py", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True)


def test_the_project_has_no_package_or_module_cycle():
    for args in ((), ("--modules",)):
        out = _run(*args)
        assert out.returncode == 0, out.stdout
        assert out.stdout.strip().splitlines()[-1].startswith("0 cycle(s)")


def test_a_cycle_is_found_and_a_main_guard_is_not_one(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("from pkg import b\n")
    b.write_text("def f():\n    from pkg import a\n")          # lazy: still a cycle
    c.write_text("import os\n\nif __name__ == '__main__':\n    from pkg import a\n")
    known = {"pkg": "", "pkg.a": str(a), "pkg.b": str(b), "pkg.c": str(c)}
    graph = {m: cic.imports(p, m, known) for m, p in known.items() if p}
    # "from pkg import b" imports the package pkg and its module pkg.b.
    assert graph == {"pkg.a": {"pkg", "pkg.b"}, "pkg.b": {"pkg", "pkg.a"}, "pkg.c": set()}
    assert cic.cycles(graph) == [["pkg.a", "pkg.b"]]
    # The same entry outside the guard is an import like any other.
    c.write_text("from pkg import a\n")
    assert cic.imports(str(c), "pkg.c", known) == {"pkg", "pkg.a"}
