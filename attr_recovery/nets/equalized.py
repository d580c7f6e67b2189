"""Equalised-learning-rate layers and the fused leaky ReLU of StyleGAN2.

"Equalised learning rate" (Karras et al.) stores every weight as a unit-variance
sample (divided by the learning-rate multiplier) and rescales it by
``lr_mul / sqrt(fan_in)`` at call time, so that Adam's per-parameter step size
acts the same on every layer. The stored variables therefore hold the *raw*
weights, exactly as the PyTorch checkpoints of the original do; only the layout
differs (Keras: ``[in, out]`` / ``[kh, kw, in, out]``; torch: ``[out, in]`` /
``[out, in, kh, kw]``). All tensors are channels-last.
"""
import math

import keras
import tensorflow as tf

SQRT2 = math.sqrt(2.0)

FUSED_LRELU = "fused_lrelu"


def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=SQRT2):
    """Bias add, leaky ReLU and gain, as StyleGAN2's fused CUDA op computes them.

    Args:
      x: tensor [..., C] (channels last).
      bias: optional tensor [C], added before the activation.
      negative_slope: slope for negative inputs.
      scale: output gain; sqrt(2) keeps the activation variance near 1.

    Returns:
      tensor with the shape of ``x``.
    """
    if bias is not None:
        x = x + tf.cast(bias, x.dtype)
    return tf.nn.leaky_relu(x, alpha=negative_slope) * scale


class FusedLeakyReLU(keras.layers.Layer):
    """Learned per-channel bias followed by ``fused_leaky_relu``.

    Variable ``bias`` [channels], zero-initialised (torch key ``<prefix>.bias``).
    Call: x [..., channels] -> same shape.
    """

    def __init__(self, channels, negative_slope=0.2, scale=SQRT2, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.negative_slope = float(negative_slope)
        self.scale = float(scale)
        self.bias = self.add_weight(shape=(self.channels,), initializer="zeros",
                                    name="bias")
        self.built = True

    def call(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, negative_slope=self.negative_slope,
                      scale=self.scale)
        return config


class EqualLinear(keras.layers.Layer):
    """Fully connected layer with equalised learning rate.

    Variables: ``weight`` [in_dim, out_dim] ~ N(0, 1 / lr_mul^2) and ``bias``
    [out_dim] = bias_init. Effective weight is ``weight * lr_mul / sqrt(in_dim)``
    and effective bias ``bias * lr_mul`` (the mapping network uses lr_mul=0.01).
    With ``activation='fused_lrelu'`` the bias is added inside the fused leaky ReLU.

    Call: x [..., in_dim] -> [..., out_dim].
    """

    # Leading weight dimensions; StackedEqualLinear sets (n_stack,).
    stack_shape = ()

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0,
                 activation=None, **kwargs):
        super().__init__(**kwargs)
        if activation not in (None, FUSED_LRELU):
            raise ValueError(f"activation must be None or {FUSED_LRELU!r}, "
                             f"got {activation!r}")
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.use_bias = bool(bias)
        self.bias_init = float(bias_init)
        self.lr_mul = float(lr_mul)
        self.activation = activation
        self.scale = (1.0 / math.sqrt(self.in_dim)) * self.lr_mul
        self.weight = self.add_weight(
            shape=self.stack_shape + (self.in_dim, self.out_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_mul),
            name="weight")
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.stack_shape + (self.out_dim,),
                initializer=keras.initializers.Constant(self.bias_init), name="bias")
        self.built = True

    def _project(self, x, w):
        if len(x.shape) == 2:
            return tf.matmul(x, w)
        return tf.tensordot(x, w, axes=[[-1], [0]])

    def call(self, x):
        out = self._project(x, self.weight * self.scale)
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation == FUSED_LRELU:
            return fused_leaky_relu(out, bias)
        if bias is not None:
            out = out + bias
        return out

    def get_config(self):
        config = super().get_config()
        config.update(in_dim=self.in_dim, out_dim=self.out_dim, bias=self.use_bias,
                      bias_init=self.bias_init, lr_mul=self.lr_mul,
                      activation=self.activation)
        return config


class StackedEqualLinear(EqualLinear):
    """``n_stack`` independent EqualLinear layers applied in one batched einsum.

    Used for the 14 per-W+-code heads of the latent transformer, which would
    otherwise be 14 separate small matmuls per layer.

    Variables: ``weight`` [n_stack, in_dim, out_dim], ``bias`` [n_stack, out_dim];
    slice ``i`` is head ``i``'s EqualLinear.

    Call: x [N, in_dim] (same input for every head) or [N, n_stack, in_dim]
    -> [N, n_stack, out_dim].
    """

    def __init__(self, n_stack, in_dim, out_dim, **kwargs):
        self.n_stack = int(n_stack)
        self.stack_shape = (self.n_stack,)
        super().__init__(in_dim, out_dim, **kwargs)

    def _project(self, x, w):
        if len(x.shape) == 2:
            return tf.einsum("nd,sde->nse", x, w)
        return tf.einsum("nsd,sde->nse", x, w)

    def get_config(self):
        config = super().get_config()
        config.update(n_stack=self.n_stack)
        return config


class EqualConv2d(keras.layers.Layer):
    """2-D convolution with equalised learning rate and torch-style padding.

    Variables: ``weight`` [k, k, in_channel, out_channel] ~ N(0, 1), optional
    ``bias`` [out_channel] (zeros). Effective weight ``weight / sqrt(in * k * k)``.
    ``padding`` is symmetric zero padding on both spatial sides, as torch's
    ``F.conv2d(padding=p)`` (not TF's 'SAME', which pads asymmetrically for
    strided convs).

    Call: x [N, H, W, in_channel] -> [N, H', W', out_channel],
    H' = (H + 2p - k) // stride + 1.
    """

    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0,
                 bias=True, **kwargs):
        super().__init__(**kwargs)
        self.in_channel = int(in_channel)
        self.out_channel = int(out_channel)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.padding = int(padding)
        self.use_bias = bool(bias)
        self.scale = 1.0 / math.sqrt(self.in_channel * self.kernel_size ** 2)
        self.weight = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, self.in_channel,
                   self.out_channel),
            initializer=keras.initializers.RandomNormal(stddev=1.0), name="weight")
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.out_channel,),
                                        initializer="zeros", name="bias")
        self.built = True

    def call(self, x):
        if self.padding:
            p = self.padding
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        out = tf.nn.conv2d(x, self.weight * self.scale, strides=self.stride,
                           padding="VALID")
        if self.bias is not None:
            out = out + self.bias
        return out

    def get_config(self):
        config = super().get_config()
        config.update(in_channel=self.in_channel, out_channel=self.out_channel,
                      kernel_size=self.kernel_size, stride=self.stride,
                      padding=self.padding, bias=self.use_bias)
        return config
