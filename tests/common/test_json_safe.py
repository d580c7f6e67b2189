"""The one JSON sanitiser: numpy values, non-finite floats, private keys."""
import json

import numpy as np

from interp_fr.common.json_safe import json_safe


def test_numpy_values_become_strict_json():
    value = {1: np.float32(0.5), "a": (np.int64(3), np.bool_(True)),
             "arr": np.array([[1.0, np.nan], [np.inf, -2.0]]), "n": float("-inf"),
             "_work": np.zeros(2)}
    out = json_safe(value)
    assert out == {"1": 0.5, "a": [3, True], "arr": [[1.0, None], [None, -2.0]],
                   "n": None, "_work": [0.0, 0.0]}
    assert type(out["a"][0]) is int and type(out["a"][1]) is bool
    json.dumps(out, allow_nan=False)
    assert "_work" not in json_safe(value, drop_private=True)
    assert json_safe({"x": {"_y": 1, "z": 2}}, drop_private=True) == {"x": {"z": 2}}
