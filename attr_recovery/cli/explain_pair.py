"""Counterfactual explanation of one pair: ``attr-recovery-explain-pair``.

Not in the original code.

Also ``python -m attr_recovery.cli.explain_pair``. Only parses flags and calls
`attr_recovery.analysis.counterfactual`. Needs the directions written by
``attr-recovery-significance`` for the same recognition model. Writes
``explanation.png`` (the pair, decoded faces, counterfactual faces,
contribution bars) and ``explanation.json``::

  attr-recovery-explain-pair --recognition ... --decoder ... --estimators est \\
      --significance_dir sig --image1 world/DATA/IJBA_recrop_images_96_96_test.dat:3 \\
      --image2 world/DATA/IJBA_recrop_images_96_96_test.dat:17 --out_dir pair
"""
import json
import os

import numpy as np
from absl import app, flags

from attr_recovery.analysis import counterfactual
from attr_recovery.analysis import significance_figures
from attr_recovery.analysis import spec_inputs
from interp_fr.data.image_scaling import to_unit_range
from attr_recovery.analysis.attribute_significance import DIRECTIONS_FILE, load_directions
from interp_fr.common import cli
from interp_fr.common.atomic_io import atomic_save_text

FLAGS = flags.FLAGS


def _define_flags():
    """Defines the flags (once; importing this module defines none)."""
    if "significance_dir" in FLAGS:
        return
    spec_inputs.define_model_flags(flags)
    flags.DEFINE_string("significance_dir", None, "Folder written by attr-recovery-significance.")
    flags.DEFINE_string("image1", None, "First face: FILE.dat:ROW or an image file.")
    flags.DEFINE_string("image2", None, "Second face: FILE.dat:ROW or an image file.")
    flags.DEFINE_float("threshold", None, "Cosine threshold (default: the one stored "
                       "with the directions).")
    flags.DEFINE_float("max_units", counterfactual.MAX_UNITS,
                       "Largest attribute change tried (calibrated units).")
    flags.DEFINE_string("out_dir", "explanation", "Output folder.")
    flags.mark_flags_as_required(["recognition", "decoder", "estimators", "significance_dir",
                                  "image1", "image2"])


def main(argv):
    del argv
    with cli.usage_errors(ValueError, OSError):
        rec, decoder, reader = spec_inputs.load_models(FLAGS)
        directions = load_directions(os.path.join(FLAGS.significance_dir, DIRECTIONS_FILE))
        x1, x2 = spec_inputs.load_image(FLAGS.image1), spec_inputs.load_image(FLAGS.image2)
    threshold = FLAGS.threshold if FLAGS.threshold is not None else directions["threshold"]
    if threshold is None:
        raise app.UsageError("no --threshold and none stored with the directions")
    images = to_unit_range(np.stack([x1, x2]))
    z = rec.features(images)
    if z.shape[1] != directions["directions"].shape[1]:
        raise app.UsageError(f"the directions are {directions['directions'].shape[1]}-d "
                             f"but the model gives {z.shape[1]}-d features")
    a = reader(images)
    exp = counterfactual.explain_pair(
        z[0], z[1], directions["directions"], directions["names"], threshold,
        units=directions["units"], attributes1={k: v[0] for k, v in a.items()},
        attributes2={k: v[1] for k, v in a.items()}, decoder=decoder, reader=reader,
        max_units=FLAGS.max_units, encoded=directions["above_noise"])
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    doc = counterfactual.pair_json(exp)
    doc.update(image1=FLAGS.image1, image2=FLAGS.image2)
    atomic_save_text(os.path.join(FLAGS.out_dir, "explanation.json"),
                     json.dumps(doc, indent=2, allow_nan=False))
    significance_figures.explanation_figure(x1, x2, exp,
                                      os.path.join(FLAGS.out_dir, "explanation.png"))
    print(f"cos {exp['similarity']:.4f} vs threshold {threshold:.4f}: {exp['decision']}")
    for name in exp["order"]:
        m = exp["attributes"][name]
        flip = (f"flips at {m['flip_change']:+.2f} units" if m["flippable"]
                else "cannot flip it" if m["encoded"]
                else "not encoded by R above the noise floor")
        print(f"  {name:<18} contribution {m['contribution']:.3f}  {flip}")


def run():
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
