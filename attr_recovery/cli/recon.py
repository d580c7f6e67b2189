"""Command line of the original's ``lfw_recon.py`` (library: ``attr_recovery.analysis.reconstruction``).

    # with a decoder trained by attr-recovery-train (its recognition model is recorded)
    python -m attr_recovery.cli.recon --decoder_dir dec --read_folder lfw \\
        --write_folder recon/r50 --feat_path features/features_r50.npz \\
        --recon_eigen_folder recon_eigen/r50 --noise_recon_folder noise_recon

    # with converted released weights
    python -m attr_recovery.cli.recon --generator_weights g.weights.h5 \\
        --encoder_weights idd_r50.weights.h5 --mean_latent mean_wplus.npy \\
        --recognition arcface:r50.weights.h5 --read_folder lfw ...

--tasks picks sub-tasks (default all, in the original's order).
"""
from absl import app, flags

from attr_recovery.analysis import reconstruction
from interp_fr.common import cli

FLAGS = flags.FLAGS


def _define_flags():
    if "read_folder" in FLAGS:
        return
    flags.DEFINE_list("tasks", list(reconstruction.TASKS),
                      f"Sub-tasks to run, any of {', '.join(reconstruction.TASKS)}.")
    flags.DEFINE_string("read_folder", None, "Folder tree of input images.")
    flags.DEFINE_string("write_folder", None, "recon_dir: mirrored output tree.")
    flags.DEFINE_string("feat_path", "features/features.npz",
                        "features: output .npz (features d x N, paths); eigen: input "
                        "when the features task is not run.")
    flags.DEFINE_integer("num_eigen_recon", 50, "eigen: eigen-features decoded.")
    flags.DEFINE_string("recon_eigen_folder", "recon_eigen", "eigen: output folder.")
    flags.DEFINE_string("noise_recon_folder", "noise_recon", "noise: output folder.")
    flags.DEFINE_integer("num_noise", 13233, "noise: random unit vectors decoded.")
    flags.DEFINE_string("decoder_dir", None, "Folder written by attr-recovery-train.")
    flags.DEFINE_string("generator_weights", None, "Converted generator *.weights.h5.")
    flags.DEFINE_string("encoder_weights", None, "Converted IDD encoder *.weights.h5.")
    flags.DEFINE_string("mean_latent", None, "Mean W+ .npy (converted mean_wplus).")
    flags.DEFINE_string("recognition", None, "Recognition model spec (interp_fr:DIR, "
                        "arcface:FILE, keras:FILE); default: the one recorded in "
                        "--decoder_dir.")
    flags.DEFINE_string("recognition_variant", "full", "interp_fr: model variant.")
    flags.DEFINE_integer("batch_size", 16, "Images decoded per batch.")
    flags.DEFINE_integer("seed", 0, "Noise seed (per image); -1: fresh random noise on "
                         "every call, as the original.")
    flags.DEFINE_enum("noise_mode", "random", ["random", "const", "zero"],
                      "Decoder noise.")
    flags.DEFINE_enum("ext", "jpg", ["jpg", "png"], "eigen / noise output format.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    tasks = FLAGS.tasks
    needs_folder = {"recon_dir", "features"} & set(tasks)
    if needs_folder and not FLAGS.read_folder:
        raise app.UsageError(f"--read_folder is required for {sorted(needs_folder)}")
    if "recon_dir" in tasks and not FLAGS.write_folder:
        raise app.UsageError("--write_folder is required for recon_dir")
    with cli.usage_errors():
        decoder, recognition = reconstruction.load_models(
            FLAGS.decoder_dir, FLAGS.generator_weights, FLAGS.encoder_weights,
            FLAGS.mean_latent, FLAGS.recognition, FLAGS.recognition_variant)
    summary = reconstruction.run_lfw_recon(
        decoder, recognition, tasks, read_folder=FLAGS.read_folder,
        write_folder=FLAGS.write_folder, feat_path=FLAGS.feat_path,
        num_eigen=FLAGS.num_eigen_recon, eigen_folder=FLAGS.recon_eigen_folder,
        noise_folder=FLAGS.noise_recon_folder, num_noise=FLAGS.num_noise,
        batch_size=FLAGS.batch_size, seed=None if FLAGS.seed < 0 else FLAGS.seed,
        noise_mode=FLAGS.noise_mode, ext=FLAGS.ext)
    print({k: v for k, v in summary.items() if k != "eigenvalues"})


def run():
    """Console-script entry point."""
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
