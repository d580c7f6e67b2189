"""Interpretable face recognition (Yin et al.), TensorFlow 2 / Keras.

The sibling folders ``data/``, ``eval/`` and ``tools/`` of a source checkout are
the subpackages ``interp_fr.data``, ``interp_fr.eval`` and ``interp_fr.tools``.
An installed wheel holds them physically inside this package (see setup.py); in a
checkout a small finder maps the three names onto the sibling folders, so that
library code imports them under one name in both cases.

When the process was started as one of the project's command lines (``python
-m interp_fr.train``, a console script), importing this package first does the
command's process set-up, before any module imports TensorFlow: see
`started_as_command` and `interp_fr.common.cli.prepare_command_process`.
"""
import importlib.abc
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
_SIBLINGS = ("data", "eval", "tools")


class _CheckoutSiblingFinder(importlib.abc.MetaPathFinder):
    """Resolves ``interp_fr.<sibling>`` to ``<checkout>/<sibling>/``."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.partition(".")
        if prefix != __name__ or name not in _SIBLINGS:
            return None
        folder = os.path.join(_ROOT, name)
        return importlib.util.spec_from_file_location(
                fullname, os.path.join(folder, "__init__.py"),
                submodule_search_locations=[folder])


def _is_checkout():
    return all(
            not os.path.isdir(os.path.join(_HERE, s))
            and os.path.isfile(os.path.join(_ROOT, s, "__init__.py"))
            for s in _SIBLINGS)


if _is_checkout() and not any(
        isinstance(f, _CheckoutSiblingFinder) for f in sys.meta_path):
    sys.meta_path.append(_CheckoutSiblingFinder())


# Packages whose modules are our command lines (``python -m PACKAGE.module``),
# and the name prefixes of our console scripts (setup.py, CONSOLE_SCRIPTS).
_COMMAND_PACKAGES = ("interp_fr", "attr_recovery") + _SIBLINGS
_SCRIPT_PREFIXES = ("interp-fr-", "attr-recovery-")


def started_as_command():
    """Whether this process was started as one of the project's command lines.

    True for ``python -m interp_fr.train`` (and the modules of
    ``attr_recovery``, ``eval``, ``data``, ``tools``) and for the console
    scripts; False for a library user, pytest or any other program. Only then
    may the process-wide set-up of `interp_fr.common.cli.prepare_command_process`
    happen: a library must not change the logging of its user's process.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":
        # While ``python -m`` imports the module's packages, argv[0] is "-m";
        # the module's name is in the original command line.
        args = getattr(sys, "orig_argv", [])
        for i, arg in enumerate(args[1:], start=1):
            if arg == "-m" and i + 1 < len(args):
                module = args[i + 1]
            elif arg.startswith("-m") and not arg.startswith("--"):
                module = arg[2:]
            else:
                continue
            return module.split(".")[0] in _COMMAND_PACKAGES
        return False
    return os.path.basename(argv0).startswith(_SCRIPT_PREFIXES)


# Before the command's modules import TensorFlow (its start-up log).
if started_as_command():
    from interp_fr.common.cli import prepare_command_process
    prepare_command_process()
    del prepare_command_process
