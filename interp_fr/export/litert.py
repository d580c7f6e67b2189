"""LiteRT (TensorFlow Lite) export of an ``InterpFRNet``, and a forward over it.

The ``.tflite`` file holds one signature, ``serving_default``, the same as the
SavedModel's (`saved_model` module docstring):

    input   sample_input_images  float32 [N, 96, 96, 3], RGB in [-1, 1]
    output  feature              float32 [N, D]
            feature_map          float32 [N, 24, 24, C]  masked k5

with a dynamic batch unless exported with a fixed one. The model is converted
from its SavedModel (which freezes the weights into the file) with LiteRT's
builtin operators only, so any LiteRT runtime runs it, with or without
TensorFlow:

    from ai_edge_litert.interpreter import Interpreter   # or tf.lite.Interpreter
    run = Interpreter(model_path="model.tflite").get_signature_runner()
    out = run(sample_input_images=images)      # out["feature"], out["feature_map"]
"""
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from interp_fr.common.atomic_io import atomic_write
from interp_fr.common.errors import InputError
from interp_fr.export import saved_model

SUFFIX = ".tflite"


class LiteRTError(ValueError, InputError):
    """A LiteRT file is missing, unreadable, or lacks the expected signature."""

    def __init__(self, path, problem):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


def export_litert(model, path, fixed_batch=None):
    """Writes ``model`` as a ``.tflite`` file (see the module docstring), atomically.

    Args:
        model: an ``InterpFRNet``.
        path: output file; must end in ``.tflite``.
        fixed_batch: None (dynamic N) or a fixed batch size.

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    if not path.endswith(SUFFIX):
        raise LiteRTError(path, f"a LiteRT file must end in {SUFFIX}")
    return write_litert(
        lambda folder: saved_model.export_saved_model(model, folder, fixed_batch=fixed_batch),
        path)


def write_litert(export_saved_model, path, signature_key=saved_model.SIGNATURE_KEY):
    """Converts a SavedModel, written by ``export_saved_model(folder)`` into a
    temporary folder, to a ``.tflite`` file at ``path`` (builtin operators only),
    atomically; returns ``path``. The SavedModel route freezes the variables."""
    tmp = tempfile.mkdtemp(prefix="interp_fr_litert_")
    try:
        folder = export_saved_model(os.path.join(tmp, "saved_model"))
        converter = tf.lite.TFLiteConverter.from_saved_model(
            folder, signature_keys=[signature_key])
        blob = converter.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(blob)
    return path


def _interpreter(path):
    """LiteRT's own interpreter when installed (the ``litert`` extra), else the
    one TensorFlow still carries (its deprecation notice silenced)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter(model_path=path)
    except ImportError:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=path)


class LiteRTForward:
    """A ``.tflite`` export as a batched inference callable.

    Calling it with float32 images [b, 96, 96, 3] returns numpy ``feature``
    [b, D] and ``feature_map`` [b, 24, 24, C].
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise LiteRTError(self.path, "no such file")
        try:
            interpreter = _interpreter(self.path)
            self._run = interpreter.get_signature_runner(saved_model.SIGNATURE_KEY)
        except (ValueError, RuntimeError) as e:
            raise LiteRTError(self.path, f"not a LiteRT model with a "
                              f"{saved_model.SIGNATURE_KEY!r} signature ({e})") from None

    def __call__(self, images):
        images = np.ascontiguousarray(images, np.float32)
        out = self._run(**{saved_model.INPUT_KEY: images})
        return {saved_model.FEATURE_KEY: out[saved_model.FEATURE_KEY],
                saved_model.MAP_KEY: out[saved_model.MAP_KEY]}
