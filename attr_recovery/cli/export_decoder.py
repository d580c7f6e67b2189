r"""Export a trained decoder (representation -> face image) as SavedModel, LiteRT or ONNX.

    python -m attr_recovery.cli.export_decoder --decoder_dir DIR --output decoder.onnx
    python -m attr_recovery.cli.export_decoder --output decoder.tflite   # the shipped decoder
    python -m attr_recovery.cli.export_decoder --output decoder.onnx \
        --recognition reference:colour_jitter/full   # the one shipped for that recogniser

Input ``representation`` float32 [N, d]; output ``image`` float32 [N, S, S, 3]
in about [-1, 1], the generator's stored noise (``attr_recovery.export.decoder_export``).
The format follows the suffix of ``--output`` (``.tflite``, ``.onnx``, else a
SavedModel folder) unless ``--format``.
"""
from absl import flags

from attr_recovery.export import decoder_export
from attr_recovery.shipped import reference_decoder
from interp_fr.common import cli

FLAGS = flags.FLAGS


def _define_flags():
    """Defines the flags (once; importing this module defines none)."""
    if "format" in FLAGS:
        return
    flags.DEFINE_string("decoder_dir", None, "Decoder trainer folder (decoder.json + "
                        "checkpoints/); default: the decoder shipped for --recognition.")
    flags.DEFINE_enum("recognition", reference_decoder.RECOGNITION,
                      sorted(reference_decoder.DECODERS),
                      "Without --decoder_dir: the recogniser whose shipped decoder is exported.")
    flags.DEFINE_string("output", None, "Output .tflite / .onnx file or SavedModel folder.")
    flags.DEFINE_enum("format", None, sorted(decoder_export.FORMATS),
                      "Export format (default: from the suffix of --output).")


def main(argv):
    from absl import app
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    folder = FLAGS.decoder_dir or reference_decoder.reference_decoder_dir(
        recognition=FLAGS.recognition)
    with cli.usage_errors():
        fmt, out = decoder_export.export_trained_decoder(folder, FLAGS.output, FLAGS.format)
    print(f"read decoder {folder}")
    print(f"wrote {fmt} {out}")


def run():
    """Console-script entry point."""
    _define_flags()
    cli.run(main, required=("output",))


if __name__ == "__main__":
    run()
