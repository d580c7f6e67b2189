"""The lfw_recon workflow: folder tree, features, eigen-features, unit vectors, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from attr_recovery.conversion import convert_checkpoint
from attr_recovery.nets import decoder as decoder_lib
from attr_recovery.stages import decoding_stage
from attr_recovery.analysis import reconstruction
from attr_recovery.readers import recognition
from attr_recovery.trainers import training
from attr_recovery.nets.latent_transformer import IDDEncoder
from attr_recovery.nets.stylegan2 import Generator
from tests.conftest import REPO_ROOT

FEATURE_DIM = 20


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny untrained decoder (16 px) and a saved Keras recogniser (20-d)."""
    tf.keras.utils.set_random_seed(11)
    rec_path = str(tmp_path_factory.mktemp("rec") / "r.keras")
    decoding_stage.build_small_recognizer(input_size=16, width=4,
                                      feature_dim=FEATURE_DIM).save(rec_path)
    generator = Generator(16, 16, 1, 1, channels={4: 16, 8: 8, 16: 8})
    transformer = decoder_lib.LatentTransformer(FEATURE_DIM, generator.n_latent, 4, 16)
    transformer.set_mean_latent(np.random.default_rng(0).standard_normal(16) * 0.1)
    decoder = decoder_lib.FeatureDecoder(transformer, generator)
    rec = recognition.load_recognition_model(f"keras:{rec_path}")
    return decoder, rec, rec_path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Identity sub-folders (two sizes of image, one nested level, a non-image)."""
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(2)
    files = ["Alice/Alice_0001.jpg", "Alice/Alice_0002.png", "Bob/Bob_0001.jpg",
             "Bob/extra/Bob_0002.JPG", "Carol/Carol_0001.jpg"]
    for i, rel in enumerate(files):
        side = 40 if i < 3 else 24
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            str(path), format="PNG" if rel.endswith(".png") else "JPEG")
    (root / "Bob" / "notes.txt").write_text("not an image")
    return str(root), sorted(files)


def test_list_and_load_images(tree):
    root, files = tree
    assert reconstruction.list_images(root) == files
    img = reconstruction.load_image(os.path.join(root, files[1]))
    with Image.open(os.path.join(root, files[1])) as pil:
        expected = np.asarray(pil.convert("RGB"), np.float32) / 127.5 - 1
    np.testing.assert_array_equal(img, expected)
    with pytest.raises(FileNotFoundError):
        reconstruction.list_images(os.path.join(root, "missing"))


def test_save_image_is_clipped_8bit(tmp_path):
    img = np.array([[[-1.0, 0.0, 1.0], [-3.0, 2.0, 0.5]]], np.float32)
    path = str(tmp_path / "x.png")
    reconstruction.save_image(path, img)
    with Image.open(path) as pil:
        assert pil.mode == "RGB"
        out = np.asarray(pil)
    # (x + 1) / 2 * 255 truncated like the original's astype('uint8'), but clipped.
    np.testing.assert_array_equal(out, [[[0, 127, 255], [0, 255, 191]]])


def test_decode_folder_tree_mirrors_the_tree(models, tree, tmp_path):
    decoder, rec, _ = models
    root, files = tree
    out = str(tmp_path / "out")
    assert reconstruction.decode_folder_tree(decoder, rec, root, out, batch_size=2) == 5
    assert reconstruction.list_images(out) == files
    for rel in files:
        with Image.open(os.path.join(out, rel)) as img:
            assert img.mode == "RGB" and img.size == (16, 16)
    # Per-image noise: the PNG outputs do not depend on the batching.
    out1 = str(tmp_path / "out1")
    reconstruction.decode_folder_tree(decoder, rec, root, out1, batch_size=1)
    a = np.asarray(Image.open(os.path.join(out, files[1])), np.int32)
    b = np.asarray(Image.open(os.path.join(out1, files[1])), np.int32)
    assert np.abs(a - b).max() <= 1
    # The decoded image is decode(R(image)) (the original's recon()).
    z = rec.features(reconstruction.load_image(os.path.join(root, files[1]))[None])
    expected = decoder_lib.to_uint8(decoder.decode(z, seed=0, image_ids=[1]))[0]
    assert np.abs(a - expected.astype(np.int32)).max() <= 1


def test_extract_features_columns(models, tree, tmp_path):
    _, rec, _ = models
    root, files = tree
    feats, paths = reconstruction.extract_features(rec, root, batch_size=2)
    assert feats.shape == (FEATURE_DIM, len(files)) and paths == files
    np.testing.assert_allclose(np.linalg.norm(feats, axis=0), 1.0, rtol=1e-5)
    one = rec.features(reconstruction.load_image(os.path.join(root, files[3]))[None])
    np.testing.assert_allclose(feats[:, 3], one[0], atol=1e-6)
    path = str(tmp_path / "f" / "features.npz")
    reconstruction.save_features(path, feats, paths)
    back, back_paths = reconstruction.load_features(path)
    np.testing.assert_array_equal(back, feats)
    assert back_paths == files


def test_eigen_features_on_a_known_scatter_matrix():
    rng = np.random.default_rng(5)
    d, n = 6, 40
    lam = np.array([0.5, 9.0, 2.0, 30.0, 0.1, 4.0])
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    centred = rng.standard_normal((n, d))
    centred -= centred.mean(axis=0)
    w, _ = np.linalg.qr(centred)                      # [n, d] orthonormal, zero-mean columns
    mean = rng.standard_normal(d)
    features = mean[:, None] + q @ np.diag(np.sqrt(lam)) @ w.T
    eig = reconstruction.eigen_features(features)
    order = np.argsort(lam)[::-1]
    np.testing.assert_allclose(eig.values, lam[order], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(eig.mean, mean, atol=1e-6)
    # Each column is the matching eigenvector of the scatter, up to the fixed sign.
    for i, j in enumerate(order):
        v = eig.vectors[:, i]
        assert abs(abs(float(v @ q[:, j])) - 1.0) < 1e-5
        assert v[np.argmax(np.abs(v))] > 0
    scatter = (features - features.mean(1, keepdims=True)) @ \
        (features - features.mean(1, keepdims=True)).T
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(scatter))[::-1], eig.values,
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scatter @ eig.vectors, eig.vectors * eig.values,
                               atol=1e-4)


def test_eigen_and_noise_outputs(models, tmp_path):
    decoder, _, _ = models
    feats = np.random.default_rng(1).standard_normal((FEATURE_DIM, 30)).astype(np.float32)
    eig = reconstruction.eigen_features(feats)
    folder = str(tmp_path / "eigen")
    written = reconstruction.decode_eigen_features(decoder, eig, 3, folder, ext="png")
    assert sorted(os.listdir(folder)) == ["0.png", "1.png", "2.png",
                                          "plus_0.png", "plus_1.png", "plus_2.png"]
    assert len(written) == 6
    expected = decoder_lib.to_uint8(decoder.decode(
        (eig.vectors[:, 1] + eig.mean)[None], seed=0, image_ids=[1]))[0]
    got = np.asarray(Image.open(os.path.join(folder, "plus_1.png")), np.int32)
    assert np.abs(got - expected).max() <= 1

    v = reconstruction.random_unit_vectors(500, FEATURE_DIM, seed=3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert np.abs(v.mean(axis=0)).max() < 0.1        # no preferred direction
    np.testing.assert_array_equal(v, reconstruction.random_unit_vectors(500, FEATURE_DIM, 3))
    noise = str(tmp_path / "noise")
    assert reconstruction.decode_random_unit_vectors(decoder, 3, noise, batch_size=2) == 3
    assert sorted(os.listdir(noise)) == ["0", "1", "2"]
    with Image.open(os.path.join(noise, "2", "2.jpg")) as img:
        assert img.mode == "RGB" and img.format == "JPEG" and img.size == (16, 16)


def test_load_models_from_converted_files(models, tmp_path):
    """The released-weights path: converter outputs (weights + config sidecar)."""
    decoder, rec, rec_path = models
    gen = decoder.generator
    encoder = IDDEncoder(gen.n_latent, 4, 16)
    paths = {}
    for kind, model, config in (
            ("generator", gen, decoder_lib.generator_config(gen)),
            ("idd_encoder", encoder, dict(n_latents=gen.n_latent, n_mlp=4, dim=16))):
        path = str(tmp_path / f"{kind}{convert_checkpoint.WEIGHTS_SUFFIX}")
        model.save_weights(path)
        with open(convert_checkpoint.config_path_for(path), "w", encoding="utf-8") as f:
            json.dump({"kind": kind, "config": config}, f)
        paths[kind] = path
    mean = np.random.default_rng(4).standard_normal((gen.n_latent, 16)).astype(np.float32)
    np.save(str(tmp_path / "mean.npy"), mean)
    # A 16-d recogniser for the 16-d released-style transformer.
    rec16 = str(tmp_path / "r16.keras")
    decoding_stage.build_small_recognizer(16, 4, 16).save(rec16)
    loaded, loaded_rec = reconstruction.load_models(
        generator_weights=paths["generator"], encoder_weights=paths["idd_encoder"],
        mean_latent=str(tmp_path / "mean.npy"), recognition=f"keras:{rec16}")
    assert loaded.transformer.input_proj is None
    encoder.set_mean_latent(mean)
    reference = decoder_lib.FeatureDecoder.from_converted(gen, encoder)
    z = np.random.default_rng(6).standard_normal((2, 16)).astype(np.float32)
    np.testing.assert_allclose(loaded.decode(z, seed=2), reference.decode(z, seed=2),
                               atol=1e-5)
    with pytest.raises(ValueError, match="representations"):
        reconstruction.load_models(generator_weights=paths["generator"],
                                   encoder_weights=paths["idd_encoder"],
                                   recognition=f"keras:{rec_path}")


def test_recon_cli_end_to_end(models, tree, tmp_path):
    """attr-recovery-recon on a folder written by the trainer (spec recorded there)."""
    _, _, rec_path = models
    world = str(tmp_path / "world")
    from interp_fr.data import synthetic_world  # pylint: disable=import-outside-toplevel
    synthetic_world.build_world(world, synthetic_world.WorldConfig(
        train_subjects=3, train_images_per_subject=4, test_subjects=2, test_images_min=2,
        test_images_max=2, num_splits=1, seed=2))
    dec_dir = str(tmp_path / "dec")
    config = training.DecoderTrainConfig(
        data_dir=os.path.join(world, "DATA"), out_dir=dec_dir, recognition=f"keras:{rec_path}",
        max_steps=1, size=8, style_dim=16, channels={4: 16, 8: 8}, transformer_n_mlp=4,
        batch_size=4, progress=False, tensorboard=False)
    training.DecoderTrainer(config, log=lambda _: None).fit()

    root, files = tree
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "attr_recovery.cli.recon", f"--decoder_dir={dec_dir}",
           f"--read_folder={root}", f"--write_folder={out / 'recon'}",
           f"--feat_path={out / 'features' / 'f.npz'}", "--num_eigen_recon=2",
           f"--recon_eigen_folder={out / 'eigen'}", f"--noise_recon_folder={out / 'noise'}",
           "--num_noise=2", "--batch_size=4"]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    res = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert reconstruction.list_images(str(out / "recon")) == files
    feats, paths = reconstruction.load_features(str(out / "features" / "f.npz"))
    assert feats.shape == (FEATURE_DIM, len(files)) and paths == files
    assert sorted(os.listdir(out / "eigen")) == ["0.jpg", "1.jpg", "plus_0.jpg", "plus_1.jpg"]
    assert sorted(os.listdir(out / "noise")) == ["0", "1"]
    with Image.open(str(out / "recon" / files[0])) as img:
        assert img.size == (8, 8) and img.mode == "RGB"

