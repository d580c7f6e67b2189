"""An independent tf.compat.v1 graph-mode construction of the original network.

Written for the parity tests from SPEC A1/A2, in the plain per-sample /
per-channel style of a TF1 graph, with the original variable names.  It uses
the TF1 kernels the original ran (``fused_batch_norm``, v1 ``resize_images``,
v1 ``l2_normalize``, v1 ``AdamOptimizer`` and ``Saver``); only
``contrib.layers.batch_norm`` itself is gone from TF 2, so its fused training
path is spelled out: batch statistics from the fused kernel, moving averages
``moving -= (moving - stat) * (1 - decay)`` with the kernel's Bessel-corrected
variance.  The moving-average updates are collected and applied clean branch
first, then occluded branch (the order SPEC A1 picks).
"""
import atexit
import functools
import os
import shutil
import tempfile
import types

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

GAUSS = [[0.0947416, 0.118318, 0.0947416],
         [0.118318, 0.147761, 0.118318],
         [0.0947416, 0.118318, 0.0947416]]


class TF1Reference:
    """The original training graph and sampler, small and self-contained.

    Attributes after construction: placeholders ``images``, ``images_occl``,
    ``onehot``, ``sample_images``, ``keep_prob`` (default 0.6); tensors
    ``terms`` (dict of loss terms, original names), ``sampler_feature``,
    ``sampler_k5``, ``k6`` / ``k6_o`` / ``k5_masked`` / ``k5_masked_o``,
    ``occl_mask``; ops ``train_op`` (Adam + ordered moving-stat updates) and
    ``update_op`` (moving-stat updates only).
    """

    def __init__(self, df_dim, gfc_dim, dfc_dim, n_subjects, batch_size,
                 num_keep, learning_rate=1e-3, seed=0):
        self.df_dim, self.gfc_dim, self.dfc_dim = df_dim, gfc_dim, dfc_dim
        self.n_subjects, self.batch_size = n_subjects, batch_size
        self.num_keep = num_keep
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.set_random_seed(seed)
            self._build(learning_rate)
            self.session = v1.Session(graph=self.graph)
            self.session.run(v1.global_variables_initializer())

    # ----- layers, as the original's ops.py defines them -------------------
    def _conv(self, x, out_ch, name, k=3, stride=1):
        with v1.variable_scope(name, reuse=v1.AUTO_REUSE):
            w = v1.get_variable(
                    "w", [k, k, x.shape[-1], out_ch],
                    initializer=v1.truncated_normal_initializer(stddev=0.02))
            b = v1.get_variable("biases", [out_ch],
                                initializer=v1.constant_initializer(0.0))
            y = v1.nn.conv2d(x, w, strides=[1, stride, stride, 1],
                             padding="SAME")
            return v1.nn.bias_add(y, b)

    def _bn(self, x, name, train, updates):
        ch = x.shape[-1]
        with v1.variable_scope(name, reuse=v1.AUTO_REUSE):
            beta = v1.get_variable("beta", [ch],
                                   initializer=v1.zeros_initializer())
            gamma = v1.get_variable("gamma", [ch],
                                    initializer=v1.ones_initializer())
            mm = v1.get_variable("moving_mean", [ch], trainable=False,
                                 initializer=v1.zeros_initializer())
            mv = v1.get_variable("moving_variance", [ch], trainable=False,
                                 initializer=v1.ones_initializer())
        if train:
            y, mean, var = v1.nn.fused_batch_norm(x, gamma, beta, epsilon=1e-5,
                                                  is_training=True)
            updates.append((mm, mean))
            updates.append((mv, var))
            return y
        y, _, _ = v1.nn.fused_batch_norm(x, gamma, beta, mean=mm, variance=mv,
                                         epsilon=1e-5, is_training=False)
        return y

    def _linear(self, x, out):
        with v1.variable_scope("d_k7_id_lin_new", reuse=v1.AUTO_REUSE):
            m = v1.get_variable("Matrix", [x.shape[1], out], tf.float32,
                                v1.random_normal_initializer(stddev=0.02))
            b = v1.get_variable("bias", [out],
                                initializer=v1.constant_initializer(0.0))
            return v1.matmul(x, m) + b

    def discriminator(self, image, train, updates):
        """Returns (logits, k6 after dropout, masked k5, k6 before dropout)."""
        df = self.df_dim

        def block(x, ch, conv, bn, stride, act=True):
            y = self._bn(self._conv(x, ch, conv, stride=stride), bn, train,
                         updates)
            return v1.nn.elu(y) if act else y

        k0_1 = block(image, df, "d_k01_conv", "d_k_bn0_1", 1)
        k0_2 = block(k0_1, df * 2, "d_k02_conv", "d_k_bn0_2", 1)
        k1_0 = block(k0_2, df * 2, "d_k10_conv", "d_k_bn1_0", 2)
        k1_1 = block(k1_0, df * 2, "d_k11_conv", "d_k_bn1_1", 1)
        k1_2 = block(k1_1, df * 4, "d_k12_conv", "d_k_bn1_2", 1)
        k2_0 = block(k1_2, df * 4, "d_k20_conv", "d_k_bn2_0", 2)
        k2_1 = block(k2_0, df * 3, "d_k21_conv", "d_k_bn2_1", 1)
        k2_2 = block(k2_1, df * 6, "d_k22_conv", "d_k_bn2_2", 1)
        k3_0 = block(k2_2, df * 6, "d_k30_conv", "d_k_bn3_0", 2)
        k3_1 = block(k3_0, df * 4, "d_k31_conv", "d_k_bn3_1", 1)
        k3_2 = block(k3_1, df * 8, "d_k32_conv", "d_k_bn3_2", 1)
        k4_0 = block(k3_2, df * 8, "d_k40_conv", "d_k_bn4_0", 2)
        k4_1 = block(k4_0, df * 5, "d_k41_conv", "d_k_bn4_1", 1)
        k4_2 = block(k4_1, self.gfc_dim, "d_k42_conv", "d_k_bn4_2", 1,
                     act=False)

        hw = [int(k2_2.shape[1]), int(k2_2.shape[2])]
        up3_2 = v1.image.resize_images(k3_2, hw)
        up4_2 = v1.image.resize_images(k4_2, hw)
        pca3_2 = v1.nn.l2_normalize(v1.nn.elu(self._bn(
                self._conv(up3_2, df * 6, "d_pca32_conv_new", k=1),
                "d_PCA3_2_new", train, updates)), axis=3)
        pca4_2 = v1.nn.l2_normalize(v1.nn.elu(self._bn(
                self._conv(up4_2, df * 6, "d_pca42_conv_new", k=1),
                "d_PCA4_2_new", train, updates)), axis=3)
        hc = v1.concat([v1.nn.l2_normalize(k2_2, axis=3), pca3_2, pca4_2],
                       axis=3)
        k5 = self._bn(self._conv(hc, self.dfc_dim, "d_k5_conv_new"),
                      "d_k5_new", train, updates)

        # Peak mask, sample by sample as the original: k-th largest of |k5|
        # with k = map height, keep strictly greater.
        b, h, w, c = [int(s) for s in k5.shape]
        k5_abs = v1.abs(k5)
        flat = v1.reshape(k5_abs, [b, h * w, c])
        thresholds = []
        for i in range(b):
            per_channel = v1.transpose(flat[i], [1, 0])  # [C, HW]
            top, _ = v1.nn.top_k(per_channel, h)
            thresholds.append(v1.reduce_min(top, axis=1))
        thr = v1.reshape(v1.stack(thresholds), [b, 1, 1, c])
        k5 = k5 * v1.cast(v1.greater(k5_abs, thr), tf.float32)

        k6 = v1.reshape(v1.nn.avg_pool(k5, [1, h, w, 1], [1, 1, 1, 1],
                                       "VALID"), [-1, self.dfc_dim])
        k6_org = k6
        if train:
            k6 = v1.nn.dropout(k6, rate=1.0 - self.keep_prob)
        logits = self._linear(k6, self.n_subjects)
        return logits, k6, k5, k6_org

    # ----- losses, per filter / per sample --------------------------------
    @staticmethod
    def _sq_cos_mean(rows):
        """rows [N, L]: mean over unordered pairs of squared cosine."""
        n = int(rows.shape[0])
        gram = v1.matmul(rows, rows, transpose_b=True)
        gram = gram - v1.diag(v1.diag_part(gram))
        norms = v1.sqrt(v1.reduce_sum(v1.square(rows), axis=1, keepdims=True))
        cos2 = v1.square(gram / v1.matmul(norms, norms, transpose_b=True))
        return v1.reduce_sum(cos2) / 2.0 / (n * (n - 1) / 2.0)

    def filter_diversity(self):
        with v1.variable_scope("d_k5_conv_new", reuse=True):
            w = v1.get_variable("w")
        kh, kw, cin, cout = [int(s) for s in w.shape]
        taps = v1.reshape(w, [kh * kw, cin, cout])
        total = 0.0
        for f in range(cout):
            total += self._sq_cos_mean(taps[:, :, f])
        return total / cout

    def spatial_diversity(self, k5):
        b, h, w, c = [int(s) for s in k5.shape]
        kernel = np.zeros([3, 3, c, c], np.float32)
        for i in range(c):
            kernel[:, :, i, i] = GAUSS
        smooth = v1.nn.conv2d(k5, kernel, [1, 1, 1, 1], "SAME")
        total = 0.0
        for i in range(b):
            total += self._sq_cos_mean(
                    v1.transpose(v1.reshape(smooth[i], [h * w, c])))
        return total / b

    def _build(self, learning_rate):
        b, n = self.batch_size, self.n_subjects
        self.images = v1.placeholder(tf.float32, [b, 96, 96, 3])
        self.images_occl = v1.placeholder(tf.float32, [b, 96, 96, 3])
        self.onehot = v1.placeholder(tf.float32, [b, n])
        self.sample_images = v1.placeholder(tf.float32, [1, 96, 96, 3])
        self.keep_prob = v1.placeholder_with_default(0.6, [])

        upd_clean, upd_occl, upd_sampler = [], [], []
        logits, _, self.k5_masked, self.k6 = self.discriminator(
                self.images, True, upd_clean)
        _, _, self.k5_masked_o, self.k6_o = self.discriminator(
                self.images_occl, True, upd_occl)
        _, self.sampler_feature, self.sampler_k5, _ = self.discriminator(
                self.sample_images, False, upd_sampler)
        assert not upd_sampler

        change = v1.reduce_mean(v1.abs(self.k6 - self.k6_o), axis=0)
        neg_top, _ = v1.nn.top_k(-change, self.num_keep)
        occl_sum = v1.reduce_sum(-neg_top)
        self.occl_mask = 1.0 - v1.cast(
                v1.greater(change, -neg_top[self.num_keep - 1]), tf.float32)
        logits_o = self._linear(
                v1.nn.dropout(self.k6_o * self.occl_mask,
                              rate=1.0 - self.keep_prob), n)

        def ce(lg):
            return v1.reduce_mean(v1.nn.softmax_cross_entropy_with_logits_v2(
                    labels=self.onehot, logits=lg)) * 2

        def acc(lg):
            return v1.reduce_mean(v1.cast(v1.equal(
                    v1.argmax(lg, 1), v1.argmax(self.onehot, 1)), tf.float32))

        t = {"d_loss_real_id": ce(logits),
             "d_loss_real_id_occl": ce(logits_o),
             "diver_loss_A": 100 * self.filter_diversity(),
             "diver_loss": self.spatial_diversity(self.k5_masked),
             "diver_loss_o": self.spatial_diversity(self.k5_masked_o),
             "occl_loss": occl_sum * 0.1}
        t["d_loss"] = (t["d_loss_real_id"] + t["d_loss_real_id_occl"]
                       + t["diver_loss_A"] + t["diver_loss"]
                       + t["diver_loss_o"] + t["occl_loss"])
        t["d_acc"] = acc(logits)
        t["d_acc_occl"] = acc(logits_o)
        self.terms = t

        self.d_vars = [v for v in v1.trainable_variables() if "d_" in v.name]
        self.gradients = v1.gradients(t["d_loss"], self.d_vars)
        # apply_gradients on the same gradients is what minimize() does.
        optim = v1.train.AdamOptimizer(learning_rate, beta1=0.5) \
            .apply_gradients(zip(self.gradients, self.d_vars))

        def ordered(pairs, after):
            with v1.control_dependencies(after):
                ops = [var.assign_sub((var - stat) * (1.0 - 0.9))
                       for var, stat in pairs]
            return ops

        clean_ops = ordered(upd_clean, [])
        occl_ops = ordered(upd_occl, clean_ops)
        self.update_op = v1.group(*occl_ops)
        self.train_op = v1.group(optim, self.update_op)
        self.saver = v1.train.Saver(max_to_keep=5)

    # ----- helpers ----------------------------------------------------------
    def feed(self, images, images_occl, labels, keep_prob=0.6):
        onehot = np.eye(self.n_subjects, dtype=np.float32)[labels]
        return {self.images: images, self.images_occl: images_occl,
                self.onehot: onehot, self.keep_prob: keep_prob}

    def run(self, fetches, feed_dict=None):
        return self.session.run(fetches, feed_dict)

    def save(self, directory, step):
        """Writes ``directory/DCGAN.model-<step>`` as the original's saver."""
        os.makedirs(directory, exist_ok=True)
        with self.graph.as_default():
            return self.saver.save(self.session,
                                   os.path.join(directory, "DCGAN.model"),
                                   global_step=step)

    def restore(self, prefix):
        """Restores every variable from a checkpoint with the v1 Saver."""
        with self.graph.as_default():
            self.saver.restore(self.session, prefix)

    def variable_values(self):
        """All global variables (model + Adam) by TF1 name."""
        with self.graph.as_default():
            variables = v1.global_variables()
        values = self.session.run(variables)
        return {v.op.name: x for v, x in zip(variables, values)}

    def sampler(self, image):
        """Inference for one image [1, 96, 96, 3] -> (feature, masked k5)."""
        return self.session.run([self.sampler_feature, self.sampler_k5],
                                {self.sample_images: image})


# ----- one shared, trained reference per test process ----------------------
SMALL_CONFIG = dict(df_dim=8, gfc_dim=32, dfc_dim=32, n_subjects=10)
BATCH_SIZE = 4
NUM_KEEP = 26  # 260 of 320 in the original, scaled to dfc_dim=32
TRAIN_STEPS = 3
TIE_IMAGE_VALUE = 0.4


def random_batch(rng, batch_size=BATCH_SIZE, n_subjects=SMALL_CONFIG["n_subjects"]):
    """Images in [-1, 1], an occluded copy (a 32x12 block set to -1), labels."""
    images = rng.uniform(-1.0, 1.0, (batch_size, 96, 96, 3)).astype(np.float32)
    occluded = images.copy()
    occluded[:, 40:52, 30:62, :] = -1.0
    labels = rng.integers(0, n_subjects, batch_size)
    return images, occluded, labels


def _set_value(ref, name, value):
    with ref.graph.as_default():
        var = [v for v in v1.global_variables() if v.op.name == name][0]
        ref.run(var.assign(value))


@functools.lru_cache(maxsize=None)
def trained_reference():
    """Builds the reference once, trains it a few Adam steps, saves it and
    records every number the parity tests compare against.

    Returns a namespace with: ``ref`` (TF1Reference, left at the saved
    state), ``ckpt_dir``, ``prefix``, ``values`` (all saved tensors by name),
    ``eval_batch`` (images, occluded, labels), ``sampler`` (list of
    (image, feature, masked k5) per image, batch 1), ``terms`` (training-mode
    loss terms, dropout off), ``occl_mask``, ``gradients`` (d_loss gradient by
    trainable variable name, dropout off), ``moving_after`` (moving
    statistics after one clean + occluded training forward), ``tie_dir`` /
    ``tie_image`` / ``tie_sampler`` (a checkpoint and input with ties in |k5|).
    """
    root = tempfile.mkdtemp(prefix="interp_fr_tf1_ref_")
    atexit.register(shutil.rmtree, root, True)
    rng = np.random.default_rng(1234)
    ref = TF1Reference(batch_size=BATCH_SIZE, num_keep=NUM_KEEP, seed=7,
                       **SMALL_CONFIG)
    for _ in range(TRAIN_STEPS):
        ref.run(ref.train_op, ref.feed(*random_batch(rng)))
    ckpt_dir = os.path.join(root, "trained")
    prefix = ref.save(ckpt_dir, TRAIN_STEPS)
    values = ref.variable_values()

    eval_batch = random_batch(rng)
    images, occluded, labels = eval_batch
    sampler = []
    for i in range(BATCH_SIZE):
        feature, k5 = ref.sampler(images[i:i + 1])
        sampler.append((images[i:i + 1], feature, k5))
    feed = ref.feed(images, occluded, labels, keep_prob=1.0)
    terms, occl_mask, grads = ref.run(
            [ref.terms, ref.occl_mask, ref.gradients], feed)
    gradients = {v.op.name: g for v, g in zip(ref.d_vars, grads)}

    # Ties: a constant image and a k5 kernel that reads only the k2_2 part of
    # the hypercolumn make k5 constant over the positions whose receptive
    # field misses the padding; channel 0 gets a zero kernel (constant map).
    k5_w = values["d_k5_conv_new/w"].copy()
    k5_w[:, :, SMALL_CONFIG["df_dim"] * 6:, :] = 0.0
    k5_w[:, :, :, 0] = 0.0
    _set_value(ref, "d_k5_conv_new/w", k5_w)
    tie_dir = os.path.join(root, "ties")
    ref.save(tie_dir, 0)
    tie_image = np.full((1, 96, 96, 3), TIE_IMAGE_VALUE, np.float32)
    tie_sampler = ref.sampler(tie_image)
    ref.restore(prefix)

    ref.run(ref.update_op, feed)
    moving_after = {n: x for n, x in ref.variable_values().items()
                    if "moving_" in n}
    ref.restore(prefix)
    return types.SimpleNamespace(
            ref=ref, ckpt_dir=ckpt_dir, prefix=prefix, values=values,
            eval_batch=eval_batch, sampler=sampler, terms=terms,
            occl_mask=occl_mask, gradients=gradients,
            moving_after=moving_after, tie_dir=tie_dir, tie_image=tie_image,
            tie_sampler=tie_sampler)
