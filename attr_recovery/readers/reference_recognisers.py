"""Shipped attribute-recovery backbones trained on the synthetic world (not in the
original code, which uses recognisers trained on real faces).

``attr_recovery/reference_weights/<RECOGNISERS[name]>.npz`` holds the weights of
the original's MobileFaceNet (``nets.backbones``) trained by
``experiments/train_backbone_recognisers.py --export`` with the project's
cosine-softmax trainer (``trainers.recogniser_training``), stored as float16
(half the bytes; the model is rounded to these values before any figure is
measured or any decoder is trained on it, so the shipped weights are the
measured ones). ``<...>.json`` beside it has the constructor configuration,
the recorded figures and the command. It is a face model: with the shipped
InterpFRNets it counts against the face-model weights' limit (20 MB), not the
30 MB issue 15 allows its decoders and estimators. Loaded through the recognition spec
``reference:<name>`` (``readers.recognition.load_recognition_model``).
"""
import json
import os

import numpy as np
import tensorflow as tf

from interp_fr.common.atomic_io import atomic_save_text, atomic_write

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "reference_weights")
# label (the part after ``reference:``) -> file stem in REFERENCE_DIR.
RECOGNISERS = {"mobilefacenet": "recogniser_mobilefacenet"}
KIND_MOBILEFACENET = "mobilefacenet"


def paths(name, folder=REFERENCE_DIR):
    """(weights .npz, description .json) paths of reference recogniser ``name``."""
    if name not in RECOGNISERS:
        raise FileNotFoundError(f"no reference recogniser {name!r} "
                                f"(have {sorted(RECOGNISERS)})")
    stem = os.path.join(folder, RECOGNISERS[name])
    return stem + ".npz", stem + ".json"


def available(name, folder=REFERENCE_DIR):
    """Whether the weights and the description of ``name`` are present."""
    return all(os.path.isfile(p) for p in paths(name, folder))


def round_to_float16(model):
    """Rounds every variable of ``model`` to the nearest float16 value in place,
    so that the model measured is the model shipped."""
    for v in model.variables:
        if v.dtype == tf.float32:
            v.assign(tf.cast(tf.cast(v, tf.float16), tf.float32))


def build_recogniser(description):
    """The untrained model a description (its ``kind`` and ``config``) builds."""
    from attr_recovery.nets.backbones import MobileFaceNet
    if description.get("kind") != KIND_MOBILEFACENET:
        raise ValueError(f"unknown reference recogniser kind {description.get('kind')!r}")
    cfg = description["config"]
    model = MobileFaceNet(embedding_size=int(cfg["embedding_size"]),
                          residual_blocks=tuple(cfg["residual_blocks"]), name="mobilefacenet")
    model(tf.zeros([1, 112, 112, 3]))
    return model


def export_reference_recogniser(model, name, recorded, provenance, folder=REFERENCE_DIR):
    """Writes a trained ``MobileFaceNet`` as reference recogniser ``name``.

    Args:
      model: the trained model, already `round_to_float16`-ed.
      name: a key of `RECOGNISERS`.
      recorded: figures measured on it (JSON-safe dict).
      provenance: dict (command, steps, seed, augmentation, ...).
    Returns: list of the files written.
    """
    weights_path, desc_path = paths(name, folder)
    os.makedirs(folder, exist_ok=True)
    arrays = {f"v{i:03d}": np.asarray(v.numpy(), np.float16)
              for i, v in enumerate(model.variables)}
    with atomic_write(weights_path, "wb") as f:
        np.savez_compressed(f, **arrays)
    desc = {"name": name, "kind": KIND_MOBILEFACENET,
            "config": {"embedding_size": int(model.embedding_size),
                       "residual_blocks": [int(b) for b in model.residual_blocks]},
            "variables": [v.path for v in model.variables],
            "recorded": recorded, "provenance": provenance}
    atomic_save_text(desc_path, json.dumps(desc, indent=1, default=float))
    return [weights_path, desc_path]


def load_reference_recogniser(name, folder=REFERENCE_DIR):
    """(``MobileFaceNet`` with the shipped weights, description dict)."""
    weights_path, desc_path = paths(name, folder)
    for p in (weights_path, desc_path):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"reference recogniser {name!r}: {p} is missing")
    with open(desc_path, encoding="utf-8") as f:
        desc = json.load(f)
    model = build_recogniser(desc)
    with np.load(weights_path) as z:
        arrays = [z[f"v{i:03d}"] for i in range(len(z.files))]
    if ([v.path for v in model.variables] != desc["variables"]
            or len(arrays) != len(model.variables)
            or any(tuple(v.shape) != a.shape for v, a in zip(model.variables, arrays))):
        raise ValueError(f"{weights_path}: its variables do not match the model "
                         "its description builds")
    for v, a in zip(model.variables, arrays):
        v.assign(a.astype(np.float32))
    return model, desc
