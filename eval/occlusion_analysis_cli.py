"""Command line of `interp_fr.eval.occlusion_analysis`: flags, then library calls.

``python -m eval.occlusion_analysis`` (checkout) runs it too.
"""
import os

from interp_fr.eval import interp_common
from interp_fr.common.json_safe import json_safe
from interp_fr.eval.occlusion_analysis import occlusion_figure_for_model


def _define_flags():
    from absl import flags
    if "ar_folder" in flags.FLAGS:
        return flags.FLAGS
    interp_common.define_model_flags(flags, "Synthetic world (or the same layout).")
    flags.DEFINE_string("ar_folder", None, "Folder of aligned 96x96 AR faces named "
                        "as ar_occl_list.txt plus the neutral images (m-001-1.bmp); "
                        "default: render a synthetic one.")
    flags.DEFINE_bool("verification", False, "Also evaluate IJB-A all / occluded "
                      "subset / synthetic-occluded copies.")
    flags.DEFINE_string("out_dir", "occlusion_analysis", "Output folder.")
    return flags.FLAGS


def main(argv):
    del argv
    import json
    from interp_fr.common.atomic_io import atomic_save_text
    f = _define_flags()
    model = interp_common.model_from_flags(f)
    os.makedirs(f.out_dir, exist_ok=True)
    out = occlusion_figure_for_model(model, f.world_dir,
                                     os.path.join(f.out_dir, "occlusion_changes.png"),
                                     ar_folder=f.ar_folder)
    if f.verification:
        from interp_fr.eval import recognition_report
        out["verification"] = recognition_report.recogniser_figures(model, f.world_dir)
    atomic_save_text(os.path.join(f.out_dir, "occlusion_analysis.json"),
                     json.dumps(json_safe(out), indent=1) + "\n")
    print(json.dumps(json_safe(out), indent=1))


def run():
    from interp_fr.common import cli
    _define_flags()
    cli.run(main, required=["world_dir", "source"])


if __name__ == "__main__":
    run()
