"""Attribute significance of a recognition model: ``attr-recovery-significance``.

Not in the original code.

Also ``python -m attr_recovery.cli.significance``. Only parses flags and calls
`attr_recovery.analysis.attribute_significance`. Writes ``significance.txt`` (ranked
table), ``significance.json``, ``significance.png`` (bar chart) and
``significance_directions.npz`` (for ``attr-recovery-explain-pair``)::

  attr-recovery-significance --recognition interp_fr:ckpt/SYNTH_32_96_32_64_8_64 \\
      --decoder demo_out/decoder --estimators est --world_dir world --out_dir sig
"""
from absl import flags

from attr_recovery.analysis import attribute_significance as sig
from attr_recovery.analysis import counterfactual
from attr_recovery.analysis import spec_inputs
from interp_fr.data.image_scaling import to_unit_range
from interp_fr.common import cli

FLAGS = flags.FLAGS


def _define_flags():
    """Defines the flags (once; importing this module defines none)."""
    if "null_permutations" in FLAGS:
        return
    spec_inputs.define_model_flags(flags)
    flags.DEFINE_string("world_dir", None, "Synthetic world: its held-out test images "
                        "(with exact attributes) are the reference faces.")
    flags.DEFINE_string("images", None, "Or: an IJB-A-format .dat file of reference faces.")
    flags.DEFINE_integer("max_images", 400, "At most this many reference faces.")
    flags.DEFINE_string("out_dir", "significance", "Output folder.")
    flags.DEFINE_integer("calibration_images", 32, "Faces decoded per attribute for the "
                         "decoder response.")
    flags.DEFINE_integer("null_permutations", 200, "Permutations for the noise floor.")
    flags.DEFINE_list("attributes", None, "Attribute names (default: the standard set).")
    flags.mark_flags_as_required(["recognition", "decoder", "estimators"])


def main(argv):
    del argv
    with cli.usage_errors():
        rec, decoder, reader = spec_inputs.load_models(FLAGS)
        images, subjects, truth = spec_inputs.load_reference(FLAGS.world_dir, FLAGS.images,
                                                           FLAGS.max_images)
    z = rec.features(to_unit_range(images))
    result = sig.compute_significance(rec, decoder, reader, images,
                                      names=FLAGS.attributes, truth=truth,
                                      subjects=subjects,
                                      calibration_images=FLAGS.calibration_images,
                                      features=z,
                                      null_permutations=FLAGS.null_permutations)
    threshold = (None if subjects is None else
                 counterfactual.eer_threshold(z, subjects))
    paths = sig.write_significance(result, FLAGS.out_dir, threshold)
    print(sig.format_significance_table(result))
    print("written: " + ", ".join(paths.values()))


def run():
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
