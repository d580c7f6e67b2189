"""The interpretable face recognition network (Yin et al.) as a Keras 3 model.

Computes SPEC A1: a 14-layer conv/BN/ELU base CNN, a hypercolumn head on the
24x24 level, the k5 map, peak masking, spatial mean (the face feature k6) and
a linear identity classifier k7.  Every Keras variable carries the original
TF1 variable name (``InterpFRNet.tf1_variable_map``).
"""
import keras
import tensorflow as tf

from interp_fr.layers import (TF1BatchNorm, TF1Conv2D, TF1Linear,
                              l2_normalize_channels, legacy_bilinear_resize,
                              peak_mask)

VARIANT_FULL = "full"
VARIANT_BASE = "base"
VARIANT_HYPERCOLUMN_NO_MASK = "hypercolumn_no_mask"
# "full": hypercolumn + peak mask (the paper's model); "base": the pretrained
# base CNN (k4_2 averaged over 6x6); "hypercolumn_no_mask": hypercolumn model
# without the peak mask.
VARIANTS = (VARIANT_FULL, VARIANT_BASE, VARIANT_HYPERCOLUMN_NO_MASK)

IMAGE_SIZE = 96
IMAGE_CHANNELS = 3

# (block, conv scope, bn scope, stride, out channels as a multiple of df_dim
# or the string "gfc") in the original's order.  The original derives every
# width from df_dim except k4_2, which uses gfc_dim.
BASE_BLOCKS = (
    ("k0_1", "d_k01_conv", "d_k_bn0_1", 1, 1),
    ("k0_2", "d_k02_conv", "d_k_bn0_2", 1, 2),
    ("k1_0", "d_k10_conv", "d_k_bn1_0", 2, 2),
    ("k1_1", "d_k11_conv", "d_k_bn1_1", 1, 2),
    ("k1_2", "d_k12_conv", "d_k_bn1_2", 1, 4),
    ("k2_0", "d_k20_conv", "d_k_bn2_0", 2, 4),
    ("k2_1", "d_k21_conv", "d_k_bn2_1", 1, 3),
    ("k2_2", "d_k22_conv", "d_k_bn2_2", 1, 6),
    ("k3_0", "d_k30_conv", "d_k_bn3_0", 2, 6),
    ("k3_1", "d_k31_conv", "d_k_bn3_1", 1, 4),
    ("k3_2", "d_k32_conv", "d_k_bn3_2", 1, 8),
    ("k4_0", "d_k40_conv", "d_k_bn4_0", 2, 8),
    ("k4_1", "d_k41_conv", "d_k_bn4_1", 1, 5),
    ("k4_2", "d_k42_conv", "d_k_bn4_2", 1, "gfc"),
)
# k4_2 is the only base block without ELU (BN output feeds the head directly).
_NO_ACTIVATION = ("k4_2",)

PCA32_CONV, PCA32_BN = "d_pca32_conv_new", "d_PCA3_2_new"
PCA42_CONV, PCA42_BN = "d_pca42_conv_new", "d_PCA4_2_new"
K5_CONV, K5_BN = "d_k5_conv_new", "d_k5_new"
K7_LINEAR = "d_k7_id_lin_new"


@keras.saving.register_keras_serializable(package="interp_fr")
class InterpFRNet(keras.Model):
    """Interpretable face recognition network.

    Args:
        df_dim: base width; layer widths are multiples of it (32 in the paper).
        gfc_dim: channels of k4_2 (320).
        dfc_dim: channels of k5 and size of the face feature (320).
        n_subjects: classifier outputs (10575 for CASIA-WebFace).
        variant: one of ``VARIANTS``.
        dropout_keep_prob: keep probability of the dropout before k7 in
            training (0.6); 1.0 disables it.
        bn_momentum, bn_epsilon: TF1 batch norm decay and (requested) epsilon.

    ``model(images, training=...)`` takes images [B, 96, 96, 3] in [-1, 1] and
    returns a dict:
        ``logits`` [B, n_subjects] (dropout applied in training),
        ``feature`` [B, D] the face feature k6 before dropout
            (D = dfc_dim; gfc_dim for "base"),
        ``feature_map`` [B, 24, 24, dfc_dim] the map averaged into the feature
            (masked k5; unmasked k5 for "hypercolumn_no_mask";
            k4_2 [B, 6, 6, gfc_dim] for "base"),
        ``k5`` the same map before peak masking (k4_2 for "base").
    """

    def __init__(self, df_dim=32, gfc_dim=320, dfc_dim=320, n_subjects=10575,
                 variant=VARIANT_FULL, dropout_keep_prob=0.6, bn_momentum=0.9,
                 bn_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if not 0.0 < dropout_keep_prob <= 1.0:
            raise ValueError("dropout_keep_prob must be in (0, 1], got "
                             f"{dropout_keep_prob}")
        self.df_dim = int(df_dim)
        self.gfc_dim = int(gfc_dim)
        self.dfc_dim = int(dfc_dim)
        self.n_subjects = int(n_subjects)
        self.variant = variant
        self.dropout_keep_prob = float(dropout_keep_prob)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)

        def bn(name, channels):
            return TF1BatchNorm(channels, momentum=self.bn_momentum,
                                epsilon=self.bn_epsilon, name=name)

        self.base_blocks = []
        in_ch = IMAGE_CHANNELS
        self._widths = {}
        for block, conv_name, bn_name, stride, mult in BASE_BLOCKS:
            out_ch = self.gfc_dim if mult == "gfc" else self.df_dim * mult
            self.base_blocks.append(
                    (block,
                     TF1Conv2D(out_ch, in_ch, strides=stride, name=conv_name),
                     bn(bn_name, out_ch)))
            self._widths[block] = out_ch
            in_ch = out_ch

        self.has_hypercolumn = variant != VARIANT_BASE
        self.has_peak_mask = variant == VARIANT_FULL
        if self.has_hypercolumn:
            pca_ch = self.df_dim * 6
            self.pca32_conv = TF1Conv2D(pca_ch, self._widths["k3_2"],
                                        kernel_size=1, name=PCA32_CONV)
            self.pca32_bn = bn(PCA32_BN, pca_ch)
            self.pca42_conv = TF1Conv2D(pca_ch, self._widths["k4_2"],
                                        kernel_size=1, name=PCA42_CONV)
            self.pca42_bn = bn(PCA42_BN, pca_ch)
            hc_ch = self._widths["k2_2"] + 2 * pca_ch
            self.k5_conv = TF1Conv2D(self.dfc_dim, hc_ch, name=K5_CONV)
            self.k5_bn = bn(K5_BN, self.dfc_dim)
            self.feature_dim = self.dfc_dim
        else:
            self.feature_dim = self.gfc_dim
        self.k7 = TF1Linear(self.n_subjects, self.feature_dim, name=K7_LINEAR)
        self.dropout = keras.layers.Dropout(1.0 - self.dropout_keep_prob)
        self.build()

    def build(self, input_shape=None):
        """Creates every variable (the input shape is fixed to 96x96x3)."""
        for layer in self._named_layers():
            if not layer.built:
                layer.build()
        self.built = True

    def _named_layers(self):
        layers = []
        for _, conv, bn in self.base_blocks:
            layers += [conv, bn]
        if self.has_hypercolumn:
            layers += [self.pca32_conv, self.pca32_bn, self.pca42_conv,
                       self.pca42_bn, self.k5_conv, self.k5_bn]
        layers.append(self.k7)
        return layers

    def tf1_variable_map(self):
        """Original TF1 name -> Keras variable, in the original's creation order.

        E.g. ``d_k01_conv/w``, ``d_k_bn0_1/moving_mean``,
        ``d_k7_id_lin_new/Matrix``.
        """
        mapping = {}
        for layer in self._named_layers():
            for var in layer.weights:
                mapping[f"{layer.name}/{var.name}"] = var
        return mapping

    @property
    def filter_kernel(self):
        """The k5 kernel W [3, 3, HC channels, dfc_dim] used by the filter
        diversity loss; None for the "base" variant."""
        return self.k5_conv.w if self.has_hypercolumn else None

    def call(self, images, training=False, apply_dropout=None):
        """See the class docstring.  ``apply_dropout`` (default: ``training``)
        lets a caller switch dropout off in training mode for exact checks."""
        training = bool(training)
        shape = images.shape
        if tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS):
            raise ValueError("InterpFRNet expects images [B, 96, 96, 3], got "
                             f"{shape}")
        x = images
        maps = {}
        for block, conv, bn in self.base_blocks:
            x = bn(conv(x), training=training)
            if block not in _NO_ACTIVATION:
                x = tf.nn.elu(x)
            maps[block] = x

        if self.has_hypercolumn:
            k5 = self._hypercolumn_k5(maps, training)
            # The mask's threshold is taken in float32 (a no-op in float32):
            # in 16 bits many of the 576 magnitudes tie at the k-th place and
            # the strict rule would drop them all.
            feature_map = (peak_mask(tf.cast(k5, tf.float32)) if self.has_peak_mask
                           else k5)
        else:
            k5 = feature_map = maps["k4_2"]
        feature = tf.reduce_mean(feature_map, axis=[1, 2])
        logits = self.classify(feature, training=training,
                               apply_dropout=apply_dropout)
        return {"logits": logits, "feature": feature,
                "feature_map": feature_map, "k5": k5}

    def _hypercolumn_k5(self, maps, training):
        size = maps["k2_2"].shape[1:3]
        up3_2 = legacy_bilinear_resize(maps["k3_2"], size)
        up4_2 = legacy_bilinear_resize(maps["k4_2"], size)
        pca3_2 = l2_normalize_channels(tf.nn.elu(
                self.pca32_bn(self.pca32_conv(up3_2), training=training)))
        pca4_2 = l2_normalize_channels(tf.nn.elu(
                self.pca42_bn(self.pca42_conv(up4_2), training=training)))
        hc = tf.concat([l2_normalize_channels(maps["k2_2"]), pca3_2, pca4_2],
                       axis=-1)
        return self.k5_bn(self.k5_conv(hc), training=training)

    def classify(self, feature, training=False, mask=None, apply_dropout=None):
        """Logits k7(dropout(feature * mask)) with the model's k7 weights.

        Args:
            feature: [B, feature_dim], e.g. the pre-dropout ``feature`` output.
            training: dropout is applied when true (unless ``apply_dropout``
                says otherwise).
            mask: optional [feature_dim] (or broadcastable) multiplier applied
                before dropout, as the occluded branch of SPEC A2 does.
            apply_dropout: overrides ``training`` for the dropout only.

        Returns:
            logits [B, n_subjects].
        """
        if mask is not None:
            feature = feature * tf.cast(mask, feature.dtype)
        use_dropout = bool(training) if apply_dropout is None else bool(apply_dropout)
        if use_dropout and self.dropout_keep_prob < 1.0:
            feature = self.dropout(feature, training=True)
        return self.k7(feature)

    def get_config(self):
        config = super().get_config()
        config.update(df_dim=self.df_dim, gfc_dim=self.gfc_dim,
                      dfc_dim=self.dfc_dim, n_subjects=self.n_subjects,
                      variant=self.variant,
                      dropout_keep_prob=self.dropout_keep_prob,
                      bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
        return config
