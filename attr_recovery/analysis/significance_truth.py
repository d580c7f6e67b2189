"""Significance measures checked against the synthetic world's truth.

The synthetic world knows which of its generative attributes define an identity
(shape coefficients, colours, hair, gender, age, facial hair: stable across a
subject's images) and which are nuisance (pose, expression, light, occluder:
drawn anew for each image). A recogniser that works must be sensitive to the
first and invariant to the second, so a significance measure that ranks
attributes correctly must rank every identity attribute above every nuisance
one. The area under the ROC curve of that ranking (identity = positive) is 1
for a perfect ranking and about 0.5 for a recogniser that learned nothing.

Measures (`attribute_significance`, with the world's exact attributes in place
of estimates, so that the check is of the measure and the recogniser and not
of an estimator):

* ``sensitivity``: the drop of R's cosine when the attribute moves by one
  standard deviation, all else fixed (partial effects of a ridge regression of
  z on all standardised attributes);
* ``probe_r2``: cross-validated R^2 of a linear read-out of the attribute from
  z, folds by subject.
"""
import numpy as np

from attr_recovery.analysis import attribute_significance as sig

# Attributes of `interp_fr.data.synthetic_faces.image_attributes`, by role.
SHAPE_ATTRIBUTES = ("jaw_width", "face_length", "eye_spacing", "eye_size",
                    "nose_length", "mouth_width")
COLOUR_ATTRIBUTES = ("skin_r", "skin_g", "skin_b", "hair_r", "hair_g", "hair_b")
IDENTITY_ATTRIBUTES = SHAPE_ATTRIBUTES + COLOUR_ATTRIBUTES + ("gender", "age", "facial_hair")
NUISANCE_ATTRIBUTES = (
    "yaw", "pitch", "roll", "smile", "mouth_open", "brow_raise", "light_x",
    "light_y", "occluder")
MEASURES = ("sensitivity", "probe_r2")
# Estimator readouts that stand for identity attributes of the world (the
# significance of the main job measures these, not the exact rgb values).
IDENTITY_READOUTS = IDENTITY_ATTRIBUTES + ("skin_tone", "hair_lightness") + tuple(
    "lm_" + n for n in SHAPE_ATTRIBUTES)
NUISANCE_READOUTS = NUISANCE_ATTRIBUTES + ("lm_smile", "lm_mouth_open", "lm_brow_raise")


def truth_table(attributes):
    """The world's attributes (``attributes/*_attributes.npz`` as a dict) with the
    light direction as its two Cartesian components and the occluder as a flag.

    Returns:
        dict name -> float64 [N] for `IDENTITY_ATTRIBUTES` + `NUISANCE_ATTRIBUTES`.
    """
    a = {k: np.asarray(attributes[k], np.float64) for k in attributes}
    a["light_x"] = a["light_strength"] * np.cos(a["light_angle"])
    a["light_y"] = a["light_strength"] * np.sin(a["light_angle"])
    a["occluder"] = (a["occluder"] > 0).astype(np.float64)
    return {n: a[n] for n in IDENTITY_ATTRIBUTES + NUISANCE_ATTRIBUTES}


def measures(z, truth, subjects, ridge=1e-3):
    """Both measures for every attribute.

    Args:
        z: [N, d] representations (any scale; normalised here).
        truth: dict name -> [N] (`truth_table`).
        subjects: int [N] subject of each image (probe folds).
        ridge: penalty of the partial-effect regression.

    Returns:
        dict measure -> dict name -> float.
    """
    names = list(truth)
    x = np.stack([truth[n] for n in names], axis=1)
    std = x.std(axis=0)
    keep = std > 0
    standardised = np.zeros_like(x)
    standardised[:, keep] = (x[:, keep] - x[:, keep].mean(0)) / std[keep]
    zn = sig.normalise(np.asarray(z, np.float64))
    directions = sig.partial_effect_directions(zn, standardised, ridge)
    out = {"sensitivity": {}, "probe_r2": {}}
    for j, name in enumerate(names):
        out["sensitivity"][name] = (sig.cosine_drop(zn, directions[j])[0]
                                    if keep[j] else 0.0)
        out["probe_r2"][name] = (sig.probe_r2(zn, standardised[:, j], groups=subjects)
                                 if keep[j] else 0.0)
    return out


def readout_auc(significance):
    """Sensitivity-ranking AUC of identity over nuisance readouts of a
    `attribute_significance.compute_significance` result (estimated attributes,
    as the main job measures them)."""
    return ranking_auc({n: m["sensitivity"] for n, m in significance["attributes"].items()},
                       IDENTITY_READOUTS, NUISANCE_READOUTS)


def ranking_auc(scores, positives=IDENTITY_ATTRIBUTES, negatives=NUISANCE_ATTRIBUTES):
    """P(score of a random positive > score of a random negative), ties 1/2.

    Args:
        scores: dict name -> float (names missing from it are skipped).

    Returns:
        float in [0, 1].
    """
    pos = np.array([scores[n] for n in positives if n in scores], np.float64)
    neg = np.array([scores[n] for n in negatives if n in scores], np.float64)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def check_against_truth(z, attributes, subjects, ridge=1e-3):
    """Measures and their ranking AUCs for one recogniser.

    Args:
        z: [N, d] representations of the world's images.
        attributes: the world's attribute dict for the same images.
        subjects: int [N].

    Returns:
        dict with ``measures`` (measure -> name -> value) and ``auc``
        (measure -> AUC of identity over nuisance).
    """
    m = measures(z, truth_table(attributes), subjects, ridge)
    return {"measures": m, "auc": {k: ranking_auc(v) for k, v in m.items()}}
