"""Building blocks that reproduce the TF1 ops of the original network exactly.

Each piece here exists because a stock TF2 / Keras 3 equivalent computes
different numbers (resize, batch norm) or uses different variable names
(convolution, linear).  BUILD_NOTES.md, "Model, losses and TF1 checkpoints", says how each was verified.
"""
import keras
import tensorflow as tf

# The fused TF1 batch-norm kernel silently raises any smaller epsilon to this.
FUSED_BN_MIN_EPSILON = 1.001e-5


def legacy_bilinear_resize(images, size):
    """Bilinear resize with TF1 ``tf.image.resize_images`` defaults.

    TF1 sampled the source at ``dst * in / out`` (no half-pixel offset,
    corners not aligned); TF2's ``tf.image.resize`` uses half-pixel centres and
    gives visibly different values, so the legacy kernel is pinned here.

    Args:
        images: float tensor [B, H, W, C].
        size: (out_h, out_w), Python ints.

    Returns:
        float32 tensor [B, out_h, out_w, C].
    """
    # The raw op is what compat.v1.image.resize_bilinear calls, minus its
    # deprecation warning; it has a gradient and an XLA kernel.
    return tf.raw_ops.ResizeBilinear(
            images=images, size=tf.constant([int(s) for s in size], tf.int32),
            align_corners=False, half_pixel_centers=False)


def l2_normalize_channels(x):
    """TF's l2 normalisation over the last axis: x / sqrt(max(sum x^2, 1e-12)).

    Args:
        x: float tensor [..., C].

    Returns:
        tensor of the same shape.
    """
    # In float32 whatever x's dtype: in float16 the epsilon is 0 and a small
    # vector's sum of squares underflows, giving 0 / 0 (a no-op in float32).
    y = tf.math.l2_normalize(tf.cast(x, tf.float32), axis=-1, epsilon=1e-12)
    return tf.cast(y, x.dtype)


@keras.saving.register_keras_serializable(package="interp_fr")
class TF1Conv2D(keras.layers.Layer):
    """3x3 (or kxk) SAME convolution with the original ``w`` / ``biases`` names.

    Weights: ``w`` [k, k, in_channels, filters] (truncated normal, stddev 0.02),
    ``biases`` [filters] (zeros).
    """

    def __init__(self, filters, in_channels, kernel_size=3, strides=1,
                 stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.in_channels = int(in_channels)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.stddev = float(stddev)

    def build(self, input_shape=None):
        k = self.kernel_size
        self.w = self.add_weight(
                name="w", shape=(k, k, self.in_channels, self.filters),
                initializer=keras.initializers.TruncatedNormal(stddev=self.stddev))
        self.biases = self.add_weight(
                name="biases", shape=(self.filters,), initializer="zeros")
        self.built = True

    def call(self, x):
        """x: [B, H, W, in_channels] -> [B, H/stride, W/stride, filters]."""
        y = tf.nn.conv2d(x, self.w, strides=self.strides, padding="SAME")
        return tf.nn.bias_add(y, self.biases)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, in_channels=self.in_channels,
                      kernel_size=self.kernel_size, strides=self.strides,
                      stddev=self.stddev)
        return config


@keras.saving.register_keras_serializable(package="interp_fr")
class TF1Linear(keras.layers.Layer):
    """Fully connected layer with the original ``Matrix`` / ``bias`` names.

    Weights: ``Matrix`` [in_features, units] (normal, stddev 0.02),
    ``bias`` [units] (zeros).
    """

    def __init__(self, units, in_features, stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.in_features = int(in_features)
        self.stddev = float(stddev)

    def build(self, input_shape=None):
        self.matrix = self.add_weight(
                name="Matrix", shape=(self.in_features, self.units),
                initializer=keras.initializers.RandomNormal(stddev=self.stddev))
        self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer="zeros")
        self.built = True

    def call(self, x):
        """x: [B, in_features] -> [B, units]."""
        return tf.matmul(x, self.matrix) + self.bias

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, in_features=self.in_features,
                      stddev=self.stddev)
        return config


@keras.saving.register_keras_serializable(package="interp_fr")
class TF1BatchNorm(keras.layers.Layer):
    """Batch norm that matches TF1 ``contrib.layers.batch_norm`` (fused kernel).

    Differences from ``keras.layers.BatchNormalization`` that matter at 1e-5:
    the moving variance is updated with the Bessel-corrected batch variance
    (n / (n - 1), n = B * H * W) while the output uses the biased one, the
    decay is applied as ``moving -= (moving - stat) * (1 - momentum)`` with
    ``1 - momentum`` rounded in double precision first, and epsilon is raised
    to 1.001e-5 like the fused kernel does.

    Variables: ``beta``, ``gamma`` (trainable), ``moving_mean``,
    ``moving_variance`` (not trainable), each [channels].
    """

    def __init__(self, channels, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    @property
    def effective_epsilon(self):
        """The epsilon the TF1 fused kernel really used."""
        return max(self.epsilon, FUSED_BN_MIN_EPSILON)

    def build(self, input_shape=None):
        c = (self.channels,)
        self.beta = self.add_weight(name="beta", shape=c, initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=c, initializer="ones")
        # Never autocast: under mixed precision the statistics stay float32.
        # Under a tf.distribute strategy each replica's update is averaged
        # over the replicas, so all copies hold the same statistics (the mean
        # of the per-replica batch statistics enters the moving average).
        moving = dict(shape=c, trainable=False, autocast=False,
                      aggregation="mean")
        self.moving_mean = self.add_weight(
                name="moving_mean", initializer="zeros", **moving)
        self.moving_variance = self.add_weight(
                name="moving_variance", initializer="ones", **moving)
        self.built = True

    def call(self, x, training=False):
        """x: [B, H, W, channels] (any rank >= 2, channels last) -> same shape.

        With ``training`` true, normalises with the batch statistics and
        updates the moving statistics in place (like TF1 with
        ``updates_collections=None``); otherwise uses the moving statistics.
        """
        eps = self.effective_epsilon
        if not training:
            return self._normalize(x, self.moving_mean, self.moving_variance,
                                   eps)
        decay = tf.constant(1.0 - self.momentum, dtype=tf.float32)
        if len(x.shape) == 4:
            # The kernel the original ran (contrib batch_norm picks it): one op
            # each way instead of ~10 passes over the activations, float16
            # inputs with float32 statistics, and the Bessel-corrected
            # variance (unscaled when n == 1) for the moving average.
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                    x, tf.cast(self.gamma, tf.float32),
                    tf.cast(self.beta, tf.float32), epsilon=eps,
                    is_training=True)
            self._update_moving(mean, variance, decay)
            return y
        axes = list(range(len(x.shape) - 1))
        mean, variance = tf.nn.moments(x, axes=axes)
        n = tf.cast(tf.size(x) // self.channels, x.dtype)
        bessel = n / tf.maximum(n - 1.0, 1.0)
        self._update_moving(tf.cast(mean, tf.float32),
                            tf.cast(variance * bessel, tf.float32), decay)
        return self._normalize(x, mean, variance, eps)

    def _update_moving(self, mean, variance, decay):
        self.moving_mean.assign_sub((self.moving_mean - mean) * decay)
        self.moving_variance.assign_sub(
                (self.moving_variance - variance) * decay)

    def _normalize(self, x, mean, variance, eps):
        # Same association as the fused CPU kernel: (x - mean) * scale + beta.
        # Statistics and scale in float32 (casts are no-ops unless the layer
        # computes in float16 under mixed precision).
        scale = (tf.math.rsqrt(tf.cast(variance, tf.float32) + eps)
                 * tf.cast(self.gamma, tf.float32))
        return ((x - tf.cast(mean, x.dtype)) * tf.cast(scale, x.dtype)
                + self.beta)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, momentum=self.momentum,
                      epsilon=self.epsilon)
        return config


def peak_mask(k5, k=None):
    """Keeps, per sample and channel, the values whose |.| beats the k-th largest.

    Ties rule (the original's): the threshold is the k-th largest |k5| of the
    H*W positions; only positions strictly greater survive, so at most k-1 do,
    fewer when values tie at the k-th place, none when k or more tie at the top.

    Args:
        k5: float tensor [B, H, W, C].
        k: number of ranked positions; default H (24 for a 96 px input), as
            the original computes it.

    Returns:
        tensor [B, H, W, C], k5 with the non-peak positions set to zero.
    """
    _, h, w, c = k5.shape
    k = int(h) if k is None else int(k)
    magnitude = tf.abs(k5)
    per_channel = tf.transpose(tf.reshape(magnitude, [-1, h * w, c]), [0, 2, 1])
    kth_largest = tf.math.top_k(per_channel, k=k, sorted=True).values[..., k - 1]
    threshold = tf.reshape(kth_largest, [-1, 1, 1, c])
    # Multiplying by a 0/1 mask (not tf.where) keeps the original's gradient,
    # including NaN/inf propagation from k5 at masked positions.
    return k5 * tf.cast(magnitude > threshold, k5.dtype)


@keras.saving.register_keras_serializable(package="interp_fr")
class PeakMask(keras.layers.Layer):
    """Layer form of :func:`peak_mask` ([B, H, W, C] -> [B, H, W, C])."""

    def __init__(self, k=None, **kwargs):
        super().__init__(**kwargs)
        self.k = k

    def call(self, k5):
        return peak_mask(k5, self.k)

    def get_config(self):
        config = super().get_config()
        config.update(k=self.k)
        return config
