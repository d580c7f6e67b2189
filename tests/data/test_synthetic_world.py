"""The synthetic world: written in the original formats, re-read by our readers."""
import json
import os

import numpy as np
import pytest
import scipy.io

from interp_fr.data import dat_files, mat_files, synthetic_faces, synthetic_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("world"))
    cfg = synthetic_world.WorldConfig(train_subjects=4, train_images_per_subject=5,
                                      test_subjects=6, test_images_min=4,
                                      test_images_max=6, num_splits=3, seed=5)
    summary = synthetic_world.build_world(out, cfg)
    return out, cfg, summary


def test_layout_and_readers(world):
    out, cfg, summary = world
    data = os.path.join(out, "DATA")
    casia = dat_files.load_casia(data, num_subjects=cfg.train_subjects)
    assert len(casia.images) == 20 == summary["train_images"]
    assert casia.num_subjects == 4
    np.testing.assert_array_equal(casia.file_list.subject_ids, np.repeat(range(4), 5))
    test = dat_files.open_ijba_images(data)
    assert len(test) == summary["test_images"]
    lm = mat_files.read_landmarks(os.path.join(out, "aux", "landmarks68.mat"),
                                  expected_count=20)
    lm_t = mat_files.read_landmarks(os.path.join(out, "aux", "landmarks68_IJBA.mat"),
                                    expected_count=len(test))
    # Landmarks lie inside their images; frame points at the image frame.
    assert lm[:, :, :68].min() > 0 and lm[:, :, :68].max() < 110
    assert lm_t[:, :, :68].min() > -5 and lm_t[:, :, :68].max() < 101
    np.testing.assert_allclose(lm_t[0, :, 68:].T, synthetic_faces.frame_points(96))
    tri = mat_files.read_triangulation(os.path.join(out, "aux", "tVM.mat"))
    assert tri.shape == (142, 3)  # as the real tVM: 2 * 76 - 2 - 8 hull points
    tmpl = mat_files.read_frontal_template(os.path.join(out, "aux", "landmark68_7.mat"))
    assert tmpl.shape == (2, 76)
    assert json.load(open(os.path.join(out, "world.json")))["train_images"] == 20


def test_protocol_files_have_the_real_variables(world, shared_dir):
    out, cfg, _ = world
    real = scipy.io.loadmat(os.path.join(
        shared_dir, "ijba_protocol", "verify", "split1", "verify_metadata_1.mat"))
    ours = scipy.io.loadmat(os.path.join(out, "IJB-A", "verify", "split2",
                                         "verify_metadata_2.mat"))
    names = lambda m: sorted(k for k in m if not k.startswith("__"))  # noqa: E731
    assert names(ours) == names(real)
    for key in names(real):
        assert ours[key].shape[1] == real[key].shape[1], key
    # MATLAB classes as the real files (double, cell for file names), with
    # compact integer storage on disk for integer-valued columns.
    real_classes = {n: c for n, _, c in scipy.io.whosmat(os.path.join(
        shared_dir, "ijba_protocol", "verify", "split1", "verify_metadata_1.mat"))}
    our_classes = {n: c for n, _, c in scipy.io.whosmat(os.path.join(
        out, "IJB-A", "verify", "split2", "verify_metadata_2.mat"))}
    assert our_classes == real_classes
    assert ours["templateID"].dtype.kind == real["templateID"].dtype.kind == "u"
    for k in range(1, cfg.num_splits + 1):
        for rel in (f"verify/split{k}/verify_comparisons_{k}.mat",
                    f"search/split{k}/search_gallery_{k}.mat",
                    f"search/split{k}/search_probe_{k}.mat",
                    f"search/split{k}/train_{k}.mat", f"verify/split{k}/train_{k}.mat"):
            assert os.path.isfile(os.path.join(out, "IJB-A", rel)), rel


def test_sighting_index_maps_protocol_rows_to_images(world):
    out, _, summary = world
    ds = scipy.io.loadmat(os.path.join(out, "IJB-A", "dataset.mat"))
    s2i = ds["sightingID2idx"].reshape(-1)
    meta = scipy.io.loadmat(os.path.join(out, "IJB-A", "verify", "split1",
                                         "verify_metadata_1.mat"))
    rows = s2i[meta["sightingID"].reshape(-1).astype(np.int64) - 1]
    assert rows.min() >= 1 and rows.max() <= summary["test_images"]
    attrs = np.load(os.path.join(out, "attributes", "ijba_attributes.npz"))
    # The subject of every protocol row is the subject the image was drawn from.
    np.testing.assert_array_equal(meta["subjectID"].reshape(-1) - 1000,
                                  attrs["subject"][rows.astype(int) - 1])
    comp = scipy.io.loadmat(os.path.join(out, "IJB-A", "verify", "split1",
                                         "verify_comparisons_1.mat"))["comparison"]
    assert set(np.unique(comp)) <= set(np.unique(meta["templateID"]))


def test_world_is_deterministic(world, tmp_path):
    out, cfg, _ = world
    synthetic_world.build_world(str(tmp_path), cfg)
    for rel in ("DATA/CASIA_all_images_110_110.dat",
                "DATA/IJBA_recrop_images_96_96_test.dat"):
        a = open(os.path.join(out, rel), "rb").read()
        assert a == open(os.path.join(tmp_path, rel), "rb").read()


def test_identities_are_distinct_and_stable(world):
    """Images of one subject resemble each other more than other subjects' images."""
    out, _, _ = world
    data = os.path.join(out, "DATA")
    casia = dat_files.load_casia(data)
    imgs = casia.images.read(range(len(casia.images))).astype(np.float64)
    lm = mat_files.read_landmarks(os.path.join(out, "aux", "landmarks68.mat"))
    # Skin colour sampled between nose and cheek, eye colour beside the pupil:
    # identity properties that pose and lighting move only a little.
    def sample(i, point):
        x, y = np.round(point).astype(int)
        return imgs[i, y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)
    feats = np.array([np.concatenate([
        sample(i, 0.5 * lm[i, :, 3] + 0.5 * lm[i, :, 31]),
        sample(i, 0.5 * lm[i, :, 13] + 0.5 * lm[i, :, 35])]) for i in range(len(imgs))])
    labels = casia.file_list.subject_ids
    d = np.linalg.norm(feats[:, None] - feats[None], axis=-1)
    same = labels[:, None] == labels[None]
    off = ~np.eye(len(labels), dtype=bool)
    assert d[same & off].mean() < 0.5 * d[~same].mean()
