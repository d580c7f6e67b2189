"""Command line of the decoder training (``attr_recovery.trainers.training``; not in the original code).

    # joint mode (decoder + transformer from images), small CPU decoder
    python -m attr_recovery.cli.train --data_dir world/DATA --out_dir dec \\
        --recognition interp_fr:checkpoint/SYN_64_96_32_320_32_320 --max_steps 3000

    # transformer only, for the converted released decoder
    python -m attr_recovery.cli.train --mode transformer --preset original \\
        --generator_weights g.weights.h5 --mean_latent mean_wplus.npy \\
        --recognition arcface:r50.weights.h5 --data_dir DATA --out_dir idd

Running the same command again resumes from the last checkpoint in --out_dir.
"""
import dataclasses

from absl import app, flags

from attr_recovery.trainers import training
from interp_fr.common import cli

FLAGS = flags.FLAGS


def _define_flags():
    if "out_dir" in FLAGS:
        return
    d = training.DecoderTrainConfig()
    flags.DEFINE_string("data_dir", d.data_dir, "CASIA-format folder "
                        "(CASIA_all_images_110_110.dat + CASIA_recrop_fileList.dat).")
    flags.DEFINE_string("out_dir", d.out_dir, "Checkpoints, decoder.json, logs.")
    flags.DEFINE_enum("mode", d.mode, list(training.MODES),
                      "joint: train decoder and transformer; transformer: train only "
                      "the transformer for a frozen decoder.")
    flags.DEFINE_string("recognition", None, "Recognition model: interp_fr:DIR, "
                        "arcface:FILE.weights.h5 or keras:FILE.keras.")
    flags.DEFINE_string("recognition_variant", d.recognition_variant,
                        "interp_fr: the model variant of DIR.")
    flags.DEFINE_enum("preset", "cpu", list(training.PRESETS),
                      "Architecture defaults (cpu: 32 px small decoder; original: "
                      "256 px StyleGAN2 + IDDEncoder(14, 8)); the flags below override.")
    flags.DEFINE_integer("size", None, "Decoder resolution (joint mode).")
    flags.DEFINE_integer("style_dim", None, "Style / W width (joint mode).")
    flags.DEFINE_string("channels", None, "Decoder channels per resolution, e.g. "
                        "'4:64,8:64,16:32,32:16' (joint mode); unnamed resolutions keep "
                        "the preset's.")
    flags.DEFINE_integer("channel_multiplier", None, "StyleGAN2 channel multiplier.")
    flags.DEFINE_integer("generator_n_mlp", None, "Mapping-network depth.")
    flags.DEFINE_integer("transformer_n_mlp", None, "IDDEncoder n_mlp (trunk n_mlp - 4).")
    flags.DEFINE_float("input_scale", d.input_scale, "Transformer input factor.")
    flags.DEFINE_string("generator_weights", None, "transformer mode: converted "
                        "generator *.weights.h5.")
    flags.DEFINE_string("generator_from", None, "transformer mode: take the decoder "
                        "of this trainer folder instead.")
    flags.DEFINE_string("mean_latent", None, "transformer mode: mean W+ .npy "
                        "(default: mean of the generator's mapping network).")
    flags.DEFINE_integer("batch_size", d.batch_size, "Batch size.")
    flags.DEFINE_integer("max_steps", d.max_steps, "Train until this global step.")
    flags.DEFINE_float("max_seconds", None, "Also stop (and save) after this long.")
    flags.DEFINE_integer("seed", d.seed, "Seed of init, data order, crops and noise.")
    flags.DEFINE_enum("crop", d.crop, [training.CROP_CENTER, training.CROP_RANDOM],
                      "96 px crop of the 110 px images.")
    flags.DEFINE_boolean("reshuffle_each_epoch", d.reshuffle_each_epoch,
                         "New image order every epoch.")
    flags.DEFINE_string("target_dir", d.target_dir, "CASIA-format folder of per-image "
                        "reconstruction targets in --data_dir's order (e.g. canonical "
                        "portraits); default: each image is its own target.")
    flags.DEFINE_float("learning_rate", d.learning_rate, "Adam learning rate.")
    flags.DEFINE_float("beta1", d.beta1, "Adam beta1.")
    flags.DEFINE_float("beta2", d.beta2, "Adam beta2.")
    flags.DEFINE_float("d_learning_rate", d.d_learning_rate, "Discriminator learning rate.")
    flags.DEFINE_float("w_rec", None, "L1 reconstruction weight (default by mode).")
    flags.DEFINE_float("w_id", None, "Identity loss weight (default by mode).")
    flags.DEFINE_float("w_reg", None, "Latent offset L2 weight (default by mode).")
    flags.DEFINE_float("w_adv", d.w_adv, "Image discriminator weight (0: none).")
    flags.DEFINE_float("w_latent_adv", d.w_latent_adv,
                       "Latent discriminator weight (0: none).")
    flags.DEFINE_integer("identity_every", d.identity_every, "Identity loss on every "
                         "k-th step only, with k times the weight (R's backward pass is "
                         "the costly part of a step).")
    flags.DEFINE_integer("save_every_steps", d.save_every_steps, "Checkpoint interval.")
    flags.DEFINE_integer("keep_checkpoints", d.keep_checkpoints, "Checkpoints kept.")
    flags.DEFINE_integer("log_every", d.log_every, "Log interval.")
    flags.DEFINE_boolean("tensorboard", d.tensorboard, "Write TensorBoard scalars.")
    flags.DEFINE_boolean("progress", d.progress, "Show a progress line.")


def config_from_flags():
    """A `training.DecoderTrainConfig` from the parsed flags."""
    arch = dict(training.PRESETS[FLAGS.preset])
    for name in arch:
        value = getattr(FLAGS, name)
        if value is not None:
            if name == "channels":
                # Resolutions the flag does not name keep the preset's widths.
                value = {**(arch["channels"] or {}), **training.parse_channels(value)}
            arch[name] = value
    plain = ["data_dir", "out_dir", "mode", "recognition", "recognition_variant",
             "generator_weights", "generator_from", "mean_latent", "batch_size",
             "max_steps", "max_seconds", "seed", "crop", "reshuffle_each_epoch", "target_dir",
             "input_scale", "learning_rate", "beta1", "beta2", "d_learning_rate",
             "w_rec", "w_id", "w_reg", "w_adv", "w_latent_adv", "identity_every",
             "save_every_steps",
             "keep_checkpoints", "log_every", "tensorboard", "progress"]
    return dataclasses.replace(training.DecoderTrainConfig(),
                               **{k: getattr(FLAGS, k) for k in plain}, **arch)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    if not config.recognition:
        raise app.UsageError("--recognition is required")
    with cli.usage_errors():
        trainer = training.DecoderTrainer(config)
    trainer.fit()


def run():
    """Console-script entry point."""
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
