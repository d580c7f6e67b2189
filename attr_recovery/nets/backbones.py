"""Face recognition backbones of the attribute-recovery work, NHWC.

- ``IRSEBackbone``: ArcFace IR-SE-50 ("r50"): stem conv3x3 3->64 + BN + PReLU,
  four stages of bottleneck_IR_SE units (3 x 64, 4 x 128, 14 x 256, 3 x 512;
  the first unit of each stage has stride 2: 112 -> 56 -> 28 -> 14 -> 7), head
  BN2d, dropout 0.1, flatten, linear 512*7*7 -> 512, BN1d, L2 norm.
- ``MobileFaceNet`` ("mb"): conv 3->64 s2, depthwise 64, depthwise-separable
  down-sampling blocks with 2 / 3 / 6 residual blocks, 1x1 256->512, 7x7 global
  depthwise conv, linear 512->512 without bias, BN1d, L2 norm.

Inputs: images [N, H, W, 3] in [-1, 1], any size; they are resized to 112x112
bilinearly with align_corners=True (as the original's ``F.interpolate``).
Outputs: [N, 512] L2-normalised features (x / ||x||, no epsilon, like the
original's ``l2_norm``).

Batch norm and PReLU follow torch exactly: eval ``(x - mean) / sqrt(var + eps)
* weight + bias`` with eps 1e-5; training normalises with the biased batch
variance and updates the running variance with the unbiased one, momentum 0.1.
Convolutions use torch's symmetric zero padding (TF 'SAME' pads strided convs
asymmetrically and would shift every stride-2 layer by half a pixel).

The torch head flattens [C, 7, 7] in C-major order; here the map is flattened
NHWC ([7, 7, C]); the checkpoint converter permutes the linear weight
accordingly, so outputs match the original.
"""
import keras
import tensorflow as tf

INPUT_SIZE = 112


def resize_align_corners(images, size=(INPUT_SIZE, INPUT_SIZE)):
    """Bilinear resize with align_corners=True (torch ``F.interpolate`` semantics).

    Args:
      images: [N, H, W, C].
      size: (out_h, out_w).
    Returns: [N, out_h, out_w, C]; the input itself if it already has that size.
    """
    images = tf.convert_to_tensor(images)
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    out = tf.raw_ops.ResizeBilinear(images=images, size=tf.constant(size, tf.int32),
                                    align_corners=True, half_pixel_centers=False)
    return tf.cast(out, images.dtype)


def l2_normalize(x):
    """x / ||x||_2 along the last axis, without epsilon (as the original). [N, D]."""
    return x / tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True))


class TorchBatchNorm(keras.layers.Layer):
    """torch BatchNorm1d/2d on the last axis.

    Variables: ``weight`` (gamma, ones), ``bias`` (beta, zeros), non-trainable
    ``running_mean`` (zeros) and ``running_var`` (ones), all [channels].
    Call: x [..., channels] -> same shape.
    """

    def __init__(self, channels, eps=1e-5, momentum=0.1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.weight = self.add_weight(shape=(self.channels,), initializer="ones",
                                      name="weight")
        self.bias = self.add_weight(shape=(self.channels,), initializer="zeros",
                                    name="bias")
        self.running_mean = self.add_weight(shape=(self.channels,), initializer="zeros",
                                            trainable=False, name="running_mean")
        self.running_var = self.add_weight(shape=(self.channels,), initializer="ones",
                                           trainable=False, name="running_var")
        self.built = True

    def call(self, x, training=None):
        if not training:
            return ((x - self.running_mean) / tf.sqrt(self.running_var + self.eps)
                    * self.weight + self.bias)
        axes = list(range(len(x.shape) - 1))
        mean, var = tf.nn.moments(x, axes=axes)
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
        unbiased = var * n / tf.maximum(n - 1.0, 1.0)
        m = self.momentum
        self.running_mean.assign((1.0 - m) * self.running_mean + m * mean)
        self.running_var.assign((1.0 - m) * self.running_var + m * unbiased)
        return (x - mean) / tf.sqrt(var + self.eps) * self.weight + self.bias


class PReLU(keras.layers.Layer):
    """torch PReLU with one slope per channel: max(0, x) + weight * min(0, x).

    Variable ``weight`` [channels] = 0.25. Call: x [..., channels] -> same shape.
    """

    def __init__(self, channels, init=0.25, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.add_weight(shape=(int(channels),),
                                      initializer=keras.initializers.Constant(init),
                                      name="weight")
        self.built = True

    def call(self, x):
        return tf.maximum(x, 0.0) + self.weight * tf.minimum(x, 0.0)


class TorchConv2d(keras.layers.Layer):
    """Conv2d with torch's symmetric padding; groups 1 or depthwise (groups == in == out).

    Variables: ``weight`` [kh, kw, in, out] (groups 1) or [kh, kw, in, 1]
    (depthwise); optional ``bias`` [out].
    Call: x [N, H, W, in] -> [N, (H + 2p - kh) // s + 1, ..., out].
    """

    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0,
                 groups=1, bias=False, **kwargs):
        super().__init__(**kwargs)
        kh, kw = ((kernel_size, kernel_size) if isinstance(kernel_size, int)
                  else tuple(kernel_size))
        self.padding = ((padding, padding) if isinstance(padding, int)
                        else tuple(padding))
        self.stride = int(stride)
        self.groups = int(groups)
        if self.groups == 1:
            shape = (kh, kw, in_channel, out_channel)
        elif self.groups == in_channel == out_channel:
            shape = (kh, kw, in_channel, 1)
        else:
            raise ValueError("only groups=1 or depthwise (groups == in == out) "
                             f"are supported, got groups={groups}, in={in_channel}, "
                             f"out={out_channel}")
        self.weight = self.add_weight(shape=shape, initializer="he_normal",
                                      name="weight")
        self.bias = (self.add_weight(shape=(out_channel,), initializer="zeros",
                                     name="bias") if bias else None)
        self.built = True

    def call(self, x):
        ph, pw = self.padding
        if ph or pw:
            x = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        s = self.stride
        if self.groups == 1:
            out = tf.nn.conv2d(x, self.weight, strides=s, padding="VALID")
        else:
            out = tf.nn.depthwise_conv2d(x, self.weight, strides=[1, s, s, 1],
                                         padding="VALID")
        if self.bias is not None:
            out = out + self.bias
        return out


class SEModule(keras.layers.Layer):
    """Squeeze-excitation: x * sigmoid(fc2(relu(fc1(mean_hw(x))))), 1x1 convs without bias.

    Variables ``fc1`` [C, C // reduction], ``fc2`` [C // reduction, C].
    Call: x [N, H, W, C] -> same shape.
    """

    def __init__(self, channels, reduction=16, **kwargs):
        super().__init__(**kwargs)
        hidden = channels // reduction
        self.fc1 = self.add_weight(shape=(channels, hidden), initializer="he_normal",
                                   name="fc1")
        self.fc2 = self.add_weight(shape=(hidden, channels), initializer="he_normal",
                                   name="fc2")
        self.built = True

    def call(self, x):
        s = tf.reduce_mean(x, axis=[1, 2])
        s = tf.sigmoid(tf.matmul(tf.nn.relu(tf.matmul(s, self.fc1)), self.fc2))
        return x * s[:, None, None, :]


class BottleneckIRSE(keras.layers.Layer):
    """bottleneck_IR_SE unit: BN, conv3x3, BN, PReLU, conv3x3(stride), BN, SE; + shortcut.

    Shortcut: identity for stride 1 (the original's 1x1 max-pool), conv1x1(stride)
    + BN otherwise. ``use_se=False`` gives the plain IR unit.
    Call: x [N, H, W, in_channel] -> [N, H / stride, W / stride, depth].
    """

    def __init__(self, in_channel, depth, stride, use_se=True, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)
        if self.stride == 1:
            if in_channel != depth:
                raise ValueError("a stride-1 unit has an identity shortcut and needs "
                                 f"in_channel == depth, got {in_channel} != {depth}")
            self.shortcut_conv = self.shortcut_bn = None
        else:
            self.shortcut_conv = TorchConv2d(in_channel, depth, 1, stride=self.stride,
                                             name="shortcut_conv")
            self.shortcut_bn = TorchBatchNorm(depth, name="shortcut_bn")
        self.bn0 = TorchBatchNorm(in_channel, name="bn0")
        self.conv1 = TorchConv2d(in_channel, depth, 3, stride=1, padding=1, name="conv1")
        self.bn1 = TorchBatchNorm(depth, name="bn1")
        self.prelu = PReLU(depth, name="prelu")
        self.conv2 = TorchConv2d(depth, depth, 3, stride=self.stride, padding=1,
                                 name="conv2")
        self.bn2 = TorchBatchNorm(depth, name="bn2")
        self.se = SEModule(depth, 16, name="se") if use_se else None
        self.built = True

    def call(self, x, training=None):
        if self.shortcut_conv is None:
            shortcut = x
        else:
            shortcut = self.shortcut_bn(self.shortcut_conv(x), training=training)
        r = self.bn0(x, training=training)
        r = self.prelu(self.bn1(self.conv1(r), training=training))
        r = self.bn2(self.conv2(r), training=training)
        if self.se is not None:
            r = self.se(r)
        return r + shortcut


class IRSEBackbone(keras.Model):
    """ArcFace IR-SE backbone ("r50" with the defaults).

    Args:
      stage_units: units per stage, (3, 4, 14, 3) for IR-SE-50.
      stage_channels: output channels per stage, (64, 128, 256, 512).
      use_se: squeeze-excitation in every unit (True: 'ir_se' mode).
      drop_ratio: head dropout (active only with training=True).
      embedding_size: output width (512).

    ``units`` is the flat list of units (torch ``body.i``). Call: images
    [N, H, W, 3] -> [N, embedding_size], L2-normalised unless normalize=False.
    """

    STEM_CHANNELS = 64

    def __init__(self, stage_units=(3, 4, 14, 3), stage_channels=(64, 128, 256, 512),
                 use_se=True, drop_ratio=0.1, embedding_size=512, **kwargs):
        super().__init__(**kwargs)
        self.stage_units = tuple(int(u) for u in stage_units)
        self.stage_channels = tuple(int(c) for c in stage_channels)
        self.use_se = bool(use_se)
        self.drop_ratio = float(drop_ratio)
        self.embedding_size = int(embedding_size)
        c0 = self.STEM_CHANNELS
        self.stem_conv = TorchConv2d(3, c0, 3, stride=1, padding=1, name="stem_conv")
        self.stem_bn = TorchBatchNorm(c0, name="stem_bn")
        self.stem_prelu = PReLU(c0, name="stem_prelu")
        self.units = []
        in_channel = c0
        for n_units, depth in zip(self.stage_units, self.stage_channels):
            for u in range(n_units):
                self.units.append(BottleneckIRSE(
                    in_channel if u == 0 else depth, depth, 2 if u == 0 else 1,
                    use_se=self.use_se, name=f"body_{len(self.units)}"))
            in_channel = depth
        self.out_channels = in_channel
        final = INPUT_SIZE // 2 ** len(self.stage_units)
        self.final_size = final
        self.head_bn2d = TorchBatchNorm(in_channel, name="head_bn2d")
        self.head_dropout = keras.layers.Dropout(self.drop_ratio, name="head_dropout")
        self.head_linear = keras.layers.Dense(self.embedding_size, name="head_linear")
        self.head_linear.build((None, in_channel * final * final))
        self.head_bn1d = TorchBatchNorm(self.embedding_size, name="head_bn1d")
        self.built = True

    def call(self, images, training=None, normalize=True):
        x = resize_align_corners(images)
        x = self.stem_prelu(self.stem_bn(self.stem_conv(x), training=training))
        for unit in self.units:
            x = unit(x, training=training)
        x = self.head_bn2d(x, training=training)
        x = self.head_dropout(x, training=training)
        x = tf.reshape(x, [-1, self.final_size * self.final_size * self.out_channels])
        x = self.head_bn1d(self.head_linear(x), training=training)
        return l2_normalize(x) if normalize else x

    def get_config(self):
        config = super().get_config()
        config.update(stage_units=self.stage_units, stage_channels=self.stage_channels,
                      use_se=self.use_se, drop_ratio=self.drop_ratio,
                      embedding_size=self.embedding_size)
        return config


class ConvBlock(keras.layers.Layer):
    """MobileFaceNet Conv_block (conv, BN, PReLU) or Linear_block (``prelu=False``).

    Call: x [N, H, W, in_c] -> [N, H', W', out_c].
    """

    def __init__(self, in_c, out_c, kernel=1, stride=1, padding=0, groups=1,
                 prelu=True, **kwargs):
        super().__init__(**kwargs)
        self.conv = TorchConv2d(in_c, out_c, kernel, stride=stride, padding=padding,
                                groups=groups, name="conv")
        self.bn = TorchBatchNorm(out_c, name="bn")
        self.prelu = PReLU(out_c, name="prelu") if prelu else None
        self.built = True

    def call(self, x, training=None):
        x = self.bn(self.conv(x), training=training)
        return self.prelu(x) if self.prelu is not None else x


class DepthWise(keras.layers.Layer):
    """Depth_Wise: 1x1 expand to ``groups``, depthwise 3x3 (stride), 1x1 linear project.

    Call: x [N, H, W, in_c] -> [N, H / stride, W / stride, out_c]; the input is
    added back when ``residual``.
    """

    def __init__(self, in_c, out_c, residual=False, kernel=3, stride=2, padding=1,
                 groups=1, **kwargs):
        super().__init__(**kwargs)
        self.residual = bool(residual)
        self.conv = ConvBlock(in_c, groups, 1, name="conv")
        self.conv_dw = ConvBlock(groups, groups, kernel, stride=stride, padding=padding,
                                 groups=groups, name="conv_dw")
        self.project = ConvBlock(groups, out_c, 1, prelu=False, name="project")
        self.built = True

    def call(self, x, training=None):
        out = self.conv(x, training=training)
        out = self.conv_dw(out, training=training)
        out = self.project(out, training=training)
        return x + out if self.residual else out


class MobileFaceNet(keras.Model):
    """MobileFaceNet variant of the original ("mb").

    Args:
      embedding_size: output width (512).
      residual_blocks: residual Depth_Wise blocks at 64 / 128 / 256 channels
        ((2, 3, 6) in the original; fewer for small tests).

    Attributes mirror the torch names: conv1, conv2_dw, conv_23, conv_3 (list),
    conv_34, conv_4, conv_45, conv_5, conv_6_sep, conv_6_dw, linear
    ([512, embedding_size], no bias), bn.
    Call: images [N, H, W, 3] -> [N, embedding_size], L2-normalised unless
    normalize=False.
    """

    def __init__(self, embedding_size=512, residual_blocks=(2, 3, 6), **kwargs):
        super().__init__(**kwargs)
        self.embedding_size = int(embedding_size)
        self.residual_blocks = tuple(int(b) for b in residual_blocks)
        n3, n4, n5 = self.residual_blocks
        self.conv1 = ConvBlock(3, 64, 3, stride=2, padding=1, name="conv1")
        self.conv2_dw = ConvBlock(64, 64, 3, stride=1, padding=1, groups=64,
                                  name="conv2_dw")
        self.conv_23 = DepthWise(64, 64, stride=2, groups=128, name="conv_23")
        self.conv_3 = [DepthWise(64, 64, residual=True, stride=1, groups=128,
                                 name=f"conv_3_{i}") for i in range(n3)]
        self.conv_34 = DepthWise(64, 128, stride=2, groups=256, name="conv_34")
        self.conv_4 = [DepthWise(128, 128, residual=True, stride=1, groups=256,
                                 name=f"conv_4_{i}") for i in range(n4)]
        self.conv_45 = DepthWise(128, 256, stride=2, groups=512, name="conv_45")
        self.conv_5 = [DepthWise(256, 256, residual=True, stride=1, groups=512,
                                 name=f"conv_5_{i}") for i in range(n5)]
        self.conv_6_sep = ConvBlock(256, 512, 1, name="conv_6_sep")
        self.conv_6_dw = ConvBlock(512, 512, 7, groups=512, prelu=False,
                                   name="conv_6_dw")
        self.linear = self.add_weight(shape=(512, self.embedding_size),
                                      initializer="glorot_uniform", name="linear")
        self.bn = TorchBatchNorm(self.embedding_size, name="bn")
        self.built = True

    def call(self, images, training=None, normalize=True):
        x = resize_align_corners(images)
        x = self.conv1(x, training=training)
        x = self.conv2_dw(x, training=training)
        x = self.conv_23(x, training=training)
        for block in self.conv_3:
            x = block(x, training=training)
        x = self.conv_34(x, training=training)
        for block in self.conv_4:
            x = block(x, training=training)
        x = self.conv_45(x, training=training)
        for block in self.conv_5:
            x = block(x, training=training)
        x = self.conv_6_sep(x, training=training)
        x = self.conv_6_dw(x, training=training)
        x = tf.reshape(x, [-1, 512])
        x = self.bn(tf.matmul(x, self.linear), training=training)
        return l2_normalize(x) if normalize else x

    def get_config(self):
        config = super().get_config()
        config.update(embedding_size=self.embedding_size,
                      residual_blocks=self.residual_blocks)
        return config
