"""The attribute vocabulary of stage 2 (not in the original code).

An `AttributeSpec` describes one head of the multi-head estimator p(a | x):
its kind (regression with MSE, classification with cross-entropy), its classes
and the *scalar readout* that the significance measures and counterfactuals
work with:

- regression: the predicted value in natural units (degrees, 0..1, ...);
- classification: the expected class value sum_k p_k * v_k over the spec's
  ``class_values`` (for a binary head the probability of class 1; for an
  ordinal one such as age group the expected group; for the occluder the
  probability that any occluder is present).

Two head sets are defined:

- `SYNTHETIC_HEADS`: the exact generative attributes that the synthetic world
  stores per image (``attributes/*.npz``), plus two derived light components
  and hair/skin lightness;
- `METADATA_HEADS`: the labels real users have: the IJB-A protocol metadata
  (faceYaw, gender, skinTone, age, facialHair, indoor, the three visibility
  flags) and the CASIA file list's yaw.

The landmark descriptors (``lm_*``) are not heads: they are computed from the
estimated landmarks by `attr_recovery.readers.face_geometry`.
"""
import dataclasses

import numpy as np

REGRESSION = "regression"
CLASSIFICATION = "classification"


@dataclasses.dataclass(frozen=True)
class AttributeSpec:
    """One estimator head.

    Attributes:
      name: key of the head, of its targets and of its readout.
      kind: `REGRESSION` or `CLASSIFICATION`.
      class_values: classification: the label value of each class, in class
        order (targets are label values; a label not listed is ignored).
      readout_values: classification: the value of each class in the scalar
        readout (default: ``class_values``).
      class_names: optional display names of the classes.
      unit: display unit of the readout.
      group: pose / expression / shape / appearance / occlusion / scene.
      description: one line for tables.
    """
    name: str
    kind: str
    class_values: tuple = ()
    readout_values: tuple = ()
    class_names: tuple = ()
    unit: str = ""
    group: str = ""
    description: str = ""

    def __post_init__(self):
        if self.kind not in (REGRESSION, CLASSIFICATION):
            raise ValueError(f"{self.name}: kind must be {REGRESSION!r} or "
                             f"{CLASSIFICATION!r}, got {self.kind!r}")
        if self.kind == CLASSIFICATION and len(self.class_values) < 2:
            raise ValueError(f"{self.name}: a classification head needs >= 2 classes")
        if self.readout_values and len(self.readout_values) != len(self.class_values):
            raise ValueError(f"{self.name}: readout_values and class_values differ "
                             "in length")

    @property
    def num_classes(self):
        """Number of classes (0 for a regression head)."""
        return len(self.class_values) if self.kind == CLASSIFICATION else 0

    @property
    def readout(self):
        """float64 [C]: the readout value of each class (classification heads)."""
        return np.asarray(self.readout_values or self.class_values, np.float64)

    def class_index(self, labels):
        """Label values [N] (float, NaN = missing) -> int [N] class index, -1 = missing."""
        labels = np.asarray(labels, np.float64)
        out = np.full(labels.shape, -1, np.int64)
        for k, value in enumerate(self.class_values):
            out[np.isclose(labels, value)] = k
        return out

    def to_json(self):
        """JSON-able dict (`spec_from_json` inverts it)."""
        return dataclasses.asdict(self)


def spec_from_json(d):
    """`AttributeSpec` from `AttributeSpec.to_json` output."""
    d = dict(d)
    for key in ("class_values", "readout_values", "class_names"):
        d[key] = tuple(d.get(key) or ())
    return AttributeSpec(**d)


def _reg(name, unit, group, description):
    return AttributeSpec(name, REGRESSION, unit=unit, group=group,
                         description=description)


def _binary(name, group, description, names=("no", "yes")):
    return AttributeSpec(name, CLASSIFICATION, class_values=(0.0, 1.0),
                         class_names=names, unit="P(yes)", group=group,
                         description=description)


SHAPE_COEFFICIENTS = ("jaw_width", "face_length", "eye_spacing", "eye_size",
                      "nose_length", "mouth_width")

SYNTHETIC_HEADS = (
    _reg("yaw", "deg", "pose", "head yaw"),
    _reg("pitch", "deg", "pose", "head pitch"),
    _reg("roll", "deg", "pose", "head roll (in-plane)"),
    _reg("smile", "0..1", "expression", "smile strength"),
    _reg("mouth_open", "0..1", "expression", "mouth opening"),
    _reg("brow_raise", "0..1", "expression", "raised brows"),
    _reg("light_x", "", "scene", "horizontal light gradient (strength * cos angle)"),
    _reg("light_y", "", "scene", "vertical light gradient (strength * sin angle)"),
    AttributeSpec("occluder", CLASSIFICATION, class_values=(0.0, 1.0, 2.0),
                  readout_values=(0.0, 1.0, 1.0),
                  class_names=("none", "sunglasses", "scarf"), unit="P(occluded)",
                  group="occlusion", description="occluder (none / sunglasses / scarf)"),
    _binary("gender", "appearance", "gender (0 / 1 of the generator)"),
    AttributeSpec("skin_tone", CLASSIFICATION, class_values=(1., 2., 3., 4., 5., 6.),
                  unit="bin", group="appearance",
                  description="skin tone bin 1 (light) .. 6 (dark)"),
    _binary("facial_hair", "appearance", "beard"),
    AttributeSpec("age", CLASSIFICATION, class_values=(1., 2., 3., 4., 5.),
                  unit="group", group="appearance", description="age group 1..5"),
    _reg("skin_r", "0..1", "appearance", "skin red"),
    _reg("skin_g", "0..1", "appearance", "skin green"),
    _reg("skin_b", "0..1", "appearance", "skin blue"),
    _reg("hair_r", "0..1", "appearance", "hair red"),
    _reg("hair_g", "0..1", "appearance", "hair green"),
    _reg("hair_b", "0..1", "appearance", "hair blue"),
    _reg("hair_lightness", "0..1", "appearance", "mean of the hair RGB"),
) + tuple(_reg(name, "sd", "shape", f"generator shape coefficient {name}")
          for name in SHAPE_COEFFICIENTS)

METADATA_HEADS = (
    _reg("yaw", "deg", "pose", "faceYaw (IJB-A) / yaw column (CASIA file list)"),
    _binary("gender", "appearance", "gender (IJB-A 0 / 1)"),
    AttributeSpec("skin_tone", CLASSIFICATION, class_values=(1., 2., 3., 4., 5., 6.),
                  unit="bin", group="appearance", description="skinTone 1..6"),
    AttributeSpec("age", CLASSIFICATION, class_values=(0., 1., 2., 3., 4., 5.),
                  unit="group", group="appearance", description="age group code"),
    AttributeSpec("facial_hair", CLASSIFICATION, class_values=(0., 1., 2., 3.),
                  readout_values=(0., 1., 1., 1.), unit="P(any)",
                  group="appearance", description="facialHair 0 none, 1..3 kinds"),
    _binary("indoor", "scene", "indoor (1) / outdoor (0)"),
    _binary("forehead_visible", "occlusion", "visibility column 1"),
    _binary("eyes_visible", "occlusion", "visibility column 2"),
    _binary("nose_mouth_visible", "occlusion", "visibility column 3"),
)

HEAD_SETS = {"synthetic": SYNTHETIC_HEADS, "metadata": METADATA_HEADS}


def head_set(name):
    """The head tuple called ``name`` ('synthetic' or 'metadata')."""
    if name not in HEAD_SETS:
        raise ValueError(f"unknown head set {name!r}; one of {sorted(HEAD_SETS)}")
    return HEAD_SETS[name]


def derived_synthetic_targets(attrs):
    """Adds the derived targets of `SYNTHETIC_HEADS` to a world attribute dict.

    Args:
      attrs: dict name -> [N] as stored in ``attributes/*.npz``.
    Returns: a new dict with ``light_x``, ``light_y`` (the light ramp's
      components; the angle alone is circular and meaningless at zero
      strength), ``hair_lightness``, ``skin_lightness`` and the visibility
      flags that the synthetic protocol derives from the occluder.
    """
    out = {k: np.asarray(v, np.float64) for k, v in attrs.items()}
    if "light_angle" in out and "light_strength" in out:
        out["light_x"] = out["light_strength"] * np.cos(out["light_angle"])
        out["light_y"] = out["light_strength"] * np.sin(out["light_angle"])
    if all(f"hair_{c}" in out for c in "rgb"):
        out["hair_lightness"] = (out["hair_r"] + out["hair_g"] + out["hair_b"]) / 3.0
    if all(f"skin_{c}" in out for c in "rgb"):
        out["skin_lightness"] = (out["skin_r"] + out["skin_g"] + out["skin_b"]) / 3.0
    if "occluder" in out:
        occ = out["occluder"]
        out["forehead_visible"] = np.ones_like(occ)
        out["eyes_visible"] = (occ != 1).astype(np.float64)
        out["nose_mouth_visible"] = (occ != 2).astype(np.float64)
    return out
