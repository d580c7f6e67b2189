"""ONNX export: the .onnx file computes the Keras model's outputs, by name, for any
batch size (onnxruntime); the command writes it from a weights file; bad input
is refused in one line. Needs the ``onnx`` extra (CI installs it)."""

import numpy as np
import pytest

from interp_fr.model import InterpFRNet
from interp_fr.export import api, onnx_export
from tests import export_helpers
from tests.extract_helpers import randomise


@pytest.fixture(scope="module")
def model():
    m = InterpFRNet(df_dim=4, gfc_dim=16, dfc_dim=12, n_subjects=5)
    m.build((None, 96, 96, 3))
    randomise(m, 0)
    return m


def test_onnx_matches_keras_for_any_batch(model, tmp_path):
    path = onnx_export.export_onnx(model, str(tmp_path / "m.onnx"))
    forward = onnx_export.OnnxForward(path)
    rng = np.random.default_rng(1)
    for batch in (3, 1, 5):
        x = rng.uniform(-1, 1, (batch, 96, 96, 3)).astype(np.float32)
        want = model(x, training=False)
        got = forward(x)
        assert got["feature"].shape == (batch, 12)
        assert got["feature_map"].shape == (batch, 24, 24, 12)
        scale = float(np.abs(want["feature"]).max())
        assert np.abs(got["feature"] - want["feature"].numpy()).max() <= 1e-5 * scale
        np.testing.assert_array_equal(got["feature_map"] != 0,
                                      want["feature_map"].numpy() != 0)


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
