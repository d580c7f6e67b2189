"""Command line of `interp_fr.eval.filter_heatmaps`: flags, then library calls.

``python -m eval.filter_heatmaps`` (checkout) runs it too.
"""
from interp_fr.eval import interp_common
from interp_fr.eval.filter_heatmaps import heatmap_grid_for_model


def _define_flags():
    from absl import flags
    if "heatmap_filters" in flags.FLAGS:
        return flags.FLAGS
    interp_common.define_model_flags(flags)
    flags.DEFINE_list("heatmap_filters", None, "Filter indices (default: chosen "
                      "automatically).")
    flags.DEFINE_integer("num_filters", 10, "Filters when chosen automatically.")
    flags.DEFINE_string("out", "filter_heatmaps.png", "Output PNG.")
    return flags.FLAGS


def main(argv):
    del argv
    f = _define_flags()
    model = interp_common.model_from_flags(f)
    filters = [int(x) for x in f.heatmap_filters] if f.heatmap_filters else None
    res = heatmap_grid_for_model(model, f.world_dir, f.out, filters, f.num_filters)
    print(f"filters {res['filters']}; wrote {f.out}")


def run():
    from interp_fr.common import cli
    _define_flags()
    cli.run(main, required=["world_dir", "source"])


if __name__ == "__main__":
    run()
