"""Reconstruction-attack figures: thresholds, type-I / type-II rates, SSIM / PSNR."""
import numpy as np
import pytest

from attr_recovery.analysis import attack_metrics as am


def test_threshold_at_far_closed_form():
    imp = np.arange(1000, dtype=float)                # scores 0..999
    thr, far = am.threshold_at_far(imp, 1e-2)         # 10th largest: 990
    assert thr == 990.0 and far == pytest.approx(9 / 1000)
    thr, far = am.threshold_at_far(imp, 1e-4)         # fewer pairs than 1/far
    assert thr == 999.0 and far == 0.0


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_attack_rates_for_perfect_and_useless_decoders():
    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(40), 5)
    centres = rng.normal(size=(40, 64))
    z = _unit(centres[subjects] + 0.3 * rng.normal(size=(200, 64)))
    perfect = am.attack_rates(z, z, subjects)
    assert perfect["type-I TAR@0.01"] == 1.0
    assert perfect["type-II TAR@0.01"] == pytest.approx(perfect["real TAR@0.01"])
    assert perfect["real FAR@0.01"] <= 0.01
    assert perfect["type-II pairs"] == 40 * 5 * 4
    useless = am.attack_rates(z, _unit(rng.normal(size=(200, 64))), subjects)
    assert useless["type-I TAR@0.01"] < 0.05 and useless["type-II TAR@0.001"] < 0.05


def test_image_similarity():
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (4, 64, 64, 3)).astype(np.uint8)
    # The decoder's resolution is 32: the input is area-averaged to it.
    small = real.reshape(4, 32, 2, 32, 2, 3).mean(axis=(2, 4)) / 127.5 - 1.0
    same = am.image_similarity(real, small + 1e-3)
    assert same["SSIM"] > 0.99 and same["PSNR (dB)"] > 50 and same["resolution"] == 32
    other = am.image_similarity(real, rng.uniform(-1, 1, (4, 32, 32, 3)))
    assert other["SSIM"] < 0.3 and other["PSNR (dB)"] < 15


def test_attack_figures_against_portraits():
    """With portraits, SSIM / PSNR are also measured against them: a decoder that
    paints exactly the portrait scores 1 there, and less against the input."""
    import tensorflow as tf
    rng = np.random.default_rng(2)
    inputs = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    portraits = np.repeat(rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8), 2, 0)

    class PortraitPainter:
        size = 32

        def decode_batched(self, z, batch_size=32, seed=None):
            return portraits[:len(z)] / 127.5 - 1.0

    rec = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Flatten(),
                               tf.keras.layers.Dense(16)])
    out = am.attack_figures(PortraitPainter(), rec, inputs, np.repeat(np.arange(3), 2),
                            portraits=portraits)
    assert out["SSIM vs portrait"] > 0.999 and out["PSNR vs portrait (dB)"] > 40
    assert out["SSIM"] < 0.2
    assert "SSIM vs portrait" not in am.attack_figures(
        PortraitPainter(), rec, inputs, np.repeat(np.arange(3), 2))
