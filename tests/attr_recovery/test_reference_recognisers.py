"""The colour augmentation of the recogniser trainer and the shipped backbone's
file format (``attr_recovery.readers.reference_recognisers``)."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from attr_recovery.nets.backbones import MobileFaceNet
from attr_recovery.readers.recognition import as_recognition_model
from attr_recovery.readers import reference_recognisers
from attr_recovery.trainers.recogniser_training import augment_colours
from interp_fr.data import pipeline
from interp_fr.data.image_scaling import to_unit_range


def test_grey_augmentation_replaces_some_images_by_their_luminance():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(400, 4, 4, 3), dtype=np.uint8)
    out = augment_colours(crops, np.random.default_rng(5), grey_probability=0.3)
    grey = np.all(out == pipeline.grey_copies(crops), axis=(1, 2, 3))
    kept = np.all(out == crops, axis=(1, 2, 3))
    assert np.all(grey | kept) and not np.any(grey & kept)
    # Binomial(400, 0.3): 120 +- 9.2; the draw is the batch generator's own.
    assert 90 < grey.sum() < 150
    again = augment_colours(crops, np.random.default_rng(5), grey_probability=0.3)
    np.testing.assert_array_equal(out, again)
    # Off: the images themselves; jitter alone: `jitter_colours` with the same draws.
    np.testing.assert_array_equal(augment_colours(crops, rng), crops)
    np.testing.assert_array_equal(
        augment_colours(crops, np.random.default_rng(3), colour_jitter=0.5),
        pipeline.jitter_colours(crops, np.random.default_rng(3), 0.5))


@pytest.fixture()
def small_model():
    tf.keras.utils.set_random_seed(0)
    model = MobileFaceNet(embedding_size=32, residual_blocks=(1, 1, 1), name="mobilefacenet")
    model(tf.zeros([1, 112, 112, 3]))
    return model


def test_export_and_load_round_trip_at_float16(tmp_path, small_model):
    x = tf.random.stateless_uniform([2, 96, 96, 3], seed=[1, 2], minval=-1, maxval=1)
    before = small_model(x, training=False).numpy()
    reference_recognisers.round_to_float16(small_model)
    rounded = small_model(x, training=False).numpy()
    assert 0 < np.max(np.abs(rounded - before)) < 0.05 * np.max(np.abs(before))
    assert not reference_recognisers.available("mobilefacenet", str(tmp_path))
    written = reference_recognisers.export_reference_recogniser(
        small_model, "mobilefacenet", {"tar": 0.5}, {"command": "test"}, str(tmp_path))
    assert reference_recognisers.available("mobilefacenet", str(tmp_path))
    # Half the bytes of float32 (plus the archive's headers).
    n_values = sum(int(np.prod(v.shape)) for v in small_model.variables)
    assert os.path.getsize(written[0]) < 2 * n_values + 400 * len(small_model.variables)
    loaded, doc = reference_recognisers.load_reference_recogniser("mobilefacenet",
                                                                  str(tmp_path))
    assert doc["recorded"] == {"tar": 0.5} and doc["config"]["residual_blocks"] == [1, 1, 1]
    for a, b in zip(small_model.variables, loaded.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), a.path)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), rounded)


def test_a_file_that_does_not_match_its_description_is_refused(tmp_path, small_model):
    _, desc = reference_recognisers.export_reference_recogniser(
        small_model, "mobilefacenet", {}, {}, str(tmp_path))
    with open(desc, encoding="utf-8") as f:
        doc = json.load(f)
    doc["config"]["embedding_size"] = 64
    with open(desc, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    with pytest.raises(ValueError, match="do not match"):
        reference_recognisers.load_reference_recogniser("mobilefacenet", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no reference recogniser"):
        reference_recognisers.load_reference_recogniser("irse", str(tmp_path))


def _features(model, images):
    """Unit features [N, d] of uint8 images through a traced forward (the
    eager per-batch call costs several times as much on a CPU)."""
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return as_recognition_model(forward).features(to_unit_range(images))


def test_shipped_mobilefacenet_figures_are_measured_again(reference_world):
    """The shipped MobileFaceNet (``train_backbone_recognisers.py --export``,
    grey-scale augmentation) recognises the world's test identities in colour
    and in grey as recorded; the same network untrained does not. Only the
    last bits of the features differ between CPUs: an operating point may move
    by a pair or two. It is a face model and counts, with the shipped
    InterpFRNets, against the face-model weights' limit of 20 MB."""
    from attr_recovery.analysis import recogniser_content as rc
    from interp_fr import reference_models
    from interp_fr.eval import recognition_report
    model, doc = reference_recognisers.load_reference_recogniser("mobilefacenet")
    assert "train_backbone_recognisers.py" in doc["provenance"]["command"]
    assert doc["provenance"]["grey_probability"] > 0
    face_models = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in
                      os.walk(reference_models.REFERENCE_DIR) for f in files)
    assert face_models + sum(map(os.path.getsize,
                                 reference_recognisers.paths("mobilefacenet"))) < 20e6
    recorded = doc["recorded"]["encoding"]
    sets = rc.world_sets(reference_world)
    n = len(sets.test_images)
    z = _features(model, np.concatenate([sets.test_images,
                                         pipeline.grey_copies(sets.test_images)]))
    colour = recognition_report.figures_from_features(z[:n], z[:n], reference_world)["all"]
    grey = recognition_report.figures_from_features(z[n:], z[n:], reference_world)["all"]
    for key in ("tar_at_far_0.01", "tar_at_far_0.001", "rank1"):
        assert colour[key] == pytest.approx(recorded["all"][key], abs=0.02), key
        assert grey[key] == pytest.approx(recorded["grey"][key], abs=0.02), key
    assert colour["tar_at_far_0.01"] > 0.9 and grey["tar_at_far_0.01"] > 0.8
    tf.keras.utils.set_random_seed(0)
    z0 = _features(reference_recognisers.build_recogniser(doc), sets.test_images)
    control = recognition_report.figures_from_features(z0, z0, reference_world)["all"]
    assert control["tar_at_far_0.01"] < 0.3
