"""tf.data pipelines: crops, offsets, labels, resumable order, inference order."""
import numpy as np
import pytest

from interp_fr.data import dat_files, pipeline


@pytest.fixture()
def casia(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (10, 110, 110, 3), np.uint8)
    path = tmp_path / "c.dat"
    dat_files.write_dat_images(path, imgs)
    return imgs, dat_files.DatImages(path, 110), np.arange(10) * 3


def test_training_batches_are_exact_crops(casia):
    imgs, dat, labels = casia
    ds = pipeline.training_dataset(dat, labels, batch_size=4, seed=7, num_batches=5)
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 5
    seen = []
    for b in batches:
        assert b["image"].shape == (4, 96, 96, 3) and b["image"].dtype == np.float32
        for img, (r, c), idx, lab in zip(b["image"], b["offset"], b["index"], b["label"]):
            assert 0 <= r <= 14 and 0 <= c <= 14
            expect = imgs[idx, r:r + 96, c:c + 96].astype(np.float32) / 127.5 - 1
            np.testing.assert_array_equal(img, expect)
            assert lab == labels[idx]
        seen.append(b["index"])
    # 10 images, batch 4: two batches per epoch, the tail of 2 dropped; the
    # original's single permutation repeats every epoch.
    np.testing.assert_array_equal(seen[0], seen[2])
    assert len(set(np.concatenate(seen[:2]))) == 8
    np.testing.assert_array_equal([b["step"] for b in batches], range(5))


def test_reshuffle_each_epoch_draws_new_orders(casia):
    _, dat, labels = casia
    ds = pipeline.training_dataset(dat, labels, batch_size=5, seed=3, num_batches=6,
                                   reshuffle_each_epoch=True)
    idx = [b["index"] for b in ds.as_numpy_iterator()]
    epochs = [np.concatenate(idx[i:i + 2]) for i in (0, 2, 4)]
    for e in epochs:
        assert sorted(e) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1])


def test_resume_yields_identical_batches(casia):
    _, dat, labels = casia
    full = list(pipeline.training_dataset(dat, labels, 4, seed=11,
                                          num_batches=6).as_numpy_iterator())
    tail = list(pipeline.training_dataset(dat, labels, 4, seed=11, start_batch=3,
                                          num_batches=3).as_numpy_iterator())
    for a, b in zip(full[3:], tail):
        for key in ("image", "offset", "label", "index", "step"):
            np.testing.assert_array_equal(a[key], b[key])


def test_crop_offsets_cover_full_range():
    sched = pipeline.BatchSchedule(100, 64, seed=0)
    offs = np.concatenate([sched.crop_offsets(g, 14) for g in range(50)])
    assert offs.min() == 0 and offs.max() == 14
    assert len(np.unique(offs)) == 15


def test_inference_in_file_order(tmp_path):
    imgs = np.random.default_rng(2).integers(0, 256, (7, 96, 96, 3), np.uint8)
    dat_files.write_dat_images(tmp_path / "t.dat", imgs)
    dat = dat_files.open_ijba_images(str(tmp_path / "t.dat"))
    out = list(pipeline.inference_dataset(dat, 3).as_numpy_iterator())
    assert [len(b["index"]) for b in out] == [3, 3, 1]
    got = np.concatenate([b["image"] for b in out])
    np.testing.assert_array_equal(got, imgs.astype(np.float32) / 127.5 - 1)
    np.testing.assert_array_equal(np.concatenate([b["index"] for b in out]), range(7))


def test_label_count_mismatch(casia):
    _, dat, _ = casia
    with pytest.raises(ValueError, match="10 images but 3 labels"):
        pipeline.training_dataset(dat, [0, 1, 2], 4)


def test_colour_jitter_matches_its_definition_and_resumes(casia):
    """Each jittered crop is its plain crop with gains, shift and (sometimes)
    grey scale from the batch's own generator; a resumed run sees the same."""
    imgs, dat, labels = casia
    plain = list(pipeline.training_dataset(dat, labels, 4, seed=5,
                                           num_batches=4).as_numpy_iterator())
    jit = list(pipeline.training_dataset(dat, labels, 4, seed=5, num_batches=4,
                                         colour_jitter=1.0).as_numpy_iterator())
    tail = list(pipeline.training_dataset(dat, labels, 4, seed=5, start_batch=2,
                                          num_batches=2,
                                          colour_jitter=1.0).as_numpy_iterator())
    schedule = pipeline.BatchSchedule(10, 4, 5)
    greys = 0
    for step, (p, j) in enumerate(zip(plain, jit)):
        np.testing.assert_array_equal(p["index"], j["index"])
        rng = schedule.colour_rng(step)
        gains = rng.uniform(0.7, 1.3, size=(4, 1, 1, 3))
        shift = rng.uniform(-25.0, 25.0, size=(4, 1, 1, 1))
        grey = rng.uniform(size=(4, 1, 1, 1)) < 0.5
        x = np.rint((p["image"] + 1) * 127.5).astype(np.float64)
        lum = 0.299 * x[..., :1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:]
        expect = np.clip(np.rint(np.where(grey, lum, x) * gains + shift), 0, 255)
        got = (j["image"] + 1) * 127.5
        # float32 luminance and gains against float64 here: at most one grey level.
        assert np.abs(got - expect).max() <= 1.0 + 1e-3
        greys += int(grey.sum())
        for k, g in enumerate(grey.ravel()):
            if g:   # grey images: equal gains would give equal channels; these differ
                assert not np.array_equal(got[k, ..., 0], got[k, ..., 1])
    assert 0 < greys < 16
    for a, b in zip(jit[2:], tail):
        np.testing.assert_array_equal(a["image"], b["image"])


def test_colour_jitter_zero_is_the_original():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 8, 8, 3), np.uint8)
    assert pipeline.jitter_colours(imgs, rng, 0.0) is imgs


def test_grey_copies_are_the_luminance_in_every_channel():
    images = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]]], np.uint8)
    grey = pipeline.grey_copies(images)
    expected = np.rint([0.299 * 255, 0.587 * 255, 0.114 * 255,
                        0.299 * 10 + 0.587 * 20 + 0.114 * 30])
    assert grey.dtype == np.uint8 and grey.shape == images.shape
    np.testing.assert_array_equal(grey[0, 0], np.repeat(expected[:, None], 3, 1))
