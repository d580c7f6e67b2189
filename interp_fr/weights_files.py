"""Keras weights files of `InterpFRNet` with a JSON description beside each.

Every ``x.weights.h5`` the project writes gets ``x.json`` with the model's
constructor arguments (and whatever the writer adds: recorded figures,
provenance), as keras-hub presets keep a config beside their weights, so that
loading never has to guess the configuration from tensor shapes
(`model_loading.load_keras_model` reads it; shape inference stays the fallback
for files made elsewhere).
"""
import json
import os

from interp_fr.common.atomic_io import (KERAS_WEIGHTS_SUFFIX, atomic_save_keras_weights,
                                 atomic_save_text)

WEIGHTS_SUFFIX = KERAS_WEIGHTS_SUFFIX
_CONFIG_KEYS = ("df_dim", "gfc_dim", "dfc_dim", "n_subjects", "variant",
                "dropout_keep_prob", "bn_momentum", "bn_epsilon")


def config_path(weights_path):
    """``x.weights.h5`` -> ``x.json``: where a weights file's description lives."""
    path = os.fspath(weights_path)
    if path.endswith(WEIGHTS_SUFFIX):
        path = path[:-len(WEIGHTS_SUFFIX)]
    return path + ".json"


def model_config(model):
    """The `InterpFRNet` constructor arguments of ``model`` (JSON-safe dict)."""
    config = model.get_config()
    return {k: config[k] for k in _CONFIG_KEYS}


def save_weights_with_config(model, path, extra=None):
    """Writes ``path`` (``*.weights.h5``) and its JSON description beside it.

    Both atomically: the weights go to a temporary ``*.weights.h5`` that is
    moved into place, then the JSON. Returns (weights path, JSON path).
    """
    path = atomic_save_keras_weights(model, path)
    doc = {"model": model_config(model)}
    doc.update(extra or {})
    atomic_save_text(config_path(path), json.dumps(doc, indent=1, default=float) + "\n")
    return path, config_path(path)


def read_config(weights_path):
    """The JSON description beside a weights file, or None if there is none."""
    path = config_path(weights_path)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
