"""Every console script resolves; the checkout maps data/, eval/, tools/ into interp_fr."""
import ast
import importlib
import importlib.util
import os

from tests.conftest import REPO_ROOT


def _setup_literal(name):
    tree = ast.parse(open(os.path.join(REPO_ROOT, "setup.py")).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in setup.py")


def test_every_console_script_resolves():
    """Each entry point names a module that exists and defines the function.

    Checked without importing: the command-line modules define absl flags at
    import time, and several of them in one process would clash.
    """
    scripts = _setup_literal("CONSOLE_SCRIPTS")
    names = [s.split("=")[0].strip() for s in scripts]
    assert len(names) == len(set(names))
    for entry in scripts:
        module, func = entry.split("=")[1].strip().split(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, entry
        tree = ast.parse(open(spec.origin).read())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert func in defined, entry


def test_package_dir_matches_checkout_folders():
    mapping = _setup_literal("PACKAGE_DIR")
    for package, folder in mapping.items():
        assert os.path.isfile(os.path.join(REPO_ROOT, folder, "__init__.py")), folder
        module = importlib.import_module(package)
        assert os.path.samefile(os.path.dirname(module.__file__),
                                os.path.join(REPO_ROOT, folder)), package
    # Every subpackage in the checkout is listed, or it would be left out of a wheel.
    for top in set(f.split("/")[0] for f in mapping.values()):
        for root, dirs, files in os.walk(os.path.join(REPO_ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(root, REPO_ROOT).replace(os.sep, "/")
                assert rel in mapping.values(), f"{rel} missing from PACKAGE_DIR"
