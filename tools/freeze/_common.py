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
