"""Nested results made strict JSON: the project's one sanitiser."""
import math

import numpy as np


def json_safe(value, drop_private=False):
    """Returns ``value`` with numpy scalars and arrays turned into Python values.

    Dict keys become strings, tuples lists, and NaN / inf become None (strict
    JSON has neither). With ``drop_private``, dict entries whose key starts with
    "_" (working arrays kept beside published figures) are left out.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v, drop_private) for k, v in value.items()
                if not (drop_private and str(k).startswith("_"))}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, drop_private) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), drop_private)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
