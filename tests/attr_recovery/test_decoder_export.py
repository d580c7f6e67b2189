"""The decoding chain exported (SavedModel, LiteRT, ONNX) computes the decoder's
images for any batch; the command writes each format from a trainer folder."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from attr_recovery.nets import decoder as decoder_lib
from attr_recovery.export import decoder_export as de
from attr_recovery.nets.decoder import FeatureDecoder, LatentTransformer
from attr_recovery.nets.stylegan2 import Generator
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def decoder():
    tf.keras.utils.set_random_seed(3)
    generator = Generator(16, 16, 2, 1, channels={4: 16, 8: 8, 16: 8}, name="generator")
    # Non-zero noise weights, so that the stored noise maps matter.
    for v in generator.variables:
        if v.path.endswith("noise/weight"):
            v.assign(tf.fill(v.shape, 0.3))
    return FeatureDecoder(LatentTransformer(12, generator.n_latent, 4, 16, name="t"),
                          generator)


def _z(batch, seed=0):
    z = np.random.default_rng(seed).normal(size=(batch, 12)).astype(np.float32)
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_every_format_reproduces_the_decoder(decoder, tmp_path):
    saved = de.export_decoder_saved_model(decoder, str(tmp_path / "sm"))
    lite = de.export_decoder_litert(decoder, str(tmp_path / "d.tflite"))
    onnx_path = de.export_decoder_onnx(decoder, str(tmp_path / "d.onnx"))
    serve = tf.saved_model.load(saved).signatures[de.SIGNATURE_KEY]
    runner = tf.lite.Interpreter(model_path=lite).get_signature_runner(de.SIGNATURE_KEY)
    import onnxruntime
    session = onnxruntime.InferenceSession(onnx_path)
    for batch in (2, 1, 3):
        z = _z(batch, batch)
        want = de.reference_images(decoder, z)
        assert want.shape == (batch, 16, 16, 3)
        got = {"saved_model": serve(representation=tf.constant(z))[de.OUTPUT_KEY].numpy(),
               "litert": runner(representation=z)[de.OUTPUT_KEY],
               "onnx": session.run([de.OUTPUT_KEY], {de.INPUT_KEY: z})[0]}
        for fmt, images in got.items():
            assert np.abs(images - want).max() <= 1e-5, fmt
    # The stored noise is what the exports use: zero noise decodes differently.
    z = _z(2)
    assert np.abs(decoder.decode(z, noise_mode="zero") - de.reference_images(decoder, z)
                  ).max() > 1e-3


def test_command_exports_a_trainer_folder(decoder, tmp_path):
    folder = tmp_path / "dec"
    ckpt = folder / decoder_lib.CHECKPOINT_SUBDIR
    ckpt.mkdir(parents=True)
    tf.train.Checkpoint(model=decoder.variables_for_checkpoint()).save(str(ckpt / "ckpt"))
    import json
    (folder / decoder_lib.CONFIG_FILE).write_text(json.dumps(
        decoder_lib.decoder_description(decoder)))
    out = str(tmp_path / "d.onnx")
    proc = subprocess.run([sys.executable, "-m", "attr_recovery.cli.export_decoder",
                           "--decoder_dir", str(folder), "--output", out],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wrote onnx" in proc.stdout
    import onnxruntime
    z = _z(2)
    np.testing.assert_allclose(
        onnxruntime.InferenceSession(out).run(None, {de.INPUT_KEY: z})[0],
        de.reference_images(decoder, z), atol=1e-5)
    with pytest.raises(ValueError, match="must end in .onnx"):
        de.export_decoder_onnx(decoder, str(tmp_path / "d.bin"))
