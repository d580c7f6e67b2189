"""ONNX export of an ``InterpFRNet`` (optional extra ``onnx``), and a forward over it.

The ``.onnx`` graph has the SavedModel's signature (`saved_model` module
docstring), with the same names:

    input   sample_input_images  float32 [N, 96, 96, 3], RGB in [-1, 1]
    output  feature              float32 [N, D]
            feature_map          float32 [N, 24, 24, C]  masked k5

``N`` is dynamic unless exported with a fixed batch. The serving function of
the SavedModel export is converted by tf2onnx (opset 17, channels-last kept
at the interface; tf2onnx inserts the transposes), so any ONNX runtime runs
it without TensorFlow::

    import onnxruntime
    session = onnxruntime.InferenceSession("model.onnx")
    feature, feature_map = session.run(None, {"sample_input_images": images})
"""
import os
import tempfile

import numpy as np

from interp_fr.common.atomic_io import atomic_write
from interp_fr.common.errors import InputError
from interp_fr.export import saved_model

SUFFIX = ".onnx"
OPSET = 17
EXTRA_HINT = 'ONNX export needs the "onnx" extra: pip install "interp-fr[onnx]"'


class OnnxError(ValueError, InputError):
    """An ONNX file is missing, unreadable, or lacks the expected input / outputs."""

    def __init__(self, path, problem):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


class MissingExtraError(ImportError, InputError):
    """The optional packages of the ``onnx`` extra are not installed."""


def _require(module):
    try:
        return __import__(module)
    except ImportError:
        raise MissingExtraError(f"{EXTRA_HINT} (no module {module!r})") from None


def export_onnx(model, path, fixed_batch=None, opset=OPSET):
    """Writes ``model`` as an ``.onnx`` file (see the module docstring), atomically.

    Args:
        model: an ``InterpFRNet``.
        path: output file; must end in ``.onnx``.
        fixed_batch: None (dynamic N) or a fixed batch size.
        opset: ONNX operator set.

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    if not path.endswith(SUFFIX):
        raise OnnxError(path, f"an ONNX file must end in {SUFFIX}")
    return write_onnx_function(saved_model._Serving(model, fixed_batch).serve, path, opset)


def write_onnx_function(serve, path, opset=OPSET):
    """Converts a ``tf.function`` with an input signature to ONNX (tf2onnx) and
    writes it to ``path`` atomically; returns ``path``."""
    _require("tf2onnx")
    import tf2onnx
    fd, tmp = tempfile.mkstemp(suffix=SUFFIX)
    os.close(fd)
    try:
        tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                      opset=opset, output_path=tmp)
        with open(tmp, "rb") as f:
            blob = f.read()
    finally:
        os.remove(tmp)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(blob)
    return path


class OnnxForward:
    """An ``.onnx`` export as a batched inference callable (onnxruntime, CPU).

    Calling it with float32 images [b, 96, 96, 3] returns numpy ``feature``
    [b, D] and ``feature_map`` [b, 24, 24, C].
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise OnnxError(self.path, "no such file")
        _require("onnxruntime")
        import onnxruntime
        try:
            self._session = onnxruntime.InferenceSession(
                self.path, providers=["CPUExecutionProvider"])
        except Exception as e:   # onnxruntime raises its own exception types
            raise OnnxError(self.path, f"not an ONNX model ({type(e).__name__})") from None
        inputs = [i.name for i in self._session.get_inputs()]
        outputs = [o.name for o in self._session.get_outputs()]
        wanted = {saved_model.FEATURE_KEY, saved_model.MAP_KEY}
        if inputs != [saved_model.INPUT_KEY] or not wanted <= set(outputs):
            raise OnnxError(self.path, f"expected input {saved_model.INPUT_KEY!r} and "
                            f"outputs {sorted(wanted)}, found {inputs} -> {outputs}")

    def __call__(self, images):
        images = np.ascontiguousarray(images, np.float32)
        names = [saved_model.FEATURE_KEY, saved_model.MAP_KEY]
        feature, feature_map = self._session.run(names, {saved_model.INPUT_KEY: images})
        return {saved_model.FEATURE_KEY: feature, saved_model.MAP_KEY: feature_map}
