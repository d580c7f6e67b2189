"""LiteRT export: the .tflite file computes the Keras model's outputs, by name,
for any batch size; the command writes it from a weights file; bad input is
refused in one line."""

import numpy as np
import pytest

from interp_fr.model import InterpFRNet
from interp_fr.export import api, litert
from tests import export_helpers
from tests.extract_helpers import randomise


@pytest.fixture(scope="module")
def model():
    m = InterpFRNet(df_dim=4, gfc_dim=16, dfc_dim=12, n_subjects=5)
    m.build((None, 96, 96, 3))
    randomise(m, 0)
    return m


def test_litert_matches_keras_for_any_batch(model, tmp_path):
    path = litert.export_litert(model, str(tmp_path / "m.tflite"))
    forward = litert.LiteRTForward(path)
    rng = np.random.default_rng(1)
    for batch in (3, 1, 5):
        x = rng.uniform(-1, 1, (batch, 96, 96, 3)).astype(np.float32)
        want = model(x, training=False)
        got = forward(x)
        assert got["feature"].shape == (batch, 12)
        assert got["feature_map"].shape == (batch, 24, 24, 12)
        scale = float(np.abs(want["feature"]).max())
        assert np.abs(got["feature"] - want["feature"].numpy()).max() <= 1e-5 * scale
        # The peak mask keeps the same positions.
        np.testing.assert_array_equal(got["feature_map"] != 0,
                                      want["feature_map"].numpy() != 0)


def test_export_command_from_weights_file(model, tmp_path):
    export_helpers.check_command_from_weights_file(
        "tools.freeze.export_litert", ".tflite", "LiteRT model", litert.LiteRTForward,
        model, tmp_path)
    # Default output: model.tflite beside the weights.
    assert api.DEFAULT_LITERT_FILE == "model.tflite"


def test_bad_input_is_one_line(model, tmp_path):
    with pytest.raises(litert.LiteRTError, match="must end in .tflite"):
        litert.export_litert(model, str(tmp_path / "m.bin"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(litert.LiteRTError, match="junk.tflite"):
        litert.LiteRTForward(str(junk))
    export_helpers.check_missing_model_is_one_line("tools.freeze.export_litert",
                                                   ".tflite", tmp_path)
