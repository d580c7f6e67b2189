"""Command line of `interp_fr.eval.ijbc`: flags, then library calls.

``python -m eval.ijbc`` (checkout) runs it too.
"""
import os

from interp_fr.eval.ijbc import (MATCHES_CSV, evaluate_ijbc, load_features,
                                 load_template_index, read_matches_csv, results_text,
                                 write_outputs)


def _define_flags():
    from absl import flags
    if "template_index_mat" in flags.FLAGS:
        return flags.FLAGS
    flags.DEFINE_string("features", None, "IJBC_features_iter_0.txt (savetxt rows), "
                        ".npy, or IJBC_features.mat (variable feat).")
    flags.DEFINE_string("protocol_dir", None, "Folder with the official IJB-C protocol "
                        "CSVs (the original's protocols/).")
    flags.DEFINE_string("template_index_mat", None, "Prepared ijbc_temp_ID_face_indx.mat"
                        " (instead of building it from the CSVs).")
    flags.DEFINE_enum("metadata_rows", "occluded", ["occluded", "all"], "Which "
                      "ijbc_metadata.csv rows the feature rows are (process.m: the "
                      "occluded ones).")
    flags.DEFINE_enum("task", "both", ["verify", "search", "both"], "What to run.")
    flags.DEFINE_enum("empty_rule", "original", ["original", "nonempty"], "How search "
                      "drops empty templates (see search_ijbc).")
    flags.DEFINE_string("output_dir", "ijbc_eval", "Where the results go.")
    flags.DEFINE_integer("blas_threads", 1, "OpenBLAS threads; 0 = library default.")
    return flags.FLAGS


def main(argv):
    """CLI body: parse flags, evaluate, write the outputs."""
    del argv
    from absl import logging
    flags = _define_flags()
    index = load_template_index(flags.protocol_dir, flags.template_index_mat,
                                flags.metadata_rows)
    matches, matches_path = None, None
    if flags.task in ("verify", "both"):
        if not flags.protocol_dir:
            raise SystemExit("verification needs --protocol_dir (for the matches CSV)")
        matches_path = os.path.join(flags.protocol_dir, MATCHES_CSV)
        matches = read_matches_csv(matches_path)
    feats = load_features(flags.features)
    results = evaluate_ijbc(feats, index, matches, flags.task, flags.empty_rule,
                            matches_path or "<matches>", flags.blas_threads or None)
    results["features"] = os.path.abspath(flags.features)
    for path in write_outputs(results, flags.output_dir):
        logging.info("wrote %s", path)
    print(results_text(results), end="")


def run():
    """Console-script entry point (``interp-fr-ijbc``)."""
    from interp_fr.common import cli
    _define_flags()
    cli.run(main, required=["features"])


if __name__ == "__main__":
    run()
