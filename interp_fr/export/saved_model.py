"""SavedModel export of an ``InterpFRNet`` with a documented serving signature.

Signature ``serving_default`` (the only one):

    input   sample_input_images  float32 [N, 96, 96, 3], RGB in [-1, 1]
                                 (uint8 / 127.5 - 1, as the original)
    output  feature              float32 [N, D]  the face feature k6
            feature_map          float32 [N, 24, 24, C]  masked k5 (the
                                 original frozen graph's Mul_2)

``N`` is dynamic unless exported with a fixed batch.  The folder loads with
plain ``tf.saved_model.load`` without this package::

    m = tf.saved_model.load(folder)
    out = m.signatures["serving_default"](sample_input_images=images)
    out["feature"], out["feature_map"]

The loaded object also has ``m.serve(images)`` (same outputs) and
``m.tf1_variables``: the weights keyed by TF1 name with "/" written "__"
(``d_k01_conv__w``), so the model can be rebuilt in Keras
(`model_from_saved_model`).
"""
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from interp_fr.common.errors import InputError
from interp_fr.model import IMAGE_CHANNELS, IMAGE_SIZE, InterpFRNet

SIGNATURE_KEY = "serving_default"
INPUT_KEY = "sample_input_images"
FEATURE_KEY = "feature"
MAP_KEY = "feature_map"
SAVED_MODEL_FILE = "saved_model.pb"


class SavedModelError(ValueError, InputError):
    """A SavedModel folder lacks the expected signature, input or outputs."""

    def __init__(self, path, problem):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


def _tracking_name(tf1_name):
    return tf1_name.replace("/", "__")


class _Serving(tf.Module):
    """The exported object: the model's variables and its serving function."""

    def __init__(self, model, fixed_batch):
        super().__init__(name="interp_fr_serving")
        self.tf1_variables = {_tracking_name(n): v.value
                              for n, v in model.tf1_variable_map().items()}
        self._model = model
        self.model_config = {k: tf.Variable(v, trainable=False, name=k)
                             for k, v in (("df_dim", model.df_dim),
                                          ("gfc_dim", model.gfc_dim),
                                          ("dfc_dim", model.dfc_dim),
                                          ("n_subjects", model.n_subjects))}
        self.variant = tf.Variable(model.variant, trainable=False, name="variant")
        spec = tf.TensorSpec([fixed_batch, IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS],
                             tf.float32, name=INPUT_KEY)
        self.serve = tf.function(self._serve, input_signature=[spec],
                                 autograph=False)

    def _serve(self, sample_input_images):
        out = self._model(sample_input_images, training=False)
        return {FEATURE_KEY: out["feature"], MAP_KEY: out["feature_map"]}


def export_saved_model(model, directory, fixed_batch=None):
    """Writes ``model`` as a SavedModel folder (see the module docstring).

    The folder is written under a temporary name beside ``directory`` and
    moved into place, so a reader never sees a half-written export; an
    existing folder is replaced.

    Args:
        model: an ``InterpFRNet``.
        directory: output folder.
        fixed_batch: None (dynamic N) or a fixed batch size.

    Returns:
        ``directory``.
    """
    directory = os.path.abspath(os.fspath(directory))
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    module = _Serving(model, fixed_batch)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".",
                           dir=parent)
    try:
        tf.saved_model.save(module, tmp,
                            signatures={SIGNATURE_KEY: module.serve.get_concrete_function()})
        old = None
        if os.path.exists(directory):
            old = tmp + ".old"
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def is_saved_model(path):
    """True for a folder holding ``saved_model.pb``."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


class SavedModelForward:
    """A SavedModel's signature as a batched inference callable.

    Args:
        path: the SavedModel folder.
        signature: signature key.
        input_key: input name (default: the signature's only input).
        feature_key, map_key: output names; ``map_key`` None or "" to skip.

    Calling it with float32 images [b, 96, 96, 3] returns numpy ``feature``
    [b, D] and ``feature_map`` [b, H, W, C].
    """

    def __init__(self, path, signature=SIGNATURE_KEY, input_key=None,
                 feature_key=FEATURE_KEY, map_key=MAP_KEY):
        self.path = os.fspath(path)
        if not is_saved_model(self.path):
            raise SavedModelError(self.path, f"not a SavedModel folder (no "
                                  f"{SAVED_MODEL_FILE})")
        self.loaded = tf.saved_model.load(self.path)
        sigs = dict(self.loaded.signatures)
        if signature not in sigs:
            raise SavedModelError(self.path, f"no signature {signature!r}; it "
                                  f"has {sorted(sigs)}")
        fn = sigs[signature]
        inputs = fn.structured_input_signature[1]
        outputs = fn.structured_outputs
        if input_key is None:
            if len(inputs) != 1:
                raise SavedModelError(self.path, f"signature {signature!r} has "
                                      f"inputs {sorted(inputs)}; say which one")
            input_key = next(iter(inputs))
        if input_key not in inputs:
            raise SavedModelError(self.path, f"signature {signature!r} has no "
                                  f"input {input_key!r}; inputs: {sorted(inputs)}")
        keys = {"feature": feature_key}
        if map_key:
            keys["feature_map"] = map_key
        for what, key in keys.items():
            if key not in outputs:
                raise SavedModelError(self.path, f"signature {signature!r} has no "
                                      f"output {key!r} ({what}); outputs: "
                                      f"{sorted(outputs)}")
        shape = inputs[input_key].shape
        self.fixed_batch = shape[0] if shape.rank else None
        self._fn, self._input_key, self._keys = fn, input_key, keys

    def __call__(self, images):
        images = tf.convert_to_tensor(np.asarray(images, np.float32))
        out = self._fn(**{self._input_key: images})
        return {k: np.asarray(out[key]) for k, key in self._keys.items()}


def model_from_saved_model(path, loaded=None):
    """Rebuilds an ``InterpFRNet`` from a SavedModel written by
    `export_saved_model` (its ``tf1_variables`` and stored dims).

    Args:
        path: the SavedModel folder.
        loaded: the object ``tf.saved_model.load(path)`` returned, if at hand.

    Raises:
        SavedModelError: the SavedModel was not written by this module.
    """
    path = os.fspath(path)
    if loaded is None:
        loaded = tf.saved_model.load(path)
    if not hasattr(loaded, "tf1_variables") or not hasattr(loaded, "model_config"):
        raise SavedModelError(path, "has no tf1_variables / model_config: not "
                              "exported by interp-fr-export-savedmodel, so its "
                              "weights cannot be mapped onto the Keras model")
    config = {k: int(v.numpy()) for k, v in loaded.model_config.items()}
    config["variant"] = loaded.variant.numpy().decode()
    model = InterpFRNet(**config)
    stored = loaded.tf1_variables
    for name, var in model.tf1_variable_map().items():
        var.assign(stored[_tracking_name(name)].numpy())
    return model
