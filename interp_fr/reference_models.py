"""Reference weights of our own models, trained on the synthetic world.

The package ships, under ``interp_fr/reference_weights/``, the paper's three
models (``base``, ``sad_only``, ``full``) trained to convergence on the
synthetic world of seed 0 by ``experiments/reproduce_paper.py --export``
(fixed seeds, the project's own trainer). Each ``<name>.weights.h5`` has a
``<name>.json`` beside it with the model configuration (so loading never
guesses from shapes), the figures measured when it was made, and the command
that made it. They are not the original authors' weights: they exist so that
the analyses have a strong model to show on CPUs where the main job cannot
train one to convergence in its time budget.
"""
import json
import os

from interp_fr.atomic_io import atomic_save_text

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "reference_weights")
NAMES = ("base", "sad_only", "full")
WEIGHTS_SUFFIX = ".weights.h5"
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
    path = os.fspath(path)
    if not path.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"{path}: Keras weights files end with {WEIGHTS_SUFFIX}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.getpid()}.tmp{WEIGHTS_SUFFIX}")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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


def export_reference_models(models, folder, records, provenance):
    """Writes trained models as reference weights.

    Args:
        models: dict name -> `InterpFRNet`.
        folder: output folder.
        records: dict name -> the figures measured on the model (JSON-safe).
        provenance: dict (command, seed, recipe) recorded with each model.

    Returns:
        list of the files written.
    """
    written = []
    for name, model in models.items():
        record = {k: v for k, v in records[name].items() if k != "history"}
        written += save_weights_with_config(
            model, os.path.join(folder, name + WEIGHTS_SUFFIX),
            {"name": name, "recorded": record, "provenance": provenance})
    return written


def available(folder=REFERENCE_DIR):
    """Names of the reference models present in ``folder``."""
    return [n for n in NAMES
            if os.path.isfile(os.path.join(folder, n + WEIGHTS_SUFFIX))
            and os.path.isfile(os.path.join(folder, n + ".json"))]


def load_reference_model(name, folder=REFERENCE_DIR):
    """(`InterpFRNet` with the reference weights, its JSON description)."""
    from interp_fr import model_loading
    path = os.path.join(folder, name + WEIGHTS_SUFFIX)
    model, _, _ = model_loading.load_keras_model(path)
    return model, read_config(path)
