"""Training-step throughput: our batched step against the original's structure.

The original builds its losses with per-sample and per-filter op copies: the peak
mask per sample (``tf.split`` over the batch), the spatial-diversity loss per
sample, the filter-diversity loss per output filter, and the occlusion loss as a
sum of 260 split tensors. ``loop_losses`` below reproduces that structure (same
values) on top of the same conv stack; ``interp_fr.losses.model_losses`` is ours.
Both run as one ``tf.function`` step with Adam, in this process, on the same batch.

    python bench/train_step.py [--df_dim 32 --dim 320 --batch_size 64 --steps 3]

Prints images/s of each and the ratio (ours / loop).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from interp_fr import losses  # noqa: E402
from interp_fr.model import InterpFRNet  # noqa: E402


def loop_losses(model, images, images_occl, labels, num_keep, k=24):
    """The SPEC A2 terms with the original's per-sample / per-filter structure.

    ``model`` must be the "hypercolumn_no_mask" variant, so that its feature map
    is the unmasked k5 and the peak mask here is the only one computed.
    """
    batch = int(images.shape[0])
    maps = []
    for x in (images, images_occl):
        k5 = model(x, training=True, apply_dropout=False)["k5"]
        masked = []
        for b in range(batch):  # one op copy per sample, as the original
            flat = tf.transpose(tf.reshape(k5[b], [-1, k5.shape[-1]]))  # [C, 576]
            kth = tf.math.top_k(tf.abs(flat), k).values[:, -1:]
            masked.append(tf.reshape(tf.transpose(
                tf.where(tf.abs(flat) > kth, flat, 0.0)), k5.shape[1:]))
        maps.append(masked)
    kernel = tf.constant(losses.GAUSSIAN_3X3)[:, :, None, None]

    def sad(masked):
        total = 0.0
        for m in masked:  # per sample
            c = int(m.shape[-1])
            smooth = tf.nn.depthwise_conv2d(m[None], tf.tile(kernel, [1, 1, c, 1]),
                                            [1, 1, 1, 1], "SAME")[0]
            v = tf.transpose(tf.reshape(smooth, [-1, c]))
            n = tf.sqrt(tf.reduce_sum(v * v, axis=1, keepdims=True))
            cos = tf.matmul(v, v, transpose_b=True) / (n * tf.transpose(n))
            total += (tf.reduce_sum(cos ** 2) - tf.reduce_sum(tf.linalg.diag_part(cos) ** 2)) \
                / 2 / ((c * c - c) / 2)
        return total / len(masked)

    w = model.filter_kernel
    div_a = 0.0
    for f in range(int(w.shape[-1])):  # per output filter, as the original
        taps = tf.reshape(w[:, :, :, f], [9, -1])
        n = tf.sqrt(tf.reduce_sum(taps * taps, axis=1, keepdims=True))
        cos = tf.matmul(taps, taps, transpose_b=True) / (n * tf.transpose(n))
        div_a += (tf.reduce_sum(cos ** 2) - tf.reduce_sum(tf.linalg.diag_part(cos) ** 2)) / 2 / 36
    div_a /= int(w.shape[-1])

    feat = tf.stack([tf.reduce_mean(m, axis=[0, 1]) for m in maps[0]])
    feat_o = tf.stack([tf.reduce_mean(m, axis=[0, 1]) for m in maps[1]])
    change = tf.reduce_mean(tf.abs(feat - feat_o), axis=0)
    smallest = -tf.math.top_k(-change, num_keep).values
    occl = tf.add_n(tf.split(smallest, num_keep))[0]  # 260 split tensors summed
    mask = tf.cast(change <= smallest[-1], feat.dtype)
    logits = model.classify(feat, training=True)
    logits_o = model.classify(feat_o, training=True, mask=mask)
    return (2 * losses.identity_cross_entropy(logits, labels)
            + 2 * losses.identity_cross_entropy(logits_o, labels)
            + 100 * div_a + sad(maps[0]) + sad(maps[1]) + 0.1 * occl)


def make_step(model, loss_fn):
    opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    opt.build(model.trainable_variables)

    @tf.function
    def step(x, xo, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(x, xo, y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return step


def images_per_second(step, args, batch, steps):
    t0 = time.perf_counter()
    step(*args).numpy()  # trace and compile
    trace = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*args).numpy()
    return batch * steps / (time.perf_counter() - t0), trace


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--df_dim", type=int, default=32)
    p.add_argument("--dim", type=int, default=320, help="gfc_dim = dfc_dim")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--n_subjects", type=int, default=10575)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    keep = round(a.dim * losses.DEFAULT_NUM_KEEP / 320)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (a.batch_size, 96, 96, 3)), tf.float32)
    xo = tf.constant(np.where(rng.random((a.batch_size, 96, 96, 1)) < 0.05, -1.0,
                              x.numpy()), tf.float32)
    y = tf.constant(rng.integers(0, a.n_subjects, a.batch_size), tf.int32)
    dims = dict(df_dim=a.df_dim, gfc_dim=a.dim, dfc_dim=a.dim, n_subjects=a.n_subjects)
    ours_model = InterpFRNet(**dims)
    loop_model = InterpFRNet(variant="hypercolumn_no_mask", **dims)
    for m in (ours_model, loop_model):
        m.build((None, 96, 96, 3))
    ours = make_step(ours_model, lambda x, xo, y: losses.model_losses(
        ours_model, x, xo, y, num_keep=keep)["d_loss"])
    loop = make_step(loop_model, lambda x, xo, y: loop_losses(loop_model, x, xo, y, keep))
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device {device}; df_dim {a.df_dim}, dims {a.dim}, batch {a.batch_size}, "
          f"{a.steps} timed steps after one traced step")
    ours_ips, ours_trace = images_per_second(ours, (x, xo, y), a.batch_size, a.steps)
    loop_ips, loop_trace = images_per_second(loop, (x, xo, y), a.batch_size, a.steps)
    print(f"ours (batched):          {ours_ips:8.1f} images/s  (trace {ours_trace:.1f} s)")
    print(f"loop (original's shape): {loop_ips:8.1f} images/s  (trace {loop_trace:.1f} s)")
    print(f"ratio ours / loop: {ours_ips / loop_ips:.2f}x")


if __name__ == "__main__":
    main()
