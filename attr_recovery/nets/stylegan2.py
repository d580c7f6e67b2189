"""StyleGAN2 generator (the widely used PyTorch re-implementation's layout), NHWC.

This is the facial image decoder of the attribute-recovery pipeline: 14 W+
codes [N, 14, 512] in, a 256x256 RGB image in [-1, 1] (roughly) out. The
mapping network is kept (trainable, and needed to sample new mean latents),
but the recovery path feeds W+ codes directly and bypasses it, as the original
does (its ``input_is_latent`` defaults to True).

Layout (size 256, channel_multiplier 2): constant 4x4x512 input, a 3x3
modulated conv at 4 px, then for every resolution 8..size an upsampling
modulated conv (transposed conv + [1,3,3,1] blur) and a plain one, each followed
by noise injection and a biased leaky ReLU; an RGB branch (1x1 modulated conv
without demodulation) at every resolution, summed with the blurred upsampled
skip of the previous one. W+ index use: conv1 -> 0, to_rgb1 -> 1, then per
resolution (up conv, conv, to_rgb) -> (i, i+1, i+2), i = 1, 3, 5, ...

Modulated convolutions are computed by scaling the *input* by the style and
the *output* by the demodulation factor around one ordinary batched conv. This
is algebraically the per-sample weight the original builds
(``conv(x, w * s) * d == conv(x * s, w) * d``), avoids grouped convolutions
(not available for TF on CPU) and differs only in float rounding (verified
<= 1e-4 against the per-sample-weight form in tests/attr_recovery/test_attr_modules.py).
"""
import math

import keras
import tensorflow as tf

from attr_recovery.nets.equalized import FUSED_LRELU, EqualLinear, FusedLeakyReLU
from attr_recovery.nets.upfirdn import BLUR_KERNEL, Blur, Upsample

NOISE_MODES = ("random", "const", "zero")


def pixel_norm(x, epsilon=1e-8):
    """x / sqrt(mean(x^2 over the last axis) + eps). x [..., D] -> same shape."""
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True)
                             + epsilon)


def default_channels(channel_multiplier=2):
    """Channels per resolution of the original generator: {4: 512, ..., 1024: 16*cm}."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm,
            256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}


class ModulatedConv2d(keras.layers.Layer):
    """Style-modulated (and optionally demodulated) convolution.

    Variables: ``weight`` [k, k, in_channel, out_channel] ~ N(0, 1) (torch
    ``[1, out, in, k, k]``), and ``modulation`` = EqualLinear(style_dim,
    in_channel, bias_init=1).

    Call: x [N, H, W, in_channel], style [N, style_dim] ->
      [N, H, W, out] (plain), [N, 2H, 2W, out] (upsample), [N, H/2, W/2, out]
      (downsample).
    """

    def __init__(self, in_channel, out_channel, kernel_size, style_dim,
                 demodulate=True, upsample=False, downsample=False,
                 blur_kernel=BLUR_KERNEL, **kwargs):
        super().__init__(**kwargs)
        self.in_channel = int(in_channel)
        self.out_channel = int(out_channel)
        self.kernel_size = int(kernel_size)
        self.style_dim = int(style_dim)
        self.demodulate = bool(demodulate)
        self.upsample = bool(upsample)
        self.downsample = bool(downsample)
        self.eps = 1e-8
        k = self.kernel_size
        n_taps = len(blur_kernel)
        self.blur = None
        if self.upsample:
            factor = 2
            p = (n_taps - factor) - (k - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor, name="blur")
        if self.downsample:
            factor = 2
            p = (n_taps - factor) + (k - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2), name="blur")
        self.scale = 1.0 / math.sqrt(self.in_channel * k * k)
        self.padding = k // 2
        self.weight = self.add_weight(
            shape=(k, k, self.in_channel, self.out_channel),
            initializer=keras.initializers.RandomNormal(stddev=1.0), name="weight")
        self.modulation = EqualLinear(self.style_dim, self.in_channel, bias_init=1.0,
                                      name="modulation")
        self.built = True

    def call(self, x, style):
        s = self.modulation(style)                       # [N, in]
        w = self.weight * self.scale                     # [k, k, in, out]
        x = x * s[:, None, None, :]
        demod = None
        if self.demodulate:
            # sum over (k, k, in) of (w * s)^2 = s^2 @ sum_kk w^2
            w_sq = tf.reduce_sum(tf.square(w), axis=[0, 1])          # [in, out]
            demod = tf.math.rsqrt(tf.matmul(tf.square(s), w_sq) + self.eps)
            demod = demod[:, None, None, :]              # [N, 1, 1, out]

        if self.upsample:
            shape = tf.shape(x)
            k = self.kernel_size
            out_shape = tf.stack([shape[0], (shape[1] - 1) * 2 + k,
                                  (shape[2] - 1) * 2 + k, self.out_channel])
            # Torch's conv_transpose2d and TF's conv2d_transpose are both the
            # adjoint of cross-correlation: same tap orientation, no flip.
            out = tf.nn.conv2d_transpose(x, tf.transpose(w, [0, 1, 3, 2]), out_shape,
                                         strides=2, padding="VALID")
            if demod is not None:
                out = out * demod
            return self.blur(out)

        if self.downsample:
            x = self.blur(x)
            out = tf.nn.conv2d(x, w, strides=2, padding="VALID")
        else:
            p = self.padding
            if p:
                x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
            out = tf.nn.conv2d(x, w, strides=1, padding="VALID")
        if demod is not None:
            out = out * demod
        return out


class NoiseInjection(keras.layers.Layer):
    """image + weight * noise; ``weight`` [1], zero-initialised.

    Call: image [N, H, W, C], noise [N or 1, H, W, 1] -> [N, H, W, C].
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.add_weight(shape=(1,), initializer="zeros", name="weight")
        self.built = True

    def call(self, image, noise):
        return image + self.weight * noise


class ConstantInput(keras.layers.Layer):
    """Learned constant ``const`` [1, size, size, channel] ~ N(0, 1), tiled to the batch.

    Call: batch_size (int or scalar tensor) -> [batch_size, size, size, channel].
    """

    def __init__(self, channel, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channel = int(channel)
        self.size = int(size)
        self.const = self.add_weight(
            shape=(1, self.size, self.size, self.channel),
            initializer=keras.initializers.RandomNormal(stddev=1.0), name="input")
        self.built = True

    def call(self, batch_size):
        return tf.tile(self.const, tf.stack([batch_size, 1, 1, 1]))


class StyledConv(keras.layers.Layer):
    """ModulatedConv2d -> NoiseInjection -> FusedLeakyReLU (bias ``activate.bias``).

    Call: x [N, H, W, in], style [N, style_dim], noise [N or 1, H', W', 1]
    -> [N, H', W', out] (H' = 2H when upsample).
    """

    def __init__(self, in_channel, out_channel, kernel_size, style_dim,
                 upsample=False, blur_kernel=BLUR_KERNEL, demodulate=True, **kwargs):
        super().__init__(**kwargs)
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim,
                                    demodulate=demodulate, upsample=upsample,
                                    blur_kernel=blur_kernel, name="conv")
        self.noise = NoiseInjection(name="noise")
        self.activate = FusedLeakyReLU(out_channel, name="activate")
        self.built = True

    def call(self, x, style, noise):
        out = self.conv(x, style)
        out = self.noise(out, noise)
        return self.activate(out)


class ToRGB(keras.layers.Layer):
    """1x1 modulated conv to RGB (no demodulation) + ``bias`` [3] + upsampled skip.

    Call: x [N, H, W, in], style [N, style_dim], skip [N, H/2, W/2, 3] or None
    -> [N, H, W, 3].
    """

    def __init__(self, in_channel, style_dim, upsample=True,
                 blur_kernel=BLUR_KERNEL, **kwargs):
        super().__init__(**kwargs)
        self.upsample = Upsample(blur_kernel, name="upsample") if upsample else None
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False,
                                    name="conv")
        self.bias = self.add_weight(shape=(3,), initializer="zeros", name="bias")
        self.built = True

    def call(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            if self.upsample is None:
                raise ValueError("this ToRGB has no upsampler but got a skip input")
            out = out + self.upsample(skip)
        return out


class MappingNetwork(keras.layers.Layer):
    """Pixel norm then ``n_mlp`` EqualLinear(style_dim, style_dim, lr_mul, fused lrelu).

    Call: z [..., style_dim] -> w [..., style_dim].
    """

    def __init__(self, style_dim, n_mlp, lr_mlp=0.01, **kwargs):
        super().__init__(**kwargs)
        self.style_dim = int(style_dim)
        self.n_mlp = int(n_mlp)
        self.lr_mlp = float(lr_mlp)
        self.linears = [EqualLinear(self.style_dim, self.style_dim, lr_mul=self.lr_mlp,
                                   activation=FUSED_LRELU, name=f"linear_{i}")
                       for i in range(self.n_mlp)]
        self.built = True

    def call(self, z):
        x = pixel_norm(z)
        for layer in self.linears:
            x = layer(x)
        return x


class Generator(keras.Model):
    """StyleGAN2 generator; W+ codes in, NHWC image out.

    Args:
      size: output resolution, a power of two >= 8 (256 in the original; 32 or
        64 for CPU tests).
      style_dim: W dimension (512).
      n_mlp: mapping-network depth (8).
      channel_multiplier: 2 in the original (channels 512 up to 32 px,
        256*cm at 64, 128*cm at 128, 64*cm at 256).
      blur_kernel: FIR taps for up-sampling (1, 3, 3, 1).
      lr_mlp: mapping-network learning-rate multiplier (0.01).
      channels: optional {resolution: channels} overriding the table above
        (small test models); not in the original.

    Attributes: ``n_latent`` = 2 * log2(size) - 2 (14 at 256),
    ``num_layers`` = 2 * log2(size) - 3 noise inputs, ``noises`` stored
    fixed noise maps [1, r, r, 1] (torch buffers ``noises.noise_i``).

    Call:
      styles: [N, n_latent, style_dim] W+ codes, or [N, style_dim] (one code
        broadcast to every layer); with ``input_is_latent=False`` these are Z
        codes and go through the mapping network first.
      noise: optional list of ``num_layers`` tensors [N or 1, r, r, 1] (None
        entries fall back to ``noise_mode``). Layer i has r = 2 ** ((i + 5) // 2).
      noise_mode: 'random' (fresh N(0,1) noise on every call, the original's
        behaviour), 'const' (the stored ``noises``) or 'zero'.
      seed: with noise_mode='random', an int (or int scalar tensor) making the
        noise a deterministic function of (seed, layer): reproducible decoding.
        Per-sample noise [N, r, r, 1]; not the same numbers as torch's RNG.
      truncation, truncation_latent: w <- t_lat + truncation * (w - t_lat).
    Returns: image [N, size, size, 3].
    """

    def __init__(self, size=256, style_dim=512, n_mlp=8, channel_multiplier=2,
                 blur_kernel=BLUR_KERNEL, lr_mlp=0.01, channels=None, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.log_size = int(round(math.log2(self.size)))
        if 2 ** self.log_size != self.size or self.size < 8:
            raise ValueError(f"size must be a power of two >= 8, got {size}")
        self.style_dim = int(style_dim)
        self.n_mlp = int(n_mlp)
        self.channel_multiplier = int(channel_multiplier)
        self.blur_kernel = tuple(blur_kernel)
        self.lr_mlp = float(lr_mlp)
        table = default_channels(self.channel_multiplier)
        if channels is not None:
            table.update({int(k): int(v) for k, v in dict(channels).items()})
        self.channels = {r: table[r] for r in (2 ** i for i in range(2, self.log_size + 1))}
        self.channels_override = (None if channels is None else
                                  {int(k): int(v) for k, v in dict(channels).items()})

        self.style = MappingNetwork(self.style_dim, self.n_mlp, self.lr_mlp,
                                    name="style")
        self.const_input = ConstantInput(self.channels[4], name="input")
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, self.style_dim,
                                blur_kernel=self.blur_kernel, name="conv1")
        self.to_rgb1 = ToRGB(self.channels[4], self.style_dim, upsample=False,
                             name="to_rgb1")
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2

        self.noises = []
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.append(self.add_weight(
                shape=(1, r, r, 1), trainable=False, name=f"noise_{i}",
                initializer=keras.initializers.RandomNormal(stddev=1.0)))

        self.convs = []
        self.to_rgbs = []
        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, self.style_dim,
                                         upsample=True, blur_kernel=self.blur_kernel,
                                         name=f"convs_{len(self.convs)}"))
            self.convs.append(StyledConv(out_channel, out_channel, 3, self.style_dim,
                                         blur_kernel=self.blur_kernel,
                                         name=f"convs_{len(self.convs)}"))
            self.to_rgbs.append(ToRGB(out_channel, self.style_dim,
                                      blur_kernel=self.blur_kernel,
                                      name=f"to_rgbs_{len(self.to_rgbs)}"))
            in_channel = out_channel
        self.built = True

    def noise_resolution(self, layer_index):
        """Spatial size r of noise input ``layer_index`` (0 .. num_layers - 1)."""
        return 2 ** ((layer_index + 5) // 2)

    def _make_noise(self, batch, noise, noise_mode, seed):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise is not None and len(noise) != self.num_layers:
            raise ValueError(f"noise must have {self.num_layers} entries, got {len(noise)}")
        out = []
        for i in range(self.num_layers):
            given = None if noise is None else noise[i]
            if given is not None:
                out.append(tf.convert_to_tensor(given, dtype=self.compute_dtype))
                continue
            r = self.noise_resolution(i)
            if noise_mode == "const":
                out.append(self.noises[i])
            elif noise_mode == "zero":
                out.append(tf.zeros([1, r, r, 1], dtype=self.compute_dtype))
            elif seed is None:
                out.append(tf.random.normal(tf.stack([batch, r, r, 1]),
                                            dtype=self.compute_dtype))
            else:
                pair = tf.stack([tf.cast(seed, tf.int64), tf.constant(i, tf.int64)])
                out.append(tf.random.stateless_normal(tf.stack([batch, r, r, 1]),
                                                      seed=pair,
                                                      dtype=self.compute_dtype))
        return out

    def call(self, styles, noise=None, noise_mode="random", seed=None,
             input_is_latent=True, truncation=1.0, truncation_latent=None):
        styles = tf.convert_to_tensor(styles, dtype=self.compute_dtype)
        if not input_is_latent:
            styles = self.style(styles)
        if truncation != 1.0:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent")
            styles = truncation_latent + truncation * (styles - truncation_latent)
        if len(styles.shape) == 2:
            latent = tf.tile(styles[:, None, :], [1, self.n_latent, 1])
        elif len(styles.shape) == 3:
            if styles.shape[1] is not None and styles.shape[1] != self.n_latent:
                raise ValueError(f"expected {self.n_latent} W+ codes, got "
                                 f"{styles.shape[1]}")
            latent = styles
        else:
            raise ValueError(f"styles must be [N, D] or [N, n_latent, D], got "
                             f"shape {styles.shape}")
        batch = tf.shape(latent)[0]
        noises = self._make_noise(batch, noise, noise_mode, seed)

        out = self.const_input(batch)
        out = self.conv1(out, latent[:, 0], noises[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for j, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * j](out, latent[:, i], noises[2 * j + 1])
            out = self.convs[2 * j + 1](out, latent[:, i + 1], noises[2 * j + 2])
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip

    def mean_latent(self, n_samples=4096, seed=0):
        """Mean W of ``n_samples`` mapped N(0, 1) Z codes. Returns [1, style_dim]."""
        z = tf.random.stateless_normal([n_samples, self.style_dim], seed=[seed, 0])
        return tf.reduce_mean(self.style(z), axis=0, keepdims=True)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp,
                      channel_multiplier=self.channel_multiplier,
                      blur_kernel=self.blur_kernel, lr_mlp=self.lr_mlp,
                      channels=self.channels_override)
        return config
