"""Converts between the original's TF1 checkpoints and Keras weights files.

    python -m interp_fr.convert_checkpoint \
        --tf1_checkpoint Interp_FR/CASIA_64_96_32_320_32_320 \
        --output interp_fr.weights.h5
    python -m interp_fr.convert_checkpoint \
        --keras_weights interp_fr.weights.h5 --tf1_output converted/ [--global_step 7]

``--tf1_checkpoint`` takes a checkpoint folder (its ``checkpoint`` file names
the latest save) or a prefix such as ``.../DCGAN.model-7``.  The model flags
must describe the checkpoint; a mismatch lists every offending variable and
the configuration the checkpoint's shapes imply.
"""
from absl import app, flags

from interp_fr import tf1_checkpoint
from interp_fr.common import cli
from interp_fr.model import VARIANT_FULL, VARIANTS

FLAGS = flags.FLAGS
flags.DEFINE_string("tf1_checkpoint", None,
                    "TF1 checkpoint folder or prefix to convert to Keras.")
flags.DEFINE_string("output", None,
                    "Keras weights file to write (must end in .weights.h5).")
flags.DEFINE_string("keras_weights", None,
                    "Keras weights file (.weights.h5) to convert to TF1.")
flags.DEFINE_string("tf1_output", None,
                    "Folder for the TF1 checkpoint (DCGAN.model[-N] files and "
                    "the 'checkpoint' state file).")
flags.DEFINE_integer("global_step", None,
                     "Step suffix of the written TF1 checkpoint (-N); none if "
                     "unset.")
flags.DEFINE_integer("df_dim", 32, "Base width of the network.")
flags.DEFINE_integer("gfc_dim", 320, "Channels of k4_2.")
flags.DEFINE_integer("dfc_dim", 320, "Channels of k5 / feature size.")
flags.DEFINE_integer("n_subjects", 10575, "Classifier outputs.")
flags.DEFINE_enum("variant", VARIANT_FULL, VARIANTS, "Model variant.")


def _model_kwargs():
    return dict(df_dim=FLAGS.df_dim, gfc_dim=FLAGS.gfc_dim,
                dfc_dim=FLAGS.dfc_dim, n_subjects=FLAGS.n_subjects,
                variant=FLAGS.variant)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    to_keras = FLAGS.tf1_checkpoint is not None or FLAGS.output is not None
    to_tf1 = FLAGS.keras_weights is not None or FLAGS.tf1_output is not None
    if to_keras == to_tf1:
        raise app.UsageError("give either --tf1_checkpoint and --output, or "
                             "--keras_weights and --tf1_output")
    if to_keras:
        if not (FLAGS.tf1_checkpoint and FLAGS.output):
            raise app.UsageError("--tf1_checkpoint and --output go together")
        result = tf1_checkpoint.convert_tf1_to_keras(
                FLAGS.tf1_checkpoint, FLAGS.output, **_model_kwargs())
        print(f"read {result.checkpoint}: {len(result.loaded)} model variables "
              f"({len(result.optimizer_state)} optimizer tensors not "
              f"converted); wrote {FLAGS.output}")
    else:
        if not (FLAGS.keras_weights and FLAGS.tf1_output):
            raise app.UsageError("--keras_weights and --tf1_output go together")
        prefix = tf1_checkpoint.convert_keras_to_tf1(
                FLAGS.keras_weights, FLAGS.tf1_output,
                global_step=FLAGS.global_step, **_model_kwargs())
        print(f"read {FLAGS.keras_weights}; wrote TF1 checkpoint {prefix}")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
