"""The main job on the bundled synthetic world: ``interp-fr-demo --out DIR``.

Also ``python -m interp_fr.pipeline.demo``. See `interp_fr.pipeline.main_job` for the stages.
"""
from absl import flags

from interp_fr import recipes
from interp_fr.common import cli
from interp_fr.pipeline import main_job
from interp_fr.data import synthetic_world

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "demo_out", "Output folder for the world, models and report.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic world.")
flags.DEFINE_bool("quick", False, "A smaller world and shorter training (for tests).")
flags.DEFINE_enum("pretrained_base", recipes.Recipe.pretrained_base,
                  list(recipes.PRETRAINED_BASE_CHOICES),
                  "Where the full model starts: the shipped reference base CNN "
                  "(when it fits the world) or a base trained in this run.")
flags.DEFINE_enum("attribute_models", main_job.JobContext.attribute_models,
                  list(main_job.ATTRIBUTE_MODEL_CHOICES),
                  "Attribute recovery's decoder and estimators: the shipped 64 px "
                  "ones (made for the recogniser explained) or small ones trained here.")
flags.DEFINE_enum("attribute_recogniser", main_job.JobContext.attribute_recogniser,
                  list(main_job.ATTRIBUTE_RECOGNISER_CHOICES),
                  "The shipped recogniser the attribute-recovery stages explain, "
                  "with the decoder shipped for it: auto (the full model trained "
                  "with colour jitter when shipped) or one by name.")


def main(argv):
    del argv
    config = synthetic_world.WorldConfig(seed=FLAGS.seed)
    model = main_job.DemoModelConfig(pretrained_base=FLAGS.pretrained_base)
    if FLAGS.quick:
        config = synthetic_world.WorldConfig(
            train_subjects=8, train_images_per_subject=8, test_subjects=8,
            test_images_min=3, test_images_max=5, num_splits=10, seed=FLAGS.seed)
        model = main_job.DemoModelConfig(df_dim=4, gfc_dim=32, dfc_dim=32,
                                         batch_size=16, pretrain_steps=4, max_steps=8,
                                         pretrained_base=FLAGS.pretrained_base)
    main_job.run_job(FLAGS.out, config, model, quick=FLAGS.quick,
                     attribute_models=FLAGS.attribute_models,
                     attribute_recogniser=FLAGS.attribute_recogniser)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
