"""Convert an original PyTorch checkpoint: ``attr-recovery-convert-checkpoint``.

Also ``python -m attr_recovery.convert_checkpoint``. Only parses flags and
calls `attr_recovery.conversion.convert_checkpoint.convert`::

  attr-recovery-convert-checkpoint --kind generator \
      --input checkpoint/550000.pt --output decoder.weights.h5
"""
from absl import app, flags

from attr_recovery.conversion import convert_checkpoint as cc
from attr_recovery.conversion.torch_pickle import CheckpointFormatError
from interp_fr.common import cli

FLAGS = flags.FLAGS


def _define_flags():
    if "kind" in FLAGS:
        return
    flags.DEFINE_enum("kind", None, list(cc.KINDS), "What the input checkpoint holds.")
    flags.DEFINE_string("input", None, "PyTorch checkpoint file.")
    flags.DEFINE_string("output", None,
                        "Output: *.weights.h5 for models, *.npy for mean_latent.")
    flags.DEFINE_string("mean_latent", None,
                        "idd_encoder only: mean_wplus.pth to store in the model.")
    flags.DEFINE_string("subkey", None,
                        "State-dict key inside the checkpoint (default: g_ema for the "
                        "generator when present, else the whole file).")
    flags.DEFINE_bool("strict", True, "Unexpected checkpoint keys are errors.")
    flags.mark_flags_as_required(["kind", "input", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        report = cc.convert(FLAGS.kind, FLAGS.input, FLAGS.output, strict=FLAGS.strict,
                            mean_latent_path=FLAGS.mean_latent, subkey=FLAGS.subkey)
    except KeyError as err:
        # --subkey names no entry of the checkpoint: bad input like the
        # checkpoint errors, which cli.run reports in one line.
        raise CheckpointFormatError(
            f"{FLAGS.input}: {err.args[0] if err.args else err}") from None
    print(f"{FLAGS.kind}: {FLAGS.input} -> {FLAGS.output} {report}")


def run():
    """Console-script entry point."""
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
