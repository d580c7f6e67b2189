"""Command line: a folder of photos in the original formats
(``python -m data.import_photos --photos DIR --out OUT``; ``interp-fr-import-photos``).

Detects each photo's face and 68 landmarks (dlib; ``pip install
"interp-fr[photos]"``), aligns it to the frontal template and writes the 110 px
CASIA and 96 px IJB-A ``.dat`` files, the file list and the landmark ``.mat``
files (``interp_fr.data.photos``). Photos without a face or unreadable are
listed and skipped.
"""
from absl import flags

from interp_fr.common import cli
from interp_fr.data import mat_files, photos

FLAGS = flags.FLAGS
flags.DEFINE_string("photos", None, "Photo folder: one sub-folder per identity, or flat.")
flags.DEFINE_string("out", None, "Output folder (DATA/, aux/, photos.txt).")
flags.DEFINE_string("template", None, "Frontal template .mat (the original's "
                    "landmark68_7.mat); default: the project's template.")


def main(argv):
    del argv
    template = (mat_files.read_frontal_template(FLAGS.template) if FLAGS.template
                else None)
    summary = photos.import_photos(FLAGS.photos, FLAGS.out, template)
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}")
    print(f"wrote {len(summary.imported)} faces of {len(summary.subjects)} identities "
          f"to {summary.out_dir}")


def run():
    cli.run(main, required=("photos", "out"))


if __name__ == "__main__":
    run()
