"""Train InterpFRNet, or write IJB-A features: the original main_pretrain_CASIA.py.

    python -m interp_fr.train --dataset CASIA --batch_size 64 --is_train True \\
        --learning_rate 0.001 --image_size 96 --is_with_y True --gf_dim 32 \\
        --df_dim 32 --dfc_dim 320 --gfc_dim 320 --z_dim 20 \\
        --checkpoint_dir ./Interp_FR --gpu 0

Every flag of the original is accepted with its default (flags the original
defines but does not use are accepted and ignored: sample_size, image_size,
output_size, c_dim, is_with_y, samples_dir, is_crop, visualize, z_dim). Boolean
flags take a value as in TF1 (``--is_train True``).
"""
import os

from absl import flags

from interp_fr import features, losses, precision, training
from interp_fr.common import cli
from interp_fr.data import dat_files
from interp_fr.model import VARIANTS

FLAGS = flags.FLAGS
# Defaults come from the library's dataclasses, whose defaults are the original's.
_D = training.TrainConfig()
_W = losses.LossWeights()
# The original's flags, same names and defaults.
flags.DEFINE_integer("epoch", _D.epochs, "Epochs to train.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Adam learning rate.")
flags.DEFINE_float("beta1", _D.beta1, "Adam beta1.")
flags.DEFINE_integer("train_size", _D.train_size, "Use at most this many training images.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Batch size.")
flags.DEFINE_integer("sample_size", 169, "Unused (accepted for compatibility).")
flags.DEFINE_integer("image_size", 110, "Unused (accepted for compatibility).")
flags.DEFINE_integer("output_size", 64, "Unused: the model is always built for 96.")
flags.DEFINE_integer("c_dim", 3, "Unused (accepted for compatibility).")
flags.DEFINE_boolean("is_with_y", True, "Unused (accepted for compatibility).")
flags.DEFINE_string("dataset", _D.dataset, "Dataset name (part of the checkpoint folder).")
flags.DEFINE_string("checkpoint_dir", _D.checkpoint_dir, "Checkpoint root folder.")
flags.DEFINE_string("samples_dir", "samples", "Unused (accepted for compatibility).")
flags.DEFINE_boolean("is_train", False, "True: train; False: write IJB-A features.")
flags.DEFINE_boolean("is_crop", False, "Unused (accepted for compatibility).")
flags.DEFINE_boolean("visualize", False, "Unused (accepted for compatibility).")
flags.DEFINE_integer("gf_dim", _D.gf_dim, "Part of the checkpoint folder name.")
flags.DEFINE_integer("gfc_dim", _D.gfc_dim, "Feature channels of k4_2.")
flags.DEFINE_integer("df_dim", _D.df_dim, "Base channel width.")
flags.DEFINE_integer("dfc_dim", _D.dfc_dim, "Channels of k5 (the feature dimension).")
flags.DEFINE_integer("z_dim", 50, "Unused (accepted for compatibility).")
flags.DEFINE_string("gpu", "1,2", "GPUs to use, e.g. '0' or '0,1'; '-1' for CPU. "
                    "Falls back to the CPU when no GPU is present.")
# Ours.
flags.DEFINE_string("data_dir", _D.data_dir, "Folder with the CASIA / IJB-A .dat files.")
flags.DEFINE_string("aux_dir", _D.aux_dir, "Folder with landmarks68.mat, tVM.mat, landmark68_7.mat.")
flags.DEFINE_integer("max_steps", _D.max_steps, "Stop after this many steps in total.")
flags.DEFINE_enum("variant", _D.variant, VARIANTS, "Model variant.")
flags.DEFINE_integer("n_subjects", _D.n_subjects, "Classifier size (default: from the file list).")
flags.DEFINE_integer("seed", _D.seed, "Seed of data order, crops, occlusions and init.")
flags.DEFINE_boolean("reshuffle_each_epoch", _D.reshuffle_each_epoch,
                     "Draw a new image order every epoch (the original does not).")
flags.DEFINE_float("colour_jitter", _D.colour_jitter, "Strength (0..1) of random channel "
                   "gains, brightness and grey scale on training images (the original has "
                   "none; without it a recogniser of the synthetic world can rely on colour "
                   "alone).")
flags.DEFINE_float("diversity_epsilon", _D.diversity_epsilon, "Added to the cosine denominators of "
                   "the diversity losses (the original has none: an all-zero channel "
                   "gives NaN).")
flags.DEFINE_integer("num_keep", _D.num_keep, "FAD: least-changed dims kept (default 260 for "
                     "dfc_dim 320, the same 13/16 fraction otherwise).")
flags.DEFINE_float("dropout_keep_prob", _D.dropout_keep_prob, "Dropout keep probability on k6.")
flags.DEFINE_float("w_filter_diversity", _W.filter_diversity, "Weight of diver_loss_A.")
flags.DEFINE_float("w_spatial_diversity", _W.spatial_diversity, "Weight of diver_loss and diver_loss_o.")
flags.DEFINE_float("w_occlusion", _W.occlusion, "Weight of occl_loss.")
flags.DEFINE_float("w_identity_occl", _W.identity_occl, "Weight of the occluded-branch CE.")
flags.DEFINE_boolean("restore_bn_moving_stats", _D.restore_bn_moving_stats, "Also restore the base's BN moving "
                     "statistics from a pretrained TF1 checkpoint (the original does not).")
flags.DEFINE_enum("lr_schedule", _D.lr_schedule, list(training.LR_SCHEDULES),
                  "Learning-rate schedule (constant: the original).")
flags.DEFINE_integer("warmup_steps", _D.warmup_steps, "Linear warm-up steps of the "
                     "cosine schedule.")
flags.DEFINE_float("lr_final_fraction", _D.lr_final_fraction, "Cosine schedule: the "
                   "final rate as a fraction of --learning_rate.")
flags.DEFINE_float("head_lr_multiplier", _D.head_lr_multiplier, "Rate factor of the "
                   "head ('_new' variables) when starting from a pretrained base.")
flags.DEFINE_integer("save_every_steps", _D.save_every_steps, "Also write the resume checkpoint every N steps.")
flags.DEFINE_integer("log_every", _D.log_every, "Log every N steps.")
flags.DEFINE_enum("precision", _D.precision, precision.PRECISIONS,
                  "Compute precision (variables, BN statistics and losses stay "
                  "float32): auto picks bfloat16 on CPUs with AMX and float16 on GPUs "
                  "with tensor cores.")
flags.DEFINE_boolean("mixed_precision", _D.mixed_precision, "Same as --precision float16.")
flags.DEFINE_boolean("xla", _D.jit_compile, "Compile the training step with XLA.")
flags.DEFINE_string("devices", None, "Explicit device list, e.g. '/cpu:0,/cpu:1' "
                    "(overrides --gpu).")
flags.DEFINE_boolean("multi_worker", _D.multi_worker, "MultiWorkerMirroredStrategy from TF_CONFIG.")
flags.DEFINE_boolean("progress", _D.progress, "Show a progress line.")
flags.DEFINE_string("features_out", "IJBA_features.txt",
                    "is_train False: where to write the IJB-A features.")


def _devices():
    import tensorflow as tf
    if FLAGS.devices:
        return tuple(d.strip() for d in FLAGS.devices.split(",") if d.strip())
    gpus = cli.parse_gpu_list(FLAGS.gpu)
    available = tf.config.list_physical_devices("GPU")
    if not gpus or not available:
        if gpus:
            print(f" [!] --gpu {FLAGS.gpu}: no GPU present, training on the CPU")
        return ()
    return tuple(f"/gpu:{i}" for i in gpus)


def config_from_flags():
    weights = losses.LossWeights(identity_occl=FLAGS.w_identity_occl,
                                 filter_diversity=FLAGS.w_filter_diversity,
                                 spatial_diversity=FLAGS.w_spatial_diversity,
                                 spatial_diversity_occl=FLAGS.w_spatial_diversity,
                                 occlusion=FLAGS.w_occlusion)
    return training.TrainConfig(
        data_dir=FLAGS.data_dir, aux_dir=FLAGS.aux_dir,
        checkpoint_dir=FLAGS.checkpoint_dir, dataset=FLAGS.dataset,
        batch_size=FLAGS.batch_size, gf_dim=FLAGS.gf_dim, gfc_dim=FLAGS.gfc_dim,
        df_dim=FLAGS.df_dim, dfc_dim=FLAGS.dfc_dim, n_subjects=FLAGS.n_subjects,
        variant=FLAGS.variant, epochs=FLAGS.epoch, learning_rate=FLAGS.learning_rate,
        beta1=FLAGS.beta1, train_size=FLAGS.train_size, max_steps=FLAGS.max_steps,
        seed=FLAGS.seed, reshuffle_each_epoch=FLAGS.reshuffle_each_epoch,
        colour_jitter=FLAGS.colour_jitter,
        loss_weights=weights, num_keep=FLAGS.num_keep,
        dropout_keep_prob=FLAGS.dropout_keep_prob, lr_schedule=FLAGS.lr_schedule,
        warmup_steps=FLAGS.warmup_steps, lr_final_fraction=FLAGS.lr_final_fraction,
        head_lr_multiplier=FLAGS.head_lr_multiplier,
        diversity_epsilon=FLAGS.diversity_epsilon,
        restore_bn_moving_stats=FLAGS.restore_bn_moving_stats,
        save_every_steps=FLAGS.save_every_steps, log_every=FLAGS.log_every,
        jit_compile=FLAGS.xla, precision=FLAGS.precision,
        mixed_precision=FLAGS.mixed_precision,
        devices=_devices(), multi_worker=FLAGS.multi_worker, progress=FLAGS.progress)


def main(argv):
    del argv
    with cli.usage_errors(ValueError):     # e.g. --gpu abc
        config = config_from_flags()
    if FLAGS.is_train:
        training.Trainer(config).fit()
        return
    model = training.load_trained_model(config)
    dat = dat_files.open_ijba_images(FLAGS.data_dir)
    result = features.extract_features(features.keras_forward(model), dat,
                                       batch_size=FLAGS.batch_size)
    features.save_feature_text(FLAGS.features_out, result.features)
    print(f"wrote {len(result.features)} features to {os.path.abspath(FLAGS.features_out)}")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
