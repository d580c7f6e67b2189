"""ONNX export: the .onnx file computes the Keras model's outputs, by name, for any
batch size (onnxruntime); the command writes it from a weights file; bad input
is refused in one line. Needs the ``onnx`` extra (CI installs it)."""

import pytest

from interp_fr.export import api, onnx_export
from tests.helpers import export_helpers


@pytest.fixture(scope="module")
def model():
    return export_helpers.small_model()


def test_onnx_matches_keras_for_any_batch(model, tmp_path):
    path = onnx_export.export_onnx(model, str(tmp_path / "m.onnx"))
    export_helpers.check_matches_keras(onnx_export.OnnxForward(path), model)


def test_fixed_batch_is_fixed(model, tmp_path):
    import onnxruntime
    path = onnx_export.export_onnx(model, str(tmp_path / "f.onnx"), fixed_batch=2)
    shape = onnxruntime.InferenceSession(path).get_inputs()[0].shape
    assert shape == [2, 96, 96, 3]


def test_export_command_from_weights_file(model, tmp_path):
    export_helpers.check_command_from_weights_file(
        "tools.freeze.export_onnx", ".onnx", "ONNX model", onnx_export.OnnxForward,
        model, tmp_path)
    assert api.DEFAULT_ONNX_FILE == "model.onnx"


def test_bad_input_is_one_line(model, tmp_path):
    with pytest.raises(onnx_export.OnnxError, match="must end in .onnx"):
        onnx_export.export_onnx(model, str(tmp_path / "m.bin"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf")
    with pytest.raises(onnx_export.OnnxError, match="junk.onnx: not an ONNX model"):
        onnx_export.OnnxForward(str(junk))
    export_helpers.check_missing_model_is_one_line("tools.freeze.export_onnx", ".onnx",
                                                   tmp_path)
