"""The paper-table figures: raw-pixel baseline, synthetic-occlusion copies, columns."""
import os

import numpy as np
import pytest

from interp_fr.data import dat_files, synthetic_world
from interp_fr.eval import pixel_baseline, recognition_report


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report_world"))
    synthetic_world.build_world(out, synthetic_world.WorldConfig(
        train_subjects=6, train_images_per_subject=6, test_subjects=8,
        test_images_min=4, test_images_max=6, num_splits=3, seed=2))
    return out


def test_downsampled_pixels_are_block_means():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 12, 3)).astype(np.uint8)
    out = pixel_baseline.downsampled_pixels(images, block=4, chunk=2)
    assert out.shape == (3, 2 * 3 * 3)
    expected = images[1, 4:8, 8:12, 2].astype(np.float64).mean()
    # Row-major [2, 3, 3]: block (1, 2), channel 2.
    assert out[1].reshape(2, 3, 3)[1, 2, 2] == pytest.approx(expected)


def test_pca_projection_keeps_a_low_rank_set_exactly():
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(3, 20))
    rows = rng.normal(size=(50, 3)) @ basis + 5.0
    mean, axes = pixel_baseline.fit_pca(rows, dims=3)
    assert axes.shape == (20, 3)
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-10)
    recon = (rows - mean) @ axes @ axes.T + mean
    np.testing.assert_allclose(recon, rows, atol=1e-9)


def test_synthetic_occlusion_copies_differ_only_inside_one_black_region(world):
    occl = recognition_report.synthetic_occlusion_images(world)
    test = dat_files.open_ijba_images(os.path.join(world, "DATA"))
    assert len(occl) == len(test)
    a, b = test.read_range(0, len(test)), occl.read_range(0, len(occl))
    changed = (a != b).any(axis=-1)
    assert changed.any(axis=(1, 2)).mean() > 0.9     # nearly every image occluded
    assert (b[changed] == 0).all()                  # occluded pixels are black (-1)
    assert changed.mean() < 0.5
    # Written once: a second call reads the same file.
    again = recognition_report.synthetic_occlusion_images(world)
    np.testing.assert_array_equal(again.read_range(0, 3), b[:3])


def test_columns_perfect_for_identity_features_and_poor_for_noise(world):
    subjects = np.load(os.path.join(world, "attributes", "ijba_attributes.npz"))["subject"]
    onehot = np.eye(subjects.max() + 1)[subjects] + 0.01
    perfect = recognition_report.figures_from_features(onehot, onehot, world)
    for column in ("all", "synthetic_occlusion"):
        for metric in ("tar_at_far_0.01", "rank1", "rank5"):
            assert perfect[column][metric] == 1.0, (column, metric)
    # A small world's occluded subset may lack pairs in a split (NaN, as MATLAB).
    assert perfect["occluded"]["rank1"] in (1.0,) or np.isnan(perfect["occluded"]["rank1"])
    noise = np.random.default_rng(0).normal(size=onehot.shape)
    poor = recognition_report.figures_from_features(noise, noise, world)
    assert poor["all"]["rank1"] < 0.6 and poor["all"]["tar_at_far_0.01"] < 0.5


def test_pixel_baseline_and_table(world):
    figs = recognition_report.pixel_baseline_figures(world)
    assert set(figs) == set(recognition_report.COLUMNS)
    for column in figs.values():
        assert all(0.0 <= v <= 1.0 or np.isnan(v) for v in column.values())
    assert 0.0 <= figs["all"]["rank1"] <= 1.0
    table = recognition_report.table_markdown(
        [("pixels", figs), ("twice", recognition_report.mean_std([figs, figs]))])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[0].count("|") == 14
    assert "+- 0.000" in lines[3]
