"""Attribute estimators p(a | x), Keras (not in the original code).

- `AttributeEstimator`: one configurable multi-head CNN. A small VGG-style
  trunk (3x3 conv + batch norm + ReLU, four stride-2 stages), the final
  4 x 4 map flattened (position matters for pose) into a dense layer, one head
  per `attributes.AttributeSpec`: a scalar for regression heads (trained with
  MSE on targets standardised by the training set's mean / std, stored in the
  model) and logits for classification heads (cross-entropy).
- `LandmarkEstimator`: a small heat-map regressor in the spirit of the
  original's (unused) HRNetV2-W18 98-point WFLW network: a stride-4 trunk with
  dilated residual blocks for a face-sized receptive field, one up-sampling
  step with a skip connection, and K heat maps at stride 2; landmarks are the
  soft-argmax (integral regression) of the heat maps, so coordinates are
  differentiable and sub-pixel.

Both take images [N, H, W, 3] in [-1, 1] showing the 96 px face frame (IJB-A
crop convention) at any resolution and resize them to ``input_size``
(area averaging down, bilinear up): decoded faces of any size can be read.
"""
import keras
import numpy as np
import tensorflow as tf

from attr_recovery.nets.attributes import REGRESSION

FRAME_SIZE = 96.0


def resize_images(images, size):
    """[N, H, W, 3] -> [N, size, size, 3] float32: area averaging down, bilinear up."""
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape[1] == size and x.shape[2] == size:
        return x
    method = "area" if (x.shape[1] or 0) > size else "bilinear"
    return tf.image.resize(x, (size, size), method=method)


def _conv_bn(filters, stride=1, dilation=1, name=None):
    return [keras.layers.Conv2D(filters, 3, strides=stride, padding="same",
                                dilation_rate=dilation, use_bias=False,
                                name=None if name is None else name + "_conv"),
            # Momentum 0.9: runs of a few hundred steps must still end with
            # usable moving statistics.
            keras.layers.BatchNormalization(momentum=0.9,
                                            name=None if name is None else name + "_bn")]


class AttributeEstimator(keras.Model):
    """Multi-head attribute estimator.

    Args:
      heads: tuple of `AttributeSpec`.
      input_size: working resolution (the face frame is resized to it); a
        multiple of 16.
      width: channels of the first stage (then x2, x4, x4).
      dense_units: width of the shared dense layer.
      dropout: dropout rate before the heads (training only).

    Call: images [N, H, W, 3] in [-1, 1] -> dict: regression head name ->
    [N] standardised prediction; classification head name -> [N, C] logits.
    `readout` gives natural units and scalar readouts.
    """

    def __init__(self, heads, input_size=64, width=32, dense_units=128, dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        self.heads = tuple(heads)
        self.input_size = int(input_size)
        self.width = int(width)
        self.dense_units = int(dense_units)
        self.dropout_rate = float(dropout)
        self.trunk_layers = []
        self.trunk_layers += _conv_bn(self.width, name="stem")
        for i, mult in enumerate((1, 2, 4, 4)):
            self.trunk_layers += _conv_bn(self.width * mult, stride=2, name=f"s{i}a")
            self.trunk_layers += _conv_bn(self.width * mult, name=f"s{i}b")
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(self.dense_units, activation="relu", name="dense")
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        # All heads in one Dense layer, sliced per head: one kernel instead of
        # one layer per head keeps graph tracing (a large part of a short
        # run's time on a CPU) short.
        sizes = [max(1, h.num_classes) for h in self.heads]
        self.head_slices = list(zip(np.cumsum([0] + sizes[:-1]).tolist(), sizes))
        self.head_layer = keras.layers.Dense(int(sum(sizes)), name="heads")
        self.regression_names = [h.name for h in self.heads if h.kind == REGRESSION]
        n_reg = max(1, len(self.regression_names))
        self.target_mean = self.add_weight(shape=(n_reg,), initializer="zeros",
                                           trainable=False, name="target_mean")
        self.target_std = self.add_weight(shape=(n_reg,), initializer="ones",
                                          trainable=False, name="target_std")
        # Built by one call so that the variable list (checkpoint keys) is
        # complete and fixed before any restore.
        self(tf.zeros([1, self.input_size, self.input_size, 3]))

    def set_target_normalisation(self, mean, std):
        """Stores the regression targets' mean and std ([R] each, head order)."""
        self.target_mean.assign(np.asarray(mean, np.float32).reshape(-1))
        self.target_std.assign(np.maximum(np.asarray(std, np.float32).reshape(-1), 1e-6))

    def features(self, images, training=False):
        """The shared dense features [N, dense_units]."""
        x = resize_images(images, self.input_size)
        for i in range(0, len(self.trunk_layers), 2):
            conv, bn = self.trunk_layers[i], self.trunk_layers[i + 1]
            x = tf.nn.relu(bn(conv(x), training=training))
        x = self.dense(self.flatten(x))
        return self.dropout(x, training=training)

    def call(self, images, training=False):
        h = self.features(images, training)
        out = {}
        y = self.head_layer(h)
        for spec, (start, size) in zip(self.heads, self.head_slices):
            out[spec.name] = (y[:, start] if spec.kind == REGRESSION
                              else y[:, start:start + size])
        return out

    def readout(self, images, training=False):
        """Natural-unit predictions.

        Returns: dict name -> [N] float32: regression heads de-standardised,
        classification heads the expected readout value (`AttributeSpec.readout`);
        plus ``name + "/probs"`` -> [N, C] class probabilities.
        """
        raw = self(images, training=training)
        out = {}
        for spec in self.heads:
            y = raw[spec.name]
            if spec.kind == REGRESSION:
                j = self.regression_names.index(spec.name)
                out[spec.name] = y * self.target_std[j] + self.target_mean[j]
            else:
                p = tf.nn.softmax(y, axis=-1)
                out[spec.name] = tf.linalg.matvec(p, tf.constant(spec.readout, tf.float32))
                out[spec.name + "/probs"] = p
        return out

    def get_config(self):
        return {"heads": [h.to_json() for h in self.heads], "input_size": self.input_size,
                "width": self.width, "dense_units": self.dense_units,
                "dropout": self.dropout_rate}


def soft_argmax(heatmaps):
    """Integral regression: heat-map logits [N, H, W, K] -> [N, K, 2] (x, y) in [0, 1].

    Cell (i, j) has centre ((j + 0.5) / W, (i + 0.5) / H): the corner-based
    continuous frame in which the landmarks are stored.
    """
    shape = tf.shape(heatmaps)
    h, w = shape[1], shape[2]
    flat = tf.reshape(heatmaps, [shape[0], h * w, shape[3]])
    p = tf.nn.softmax(flat, axis=1)
    ys = (tf.cast(tf.range(h), tf.float32) + 0.5) / tf.cast(h, tf.float32)
    xs = (tf.cast(tf.range(w), tf.float32) + 0.5) / tf.cast(w, tf.float32)
    gx = tf.reshape(tf.tile(xs[None, :], [h, 1]), [-1])
    gy = tf.reshape(tf.tile(ys[:, None], [1, w]), [-1])
    x = tf.einsum("npk,p->nk", p, gx)
    y = tf.einsum("npk,p->nk", p, gy)
    return tf.stack([x, y], axis=-1)


class LandmarkEstimator(keras.Model):
    """Heat-map landmark regressor.

    Args:
      num_landmarks: K (68 for the iBUG layout the project's files use).
      input_size: working resolution (multiple of 4); heat maps are input / 2.
      width: channels of the stride-2 stem (the stride-4 trunk has 2 x width).
      dilations: dilation of each residual block of the stride-4 trunk.

    Call: images [N, H, W, 3] in [-1, 1] (the 96 px face frame at any
    resolution) -> dict ``heatmaps`` [N, input/2, input/2, K] logits and
    ``landmarks`` [N, K, 2] (x, y) in pixels of the 96 px frame.
    """

    def __init__(self, num_landmarks=68, input_size=64, width=32,
                 dilations=(1, 2, 4, 1), **kwargs):
        super().__init__(**kwargs)
        if input_size % 4:
            raise ValueError(f"input_size must be a multiple of 4, got {input_size}")
        self.num_landmarks = int(num_landmarks)
        self.input_size = int(input_size)
        self.width = int(width)
        self.dilations = tuple(int(d) for d in dilations)
        self.stem = _conv_bn(self.width, stride=2, name="stem")
        self.stem2 = _conv_bn(self.width, name="stem2")
        self.down = _conv_bn(2 * self.width, stride=2, name="down")
        self.blocks = [(_conv_bn(2 * self.width, dilation=d, name=f"res{i}a"),
                        _conv_bn(2 * self.width, dilation=d, name=f"res{i}b"))
                       for i, d in enumerate(self.dilations)]
        self.fuse = _conv_bn(self.width, name="fuse")
        self.out = keras.layers.Conv2D(self.num_landmarks, 1, name="heatmaps")
        self(tf.zeros([1, self.input_size, self.input_size, 3]))

    @staticmethod
    def _apply(pair, x, training):
        conv, bn = pair
        return bn(conv(x), training=training)

    def call(self, images, training=False):
        x = resize_images(images, self.input_size)
        skip = tf.nn.relu(self._apply(self.stem, x, training))
        skip = tf.nn.relu(self._apply(self.stem2, skip, training))
        x = tf.nn.relu(self._apply(self.down, skip, training))
        for a, b in self.blocks:
            y = tf.nn.relu(self._apply(a, x, training))
            x = tf.nn.relu(x + self._apply(b, y, training))
        x = tf.image.resize(x, tf.shape(skip)[1:3], method="bilinear")
        x = tf.concat([x, skip], axis=-1)
        x = tf.nn.relu(self._apply(self.fuse, x, training))
        heat = self.out(x)
        return {"heatmaps": heat, "landmarks": soft_argmax(heat) * FRAME_SIZE}

    def get_config(self):
        return {"num_landmarks": self.num_landmarks, "input_size": self.input_size,
                "width": self.width, "dilations": list(self.dilations)}


def head_losses(estimator, outputs, targets):
    """Per-head mean losses of a batch.

    Args:
      estimator: `AttributeEstimator` (for heads and target normalisation).
      outputs: its call output.
      targets: dict name -> [N] float32 label values, NaN = missing.
    Returns: dict name -> scalar (0 when the batch has no label for the head).
    """
    losses = {}
    for spec in estimator.heads:
        if spec.name not in targets:
            continue
        t = tf.convert_to_tensor(targets[spec.name], tf.float32)
        if spec.kind == REGRESSION:
            j = estimator.regression_names.index(spec.name)
            valid = tf.math.is_finite(t)
            ts = (tf.where(valid, t, 0.0) - estimator.target_mean[j]) / estimator.target_std[j]
            err = tf.square(outputs[spec.name] - ts)
        else:
            labels = tf.fill(tf.shape(t), -1)
            for k, value in enumerate(spec.class_values):
                labels = tf.where(tf.abs(t - value) < 1e-6, k, labels)
            valid = labels >= 0
            err = tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.maximum(labels, 0), outputs[spec.name])
        w = tf.cast(valid, tf.float32)
        losses[spec.name] = tf.reduce_sum(err * w) / tf.maximum(tf.reduce_sum(w), 1.0)
    return losses
