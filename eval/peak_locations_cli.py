"""Command line of `interp_fr.eval.peak_locations`: flags, then library calls.

``python -m eval.peak_locations`` (checkout) runs it too.
"""
import os

from interp_fr.eval.peak_locations import (DEFAULT_FRONT_INDEX, DEFAULT_NUM_IMAGES,
                                           FACE_SIZE, MAP_SIZE, OUTSIDE_RULES,
                                           average_peak_locations, peaks_from_file,
                                           peaks_from_model, plot_peak_locations,
                                           save_results, spreadness_table)


def _define_flags():
    from absl import flags
    if "peak_maps" in flags.FLAGS:
        return flags.FLAGS
    flags.DEFINE_multi_string("peak_maps", [], "NAME=PATH of a feature-map file "
                              "(text as the extraction writes it, or .npy); repeat "
                              "for several models. Alias: --maps.")
    flags.DEFINE_alias("maps", "peak_maps")
    flags.DEFINE_multi_string("model", [], "NAME=SOURCE[@VARIANT]: a Keras "
                              ".weights.h5 file or a checkpoint folder (see "
                              "--checkpoint naming flags); the maps are computed "
                              "on --images. Repeatable.")
    flags.DEFINE_string("images", None, "IJB-A-format .dat (needed with --model; "
                        "also the figure's background face).")
    flags.DEFINE_string("landmarks", "landmarks68_IJBA.mat", "Per-image landmarks.")
    flags.DEFINE_string("tvm", "tVM.mat", "Triangulation.")
    flags.DEFINE_enum("frontal", "image", ["image", "template"], "Frontal face: the "
                      "landmarks of image --front_index (the original) or the "
                      "--template file.")
    flags.DEFINE_integer("front_index", DEFAULT_FRONT_INDEX, "1-based image used "
                         "as the frontal face.")
    flags.DEFINE_string("template", "landmark68_7.mat", "Frontal template (only "
                        "with --frontal template).")
    flags.DEFINE_integer("num_images", DEFAULT_NUM_IMAGES, "Images used (the "
                         "original: the first 1000).")
    flags.DEFINE_integer("map_size", MAP_SIZE, "Height = width of the maps in a "
                         "feature-map file.")
    flags.DEFINE_enum("outside_rule", "skip", list(OUTSIDE_RULES), "A peak in no "
                      "triangle: skip that image for that filter, or stop.")
    flags.DEFINE_string("out_dir", "peak_locations", "Output folder.")
    flags.DEFINE_integer("batch_size", 64, "Images per forward pass.")
    flags.DEFINE_string("dataset", "CASIA", "Checkpoint naming: dataset.")
    flags.DEFINE_integer("ckpt_batch_size", 64, "Checkpoint naming: batch size.")
    flags.DEFINE_integer("gf_dim", 32, "Checkpoint naming: gf_dim.")
    flags.DEFINE_integer("df_dim", None, "Model width (default: read off the weights).")
    flags.DEFINE_integer("gfc_dim", None, "Channels of k4_2 (default: read off the weights).")
    flags.DEFINE_integer("dfc_dim", None, "Channels of k5 (default: read off the weights).")
    flags.DEFINE_integer("n_subjects", None, "Classifier width (read from a "
                         ".weights.h5 file when unset).")
    return flags.FLAGS


def _split_spec(spec, flag):
    if "=" not in spec:
        raise ValueError(f"--{flag} takes NAME=PATH, got {spec!r}")
    name, _, path = spec.partition("=")
    return name.strip(), path.strip()


def main(argv):
    """CLI body: parse flags, compute, write and print."""
    del argv
    from interp_fr.data import dat_files, mat_files
    from interp_fr.eval import interp_common
    f = _define_flags()
    if not f.peak_maps and not f.model:
        raise SystemExit("give at least one --peak_maps NAME=PATH or --model NAME=SOURCE")
    landmarks = mat_files.read_landmarks(f.landmarks)
    triangles = mat_files.read_triangulation(f.tvm)
    frontal = mat_files.read_frontal_template(f.template) \
        if f.frontal == "template" else None
    images = dat_files.DatImages(f.images, FACE_SIZE) if f.images else None
    results = {}
    for spec in f.peak_maps:
        name, path = _split_spec(spec, "peak_maps")
        peaks = peaks_from_file(path, f.num_images, f.map_size)
        results[name] = average_peak_locations(peaks, landmarks, triangles,
                                               f.front_index, frontal,
                                               outside_rule=f.outside_rule)
    for spec in f.model:
        if images is None:
            raise SystemExit("--model needs --images")
        name, source = _split_spec(spec, "model")
        source, _, variant = source.partition("@")
        model = interp_common.load_model(
            source, variant=variant or None, df_dim=f.df_dim, gfc_dim=f.gfc_dim,
            dfc_dim=f.dfc_dim, n_subjects=f.n_subjects, dataset=f.dataset,
            batch_size=f.ckpt_batch_size, gf_dim=f.gf_dim)
        peaks = peaks_from_model(model, images, f.num_images, f.batch_size)
        results[name] = average_peak_locations(peaks, landmarks, triangles,
                                               f.front_index, frontal,
                                               outside_rule=f.outside_rule)
    background = None
    if images is not None and f.frontal == "image" and len(images) >= f.front_index:
        background = images.read_range(f.front_index - 1, f.front_index)[0]
    written = save_results(results, f.out_dir)
    written.append(plot_peak_locations(results, os.path.join(f.out_dir,
                                                             "peak_locations.png"),
                                       background))
    print(spreadness_table(results))
    for path in written:
        print(f"wrote {path}")


def run():
    """Console-script entry point (``interp-fr-peak-locations``)."""
    from interp_fr.common import cli
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
