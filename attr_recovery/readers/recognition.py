"""One interface for every face recognition model that attribute recovery decodes.

``RecognitionModel(images) -> features``: images [N, H, W, 3] in [-1, 1] of any
size, features [N, d] L2-normalised. It wraps

- the ArcFace backbones of the original (``IRSEBackbone`` "r50",
  ``MobileFaceNet`` "mb"), which resize to 112 px themselves;
- our ``InterpFRNet`` (its ``feature`` output, the k6 average, L2-normalised;
  images resized to 96 px);
- any Keras model or callable returning [N, d] (or a dict with a ``feature``
  or ``embedding`` entry), with an optional fixed input size.

The wrapped model is always run in inference mode (``training=False``) and is
never trained here; gradients flow through it to its input, which is what the
identity loss of the decoder training needs.

Resizing uses bilinear interpolation with align_corners=True, the original's
``F.interpolate`` convention for its recognition models.
"""
import os

import keras
import numpy as np
import tensorflow as tf

from attr_recovery.nets.backbones import IRSEBackbone, MobileFaceNet, resize_align_corners
from attr_recovery.conversion.convert_checkpoint import load_converted
from interp_fr.model import IMAGE_SIZE, InterpFRNet

# x / sqrt(max(||x||^2, eps)): unlike the ArcFace head's epsilon-free norm, an
# all-zero feature (e.g. a dead InterpFRNet map) must not turn training into NaN.
NORM_EPSILON = 1e-12

SPEC_KINDS = ("interp_fr", "arcface", "keras", "reference")


def l2_normalize(features):
    """[N, d] -> [N, d] rows scaled to unit length (epsilon-guarded)."""
    return tf.math.l2_normalize(features, axis=-1, epsilon=NORM_EPSILON)


def _select_output(out):
    if isinstance(out, dict):
        for key in ("feature", "embedding"):
            if key in out:
                return out[key]
        raise ValueError(f"recognition model returned a dict without a 'feature' or "
                         f"'embedding' entry (keys: {sorted(out)})")
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


class RecognitionModel:
    """A frozen face recognition model seen as ``images -> unit features``.

    Args:
      fn: callable images [N, S, S, 3] -> [N, d] (or a dict / list, see
        module docstring).
      input_size: the side length ``fn`` expects; images of another size are
        resized (bilinear, align_corners=True). None: passed as they are.
      feature_dim: d; None: found by one call on a blank image.
      name: shown in logs and stored in training configs.
      model: the underlying Keras model when there is one (for its variables).

    Call: images [N, H, W, 3] float in [-1, 1] -> [N, d] float32, unit rows.
    """

    def __init__(self, fn, input_size=None, feature_dim=None, name="recognition",
                 model=None):
        self.fn = fn
        self.input_size = None if input_size is None else int(input_size)
        self.name = name
        self.model = model
        self._feature_dim = None if feature_dim is None else int(feature_dim)

    @property
    def feature_dim(self):
        """d, the representation size."""
        if self._feature_dim is None:
            side = self.input_size or 112
            self._feature_dim = int(self(np.zeros((1, side, side, 3), np.float32))
                                    .shape[-1])
        return self._feature_dim

    def __call__(self, images):
        x = tf.convert_to_tensor(images, tf.float32)
        if self.input_size is not None:
            x = resize_align_corners(x, (self.input_size, self.input_size))
        return l2_normalize(tf.cast(_select_output(self.fn(x)), tf.float32))

    def features(self, images, batch_size=64):
        """Features of a numpy batch, computed in chunks: [N, d] float32 numpy."""
        images = np.asarray(images)
        out = [np.asarray(self(images[i:i + batch_size]))
               for i in range(0, len(images), batch_size)]
        if not out:
            return np.zeros((0, self.feature_dim), np.float32)
        return np.concatenate(out, axis=0)


def _interp_fr_forward(model):
    def fn(images):
        return model(images, training=False)["feature"]
    return fn


def _training_false(model):
    def fn(images):
        try:
            return model(images, training=False)
        except TypeError:
            # Plain callables and some Keras models take no training flag.
            return model(images)
    return fn


def as_recognition_model(obj, input_size=None, name=None):
    """Wraps ``obj`` in a `RecognitionModel` (returned unchanged if it is one).

    Args:
      obj: a `RecognitionModel`, an ``IRSEBackbone`` / ``MobileFaceNet``, an
        ``interp_fr.model.InterpFRNet``, a Keras model or any callable.
      input_size: overrides the input size (default: 96 for InterpFRNet, none
        for the backbones, which resize themselves, the static input size of a
        functional Keras model, none for other callables).
      name: label for logs.
    """
    if isinstance(obj, RecognitionModel):
        return obj
    if isinstance(obj, InterpFRNet):
        return RecognitionModel(_interp_fr_forward(obj), input_size or IMAGE_SIZE,
                                feature_dim=obj.dfc_dim if obj.has_hypercolumn
                                else obj.gfc_dim,
                                name=name or f"interp_fr_{obj.variant}", model=obj)
    if isinstance(obj, (IRSEBackbone, MobileFaceNet)):
        kind = "r50" if isinstance(obj, IRSEBackbone) else "mb"
        return RecognitionModel(_training_false(obj), input_size,
                                feature_dim=obj.embedding_size,
                                name=name or f"arcface_{kind}", model=obj)
    if isinstance(obj, keras.Model):
        size = input_size
        if size is None:
            try:
                shape = obj.input_shape
                if isinstance(shape, tuple) and len(shape) == 4 and shape[1]:
                    size = int(shape[1])
            except (AttributeError, ValueError):
                size = None
        return RecognitionModel(_training_false(obj), size,
                                name=name or obj.name, model=obj)
    if callable(obj):
        return RecognitionModel(obj, input_size, name=name or "callable")
    raise TypeError(f"cannot use a {type(obj).__name__} as a recognition model")


def load_interp_fr(path, variant="full"):
    """The trained InterpFRNet at ``path`` (a face-trainer folder, its
    checkpoint folder with one run, or any file the project's loader reads:
    `interp_fr.model_loading.load_keras_model`). Widths and subject count are
    read off the stored weights; ``variant`` other than "full" (e.g.
    "hypercolumn_no_mask") is checked against them. Returns the Keras model."""
    from interp_fr import model_loading
    from interp_fr.model import VARIANT_FULL
    overrides = {} if variant in (None, VARIANT_FULL) else {"variant": variant}
    return model_loading.load_keras_model(path, **overrides)[0]


def load_recognition_model(spec, variant="full", input_size=None):
    """Builds a `RecognitionModel` from a text spec (command lines, saved configs).

    Specs:
      ``interp_fr:DIR``  a trained InterpFRNet folder of the face trainer
                        (``variant`` names its variant);
      ``arcface:FILE``  a converted backbone ``*.weights.h5`` (with its
                        ``*.config.json``) from ``attr-recovery-convert-checkpoint``;
      ``keras:FILE``    a saved Keras model (``.keras``), e.g. a functional model
                        whose output is the representation;
      ``reference:NAME`` a shipped reference InterpFRNet (``base``, ``sad_only``,
                        ``full``, ``colour_jitter/full``;
                        ``interp_fr.reference_models.shipped``) or backbone
                        (``mobilefacenet``;
                        ``attr_recovery.readers.reference_recognisers``).
    """
    kind, sep, path = str(spec).partition(":")
    if not sep or kind not in SPEC_KINDS or not path:
        raise ValueError(f"recognition spec must be one of "
                         f"{', '.join(k + ':PATH' for k in SPEC_KINDS)}; got {spec!r}")
    if kind == "reference":
        from attr_recovery.readers import reference_recognisers
        from interp_fr import reference_models
        try:
            if path in reference_recognisers.RECOGNISERS:
                model, _ = reference_recognisers.load_reference_recogniser(path)
            else:
                model, _ = reference_models.load_shipped(path)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"recognition model {spec!r}: {e}") from None
        return as_recognition_model(model, input_size, name=spec)
    if not os.path.exists(path):
        raise FileNotFoundError(f"recognition model {spec!r}: {path} does not exist")
    if kind == "interp_fr":
        model = load_interp_fr(path, variant)
        return as_recognition_model(model, input_size, name=spec)
    if kind == "arcface":
        converted_kind, model = load_converted(path)
        if converted_kind not in ("arcface_r50", "arcface_mb"):
            raise ValueError(f"{path} holds a converted {converted_kind!r}, not an "
                             "ArcFace backbone")
        return as_recognition_model(model, input_size, name=spec)
    model = keras.models.load_model(path, compile=False)
    return as_recognition_model(model, input_size, name=spec)
