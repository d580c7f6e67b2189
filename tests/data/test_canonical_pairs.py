"""Canonical portraits and image / portrait pairs (the legible decoder's training data)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from attr_recovery.readers import recognition
from attr_recovery.trainers import training
from interp_fr.data import canonical_pairs, dat_files, synthetic_faces, synthetic_world


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pairs"))
    return canonical_pairs.build_canonical_pairs(out, num_identities=5,
                                                 images_per_identity=3, seed=2)


def test_pairs_share_order_and_each_identity_one_portrait(pairs):
    inputs, targets = (dat_files.load_casia(p) for p in pairs)
    assert len(inputs.images) == len(targets.images) == 15
    assert np.array_equal(inputs.file_list.subject_ids, np.repeat(np.arange(5), 3))
    assert inputs.file_list.names == targets.file_list.names
    x, y = inputs.images.read(np.arange(15)), targets.images.read(np.arange(15))
    # The three images of an identity differ; their target is one portrait,
    # and different identities have different portraits.
    assert not np.array_equal(x[0], x[1])
    assert np.array_equal(y[0], y[1]) and np.array_equal(y[0], y[2])
    assert not np.array_equal(y[0], y[3])
    # Plain mid-grey background (0.5 * 255 truncated: 127), no noise: exact corners.
    assert np.all(y[:, 0, 0] == 127) and np.all(y[:, -1, -1] == 127)


def test_portrait_is_frontal_and_neutral():
    identity = synthetic_faces.sample_identity(np.random.default_rng(4))
    params = synthetic_faces.canonical_params()
    lm = synthetic_faces.project_landmarks(identity, params, 110, 7.0)
    # No rotation, scale 1, no shift, no expression: the identity's own
    # landmarks, moved into the 110 px layout.
    assert np.allclose(lm, identity.shape[:, :2] + 7.0)
    face = synthetic_faces.render_canonical([identity], 110, 7.0)[0]
    again = synthetic_faces.render_canonical([identity], 110, 7.0)[0]
    assert face.dtype == np.uint8 and np.array_equal(face, again)


def test_world_identities_are_the_world_subjects(tmp_path):
    world = str(tmp_path / "w")
    synthetic_world.build_world(world, synthetic_world.WorldConfig(
        train_subjects=3, train_images_per_subject=2, test_subjects=2,
        test_images_min=2, test_images_max=2, num_splits=1, seed=3))
    for split, attr_file in (("train", "casia_attributes.npz"),
                             ("test", "ijba_attributes.npz")):
        ids = synthetic_world.world_identities(world, split)
        attrs = np.load(os.path.join(world, "attributes", attr_file))
        for row, subject in enumerate(attrs["subject"]):
            assert attrs["skin_r"][row] == ids[subject].skin[0]
            assert attrs["jaw_width"][row] == ids[subject].shape_params[0]
    with pytest.raises(ValueError, match="split"):
        synthetic_world.world_identities(world, "val")


def test_trainer_reads_targets_from_the_target_folder(pairs, tmp_path):
    inputs, targets = pairs
    tf.keras.utils.set_random_seed(0)
    rec = recognition.as_recognition_model(
        tf.keras.Sequential([tf.keras.Input((16, 16, 3)), tf.keras.layers.Flatten(),
                             tf.keras.layers.Dense(8)]))
    config = training.DecoderTrainConfig(
        data_dir=inputs, target_dir=targets, out_dir=str(tmp_path / "dec"), size=8,
        style_dim=16, channels={4: 16, 8: 8}, transformer_n_mlp=4, batch_size=4,
        max_steps=1, progress=False, tensorboard=False)
    trainer = training.DecoderTrainer(config, rec, log=lambda _: None)
    _, target = trainer.batch_inputs(0)
    idx = trainer.source.schedule.batch_indices(0)
    portraits = dat_files.load_casia(targets).images.read(idx)[:, 7:103, 7:103]
    expected = tf.image.resize(portraits / 127.5 - 1.0, (8, 8), method="area")
    np.testing.assert_allclose(target.numpy(), expected.numpy(), atol=1e-5)
    # Without the cache (random crops) the same targets come from the folder.
    config.crop = training.CROP_RANDOM
    uncached = training.DecoderTrainer(config, rec, log=lambda _: None)
    assert uncached.cache is None
    np.testing.assert_allclose(uncached.batch_inputs(0)[1].numpy(), expected.numpy(),
                               atol=1e-5)
    # A target folder of another length is refused, naming it.
    short = canonical_pairs.build_canonical_pairs(str(tmp_path / "short"), 2, 2, seed=2)
    config.target_dir = short[1]
    config.out_dir = str(tmp_path / "dec2")
    with pytest.raises(ValueError, match="4 target images for 15 training images"):
        training.DecoderTrainer(config, rec, log=lambda _: None)


def test_reference_recognition_spec():
    rec = recognition.load_recognition_model("reference:full")
    assert rec.feature_dim == 64
    with pytest.raises(FileNotFoundError, match="no reference model 'nope'"):
        recognition.load_recognition_model("reference:nope")
