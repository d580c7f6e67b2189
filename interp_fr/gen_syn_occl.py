"""Synthetic occluded copies of an IJB-A-format ``.dat`` (the original gen_syn_occl.py).

    python -m interp_fr.gen_syn_occl --images ../DATA/IJBA_recrop_images_96_96_test.dat \
        --aux_dir . --out_dir IJB-A_occl

Writes ``<out_dir>/<i>.png`` for every image i (as the original) and, beside
them, ``<out_dir>/IJBA_recrop_images_96_96_test_occl.dat`` in the input format.
"""
import os

from absl import flags
from PIL import Image

from interp_fr import occlusion
from interp_fr.common import cli
from interp_fr.common.atomic_io import atomic_write
from interp_fr.data import dat_files, mat_files

FLAGS = flags.FLAGS
flags.DEFINE_string("images", "../DATA/" + dat_files.IJBA_IMAGES_FILE,
                    "IJB-A-format .dat of 96x96 images.")
flags.DEFINE_string("aux_dir", ".", "Folder with landmarks68_IJBA.mat, tVM.mat, "
                    "landmark68_7.mat.")
flags.DEFINE_string("landmarks", None, "Per-image landmarks (default "
                    "<aux_dir>/landmarks68_IJBA.mat).")
flags.DEFINE_string("out_dir", "IJB-A_occl", "Output folder.")
flags.DEFINE_float("landmark_offset", 7.0, "Subtracted from mapped points; 7 as the "
                   "original (landmarks in 110 px space), 0 for 96 px landmarks such "
                   "as the synthetic world's.")
flags.DEFINE_integer("seed", 0, "Seed of the rectangles.")
flags.DEFINE_bool("png", True, "Write one PNG per image.")
flags.DEFINE_enum("corner_rule", "original", occlusion.CORNER_RULES,
                  "Corner on a shared edge: as the original, or once.")
flags.DEFINE_enum("outside_rule", "nearest", occlusion.OUTSIDE_RULES,
                  "Corner in no triangle: nearest triangle, or an error.")


def main(argv):
    del argv
    images = dat_files.DatImages(FLAGS.images, dat_files.IJBA_IMAGE_SIZE)
    lm_path = FLAGS.landmarks or os.path.join(FLAGS.aux_dir, "landmarks68_IJBA.mat")
    landmarks = mat_files.read_landmarks(lm_path, expected_count=len(images))
    synth = occlusion.OcclusionSynthesizer.from_files(
        os.path.join(FLAGS.aux_dir, "tVM.mat"),
        os.path.join(FLAGS.aux_dir, "landmark68_7.mat"),
        corner_rule=FLAGS.corner_rule, outside_rule=FLAGS.outside_rule)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(FLAGS.images))[0]
    dat_path = os.path.join(FLAGS.out_dir, stem + "_occl.dat")
    with atomic_write(dat_path, "wb") as f:
        for start, batch in occlusion.occlude_dataset(
                images, landmarks, synth, FLAGS.landmark_offset, FLAGS.seed):
            f.write(batch.tobytes())
            if FLAGS.png:
                for i, img in enumerate(batch):
                    with atomic_write(os.path.join(FLAGS.out_dir, f"{start + i}.png")) as p:
                        Image.fromarray(img).save(p, format="PNG")
            print(f"{start + len(batch)}/{len(images)} images", flush=True)
    print(f"wrote {dat_path}")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
