r"""Export a trained model as a SavedModel with a serving signature.

    python -m tools.freeze.export_saved_model \
        --model_dir checkpoint/CASIA_64_96_32_320_32_320 [--output DIR]

Signature ``serving_default``: input ``sample_input_images`` float32
[N, 96, 96, 3] in [-1, 1]; outputs ``feature`` [N, D] and ``feature_map``
[N, 24, 24, C].  Loads with plain ``tf.saved_model.load`` (see
``interp_fr.export.saved_model``).  Written to ``saved_model/`` beside
the checkpoint unless ``--output``.
"""
from interp_fr.common import cli
from interp_fr.tools.freeze import _common
from interp_fr.export import api

_common.define_export_flags("SavedModel folder (default: saved_model/ beside the checkpoint).")
main = _common.export_main(api.export_checkpoint_saved_model, "SavedModel")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
