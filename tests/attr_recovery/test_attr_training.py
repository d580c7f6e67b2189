"""Decoder training: identity proof on the synthetic world, exact resume, CLI, modes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from attr_recovery.nets import decoder as decoder_lib
from attr_recovery.stages import decoding_stage
from attr_recovery.readers import recognition
from attr_recovery.trainers import training
from interp_fr import training as fr_training
from interp_fr.data import synthetic_world
from interp_fr.model import InterpFRNet
from tests.helpers import learning
from tests.conftest import REPO_ROOT

# The decoding test's budget and rank-1 threshold (spread over seeds and kernel
# sets: experiments/results/learning_test_spread/).
DECODER_STEPS = 160
RANK1_ABOVE = 0.35
TINY = dict(size=8, style_dim=16, channels={4: 16, 8: 8}, transformer_n_mlp=4,
            batch_size=4, progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("attr_world"))
    synthetic_world.build_world(out, synthetic_world.WorldConfig(
        train_subjects=8, train_images_per_subject=12, test_subjects=3,
        test_images_min=3, test_images_max=3, num_splits=1, seed=learning.seed(5)))
    return out


@pytest.fixture(scope="module")
def tiny_recognizer(tmp_path_factory):
    """A saved untrained Keras model whose 24-d output differs from the style width."""
    path = str(tmp_path_factory.mktemp("rec") / "r.keras")
    tf.keras.utils.set_random_seed(3)
    decoding_stage.build_small_recognizer(input_size=16, width=4, feature_dim=24).save(path)
    return path


def _checkpoint_values(path):
    return {name: tf.train.load_variable(path, name)
            for name, _ in tf.train.list_variables(path)
            if name.startswith(("model/", "optimizer/", "d_optimizer/", "step"))}


def test_decoding_stage_recovers_identity(world, tmp_path):
    """The main-job stage: decoded faces are recognised as their input's identity."""
    out = str(tmp_path / "stage")
    steps = learning.steps(DECODER_STEPS)
    figures = decoding_stage.run_decoding_stage(world, None, out, seconds_budget=300,
                                            max_steps=steps, recognizer_steps=120,
                                            eval_images=48, num_eigen=4,
                                            seed=learning.seed(0))
    assert figures["training steps"] == steps
    # Identity survives decoding: a decoded face's representation is far closer
    # to its own input's than to other inputs', and finds its own subject; before
    # training (the stage's own control) the same figures show no identity.
    learning.check("attr_training.decoding_stage", {
        "recogniser accuracy": figures["small recogniser training accuracy"],
        "matched - random cosine": figures["matched cosine"]
        - figures["random-pair cosine"],
        "matched - different-subject cosine": figures["matched cosine"]
        - figures["different-subject cosine"],
        "rank-1 decoded -> input": figures["rank-1 decoded -> input"],
        "stage's untrained control: matched - random":
            figures["untrained: matched minus random"]}, {
        "recogniser accuracy": (">", 0.45),
        "matched - random cosine": (">", 0.4),
        "matched - different-subject cosine": (">", 0.5),
        "rank-1 decoded -> input": (">", RANK1_ABOVE),
        "stage's untrained control: matched - random": ("<", 0.2)},
        uncontrolled=("recogniser accuracy", "stage's untrained control: matched - random"))
    assert "unseen subjects: matched cosine" in figures
    for name in (decoding_stage.GRID_FILE, decoding_stage.EIGEN_FILE):
        with Image.open(os.path.join(out, name)) as img:
            assert img.mode == "RGB" and img.format == "PNG"
    with Image.open(os.path.join(out, decoding_stage.GRID_FILE)) as img:
        # Input row, decoded row, the identity's canonical portrait.
        assert img.size[1] == 3 * 96 + 4 * 2
    assert os.path.exists(os.path.join(out, "decoder", decoder_lib.CONFIG_FILE))
    # 48 images, four of a subject at a time over 8 subjects: 8 images of
    # subjects 0-3 and 4 of subjects 4-7.
    seen = figures["reconstruction attack, seen subjects"]
    assert seen["genuine pairs"] == 4 * 28 + 4 * 6
    assert seen["type-II pairs"] == 4 * 8 * 7 + 4 * 4 * 3


def test_evaluation_images_balanced_and_grouped():
    class Source:
        subject_ids = np.repeat(np.arange(5), 6)[np.random.default_rng(0).permutation(30)]

        def __len__(self):
            return 30
    source = Source()
    one = decoding_stage._evaluation_images(source, 5)
    assert sorted(source.subject_ids[one]) == [0, 1, 2, 3, 4]
    four = decoding_stage._evaluation_images(source, 12, per_subject=4)
    assert np.all(np.diff(four) > 0)
    assert sorted(np.bincount(source.subject_ids[four], minlength=5).tolist()) == [
        0, 0, 4, 4, 4]
    assert np.array_equal(four, decoding_stage._evaluation_images(source, 12, per_subject=4))


def test_interp_fr_wrapper_any_size_and_gradient():
    model = InterpFRNet(df_dim=4, gfc_dim=16, dfc_dim=12, n_subjects=5)
    rec = recognition.as_recognition_model(model)
    assert rec.input_size == 96 and rec.feature_dim == 12
    x = tf.Variable(tf.random.uniform([3, 32, 32, 3], -1, 1, seed=1))
    with tf.GradientTape() as tape:
        f = rec(x)
        loss = tf.reduce_sum(f[:, 0])
    np.testing.assert_allclose(np.linalg.norm(f.numpy(), axis=1), 1.0, rtol=1e-5)
    grad = tape.gradient(loss, x)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0
    expected = model(recognition.resize_align_corners(x, (96, 96)))["feature"].numpy()
    np.testing.assert_allclose(f.numpy(), expected / np.linalg.norm(
        expected, axis=1, keepdims=True), atol=1e-5)


def test_interp_fr_spec_loads_a_face_trainer_folder(tmp_path):
    model = InterpFRNet(df_dim=4, gfc_dim=16, dfc_dim=12, n_subjects=5)
    model.build((None, 96, 96, 3))
    model_dir = tmp_path / "SYN_16_96_32_16_4_12"
    tf.train.Checkpoint(variables=fr_training.resume_variables(model)).save(
        str(model_dir / fr_training.RESUME_SUBDIR / "ckpt"))
    rec = recognition.load_recognition_model(f"interp_fr:{model_dir}")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    expected = model(x)["feature"].numpy()
    np.testing.assert_allclose(rec(x).numpy(), expected / np.linalg.norm(
        expected, axis=1, keepdims=True), atol=1e-5)
    # The checkpoint folder holding that one run loads the same model; a folder
    # with no model is refused by the project's loader, naming what it found.
    parent = recognition.load_recognition_model(f"interp_fr:{tmp_path}")
    np.testing.assert_allclose(parent(x).numpy(), rec(x).numpy(), atol=1e-6)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no model here"):
        recognition.load_recognition_model(f"interp_fr:{empty}")


def test_latent_transformer_input_projection():
    same = decoder_lib.LatentTransformer(16, n_latents=4, n_mlp=4, dim=16)
    other = decoder_lib.LatentTransformer(24, n_latents=4, n_mlp=4, dim=16)
    assert same.input_proj is None and other.input_proj is not None
    other.set_mean_latent(np.arange(16, dtype=np.float32))
    w = other(np.eye(24, dtype=np.float32)[:2]).numpy()
    assert w.shape == (2, 4, 16)
    delta = other(np.eye(24, dtype=np.float32)[:2], add_mean=False).numpy()
    np.testing.assert_allclose(w - delta, np.tile(np.arange(16.0), (2, 4, 1)), atol=1e-6)


def test_latent_discriminator_has_the_original_layout():
    disc = training.LatentDiscriminator(14, 512)
    shapes = [tuple(v.shape) for v in disc.trainable_variables if v.path.endswith("weight")]
    assert shapes == [(14 * 512, 512), (512, 256), (256, 128), (128, 64), (64, 1)]
    assert disc(tf.zeros([2, 14, 512])).shape == (2, 1)


def _train_cli(world, out, rec_path, steps, extra=()):
    cmd = [sys.executable, "-m", "attr_recovery.cli.train",
           f"--data_dir={os.path.join(world, 'DATA')}", f"--out_dir={out}",
           f"--recognition=keras:{rec_path}", f"--max_steps={steps}", "--size=8",
           "--style_dim=16", "--channels=4:16,8:8", "--transformer_n_mlp=4",
           "--batch_size=4", "--crop=random", "--w_adv=0.5", "--save_every_steps=100",
           "--noprogress", "--notensorboard", "--log_every=1", *extra]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    res = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_cli_resume_continues_exactly(world, tiny_recognizer, tmp_path):
    """3 steps, stop, resume to 6 (command line) == 6 steps in one go (library)."""
    config = training.DecoderTrainConfig(
        data_dir=os.path.join(world, "DATA"), out_dir=str(tmp_path / "straight"),
        max_steps=6, crop="random", w_adv=0.5, save_every_steps=100, **TINY)
    rec = recognition.load_recognition_model(f"keras:{tiny_recognizer}")
    trainer = training.DecoderTrainer(config, rec, log=lambda _: None)
    trainer.fit()
    straight = _checkpoint_values(trainer.manager.latest_checkpoint)

    out = str(tmp_path / "resumed")
    first = _train_cli(world, out, tiny_recognizer, 3)
    assert "step      3/3" in first
    second = _train_cli(world, out, tiny_recognizer, 6)
    assert "Resumed from" in second and "step      4/6" in second
    resumed = _checkpoint_values(tf.train.latest_checkpoint(os.path.join(out, "checkpoints")))
    assert set(resumed) == set(straight)
    assert any(k.startswith("d_optimizer/") for k in straight)
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    with open(os.path.join(out, decoder_lib.CONFIG_FILE), encoding="utf-8") as f:
        desc = json.load(f)
    assert desc["recognition"] == f"keras:{tiny_recognizer}"
    assert desc["transformer"]["feature_dim"] == 24
    steps = [json.loads(line)["step"] for line in open(os.path.join(out, training.LOG_FILE))]
    assert steps == [1, 2, 3, 4, 5, 6]

    # The folder loads as a decoder that decodes like the trainer's own.
    decoder, _, _ = decoder_lib.load_trained_decoder(out)
    z = np.random.default_rng(0).standard_normal((3, 24)).astype(np.float32)
    np.testing.assert_array_equal(decoder.decode(z, seed=4), trainer.decoder.decode(z, seed=4))

    # Transformer mode on the frozen decoder of that folder, with the latent
    # discriminator and a lazy identity loss: only the transformer (and the
    # discriminator) change.
    cfg_a = training.DecoderTrainConfig(
        data_dir=os.path.join(world, "DATA"), out_dir=str(tmp_path / "mode_a"),
        mode=training.MODE_TRANSFORMER, generator_from=out, max_steps=3,
        w_latent_adv=0.1, mean_latent_samples=64, identity_every=2, log_every=1, **TINY)
    trainer_a = training.DecoderTrainer(cfg_a, rec, log=lambda _: None)
    before = [v.numpy() for v in trainer_a.decoder.generator.variables]
    w_mean = np.asarray(trainer_a.decoder.generator.mean_latent(64, seed=0))
    np.testing.assert_allclose(trainer_a.decoder.transformer.mean_latent.numpy(),
                               np.tile(w_mean, (trainer_a.decoder.generator.n_latent, 1)),
                               rtol=1e-5, atol=1e-6)
    transformer_before = [v.numpy() for v in trainer_a.decoder.transformer.trainable_variables]
    scalars = trainer_a.fit()
    assert "latent_adv" in scalars and "rec" not in scalars
    logged = [json.loads(line) for line in open(os.path.join(cfg_a.out_dir, training.LOG_FILE))]
    # Identity loss on global steps 0 and 2 only (logged as steps 1 and 3).
    assert [("id" in r) for r in logged] == [True, False, True]
    for b, v in zip(before, trainer_a.decoder.generator.variables):
        np.testing.assert_array_equal(b, v.numpy())
    assert any(not np.array_equal(b, v.numpy()) for b, v in
               zip(transformer_before, trainer_a.decoder.transformer.trainable_variables))


def test_nonfinite_loss_stops_without_saving(world, tmp_path):
    def nan_model(images):
        return tf.reduce_mean(images, axis=[1, 2]) * np.nan

    config = training.DecoderTrainConfig(
        data_dir=os.path.join(world, "DATA"), out_dir=str(tmp_path / "nan"), max_steps=3,
        **TINY)
    rec = recognition.RecognitionModel(nan_model, feature_dim=3)
    trainer = training.DecoderTrainer(config, rec, log=lambda _: None)
    with pytest.raises(training.NonFiniteLossError):
        trainer.fit()
    assert trainer.manager.latest_checkpoint is None


def test_config_helpers():
    assert training.parse_channels("4:64, 8:32") == {4: 64, 8: 32}
    assert training.parse_channels("") is None
    with pytest.raises(ValueError):
        training.parse_channels("4=64")
    assert training.DecoderTrainConfig().weights() == training.MODE_DEFAULT_WEIGHTS["joint"]
    assert training.DecoderTrainConfig(mode="transformer", w_id=2.0).weights()[1] == 2.0
    with pytest.raises(ValueError):
        recognition.load_recognition_model("torch:x.pth")
