"""Flags shared by the freeze / export commands."""
from absl import flags

from interp_fr.model import VARIANTS

DIM_FLAGS = ("df_dim", "gfc_dim", "dfc_dim", "n_subjects", "variant")


def define_model_flags(flag_values=flags.FLAGS):
    """--df_dim ... --variant (all optional: inferred from the weights)."""
    flags.DEFINE_integer("df_dim", None, "Model width (inferred if unset).",
                         flag_values=flag_values)
    flags.DEFINE_integer("gfc_dim", None, "Channels of k4_2 (inferred if unset).",
                         flag_values=flag_values)
    flags.DEFINE_integer("dfc_dim", None, "Feature size (inferred if unset).",
                         flag_values=flag_values)
    flags.DEFINE_integer("n_subjects", None,
                         "Classifier size (inferred if unset).",
                         flag_values=flag_values)
    flags.DEFINE_enum("variant", None, VARIANTS,
                      "Model variant (full unless the weights say base).",
                      flag_values=flag_values)


def model_overrides(flag_values=flags.FLAGS):
    """The dim flags that were given, as load_keras_model keyword arguments."""
    return {k: getattr(flag_values, k) for k in DIM_FLAGS}


def define_export_flags(output_help, flag_values=flags.FLAGS):
    """--model_dir, --output, --fixed_batch and the dim flags of an export command."""
    flags.DEFINE_string("model_dir", "models",
                        "Training run / TF1 checkpoint folder, checkpoint prefix, "
                        ".weights.h5, frozen .pb or SavedModel.", flag_values=flag_values)
    flags.DEFINE_string("output", None, output_help, flag_values=flag_values)
    flags.DEFINE_integer("fixed_batch", None,
                         "Fix the input batch size; dynamic if unset.",
                         flag_values=flag_values)
    define_model_flags(flag_values)


def export_main(export, label, flag_values=flags.FLAGS):
    """The ``main(argv)`` of an export command: ``export`` is an `api` function
    (model_path, output=, fixed_batch=, **dims) -> ExportResult."""
    import os

    from absl import app

    from interp_fr.common import cli

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        with cli.usage_errors():
            result = export(flag_values.model_dir, output=flag_values.output,
                            fixed_batch=flag_values.fixed_batch,
                            **model_overrides(flag_values))
        print(f"read {result.kind} {result.source}")
        print(f"wrote {label} {os.path.abspath(result.output)}")
    return main
