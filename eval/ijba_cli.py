"""The IJB-A evaluation command (``interp-fr-ijba``; ``python -m eval.ijba`` in a
checkout): flags, then one call of `interp_fr.eval.ijba.evaluate_ijba` and its
outputs. The evaluation itself: `interp_fr.eval.ijba`.
"""
import os
import time

from interp_fr.data import ijba_protocol
from interp_fr.eval.ijba import evaluate_ijba, load_features, results_text, write_outputs


def _define_flags():
    from absl import flags
    if "dataset_mat" in flags.FLAGS:
        return flags.FLAGS
    flags.DEFINE_string("features", None, "Feature file: numpy savetxt text (one row "
                        "per image) or .npy.")
    flags.DEFINE_string("protocol_dir", None, "The IJB-A folder holding verify/splitN "
                        "and search/splitN.")
    flags.DEFINE_string("dataset_mat", None, "dataset.mat with sightingID2idx "
                        "(default: <protocol_dir>/dataset.mat).")
    flags.DEFINE_enum("task", "both", ["verify", "search", "both"], "What to run.")
    flags.DEFINE_enum("subset", "all", ["all", "occluded"], "all images, or the "
                      "occluded subset as CNN_single_*_subset.m.")
    flags.DEFINE_string("output_dir", "ijba_eval", "Where the results go.")
    flags.DEFINE_list("splits", None, "Split numbers (default 1..10).")
    flags.DEFINE_integer("feature_dim", None, "Required feature width (e.g. 320).")
    flags.DEFINE_bool("open_set", True, "Also compute the open-set FNIR@FPIR extra "
                      "(not in the original).")
    flags.DEFINE_integer("blas_threads", 1, "OpenBLAS threads during the evaluation; "
                         "0 keeps the library default (faster on an idle machine, "
                         "much slower on a busy one).")
    return flags.FLAGS


def main(argv):
    """CLI body: parse flags, evaluate, write the outputs."""
    del argv
    from absl import logging
    flags = _define_flags()
    dataset_mat = flags.dataset_mat or os.path.join(flags.protocol_dir, "dataset.mat")
    # Read first: small, and a bad file is then refused before anything else.
    dataset = ijba_protocol.read_dataset_mat(dataset_mat)
    t0 = time.perf_counter()
    feats = load_features(flags.features, flags.feature_dim)
    logging.info("loaded %d x %d features from %s in %.2f s", feats.shape[0],
                 feats.shape[1], flags.features, time.perf_counter() - t0)
    results = evaluate_ijba(feats, dataset, flags.protocol_dir, flags.task,
                            flags.subset, flags.splits, flags.open_set,
                            log=lambda m: logging.info("%s", m),
                            threads=flags.blas_threads or None)
    results["features"] = os.path.abspath(flags.features)
    results["protocol_dir"] = os.path.abspath(flags.protocol_dir)
    for path in write_outputs(results, flags.output_dir):
        logging.info("wrote %s", path)
    print(results_text(results), end="")


def run():
    """Console-script entry point (``interp-fr-ijba``)."""
    from interp_fr.common import cli
    _define_flags()
    cli.run(main, required=["features", "protocol_dir"])


if __name__ == "__main__":
    run()
