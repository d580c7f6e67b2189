r"""Export a trained model as an ONNX ``.onnx`` file (``pip install "interp-fr[onnx]"``).

    python -m tools.freeze.export_onnx \
        --model_dir checkpoint/CASIA_64_96_32_320_32_320 [--output model.onnx]

Input ``sample_input_images`` float32 [N, 96, 96, 3] in [-1, 1]; outputs
``feature`` [N, D] and ``feature_map`` [N, 24, 24, C]
(``interp_fr.export.onnx_export``). Written to ``model.onnx`` beside the
checkpoint unless ``--output``.
"""
from interp_fr.common import cli
from interp_fr.tools.freeze import _common
from interp_fr.export import api

_common.define_export_flags("The .onnx file (default: model.onnx beside the checkpoint).")
main = _common.export_main(api.export_checkpoint_onnx, "ONNX model")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
