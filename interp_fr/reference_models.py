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

``reference_weights/colour_jitter/`` holds the full model trained the same
way but with colour jitter on the training images (not in the original;
``reproduce_paper.py --colour_jitter 1 --pretrain_steps 12000 --rows full``).
The world's identities differ in colour as well as in shape, and without the
jitter the models recognise by colour alone (grey-scale TAR@1e-2 0.3 against
0.99 in colour); with it the representation also carries face shape, which is
what attribute recovery needs of its recogniser (BUILD_NOTES.md, "What the
recognisers encode").
"""
import os

from interp_fr.weights_files import (WEIGHTS_SUFFIX, read_config,
                                     save_weights_with_config)

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "reference_weights")
NAMES = ("base", "sad_only", "full")
COLOUR_JITTER_DIR = os.path.join(REFERENCE_DIR, "colour_jitter")
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


def shipped():
    """label -> (name, folder) of every reference model present: the paper's
    models under their names, the colour-jitter ones as ``colour_jitter/NAME``."""
    found = {n: (n, REFERENCE_DIR) for n in available()}
    found.update({f"colour_jitter/{n}": (n, COLOUR_JITTER_DIR)
                  for n in available(COLOUR_JITTER_DIR)})
    return found


def reference_description(name, folder=REFERENCE_DIR):
    """The JSON description of reference model ``name`` (without loading it)."""
    return read_config(os.path.join(folder, name + WEIGHTS_SUFFIX))


def load_shipped(label):
    """(`InterpFRNet`, JSON description) of the shipped model ``label`` (a key of
    `shipped`, e.g. ``full`` or ``colour_jitter/full``)."""
    found = shipped()
    if label not in found:
        raise FileNotFoundError(f"no reference model {label!r} (have {sorted(found)})")
    return load_reference_model(*found[label])


def load_reference_model(name, folder=REFERENCE_DIR):
    """(`InterpFRNet` with the reference weights, its JSON description)."""
    from interp_fr import model_loading
    path = os.path.join(folder, name + WEIGHTS_SUFFIX)
    model, _, _ = model_loading.load_keras_model(path)
    return model, read_config(path)
