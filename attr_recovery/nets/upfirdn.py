"""upfirdn2d: upsample by zero insertion, pad, FIR filter, downsample.

Semantics follow the reference ("native") StyleGAN2 op that the original
decoder uses, on channels-last tensors:

1. up: after every input sample insert ``up - 1`` zeros (so the upsampled
   length is ``H * up``, trailing zeros included);
2. pad: ``pad0`` zeros before and ``pad1`` after on each spatial axis; a
   negative pad crops instead;
3. filter: true convolution with the kernel, i.e. cross-correlation with the
   kernel flipped on both axes, 'VALID';
4. down: keep every ``down``-th sample starting with the first.

Output length per axis: ``(L * up + pad0 + pad1 - k) // down + 1``.
Every channel is filtered independently with the same kernel.
"""
import numpy as np
import keras
import tensorflow as tf

BLUR_KERNEL = (1, 3, 3, 1)


def make_kernel(k):
    """2-D FIR kernel normalised to unit sum.

    Args:
      k: 1-D taps (outer product with itself is taken) or a 2-D array.

    Returns:
      float32 numpy array [kh, kw] summing to 1.
    """
    k = np.asarray(k, dtype=np.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return (k / k.sum()).astype(np.float32)


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v}")
    return v


def _pads(pad):
    """(pad0, pad1) for both axes, or (px0, px1, py0, py1) -> (py0, py1, px0, px1)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        px0, px1, py0, py1 = pad
        return py0, py1, px0, px1
    raise ValueError(f"pad must have 2 or 4 entries, got {pad}")


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample, pad, FIR-filter and downsample every channel of an NHWC tensor.

    Args:
      x: tensor [N, H, W, C].
      kernel: array [kh, kw] (taps as given; it is flipped for the convolution,
        like the reference op).
      up: int or (up_x, up_y).
      down: int or (down_x, down_y).
      pad: (pad0, pad1) applied to both axes, or (pad_x0, pad_x1, pad_y0, pad_y1)
        as in the reference op's argument order.

    Returns:
      tensor [N, (H*up_y + py0 + py1 - kh) // down_y + 1,
              (W*up_x + px0 + px1 - kw) // down_x + 1, C].
    """
    x = tf.convert_to_tensor(x)
    up_x, up_y = _pair(up, "up")
    down_x, down_y = _pair(down, "down")
    py0, py1, px0, px1 = _pads(pad)
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D, got shape {kernel.shape}")
    kh, kw = kernel.shape
    channels = x.shape[-1]
    if channels is None:
        raise ValueError("upfirdn2d needs a static channel dimension")

    if up_x > 1 or up_y > 1:
        shape = tf.shape(x)
        n, h, w = shape[0], shape[1], shape[2]
        # Zero insertion as reshape + pad, one axis at a time: 5-D pads, which
        # LiteRT's builtin PAD takes (a single 6-D pad it does not).
        x = tf.reshape(x, [n, h, 1, w, channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, up_y - 1], [0, 0], [0, 0]])
        x = tf.reshape(x, [n, h * up_y, w, 1, channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, up_x - 1], [0, 0]])
        x = tf.reshape(x, [n, h * up_y, w * up_x, channels])

    x = tf.pad(x, [[0, 0], [max(py0, 0), max(py1, 0)], [max(px0, 0), max(px1, 0)],
                   [0, 0]])
    if min(py0, py1, px0, px1) < 0:
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        x = x[:, max(-py0, 0):h - max(-py1, 0), max(-px0, 0):w - max(-px1, 0), :]

    flipped = kernel[::-1, ::-1]
    filt = tf.constant(np.tile(flipped[:, :, None, None], [1, 1, channels, 1]),
                       dtype=x.dtype)
    if down_x == down_y:
        return tf.nn.depthwise_conv2d(x, filt, strides=[1, down_y, down_x, 1],
                                      padding="VALID")
    out = tf.nn.depthwise_conv2d(x, filt, strides=[1, 1, 1, 1], padding="VALID")
    return out[:, ::down_y, ::down_x, :]


def upfirdn2d_numpy(x, kernel, up=1, down=1, pad=(0, 0)):
    """Loop-free numpy reference of ``upfirdn2d`` (float64), for tests.

    Args/Returns as ``upfirdn2d`` with numpy arrays.
    """
    x = np.asarray(x, dtype=np.float64)
    up_x, up_y = _pair(up, "up")
    down_x, down_y = _pair(down, "down")
    py0, py1, px0, px1 = _pads(pad)
    kernel = np.asarray(kernel, dtype=np.float64)
    n, h, w, c = x.shape
    u = np.zeros((n, h * up_y, w * up_x, c))
    u[:, ::up_y, ::up_x, :] = x
    u = np.pad(u, [(0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)),
                   (0, 0)])
    u = u[:, max(-py0, 0):u.shape[1] - max(-py1, 0),
          max(-px0, 0):u.shape[2] - max(-px1, 0), :]
    kh, kw = kernel.shape
    oh, ow = u.shape[1] - kh + 1, u.shape[2] - kw + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(kh):
        for j in range(kw):
            # True convolution: tap (i, j) of the flipped kernel.
            out += kernel[kh - 1 - i, kw - 1 - j] * u[:, i:i + oh, j:j + ow, :]
    return out[:, ::down_y, ::down_x, :]


class Upsample(keras.layers.Layer):
    """x2 (or ``factor``) upsampling with a blur kernel, as used on ToRGB skips.

    Kernel = make_kernel(kernel) * factor^2 (keeps the mean intensity), pads
    (p + 1) // 2 + factor - 1 and p // 2 with p = k - factor.
    Call: [N, H, W, C] -> [N, H*factor, W*factor, C]. No variables.
    """

    def __init__(self, kernel=BLUR_KERNEL, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)
        self.kernel = make_kernel(kernel) * (self.factor ** 2)
        p = self.kernel.shape[0] - self.factor
        self.pad = ((p + 1) // 2 + self.factor - 1, p // 2)
        self.built = True

    def call(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, down=1, pad=self.pad)


class Downsample(keras.layers.Layer):
    """Blur then keep every ``factor``-th sample. Call: [N,H,W,C] -> [N,H/f,W/f,C]."""

    def __init__(self, kernel=BLUR_KERNEL, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)
        self.kernel = make_kernel(kernel)
        p = self.kernel.shape[0] - self.factor
        self.pad = ((p + 1) // 2, p // 2)
        self.built = True

    def call(self, x):
        return upfirdn2d(x, self.kernel, up=1, down=self.factor, pad=self.pad)


class Blur(keras.layers.Layer):
    """FIR blur with explicit pads; kernel scaled by upsample_factor^2 when > 1.

    Call: [N, H, W, C] -> [N, H + pad0 + pad1 - k + 1, ..., C]. No variables.
    """

    def __init__(self, kernel, pad, upsample_factor=1, **kwargs):
        super().__init__(**kwargs)
        self.kernel = make_kernel(kernel)
        if upsample_factor > 1:
            self.kernel = self.kernel * (upsample_factor ** 2)
        self.pad = tuple(int(p) for p in pad)
        self.built = True

    def call(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)
