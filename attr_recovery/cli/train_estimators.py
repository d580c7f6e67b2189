"""Trains the attribute estimators: ``attr-recovery-train-estimators`` (not in the original code).

Also ``python -m attr_recovery.cli.train_estimators``. Only parses flags and calls
`attr_recovery.trainers.estimator_training`; run again with the same ``--out_dir`` to
resume. Examples::

  # exact attributes of a synthetic world (held out: its IJB-A-format test set)
  attr-recovery-train-estimators --world_dir world --out_dir est
  # the labels real users have: CASIA file-list yaw + IJB-A metadata
  attr-recovery-train-estimators --heads metadata --data_dir DATA \\
      --protocol_dir IJB-A --aux_dir aux --out_dir est_meta
"""
import json
import os

from absl import flags

from attr_recovery.trainers import estimator_training as et
from attr_recovery.analysis.attribute_significance import json_safe
from interp_fr.common import cli
from interp_fr.common.atomic_io import atomic_save_text

FLAGS = flags.FLAGS
_D = et.EstimatorTrainConfig()


def _define_flags():
    """Defines the flags (once; importing this module defines none)."""
    if "lowres_prob" in FLAGS:
        return
    flags.DEFINE_string("world_dir", None, "Synthetic world folder (sets the next three).")
    flags.DEFINE_string("data_dir", None, "Folder of the CASIA / IJB-A-format .dat files.")
    flags.DEFINE_string("aux_dir", None, "Folder of landmarks68.mat / landmarks68_IJBA.mat.")
    flags.DEFINE_string("protocol_dir", None, "IJB-A protocol folder (metadata labels).")
    flags.DEFINE_enum("heads", _D.heads, ["synthetic", "metadata"],
                      "Exact synthetic attributes, or the IJB-A metadata / file-list labels.")
    flags.DEFINE_string("out_dir", _D.out_dir, "Checkpoints, estimators.json, accuracy.")
    flags.DEFINE_bool("attributes", True, "Train the multi-head attribute estimator.")
    flags.DEFINE_bool("landmarks", True, "Train the landmark heat-map estimator.")
    flags.DEFINE_integer("extra_rendered", _D.extra_rendered,
                         "Rendered occluded faces added to the training set (synthetic).")
    flags.DEFINE_float("held_out_fraction", _D.held_out_fraction,
                       "Metadata heads: fraction of IJB-A subjects held out.")
    flags.DEFINE_integer("input_size", _D.input_size, "Attribute estimator resolution.")
    flags.DEFINE_integer("width", _D.width, "Attribute estimator base width.")
    flags.DEFINE_integer("dense_units", _D.dense_units, "Attribute estimator dense width.")
    flags.DEFINE_integer("landmark_input_size", _D.landmark_input_size,
                         "Landmark estimator resolution.")
    flags.DEFINE_integer("landmark_width", _D.landmark_width, "Landmark estimator width.")
    flags.DEFINE_integer("batch_size", _D.batch_size, "Batch size.")
    flags.DEFINE_integer("max_steps", _D.max_steps, "Total training steps.")
    flags.DEFINE_float("max_seconds", None, "Also stop (and save) after this many seconds.")
    flags.DEFINE_float("learning_rate", _D.learning_rate, "Adam learning rate.")
    flags.DEFINE_float("lowres_prob", _D.lowres_prob, "Probability of a low-resolution batch.")
    flags.DEFINE_integer("seed", _D.seed, "Seed of everything random.")
    flags.DEFINE_integer("save_every_steps", _D.save_every_steps, "Checkpoint period.")
    flags.DEFINE_integer("log_every", _D.log_every, "Log period (steps).")
    flags.DEFINE_bool("evaluate", True, "Write accuracy.json / accuracy.txt on the held-out set.")


def main(argv):
    del argv
    config = et.EstimatorTrainConfig(
        world_dir=FLAGS.world_dir, data_dir=FLAGS.data_dir, aux_dir=FLAGS.aux_dir,
        protocol_dir=FLAGS.protocol_dir, heads=FLAGS.heads, out_dir=FLAGS.out_dir,
        train_attributes=FLAGS.attributes, train_landmarks=FLAGS.landmarks,
        extra_rendered=FLAGS.extra_rendered, held_out_fraction=FLAGS.held_out_fraction,
        input_size=FLAGS.input_size, width=FLAGS.width, dense_units=FLAGS.dense_units,
        landmark_input_size=FLAGS.landmark_input_size,
        landmark_width=FLAGS.landmark_width, batch_size=FLAGS.batch_size,
        max_steps=FLAGS.max_steps, max_seconds=FLAGS.max_seconds,
        learning_rate=FLAGS.learning_rate, lowres_prob=FLAGS.lowres_prob,
        seed=FLAGS.seed, save_every_steps=FLAGS.save_every_steps,
        log_every=FLAGS.log_every)
    with cli.usage_errors():
        trainer = et.EstimatorTrainer(config)
    trainer.fit()
    print(f"step {int(trainer.step.numpy())}; checkpoint in "
          f"{os.path.join(config.out_dir, et.CHECKPOINT_SUBDIR)}")
    if FLAGS.evaluate:
        metrics = et.evaluate_estimators(trainer.reader(), trainer.held_out)
        atomic_save_text(os.path.join(config.out_dir, et.METRICS_FILE),
                         json.dumps(json_safe(metrics), indent=2, allow_nan=False))
        table = et.format_accuracy_table(metrics)
        atomic_save_text(os.path.join(config.out_dir, "accuracy.txt"), table + "\n")
        print(table)


def run():
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
