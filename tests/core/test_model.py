"""Unit tests of the layers and of InterpFRNet's structure and tracing."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from interp_fr.layers import (FUSED_BN_MIN_EPSILON, PeakMask, TF1BatchNorm,
                              l2_normalize_channels, legacy_bilinear_resize,
                              peak_mask)
from interp_fr.model import VARIANTS, InterpFRNet
from tests.reference.tf1_reference import SMALL_CONFIG


def _numpy_legacy_resize(x, out_h, out_w):
    """TF1 resize_bilinear, align_corners=False, no half-pixel centres:
    source coordinate = destination index * in / out."""
    def axis_weights(n_in, n_out):
        src = np.arange(n_out) * (n_in / n_out)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    b, h, w, c = x.shape
    y0, y1, ly = axis_weights(h, out_h)
    x0, x1, lx = axis_weights(w, out_w)
    top = x[:, y0][:, :, x0] * (1 - lx)[None, None, :, None] \
        + x[:, y0][:, :, x1] * lx[None, None, :, None]
    bottom = x[:, y1][:, :, x0] * (1 - lx)[None, None, :, None] \
        + x[:, y1][:, :, x1] * lx[None, None, :, None]
    return top * (1 - ly)[None, :, None, None] + bottom * ly[None, :, None, None]


@pytest.mark.parametrize("size_in", [6, 12])
def test_legacy_resize_matches_tf1_formula_not_tf2(size_in):
    x = np.random.default_rng(size_in).normal(size=(2, size_in, size_in, 5))
    x = x.astype(np.float32)
    ours = legacy_bilinear_resize(x, (24, 24)).numpy()
    np.testing.assert_allclose(ours, _numpy_legacy_resize(x.astype(np.float64),
                                                          24, 24),
                               rtol=0, atol=1e-6)
    # The last rows replicate the last source row (clamped), unlike TF2.
    np.testing.assert_array_equal(ours[:, -1, -1], x[:, -1, -1])
    tf2 = tf.image.resize(x, (24, 24)).numpy()
    assert np.abs(tf2 - ours).max() > 0.1


def test_l2_normalize_channels():
    x = np.array([[[[3.0, 4.0], [0.0, 0.0]]]], np.float32)
    y = l2_normalize_channels(x).numpy()
    np.testing.assert_allclose(y[0, 0, 0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(y[0, 0, 1], [0.0, 0.0])  # max(., 1e-12)


def test_tf1_batch_norm_training_and_moving_update_closed_form():
    rng = np.random.default_rng(0)
    x1 = rng.normal(2.0, 3.0, (4, 5, 5, 3)).astype(np.float32)
    x2 = rng.normal(-1.0, 0.5, (4, 5, 5, 3)).astype(np.float32)
    bn = TF1BatchNorm(3, name="bn")
    bn.build()
    bn.gamma.assign([1.5, 0.5, 2.0])
    bn.beta.assign([0.1, -0.2, 0.3])
    y1 = bn(x1, training=True).numpy()
    y2 = bn(x2, training=True).numpy()

    mm, mv = np.zeros(3), np.ones(3)
    n = 4 * 5 * 5
    for x, y in ((x1, y1), (x2, y2)):
        flat = x.reshape(-1, 3).astype(np.float64)
        mean, var = flat.mean(0), flat.var(0)  # biased for the output
        expect = (x - mean) / np.sqrt(var + 1.001e-5) * [1.5, 0.5, 2.0] \
            + [0.1, -0.2, 0.3]
        np.testing.assert_allclose(y, expect, rtol=0, atol=1e-5)
        mm = mm - (mm - mean) * 0.1
        mv = mv - (mv - var * n / (n - 1)) * 0.1  # Bessel-corrected
    np.testing.assert_allclose(bn.moving_mean.numpy(), mm, rtol=0, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), mv, rtol=0,
                               atol=1e-6)

    # Inference uses the moving statistics and the raised epsilon.
    bn.moving_variance.assign([1e-5, 1e-5, 1e-5])
    y = bn(x1, training=False).numpy()
    expect = (x1 - mm) / np.sqrt(1e-5 + FUSED_BN_MIN_EPSILON) \
        * [1.5, 0.5, 2.0] + [0.1, -0.2, 0.3]
    np.testing.assert_allclose(y, expect, rtol=1e-5)
    assert bn.effective_epsilon == FUSED_BN_MIN_EPSILON


def test_tf1_batch_norm_plain_path_equals_fused_kernel():
    """Rank 4 runs the fused kernel; other ranks the plain ops: same numbers."""
    x = np.random.default_rng(2).normal(1.0, 2.0, (3, 4, 4, 5)).astype(np.float32)
    fused, plain = TF1BatchNorm(5), TF1BatchNorm(5)
    fused.build()
    plain.build()
    y4 = fused(x, training=True).numpy()
    y2 = plain(x.reshape(-1, 5), training=True).numpy()
    np.testing.assert_allclose(y2, y4.reshape(-1, 5), rtol=0, atol=2e-6)
    np.testing.assert_allclose(plain.moving_variance.numpy(),
                               fused.moving_variance.numpy(), rtol=0, atol=1e-6)
    assert abs(fused.moving_variance.numpy() - 1.0).max() > 0.1


def test_keras_batch_norm_would_differ():
    """Why TF1BatchNorm exists: Keras updates with the biased variance."""
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 2)).astype(np.float32)
    ours = TF1BatchNorm(2)
    ours.build()
    ours(x, training=True)
    stock = keras.layers.BatchNormalization(momentum=0.9, epsilon=1.001e-5)
    stock(x, training=True)
    assert np.abs(ours.moving_variance.numpy()
                  - stock.moving_variance.numpy()).max() > 1e-3


def _numpy_peak_mask(k5, k):
    b, h, w, c = k5.shape
    mag = np.abs(k5).reshape(b, h * w, c)
    kth = -np.sort(-mag, axis=1)[:, k - 1]  # [B, C]
    keep = mag > kth[:, None, :]
    return (k5.reshape(b, h * w, c) * keep).reshape(k5.shape)


def test_peak_mask_rule_with_ties():
    rng = np.random.default_rng(2)
    k5 = rng.normal(size=(2, 24, 24, 5)).astype(np.float32)
    col = k5[0, :, :, 1].reshape(-1)
    col[:] = rng.uniform(0.0, 0.4, col.size)
    col[:20] = np.linspace(1.0, 2.0, 20)
    col[20:25] = -0.5  # |.| ties at ranks 21..25: only 20 survive
    k5[0, :, :, 1] = col.reshape(24, 24)
    k5[0, :, :, 2] = 0.7  # all 576 tie: nothing survives
    top = k5[1, :, :, 3].reshape(-1)
    top[:30] = 9.0  # 30 tie at the top: nothing survives
    k5[1, :, :, 3] = top.reshape(24, 24)
    out = PeakMask()(k5).numpy()
    np.testing.assert_array_equal(out, _numpy_peak_mask(k5, 24))
    survivors = np.count_nonzero(out, axis=(1, 2))
    assert survivors[0, 1] == 20 and survivors[0, 2] == 0
    assert survivors[1, 3] == 0 and survivors[0, 0] == 23
    np.testing.assert_array_equal(peak_mask(k5, k=5).numpy(),
                                  _numpy_peak_mask(k5, 5))


def test_default_config_names_and_shapes():
    model = InterpFRNet()
    shapes = {n: tuple(v.shape) for n, v in model.tf1_variable_map().items()}
    assert len(shapes) == 104
    assert shapes["d_k01_conv/w"] == (3, 3, 3, 32)
    assert shapes["d_k22_conv/w"] == (3, 3, 96, 192)
    assert shapes["d_k41_conv/w"] == (3, 3, 256, 160)
    assert shapes["d_k42_conv/w"] == (3, 3, 160, 320)
    assert shapes["d_pca32_conv_new/w"] == (1, 1, 256, 192)
    assert shapes["d_pca42_conv_new/w"] == (1, 1, 320, 192)
    assert shapes["d_k5_conv_new/w"] == (3, 3, 576, 320)
    assert shapes["d_k5_new/moving_variance"] == (320,)
    assert shapes["d_k7_id_lin_new/Matrix"] == (320, 10575)
    assert shapes["d_k7_id_lin_new/bias"] == (10575,)
    for unused in ("d_k_bn0_0", "d_k_bn1_3", "d_k_bn3_3", "d_k_bn5"):
        assert not any(n.startswith(unused + "/") for n in shapes)
    assert model.filter_kernel.shape == (3, 3, 576, 320)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_shapes(variant):
    config = dict(SMALL_CONFIG, dfc_dim=16)
    model = InterpFRNet(variant=variant, **config)
    images = tf.random.stateless_uniform([2, 96, 96, 3], [7, 8], -1.0, 1.0)
    out = model(images, training=False)
    assert out["logits"].shape == (2, 10)
    if variant == "base":
        assert out["feature"].shape == (2, 32)  # gfc_dim
        assert out["feature_map"].shape == (2, 6, 6, 32)
        assert model.filter_kernel is None
        assert len(model.tf1_variable_map()) == 86
    else:
        assert out["feature"].shape == (2, 16)  # dfc_dim
        assert out["feature_map"].shape == (2, 24, 24, 16)
        assert model.filter_kernel.shape == (3, 3, 144, 16)
    np.testing.assert_allclose(
            out["feature"], tf.reduce_mean(out["feature_map"], axis=[1, 2]),
            rtol=0, atol=1e-7)
    masked = variant == "full"
    assert np.array_equal(out["feature_map"], out["k5"]) != masked


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        InterpFRNet(variant="spatial", **SMALL_CONFIG)
    with pytest.raises(ValueError, match="96, 96, 3"):
        InterpFRNet(**SMALL_CONFIG)(np.zeros((1, 64, 64, 3), np.float32))


def test_classify_mask_and_dropout():
    model = InterpFRNet(**SMALL_CONFIG)
    feature = tf.random.stateless_normal([3, 32], seed=[1, 2])
    mask = np.ones(32, np.float32)
    mask[:10] = 0.0
    k7 = model.tf1_variable_map()
    expect = (feature.numpy() * mask) @ k7["d_k7_id_lin_new/Matrix"].numpy() \
        + k7["d_k7_id_lin_new/bias"].numpy()
    np.testing.assert_allclose(model.classify(feature, mask=mask), expect,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
            model.classify(feature, training=True, mask=mask,
                           apply_dropout=False), expect, rtol=1e-5, atol=1e-6)
    dropped = model.classify(feature, training=True, mask=mask).numpy()
    assert np.abs(dropped - expect).max() > 1e-4


def test_tf_function_traces_once_for_two_batch_sizes():
    model = InterpFRNet(**SMALL_CONFIG)
    spec = tf.TensorSpec([None, 96, 96, 3], tf.float32)
    infer = tf.function(lambda x: model(x, training=False),
                        input_signature=[spec])
    images = tf.random.stateless_uniform([3, 96, 96, 3], [3, 4], -1.0, 1.0)
    a = infer(images)
    b = infer(images[:1])
    assert infer.experimental_get_tracing_count() == 1
    # Each against the eager call of the same batch: oneDNN's convolutions may
    # block a batch of 1 differently from one of 3, and a last-bit change can
    # move a peak of the mask (BUILD_NOTES.md, "oneDNN kernels on AVX2-only CPUs").
    for got, batch in ((a, images), (b, images[:1])):
        eager = model(batch, training=False)
        np.testing.assert_allclose(got["feature"], eager["feature"], atol=1e-6)


def test_jit_compile_training_and_inference():
    """One XLA function holding a training forward (BN updates, peak mask)
    and an inference forward.  (The training gradient also compiles under
    XLA; it is left out here because XLA on CPU takes ~30 s to compile it.)"""
    model = InterpFRNet(**SMALL_CONFIG)
    images = tf.random.stateless_uniform([2, 96, 96, 3], [5, 6], -1.0, 1.0)
    moving = model.tf1_variable_map()["d_k5_new/moving_mean"]
    before = moving.numpy().copy()

    @tf.function(jit_compile=True)
    def both(x):
        train = model(x, training=True, apply_dropout=False)["feature"]
        return train, model(x, training=False)["feature"]

    train, infer = both(images)
    after = moving.numpy().copy()
    assert np.abs(after - before).max() > 0  # updated under XLA
    np.testing.assert_allclose(infer, model(images, training=False)["feature"],
                               rtol=0, atol=1e-5)
    moving.assign(before)
    eager = model(images, training=True, apply_dropout=False)["feature"]
    np.testing.assert_allclose(train, eager, rtol=0, atol=1e-5)
    np.testing.assert_allclose(moving.numpy(), after, rtol=0, atol=1e-6)
