r"""Write IJB-A features (and feature maps) with any saved model: the original
``test_pre_train.py``.

    python -m interp_fr.extract --model models/pretrained_model.pb
    python -m interp_fr.extract --model checkpoint/CASIA_64_96_32_320_32_320 \
        --images ../DATA/IJBA_recrop_images_96_96_test.dat --feature_maps
    python -m interp_fr.extract --model run.weights.h5 --images faces/ --resize

``--model`` takes a Keras ``.weights.h5``, a training run folder (or its
``resume/``), a TF1 checkpoint folder or prefix, a SavedModel folder or a
frozen GraphDef ``.pb``; the kind is detected.  ``--images`` takes a 96x96
``.dat`` or a folder of PNG / JPEG files (their names go to
``--file_list_output``).  Outputs are written atomically.
"""
import os

from absl import app, flags

from interp_fr import extraction, model_loading, precision
from interp_fr.common import cli
from interp_fr.model import VARIANTS

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join("models", "pretrained_model.pb"),
                    "Model: .weights.h5, training run folder, TF1 checkpoint "
                    "folder/prefix, SavedModel folder or frozen .pb.")
flags.DEFINE_enum("model_kind", "auto", ("auto",) + model_loading.KINDS,
                  "Read --model as this kind instead of detecting it.")
flags.DEFINE_string("images", extraction.DEFAULT_IMAGES,
                    "IJB-A-format .dat of 96x96 images, or a folder of "
                    ".png/.jpg files.")
flags.DEFINE_boolean("resize", False,
                     "Resize folder images that are not 96x96 (bilinear).")
flags.DEFINE_string("output", None,
                    "Feature file (default IJBA_features_iter_0.txt, or .npy "
                    "with --npy); a .npy name writes numpy format.")
flags.DEFINE_boolean("npy", False, "Default output names end in .npy.")
flags.DEFINE_boolean("feature_maps", False,
                     "Also write the masked k5 maps of the first --num_maps "
                     "images.")
flags.DEFINE_integer("num_maps", extraction.DEFAULT_NUM_MAPS,
                     "Images whose feature maps are written.")
flags.DEFINE_string("maps_output", None,
                    "Feature-map file (default IJBA_feature_maps_ours.txt).")
flags.DEFINE_string("file_list_output", None,
                    "For an image folder: file names in row order (default "
                    "<output>_files.txt).")
flags.DEFINE_integer("batch_size", 64, "Images per forward call.")
flags.DEFINE_integer("limit", None, "Only the first N images.")
flags.DEFINE_boolean("progress", True, "Show a progress line.")
flags.DEFINE_boolean("xla", False,
                     "Compile the Keras forward with XLA (not bit-faithful: "
                     "rounding can flip peak-mask picks at near-ties).")
flags.DEFINE_integer("df_dim", None, "Model width (inferred if unset).")
flags.DEFINE_integer("gfc_dim", None, "Channels of k4_2 (inferred if unset).")
flags.DEFINE_integer("dfc_dim", None, "Feature size (inferred if unset).")
flags.DEFINE_integer("n_subjects", None, "Classifier size (inferred if unset).")
flags.DEFINE_enum("variant", None, VARIANTS,
                  "Model variant (full unless the weights say base).")
flags.DEFINE_string("input_name", None,
                    "Frozen graph input (default sample_input_images) or "
                    "SavedModel input key.")
flags.DEFINE_string("feature_name", None,
                    "Frozen graph feature tensor (default Reshape_134) or "
                    "SavedModel output key (default feature).")
flags.DEFINE_string("map_name", None,
                    "Frozen graph map tensor (default Mul_2) or SavedModel "
                    "output key (default feature_map).")
flags.DEFINE_string("signature", "serving_default", "SavedModel signature.")
flags.DEFINE_enum("precision", "float32", precision.PRECISIONS,
                  "Compute precision of a Keras weights file or checkpoint: auto picks "
                  "bfloat16 on CPUs with AMX and float16 on GPUs with tensor cores "
                  "(tolerances: BUILD_NOTES.md, 'Precision').")


def _output_name(value, default):
    if value:
        return value
    return os.path.splitext(default)[0] + ".npy" if FLAGS.npy else default


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    overrides = {k: getattr(FLAGS, k) for k in
                 ("df_dim", "gfc_dim", "dfc_dim", "n_subjects", "variant")}
    with cli.usage_errors():
        loaded = model_loading.load_forward(
                FLAGS.model,
                kind=None if FLAGS.model_kind == "auto" else FLAGS.model_kind,
                input_name=FLAGS.input_name, feature_name=FLAGS.feature_name,
                map_name=FLAGS.map_name if FLAGS.feature_maps else "",
                signature=FLAGS.signature, jit_compile=FLAGS.xla,
                precision=FLAGS.precision, **overrides)
        images = extraction.open_images(FLAGS.images, resize=FLAGS.resize)
    print(f"model: {loaded.describe()}")
    print(f"images: {len(images)} from {FLAGS.images}")
    features_path = _output_name(FLAGS.output, extraction.DEFAULT_FEATURES_FILE)
    maps_path = (_output_name(FLAGS.maps_output, extraction.DEFAULT_MAPS_FILE)
                 if FLAGS.feature_maps else None)
    summary = extraction.extract_to_files(
            loaded.forward, images, features_path, maps_path=maps_path,
            num_maps=FLAGS.num_maps, batch_size=FLAGS.batch_size,
            file_list_path=FLAGS.file_list_output, limit=FLAGS.limit,
            progress=extraction.progress_printer() if FLAGS.progress else None)
    print(f"wrote {summary.num_images} features of {summary.feature_dim} values "
          f"to {summary.features_path} ({summary.images_per_second:.1f} images/s)")
    if summary.maps_path:
        print(f"wrote {summary.num_maps} feature maps to {summary.maps_path}")
    if summary.file_list_path:
        print(f"wrote the file names to {summary.file_list_path}")


def run():
    cli.run(main, tf1_style_bools=True)


if __name__ == "__main__":
    run()
