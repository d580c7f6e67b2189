"""Keras attribute-recovery modules without torch: semantics, noise, training hooks."""
import numpy as np
import pytest
import tensorflow as tf

from attr_recovery.nets.backbones import (IRSEBackbone, MobileFaceNet, PReLU, TorchBatchNorm,
                                     resize_align_corners)
from attr_recovery.nets.equalized import EqualConv2d, EqualLinear, StackedEqualLinear
from attr_recovery.nets.latent_transformer import IDDEncoder
from attr_recovery.nets.stylegan2 import Generator, ModulatedConv2d
from attr_recovery.nets.upfirdn import (Downsample, Upsample, make_kernel, upfirdn2d,
                                   upfirdn2d_numpy)


@pytest.mark.parametrize("up,down,pad", [
    (1, 1, (0, 0)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 2, (1, 2)),
    ((2, 1), 1, (1, 1, 0, 2)), (1, (1, 2), (0, 1, 2, 1)), (3, 1, (-1, -2)),
    (1, 1, (3, -1, -2, 0))])
def test_upfirdn2d_matches_numpy_reference(up, down, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    k = rng.standard_normal((3, 4)).astype(np.float32)        # asymmetric: tests the flip
    got = upfirdn2d(x, k, up=up, down=down, pad=pad).numpy()
    want = upfirdn2d_numpy(x, k, up=up, down=down, pad=pad)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_blur_kernel_and_resamplers():
    k = make_kernel([1, 3, 3, 1])
    np.testing.assert_allclose(k, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0)
    x = np.ones((1, 8, 8, 2), np.float32)
    up = Upsample()(x).numpy()
    assert up.shape == (1, 16, 16, 2)
    # gain factor^2 keeps a constant image constant away from the borders
    np.testing.assert_allclose(up[0, 2:-2, 2:-2], 1.0, atol=1e-6)
    assert Downsample()(x).shape == (1, 4, 4, 2)


def test_equalized_layers():
    rng = np.random.default_rng(1)
    lin = EqualLinear(8, 4, bias_init=0.5, lr_mul=0.1)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    want = x @ (lin.weight.numpy() * 0.1 / np.sqrt(8)) + 0.5 * 0.1
    np.testing.assert_allclose(lin(x), want, atol=1e-5)
    assert lin(x[:, None, :]).shape == (3, 1, 4)
    stacked = StackedEqualLinear(5, 8, 4)
    got = stacked(x).numpy()
    for h in range(5):
        np.testing.assert_allclose(got[:, h], x @ stacked.weight.numpy()[h] / np.sqrt(8),
                                   atol=1e-5)
    conv = EqualConv2d(3, 4, 3, stride=2, padding=1)
    assert conv(np.zeros((1, 9, 9, 3), np.float32)).shape == (1, 5, 5, 4)


def _modconv_numpy(x, style, layer):
    """Per-sample weight (the original formulation), direct correlation."""
    s = style @ (layer.modulation.weight.numpy() / np.sqrt(layer.style_dim)) \
        + layer.modulation.bias.numpy()
    k = layer.kernel_size
    p = k // 2
    out = []
    for n in range(x.shape[0]):
        w = layer.weight.numpy() * layer.scale * s[n][None, None, :, None]
        if layer.demodulate:
            w = w / np.sqrt((w ** 2).sum(axis=(0, 1, 2)) + 1e-8)
        xp = np.pad(x[n], [(p, p), (p, p), (0, 0)])
        h, wd = x.shape[1], x.shape[2]
        y = np.zeros((h, wd, w.shape[3]))
        for i in range(k):
            for j in range(k):
                y += xp[i:i + h, j:j + wd] @ w[i, j]
        out.append(y)
    return np.stack(out)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_per_sample_weights(demodulate):
    rng = np.random.default_rng(2)
    layer = ModulatedConv2d(4, 5, 3, 6, demodulate=demodulate)
    layer.modulation.bias.assign(rng.standard_normal(4).astype(np.float32))
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    s = rng.standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_allclose(layer(x, s), _modconv_numpy(x, s, layer), atol=1e-4)
    up = ModulatedConv2d(4, 5, 3, 6, upsample=True)
    assert up(x, s).shape == (2, 12, 12, 5)


@pytest.fixture(scope="module")
def small_generator():
    g = Generator(size=16, style_dim=16, n_mlp=2,
                  channels={4: 16, 8: 16, 16: 8})
    rng = np.random.default_rng(3)
    for layer in [g.conv1] + g.convs:
        layer.noise.weight.assign([0.7])
    return g, rng.standard_normal((2, g.n_latent, 16)).astype(np.float32)


def test_generator_shapes_and_layout(small_generator):
    g, w = small_generator
    assert (g.n_latent, g.num_layers) == (6, 5)
    assert [g.noise_resolution(i) for i in range(g.num_layers)] == [4, 8, 8, 16, 16]
    assert g(w, noise_mode="zero").shape == (2, 16, 16, 3)
    # one W code equals the same code tiled to every layer
    np.testing.assert_allclose(g(w[:, 0], noise_mode="zero"),
                               g(np.repeat(w[:, :1], 6, axis=1), noise_mode="zero"),
                               atol=1e-5)
    with pytest.raises(ValueError, match="W\\+ codes"):
        g(w[:, :5])
    with pytest.raises(ValueError, match="noise must have"):
        g(w, noise=[None] * 3)
    with pytest.raises(ValueError, match="noise_mode"):
        g(w, noise_mode="fixed")


def test_generator_noise_modes(small_generator):
    g, w = small_generator
    a, b = g(w).numpy(), g(w).numpy()
    assert np.abs(a - b).max() > 1e-3, "random noise must differ between calls"
    np.testing.assert_array_equal(g(w, noise_mode="const"), g(w, noise_mode="const"))
    np.testing.assert_array_equal(g(w, seed=11), g(w, seed=11))
    assert np.abs(g(w, seed=11).numpy() - g(w, seed=12).numpy()).max() > 1e-3
    # explicit noise for some layers, the rest from noise_mode
    noise = [None] * g.num_layers
    noise[0] = np.zeros((1, 4, 4, 1), np.float32)
    np.testing.assert_allclose(g(w, noise=noise, noise_mode="zero"),
                               g(w, noise_mode="zero"), atol=1e-6)
    # seeded decoding is reproducible inside tf.function as well
    f = tf.function(lambda w, s: g(w, seed=s))
    np.testing.assert_allclose(f(w, tf.constant(5, tf.int64)), g(w, seed=5), atol=1e-5)


def test_generator_is_trainable(small_generator):
    g, w = small_generator

    @tf.function
    def grads(w):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(g(w, seed=1)))
        return tape.gradient(loss, g.trainable_weights)

    gs = grads(tf.constant(w))
    names = [v.path for v, gr in zip(g.trainable_weights, gs) if gr is None]
    # the mapping network is bypassed by W+ input
    assert all(n.startswith("linear_") for n in names), names
    assert len(g.non_trainable_weights) == g.num_layers      # the fixed noise maps


def test_idd_encoder():
    enc = IDDEncoder(n_latents=3, n_mlp=6, dim=8)
    z = np.random.default_rng(4).standard_normal((2, 8)).astype(np.float32)
    delta = enc(z, add_mean=False).numpy()
    assert delta.shape == (2, 3, 8) and np.abs(delta).max() <= 1.0
    mean = np.arange(24, dtype=np.float32).reshape(1, 3, 8)
    enc.set_mean_latent(mean)
    np.testing.assert_allclose(enc(z), mean + delta, atol=1e-6)
    with pytest.raises(ValueError, match="mean latent"):
        enc.set_mean_latent(np.zeros((3, 9)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(enc(z))
    assert all(g is not None for g in tape.gradient(loss, enc.trainable_weights))
    assert len(enc.trainable_weights) == 2 * (2 + 4)


def test_torch_batch_norm_semantics():
    rng = np.random.default_rng(5)
    bn = TorchBatchNorm(3)
    x = rng.standard_normal((4, 5, 5, 3)).astype(np.float32) * 2 + 1
    y = bn(x, training=True).numpy()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-4)
    n = 4 * 5 * 5
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, atol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var * n / (n - 1), atol=1e-5)
    y_eval = bn(x).numpy()
    np.testing.assert_allclose(
        y_eval, (x - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5),
        atol=1e-5)
    p = PReLU(3)
    np.testing.assert_allclose(p(np.array([[-2.0, 0.0, 3.0]], np.float32)),
                               [[-0.5, 0.0, 3.0]])


def test_backbones_shapes_and_resize():
    x = np.random.default_rng(6).uniform(-1, 1, (2, 64, 80, 3)).astype(np.float32)
    # align_corners keeps the corner pixels
    r = resize_align_corners(x).numpy()
    np.testing.assert_allclose(r[:, [0, -1]][:, :, [0, -1]], x[:, [0, -1]][:, :, [0, -1]],
                               atol=1e-6)
    for model in (IRSEBackbone(stage_units=(1, 1, 1, 1), stage_channels=(16, 32, 32, 64)),
                  MobileFaceNet(residual_blocks=(1, 1, 1))):
        f = model(x).numpy()
        assert f.shape == (2, 512)
        np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
        assert model(x, normalize=False).shape == (2, 512)


def test_backbone_trains_under_tf_function():
    model = IRSEBackbone(stage_units=(1, 1, 1, 1), stage_channels=(16, 32, 32, 64))
    x = tf.constant(np.random.default_rng(7).uniform(-1, 1, (4, 112, 112, 3)),
                    tf.float32)
    before = model.stem_bn.running_mean.numpy().copy()

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True, normalize=False)[:, 0])
        return tape.gradient(loss, model.trainable_weights)

    grads = step(x)
    assert all(g is not None for g in grads)
    assert np.abs(model.stem_bn.running_mean.numpy() - before).max() > 0
