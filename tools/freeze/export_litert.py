r"""Export a trained model as a LiteRT (TensorFlow Lite) ``.tflite`` file.

    python -m tools.freeze.export_litert \
        --model_dir checkpoint/CASIA_64_96_32_320_32_320 [--output model.tflite]

Signature ``serving_default``: input ``sample_input_images`` float32
[N, 96, 96, 3] in [-1, 1]; outputs ``feature`` [N, D] and ``feature_map``
[N, 24, 24, C] (``interp_fr.tools.freeze.litert``). Written to ``model.tflite``
beside the checkpoint unless ``--output``.
"""
import os

from absl import app, flags

from interp_fr import cli
from interp_fr.tools.freeze import _common, api

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", "models",
                    "Training run / TF1 checkpoint folder, checkpoint prefix, "
                    ".weights.h5, frozen .pb or SavedModel.")
flags.DEFINE_string("output", None,
                    "The .tflite file (default: model.tflite beside the checkpoint).")
flags.DEFINE_integer("fixed_batch", None, "Fix the input batch size; dynamic if unset.")
_common.define_model_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    with cli.usage_errors():
        result = api.export_checkpoint_litert(
                FLAGS.model_dir, output=FLAGS.output, fixed_batch=FLAGS.fixed_batch,
                **_common.model_overrides())
    print(f"read {result.kind} {result.source}")
    print(f"wrote LiteRT model {os.path.abspath(result.output)}")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
