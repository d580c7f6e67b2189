r"""Freeze a trained model into a GraphDef: the original ``freeze_my_model.py``.

    python -m tools.freeze.freeze_my_model --model_dir models
    python -m tools.freeze.freeze_my_model \
        --model_dir checkpoint/CASIA_64_96_32_320_32_320 --fixed_batch 1

Reads a model folder or file (training run folder, TF1 checkpoint, Keras
``.weights.h5``, SavedModel) and writes ``pretrained_model.pb`` beside it
unless ``--output`` says otherwise.  The graph keeps the original's contract:
placeholder ``sample_input_images`` float32 [N, 96, 96, 3] in [-1, 1],
outputs ``Reshape_134`` (feature [N, D]) and ``Mul_2`` (masked map
[N, 24, 24, C]); the variables are constants named by their TF1 names.  N is
dynamic unless ``--fixed_batch`` (1 as in the original).
"""
import os

from absl import app, flags

from interp_fr.common import cli
from interp_fr.tools.freeze import _common
from interp_fr.export import api

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", "models",
                    "Training run / TF1 checkpoint folder, checkpoint prefix, "
                    ".weights.h5 or SavedModel folder.")
flags.DEFINE_string("output", None,
                    "Output .pb (default: pretrained_model.pb beside the "
                    "checkpoint).")
flags.DEFINE_integer("fixed_batch", None,
                     "Fix the input batch size (the original used 1); dynamic "
                     "if unset.")
flags.DEFINE_boolean("with_logits", False,
                     "Keep the classifier and expose 'logits' too.")
_common.define_model_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.fixed_batch is not None and FLAGS.fixed_batch < 1:
        raise app.UsageError("--fixed_batch must be >= 1")
    with cli.usage_errors():
        result = api.freeze_checkpoint(
                FLAGS.model_dir, output=FLAGS.output,
                fixed_batch=FLAGS.fixed_batch, with_logits=FLAGS.with_logits,
                **_common.model_overrides())
    print(f"read {result.kind} {result.source}")
    print(f"{result.num_nodes} ops in the final graph.")
    print(f"wrote {os.path.abspath(result.output)}")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
