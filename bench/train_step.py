"""Training-step throughput: our batched step against the original's graph.

Three steps run in this process on the same batch (clean + occluded images,
labels), each with Adam:

* original: the original's training graph, built with tf.compat.v1 by the
  parity tests' independent reference (``tests/reference/tf1_reference.py``): the fused
  batch-norm kernel, the peak mask as one op copy per sample, the filter
  diversity as one per k5 filter, the spatial diversity smoothing as a dense
  3x3 convolution with a C x C diagonal kernel followed by one op copy per
  sample, one-hot labels fed per step, ``session.run(train_op)``;
* ours: ``interp_fr.losses.model_losses`` on ``InterpFRNet`` in one
  ``tf.function`` (what ``interp_fr.training`` runs);
* trunk: the same forward and backward passes of the network for both
  branches with a trivial loss, i.e. the work every formulation of this step
  must do.  original / trunk is the largest speed-up any formulation of the
  losses could give on this machine.

Before timing, ours is given the reference's weights and both compute the
step's loss without dropout; the difference is printed (they are the same
step).  Convolution arithmetic is printed as GFLOP/s.

    python bench/train_step.py [--df_dim 32 --dim 320 --batch_size 64 --steps 3]
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.flops import conv_flops_per_image  # noqa: E402
from bench.report import add_json_flag, write_json  # noqa: E402
from interp_fr import losses  # noqa: E402
from interp_fr.model import InterpFRNet  # noqa: E402
from tests import tf1_reference  # noqa: E402


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


def seconds_per_step(run, steps):
    """(median seconds of ``steps`` calls after a first, untimed one, first)."""
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), first


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--df_dim", type=int, default=32)
    p.add_argument("--dim", type=int, default=320, help="gfc_dim = dfc_dim")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--n_subjects", type=int, default=10575)
    p.add_argument("--steps", type=int, default=3)
    add_json_flag(p)
    a = p.parse_args()
    keep = round(a.dim * losses.DEFAULT_NUM_KEEP / 320)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (a.batch_size, 96, 96, 3)).astype(np.float32)
    xo = x.copy()
    xo[:, 40:52, 30:62, :] = -1.0
    y = rng.integers(0, a.n_subjects, a.batch_size)
    dims = dict(df_dim=a.df_dim, gfc_dim=a.dim, dfc_dim=a.dim, n_subjects=a.n_subjects)

    t0 = time.perf_counter()
    ref = tf1_reference.TF1Reference(batch_size=a.batch_size, num_keep=keep,
                                     learning_rate=2e-4, **dims)
    ref_build = time.perf_counter() - t0
    model = InterpFRNet(**dims)
    mapping = model.tf1_variable_map()
    for name, value in ref.variable_values().items():
        if name in mapping:
            mapping[name].assign(value)
    xt, xot, yt = tf.constant(x), tf.constant(xo), tf.constant(y, tf.int32)
    theirs = ref.run(ref.terms["d_loss"], ref.feed(x, xo, y, keep_prob=1.0))
    mine = float(losses.model_losses(model, xt, xot, yt, num_keep=keep,
                                     apply_dropout=False)["d_loss"])

    ours = make_step(model, lambda x, xo, y: losses.model_losses(
        model, x, xo, y, num_keep=keep)["d_loss"])
    trunk_model = InterpFRNet(**dims)
    trunk = make_step(trunk_model, lambda x, xo, y: (
        tf.reduce_sum(trunk_model(x, training=True)["logits"])
        + tf.reduce_sum(trunk_model(xo, training=True)["logits"])))
    runs = {
        "original": lambda: ref.run(ref.train_op, ref.feed(x, xo, y)),
        "ours": lambda: ours(xt, xot, yt).numpy(),
        "trunk": lambda: trunk(xt, xot, yt).numpy(),
    }
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    gflop = 3 * 2 * conv_flops_per_image(model) * a.batch_size / 1e9
    print(f"device {device}, {os.cpu_count()} CPUs, TF {tf.__version__}; df_dim "
          f"{a.df_dim}, dims {a.dim}, batch {a.batch_size}; median of {a.steps} "
          f"steps after an untimed one; {gflop:.0f} GFLOP of convolutions per step "
          f"(forward + 2x backward, both branches)")
    print(f"same step: d_loss without dropout, original {theirs:.6f}, ours "
          f"{mine:.6f}, |diff| {abs(theirs - mine):.1e}")
    secs = {}
    for name, run in runs.items():
        secs[name], first = seconds_per_step(run, a.steps)
        extra = f", graph build {ref_build:.0f} s" if name == "original" else ""
        print(f"  {name:9s} {a.batch_size / secs[name]:7.2f} images/s  "
              f"{secs[name]:7.2f} s/step  {gflop / secs[name]:6.1f} GFLOP/s  "
              f"(first step {first:.1f} s{extra})", flush=True)
    print(f"ratio ours / original: {secs['original'] / secs['ours']:.2f}x")
    print(f"bound: original / trunk = {secs['original'] / secs['trunk']:.2f}x is the "
          f"most any loss formulation could gain here; the losses take "
          f"{100 * (1 - secs['trunk'] / secs['ours']):.0f} % of our step and "
          f"{100 * (1 - secs['trunk'] / secs['original']):.0f} % of the original's")
    write_json(a.json, {
        "benchmark": "training step", "precision": "float32",
        "size": {"df_dim": a.df_dim, "dim": a.dim, "batch_size": a.batch_size},
        "gflop_per_step": gflop,
        "paths": {name: {"images_per_s": a.batch_size / t, "seconds_per_step": t,
                         "gflop_per_s": gflop / t} for name, t in secs.items()},
        "ratio_to_baseline": secs["original"] / secs["ours"],
        "baseline": "the original's tf.compat.v1 training graph",
        "same_step_loss_difference": abs(theirs - mine)})


if __name__ == "__main__":
    main()
