"""Command line: write the synthetic world (``python -m data.synthetic --out DIR``).

Also installed as the console script ``interp-fr-synthetic``.
"""
from absl import flags

from interp_fr.common import cli
from interp_fr.data import synthetic_world

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "synthetic_world", "Output folder.")
flags.DEFINE_integer("train_subjects", 40, "Training (CASIA-format) identities.")
flags.DEFINE_integer("train_images_per_subject", 32, "Training images per identity.")
flags.DEFINE_integer("test_subjects", 30, "Test (IJB-A-format) identities.")
flags.DEFINE_integer("test_images_min", 6, "Fewest test images per identity.")
flags.DEFINE_integer("test_images_max", 12, "Most test images per identity.")
flags.DEFINE_integer("num_splits", 10, "IJB-A-style protocol splits.")
flags.DEFINE_float("test_occlusion_rate", 0.25,
                   "Fraction of test images with sunglasses or a scarf.")
flags.DEFINE_float("train_occlusion_rate", 0.0,
                   "Fraction of training images with sunglasses or a scarf.")
flags.DEFINE_integer("seed", 0, "World seed; the world is a pure function of it.")


def main(argv):
    del argv
    config = synthetic_world.WorldConfig(
        train_subjects=FLAGS.train_subjects,
        train_images_per_subject=FLAGS.train_images_per_subject,
        test_subjects=FLAGS.test_subjects, test_images_min=FLAGS.test_images_min,
        test_images_max=FLAGS.test_images_max, num_splits=FLAGS.num_splits,
        train_occlusion_rate=FLAGS.train_occlusion_rate,
        test_occlusion_rate=FLAGS.test_occlusion_rate, seed=FLAGS.seed)
    synthetic_world.build_world(FLAGS.out, config, progress=print)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
