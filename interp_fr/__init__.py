"""Interpretable face recognition (Yin et al.), TensorFlow 2 / Keras.

The sibling folders ``data/``, ``eval/`` and ``tools/`` of a source checkout are
the subpackages ``interp_fr.data``, ``interp_fr.eval`` and ``interp_fr.tools``.
An installed wheel holds them physically inside this package (see setup.py); in a
checkout a small finder maps the three names onto the sibling folders, so that
library code imports them under one name in both cases.
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
