"""The shipped reference attribute and landmark estimators (not in the original code).

``attr_recovery/reference_weights/estimators64/`` holds the 64 px estimators
(`ARCHITECTURE`) trained by ``experiments/train_reference_estimators.py
--export`` on the synthetic world of seed 0 plus rendered faces of fresh
identities. Its ``estimators.json`` is an ordinary estimator-trainer
description (so `estimator_training.load_reader` reads the folder) with the
held-out figures measured when it was made and the command added. It exists
because estimators that see expression and face shape need far more CPU time
than the main job has (BUILD_NOTES.md, "Legible decoding").
"""
import json
import os

from attr_recovery.trainers import estimator_training
from attr_recovery.shipped import shipped_files
from interp_fr.common.atomic_io import atomic_save_text

# attr_recovery/reference_weights/, beside this package.
REFERENCE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "reference_weights")
ESTIMATORS_NAME = "estimators64"
# Model sizes (EstimatorTrainConfig fields) of the reference estimators.
ARCHITECTURE = dict(input_size=64, width=32, dense_units=256, landmark_input_size=64,
                    landmark_width=24)


def reference_estimators_dir(folder=REFERENCE_DIR):
    """Folder of the shipped estimators (may be absent)."""
    return os.path.join(folder, ESTIMATORS_NAME)


def available(folder=REFERENCE_DIR):
    """Whether the shipped estimators are present (description and checkpoint)."""
    return shipped_files.present(reference_estimators_dir(folder),
                                 estimator_training.CONFIG_FILE)


def export_reference_estimators(trainer, recorded, provenance, folder=REFERENCE_DIR):
    """Writes a trained `EstimatorTrainer`'s models (variables only) and description.

    Returns: list of the files written.
    """
    out = reference_estimators_dir(folder)
    written = shipped_files.write_checkpoint(
        out,
        attributes=estimator_training.named_variables(trainer.attribute_model, "attributes"),
        landmarks=estimator_training.named_variables(trainer.landmark_model, "landmarks"))
    desc = dict(trainer.description(), name=ESTIMATORS_NAME, recorded=recorded,
                provenance=provenance)
    path = os.path.join(out, estimator_training.CONFIG_FILE)
    atomic_save_text(path, json.dumps(desc, indent=1, sort_keys=True))
    return written + [path]


def load_reference_reader(folder=REFERENCE_DIR, batch_size=128):
    """(`AttributeReader` of the shipped estimators, their description dict)."""
    path = reference_estimators_dir(folder)
    return (estimator_training.load_reader(path, batch_size),
            estimator_training.read_description(path))
