"""Batched losses against a straightforward per-sample / per-filter numpy
formulation (float64) of SPEC A2."""
import numpy as np
import pytest
import tensorflow as tf

from interp_fr import losses
from interp_fr.layers import peak_mask
from interp_fr.model import InterpFRNet
from tests.reference.tf1_reference import SMALL_CONFIG

TOL = 1e-5


def _sq_cos_mean(rows):
    """rows [N, L]: mean over the N(N-1)/2 unordered pairs of cos^2."""
    n = len(rows)
    total = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            total += (rows[i] @ rows[j]
                      / (np.linalg.norm(rows[i]) * np.linalg.norm(rows[j]))) ** 2
    return total / (n * (n - 1) / 2)


def _numpy_filter_diversity(w):
    kh, kw, cin, cout = w.shape
    return np.mean([_sq_cos_mean(w[:, :, :, f].reshape(kh * kw, cin))
                    for f in range(cout)])


def _numpy_smooth(x):
    """Per-channel 3x3 Gaussian, SAME (zero padding), stride 1; x [H, W, C]."""
    g = losses.GAUSSIAN_3X3.astype(np.float64)
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            out += g[dy, dx] * padded[dy:dy + h, dx:dx + w]
    return out


def _numpy_spatial_diversity(fmap):
    values = []
    for sample in fmap:
        smooth = _numpy_smooth(sample)
        values.append(_sq_cos_mean(smooth.reshape(-1, smooth.shape[-1]).T))
    return np.mean(values)


def test_filter_diversity_full_size_kernel():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.02, (3, 3, 576, 320)).astype(np.float32)
    w[:, :, :, 7] = w[0, 0, :, 7]  # identical taps: cos^2 = 1 for filter 7
    got = losses.filter_diversity(tf.constant(w)).numpy()
    expect = _numpy_filter_diversity(w.astype(np.float64))
    assert abs(got - expect) <= TOL * max(1.0, abs(expect))
    assert abs(got - expect) / expect < 1e-4
    assert expect > 1.0 / 320  # filter 7 alone contributes 1/320


def test_spatial_diversity_on_masked_maps():
    rng = np.random.default_rng(1)
    k5 = rng.normal(size=(3, 24, 24, 40)).astype(np.float32)
    fmap = peak_mask(tf.constant(k5)).numpy()
    got = losses.spatial_activation_diversity(tf.constant(fmap)).numpy()
    expect = _numpy_spatial_diversity(fmap.astype(np.float64))
    assert abs(got - expect) <= TOL * max(1.0, abs(expect))
    assert abs(got - expect) / expect < 1e-4


def test_gaussian_smoothing_matches_numpy():
    x = np.random.default_rng(2).normal(size=(2, 24, 24, 6)).astype(np.float32)
    got = losses.gaussian_smooth(tf.constant(x)).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], _numpy_smooth(x[b].astype(np.float64)),
                                   rtol=0, atol=1e-6)


def test_feature_activation_diversity_and_ties():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(4, 320)).astype(np.float32)
    fo = f + rng.normal(0, 0.1, (4, 320)).astype(np.float32)
    loss, mask = losses.feature_activation_diversity(f, fo)
    change = np.abs(f.astype(np.float64) - fo).mean(0)
    order = np.sort(change)
    assert abs(loss.numpy() - order[:260].sum()) <= TOL
    np.testing.assert_array_equal(mask.numpy(), change <= order[259])
    assert mask.numpy().sum() == 260

    # Ties at the 260th value keep more than 260 dimensions: 250 distinct
    # small changes, 20 equal to 0.5 (ranks 251..270), 50 large ones.
    change = np.concatenate([np.arange(250) * 1e-3, np.full(20, 0.5),
                             1.0 + np.arange(50) * 1e-2]).astype(np.float32)
    change = change[rng.permutation(320)]
    zeros = np.zeros((4, 320), np.float32)
    loss, mask = losses.feature_activation_diversity(
            zeros, np.tile(change, (4, 1)))
    assert mask.numpy().sum() == 270
    np.testing.assert_array_equal(mask.numpy(), change <= 0.5)
    expect = (np.arange(250) * 1e-3).sum() + 10 * 0.5
    assert abs(loss.numpy() - expect) <= TOL

    with pytest.raises(ValueError, match="num_keep"):
        losses.feature_activation_diversity(f[:, :32], fo[:, :32])


def test_cross_entropy_and_accuracy():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    labels = np.array([0, 3, 6, 2, 2])
    logits[1, 3] = 10.0  # right
    logits[4, 2] = 10.0  # right
    ref = logits.astype(np.float64)
    log_softmax = ref - np.log(np.exp(ref).sum(1, keepdims=True))
    expect = -log_softmax[np.arange(5), labels].mean()
    got = losses.identity_cross_entropy(logits, labels).numpy()
    assert abs(got - expect) <= TOL
    onehot = np.eye(7, dtype=np.float32)[labels]
    assert abs(losses.identity_cross_entropy(logits, onehot).numpy() - expect) <= TOL
    acc = np.mean(ref.argmax(1) == labels)
    assert losses.accuracy(logits, labels).numpy() == pytest.approx(acc)
    assert losses.accuracy(logits, onehot).numpy() == pytest.approx(acc)
    assert 0.0 <= acc <= 1.0 and acc >= 0.4


def test_nan_faithful_and_epsilon():
    w = np.random.default_rng(5).normal(size=(3, 3, 8, 4)).astype(np.float32)
    w[1, 1, :, 2] = 0.0  # an all-zero tap
    assert np.isnan(losses.filter_diversity(w).numpy())
    assert np.isfinite(losses.filter_diversity(w, epsilon=1e-8).numpy())
    fmap = np.random.default_rng(6).normal(size=(2, 24, 24, 5)).astype(np.float32)
    fmap[1, :, :, 3] = 0.0
    assert np.isnan(losses.spatial_activation_diversity(fmap).numpy())
    np.testing.assert_array_equal(
            losses.zero_channels(fmap).numpy(),
            [[False] * 5, [False, False, False, True, False]])
    with_eps = losses.spatial_activation_diversity(fmap, epsilon=1e-8).numpy()
    # The zero channel contributes nothing; the others are unchanged.
    expect = (_numpy_spatial_diversity(fmap[:1].astype(np.float64))
              + _sq_cos_mean(_numpy_smooth(fmap[1].astype(np.float64))
                             .reshape(-1, 5).T[[0, 1, 2, 4]]) * 6 / 10) / 2
    assert abs(with_eps - expect) <= 1e-5
    terms = {"diver_loss": losses.spatial_activation_diversity(fmap),
             "diver_loss_A": losses.filter_diversity(w),
             "occl_loss": tf.constant(0.5)}
    assert losses.nonfinite_terms(terms) == ["diver_loss", "diver_loss_A"]


def test_model_losses_weights_and_total():
    model = InterpFRNet(**SMALL_CONFIG)
    images = tf.random.stateless_uniform([2, 96, 96, 3], [1, 1], -1.0, 1.0)
    occluded = tf.concat([images[:, :40], -tf.ones([2, 12, 96, 3]),
                          images[:, 52:]], axis=1)
    labels = np.array([3, 7])
    # Inference mode keeps the two calls deterministic (no moving updates).
    base = losses.model_losses(model, images, occluded, labels,
                               training=False, num_keep=26)
    weights = losses.LossWeights(identity=1.0, identity_occl=3.0,
                                 filter_diversity=10.0, spatial_diversity=0.0,
                                 spatial_diversity_occl=2.0, occlusion=1.0)
    other = losses.model_losses(model, images, occluded, labels,
                                training=False, weights=weights, num_keep=26)
    ratios = {"d_loss_real_id": 0.5, "d_loss_real_id_occl": 1.5,
              "diver_loss_A": 0.1, "diver_loss": 0.0, "diver_loss_o": 2.0,
              "occl_loss": 10.0}
    for name, ratio in ratios.items():
        assert float(other[name]) == pytest.approx(float(base[name]) * ratio,
                                                   rel=1e-5, abs=1e-7), name
    for result in (base, other):
        assert float(result["d_loss"]) == pytest.approx(
                sum(float(result[n]) for n in ratios), rel=1e-6)
    assert losses.LossWeights() == losses.LossWeights(2.0, 2.0, 100.0, 1.0,
                                                      1.0, 0.1)
    assert float(base["d_loss_real_id"]) == pytest.approx(
            2 * losses.identity_cross_entropy(
                    base["outputs"]["logits"], labels).numpy(), rel=1e-6)
    assert base["occlusion_mask"].numpy().sum() == 26
    with pytest.raises(ValueError, match="base"):
        losses.model_losses(InterpFRNet(variant="base", **SMALL_CONFIG),
                            images, occluded, labels)
