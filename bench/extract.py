"""Times our batched extraction against the original's one-image-per-call loop.

Both run in this process on the same random model and the same ``.dat`` of
random images:

* baseline: what ``test_pre_train.py`` does with the released graph: a frozen
  GraphDef with a batch-1 placeholder, imported with tf.compat.v1
  ``import_graph_def``, one ``session.run`` per image, then ``np.savetxt``;
* ours: ``interp_fr.extraction.extract_to_files`` streaming the ``.dat`` in
  batches through the Keras model (``--xla`` compiles it), and through our
  dynamic-batch frozen graph.

Features of all paths must agree (max abs difference printed).  Each path's
convolution arithmetic is printed as GFLOP/s, and the loop's per-call overhead
(a batch-1 ``session.run`` of a graph that does no arithmetic, same feed and
fetch sizes) as a share of its time.

    python bench/extract.py [--images 256] [--batch_size 64]
        [--df_dim 32 --gfc_dim 320 --dfc_dim 320] [--xla] [--repeats 3]
        [--precision bfloat16|float16|auto]   (a 16-bit path beside float32's)
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()

import tensorflow as tf  # noqa: E402

from bench.flops import conv_flops_per_image  # noqa: E402
from bench.report import add_json_flag, write_json  # noqa: E402
from interp_fr import extraction, features, precision  # noqa: E402
from interp_fr.data import dat_files  # noqa: E402
from interp_fr.model import InterpFRNet  # noqa: E402
from interp_fr.export import frozen_graph  # noqa: E402
# Weights whose activations stay O(1), as in a trained model: with the
# 0.02 initialisation activations shrink to ~1e-8 by k4_2, where any two
# implementations differ by rounding noise.
from tests.extract_helpers import randomise  # noqa: E402


class OriginalLoop:
    """test_pre_train.py's extract_features_for_eval, in tf.compat.v1: the
    whole .dat read into float32, one session.run per image, np.savetxt."""

    def __init__(self, pb_path):
        v1 = tf.compat.v1
        with open(pb_path, "rb") as f:
            graph_def = v1.GraphDef()
            graph_def.ParseFromString(f.read())
        graph = tf.Graph()
        with graph.as_default():
            v1.import_graph_def(graph_def)
        self.inp = graph.get_tensor_by_name("import/sample_input_images:0")
        self.feat = graph.get_tensor_by_name("import/Reshape_134:0")
        self.sess = v1.Session(graph=graph)
        self.sess.run(self.feat, {self.inp: np.zeros((1, 96, 96, 3), np.float32)})

    def __call__(self, dat_path, out_path, feature_dim):
        start = time.perf_counter()
        images = np.fromfile(dat_path, dtype=np.uint8)
        images = images.reshape((-1, 96, 96, 3)).astype(np.float32) / 127.5 - 1.0
        out = np.zeros((len(images), feature_dim), np.float32)
        for idx in range(len(images)):
            out[idx, :] = self.sess.run(
                    self.feat, {self.inp: images[idx].reshape((1, 96, 96, 3))})
        np.savetxt(out_path, out)
        return out, time.perf_counter() - start


def per_call_overhead(feature_dim, calls=500):
    """Seconds per batch-1 ``session.run`` that feeds an image and fetches a
    feature-sized result through a graph with no arithmetic to speak of."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        inp = v1.placeholder(tf.float32, [1, 96, 96, 3], name="sample_input_images")
        out = tf.tile(inp[:, 0, 0, :1], [1, feature_dim])
        sess = v1.Session(graph=graph)
    image = np.zeros((1, 96, 96, 3), np.float32)
    sess.run(out, {inp: image})
    start = time.perf_counter()
    for _ in range(calls):
        sess.run(out, {inp: image})
    return (time.perf_counter() - start) / calls


def ours(forward, dat_path, out_path, batch_size):
    images = extraction.open_images(dat_path)
    # Trace the full and the tail batch shapes before timing.
    n = len(images)
    for size in {min(batch_size, n), n % batch_size or batch_size}:
        forward(np.zeros((size, 96, 96, 3), np.float32))
    summary = extraction.extract_to_files(forward, images, out_path,
                                          batch_size=batch_size)
    return np.loadtxt(out_path, dtype=np.float32, ndmin=2), summary.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--df_dim", type=int, default=32)
    parser.add_argument("--gfc_dim", type=int, default=320)
    parser.add_argument("--dfc_dim", type=int, default=320)
    parser.add_argument("--xla", action="store_true",
                        help="also time the XLA-compiled Keras forward")
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved timing repeats (medians reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "bfloat16", "float16", "auto"),
                        help="also time our Keras forward in this precision "
                             "(interp_fr.precision; float32 paths always run)")
    add_json_flag(parser)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    tmp = tempfile.mkdtemp(prefix="bench_extract_")
    try:
        dat = os.path.join(tmp, dat_files.IJBA_IMAGES_FILE)
        dat_files.write_dat_images(dat, rng.integers(
                0, 256, (args.images, 96, 96, 3), dtype=np.uint8))
        model = InterpFRNet(df_dim=args.df_dim, gfc_dim=args.gfc_dim,
                            dfc_dim=args.dfc_dim, n_subjects=10)
        randomise(model, args.seed)
        fixed_pb = os.path.join(tmp, "pretrained_model.pb")
        frozen_graph.freeze_model(model, fixed_pb, fixed_batch=1)
        dynamic_pb = os.path.join(tmp, "dynamic.pb")
        frozen_graph.freeze_model(model, dynamic_pb)
        print(f"{args.images} images, model df_dim={args.df_dim} gfc_dim="
              f"{args.gfc_dim} dfc_dim={args.dfc_dim}, batch {args.batch_size}, "
              f"{os.cpu_count()} CPUs, TF {tf.__version__}")

        baseline = OriginalLoop(fixed_pb)
        runs = [("ours, Keras forward", features.keras_forward(model)),
                ("ours, frozen graph, dynamic batch",
                 frozen_graph.FrozenGraph(dynamic_pb))]
        if args.xla:
            runs.append(("ours, Keras forward + XLA",
                         features.keras_forward(model, jit_compile=True)))
        low = precision.resolve(args.precision)
        if low != "float32":
            runs.append((f"ours, Keras forward, {low}", features.keras_forward(
                precision.model_in_precision(model, low))))
        # Interleaved repeats, medians: other load on the machine hits all
        # paths alike.
        times = {name: [] for name in ["original"] + [n for n, _ in runs]}
        diffs = {}
        for _ in range(args.repeats):
            base, secs = baseline(dat, os.path.join(tmp, "b.txt"),
                                  model.feature_dim)
            times["original"].append(secs)
            for name, forward in runs:
                feats, secs = ours(forward, dat, os.path.join(tmp, "o.txt"),
                                   args.batch_size)
                times[name].append(secs)
                diffs[name] = float(np.max(np.abs(feats - base)))
        rate = {k: args.images / float(np.median(v)) for k, v in times.items()}
        gflop = conv_flops_per_image(model) / 1e9
        print(f"  original loop (batch-1 graph, one session.run per image): "
              f"{rate['original']:8.1f} images/s, {gflop * rate['original']:6.1f} "
              f"GFLOP/s")
        for name, _ in runs:
            print(f"  {name + ':':56s} {rate[name]:8.1f} images/s, "
                  f"{gflop * rate[name]:6.1f} GFLOP/s, ratio "
                  f"{rate[name] / rate['original']:5.2f}x, max |diff| "
                  f"{diffs[name]:.2e}")
        overhead = per_call_overhead(model.feature_dim)
        share = overhead * rate["original"]
        print(f"per-call overhead of the loop: {1e6 * overhead:.0f} us per image, "
              f"{100 * share:.1f} % of its time. Batching saves that and runs the "
              f"convolutions ({gflop:.2f} GFLOP per image, computed by every path) "
              f"at a larger batch; a 10x ratio would need ours at "
              f"{10 * gflop * rate['original']:.0f} GFLOP/s.")
        write_json(args.json, {
            "benchmark": "extraction",
            "precision": "float32" if low == "float32" else f"float32 and {low}",
            "size": {"images": args.images, "batch_size": args.batch_size,
                     "df_dim": args.df_dim, "gfc_dim": args.gfc_dim,
                     "dfc_dim": args.dfc_dim},
            "gflop_per_image": gflop,
            "paths": {name: {"images_per_s": r, "gflop_per_s": gflop * r,
                             "max_abs_feature_difference": diffs.get(name, 0.0)}
                      for name, r in rate.items()},
            "ratio_to_baseline": {name: rate[name] / rate["original"]
                                  for name, _ in runs},
            "baseline": "the original's batch-1 session.run loop on its frozen graph",
            "per_call_overhead_s": overhead})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
