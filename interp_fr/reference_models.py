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
import os

from interp_fr.weights_files import (WEIGHTS_SUFFIX, read_config,
                                     save_weights_with_config)

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "reference_weights")
NAMES = ("base", "sad_only", "full")
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


def reference_description(name, folder=REFERENCE_DIR):
    """The JSON description of reference model ``name`` (without loading it)."""
    return read_config(os.path.join(folder, name + WEIGHTS_SUFFIX))


def load_reference_model(name, folder=REFERENCE_DIR):
    """(`InterpFRNet` with the reference weights, its JSON description)."""
    from interp_fr import model_loading
    path = os.path.join(folder, name + WEIGHTS_SUFFIX)
    model, _, _ = model_loading.load_keras_model(path)
    return model, read_config(path)
