r"""Turn a frozen GraphDef (ours or the released ``pretrained_model.pb``) back
into trainable weights.

    python -m tools.freeze.frozen_to_keras --pb models/pretrained_model.pb \
        --output pretrained.weights.h5 [--tf1_output ckpt_dir]

Constants are matched to the model's variables by TF1 name and the dims are
read off their shapes.  The original's graph has no classifier (its outputs
do not need it): the classifier is then freshly initialised with
``--n_subjects`` outputs (default 10575) and reported.
"""
from absl import app, flags

from interp_fr.common import cli
from interp_fr.model import VARIANTS
from interp_fr.export import api

FLAGS = flags.FLAGS
flags.DEFINE_string("pb", None, "Frozen GraphDef file.")
flags.DEFINE_string("output", None, "Keras weights file (.weights.h5).")
flags.DEFINE_string("tf1_output", None,
                    "Also (or instead) write a TF1 checkpoint to this folder.")
flags.DEFINE_integer("n_subjects", None,
                     "Classifier size when the graph has none (default 10575).")
flags.DEFINE_enum("variant", None, VARIANTS,
                  "Model variant (default: read off the graph).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.pb or not (FLAGS.output or FLAGS.tf1_output):
        raise app.UsageError("give --pb and --output and/or --tf1_output")
    with cli.usage_errors(ValueError):
        _, result, prefix = api.frozen_graph_to_keras(
                FLAGS.pb, output=FLAGS.output, tf1_output=FLAGS.tf1_output,
                n_subjects=FLAGS.n_subjects, variant=FLAGS.variant)
    print(f"read {FLAGS.pb}: {len(result.loaded)} variables; model "
          + ", ".join(f"{k}={v}" for k, v in result.config.items()))
    if result.missing:
        print("not in the graph, freshly initialised: " + ", ".join(result.missing))
    if FLAGS.output:
        print(f"wrote {FLAGS.output}")
    if prefix:
        print(f"wrote TF1 checkpoint {prefix}")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
