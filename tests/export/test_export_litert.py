"""LiteRT export: the .tflite file computes the Keras model's outputs, by name,
for any batch size; the command writes it from a weights file; bad input is
refused in one line."""

import pytest

from interp_fr.export import api, litert
from tests.helpers import export_helpers


@pytest.fixture(scope="module")
def model():
    return export_helpers.small_model()


def test_litert_matches_keras_for_any_batch(model, tmp_path):
    path = litert.export_litert(model, str(tmp_path / "m.tflite"))
    export_helpers.check_matches_keras(litert.LiteRTForward(path), model)


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
