"""Why the shipped estimators cannot read smile: how far it moves the face, against how well the face is read.

    python experiments/smile_visibility.py --work /tmp/smile \\
        --out experiments/results/smile_visibility

The synthetic world draws smile per image (Beta(1.2, 2) in 0..1) by moving the
mouth corners 2.5 px outward and 2 px up at smile 1, in the 96 px face frame
(`synthetic_faces._expressed_shape`). This script measures, on the world of
seed 0:

- the displacement of the mouth corners per standard deviation of smile and
  of the identity coefficient that moves them too (mouth width), from the
  generator's own landmarks (a frontal face; px of the 96 px frame);
- the shipped landmark estimator's error at the mouth corners on the world's
  885 test images (identities never seen), in the same px;
- how much of smile can be read from landmarks: a ridge read-out
  (`attribute_significance.heldout_probe_r2`: fitted on 2,400 training
  images, evaluated on the test images) from the exact drawn
  landmarks and from the estimated ones, and the single descriptor
  ``lm_smile`` (`face_geometry.landmark_attributes`) of each; and the shipped
  smile head's R2.

Writes ``smile.md`` / ``smile.json``.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()
from experiments import provenance  # noqa: E402

import numpy as np  # noqa: E402

MOUTH_CORNERS = (48, 54)
TRAIN_IMAGES = 2400
# Smile's distribution in `synthetic_faces.sample_image_params`.
SMILE_BETA = (1.2, 2.0)


def beta_sd(a, b):
    return float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))


def corner_shift_per_sd(change):
    """Mean displacement (px) of the mouth corners of a frontal face when
    ``change(identity, params) -> (identity, params)`` is applied."""
    from interp_fr.data import synthetic_faces as sf
    rng = np.random.default_rng(0)
    shifts = []
    for _ in range(200):
        identity, params = sf.sample_identity(rng), sf.canonical_params()
        before = sf.project_landmarks(identity, params, 96, 0)
        identity2, params2 = change(identity, params)
        after = sf.project_landmarks(identity2, params2, 96, 0)
        shifts.append(np.linalg.norm(after - before, axis=-1)[list(MOUTH_CORNERS)].mean())
    return float(np.mean(shifts))


def smile_by(amount):
    def change(identity, params):
        return identity, dataclasses.replace(params, smile=params.smile + amount)
    return change


def mouth_width_by(sd):
    """+``sd`` of the mouth-width coefficient (0.16 of the corner's distance
    from the face's centre line per sd, `synthetic_faces.sample_identity`)."""
    def change(identity, params):
        shape = identity.shape.copy()
        old = 1 + 0.16 * identity.shape_params[5]
        new = 1 + 0.16 * (identity.shape_params[5] + sd)
        shape[48:68, 0] = 48.0 + (shape[48:68, 0] - 48.0) * new / old
        return dataclasses.replace(identity, shape=shape), params
    return change


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="working folder (the world of seed 0)")
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "smile_visibility"))
    a = p.parse_args(argv)
    from attr_recovery.analysis.attribute_significance import heldout_probe_r2, pearson
    from attr_recovery.readers import face_geometry
    from attr_recovery.trainers.estimator_training import regression_metrics
    from attr_recovery.shipped import reference_estimators
    from attr_recovery.trainers import attribute_data
    from interp_fr.common.atomic_io import atomic_save_text
    from interp_fr.data import synthetic_world

    t0 = time.perf_counter()
    world = os.path.join(a.work, "world")
    if not os.path.exists(os.path.join(world, synthetic_world.ATTR_DIR)):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=0))
    reader = reference_estimators.load_reference_reader()[0]
    train = attribute_data.world_split(world, "train")
    test = attribute_data.world_split(world, "test")

    def read(labelled, count):
        idx = np.arange(min(count, len(labelled)))
        lms, smile = [], []
        for i in range(0, len(idx), 128):
            x = labelled.read(idx[i:i + 128])
            lms.append(reader.landmarks(x))
            smile.append(reader(x)["smile"])
        return idx, np.concatenate(lms), np.concatenate(smile)

    i_tr, est_tr, _ = read(train, TRAIN_IMAGES)
    i_te, est_te, head_te = read(test, len(test))
    s_tr = np.asarray(train.targets["smile"], np.float64)[i_tr]
    s_te = np.asarray(test.targets["smile"], np.float64)[i_te]
    exact_tr, exact_te = train.landmarks[i_tr], test.landmarks[i_te]
    flat = lambda lm: lm.reshape(len(lm), -1)  # noqa: E731
    corner_error = np.linalg.norm(est_te - exact_te, axis=-1)[:, list(MOUTH_CORNERS)]
    sd = beta_sd(*SMILE_BETA)
    figures = {
        "smile sd (0..1)": sd,
        "mouth-corner shift per sd of smile (px, 96 px frame)": corner_shift_per_sd(smile_by(sd)),
        "mouth-corner shift per sd of mouth width (px)": corner_shift_per_sd(mouth_width_by(1.0)),
        "landmark estimator: mouth-corner error, mean (px)": float(corner_error.mean()),
        "landmark estimator: mouth-corner error, median (px)": float(np.median(corner_error)),
        "smile R2, ridge read-out of exact landmarks": heldout_probe_r2(
            flat(exact_tr), s_tr, flat(exact_te), s_te),
        "smile R2, ridge read-out of estimated landmarks": heldout_probe_r2(
            flat(est_tr), s_tr, flat(est_te), s_te),
        "smile r, lm_smile of exact landmarks": pearson(
            face_geometry.landmark_attributes(exact_te)["lm_smile"], s_te),
        "smile r, lm_smile of estimated landmarks": pearson(
            face_geometry.landmark_attributes(est_te)["lm_smile"], s_te),
        "smile R2, shipped smile head": regression_metrics(head_te, s_te)["r2"],
    }
    record = dict(command=provenance.command_line("experiments/smile_visibility.py", argv),
                  machine=provenance.machine_description(),
                  seconds=time.perf_counter() - t0, test_images=len(i_te),
                  train_images=len(i_tr), figures=figures)
    os.makedirs(a.out, exist_ok=True)
    atomic_save_text(os.path.join(a.out, "smile.json"), json.dumps(record, indent=1))
    lines = ["# Why the estimators cannot read smile", "",
             f"Command: `{record['command']}`  ", f"Machine: {record['machine']}  ",
             f"Run time: {record['seconds']:.0f} s (world of seed 0; "
             f"{len(i_tr)} training / {len(i_te)} test images)", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in figures.items()]
    atomic_save_text(os.path.join(a.out, "smile.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
