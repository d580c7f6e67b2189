"""Command line of `eval/ijb_insightface.py`: one flag per `IJBConfig` field.

``python -m eval.ijb_insightface_cli`` in a checkout, ``interp-fr-ijb`` installed::

    python -m eval.ijb_insightface_cli --meta_dir IJBC/meta --target IJBC \\
        --features ijbc_feats.npy [--flip_features ijbc_feats_flip.npy] \\
        --output_dir out/ijbc

Malformed input files end the program with one line on stderr and exit status 2.
"""
import dataclasses

from interp_fr.eval.ijb_insightface import IJBConfig, evaluate_and_write, results_text

REQUIRED = ("meta_dir", "features")


def _define_flags():
    from absl import flags
    if "meta_dir" in flags.FLAGS:
        return flags.FLAGS
    for f in dataclasses.fields(IJBConfig):
        help_text = f.metadata.get("help", f.name)
        if f.metadata.get("choices"):
            flags.DEFINE_enum(f.name, f.default, list(f.metadata["choices"]), help_text)
        elif f.type in (bool, "bool"):
            flags.DEFINE_bool(f.name, f.default, help_text)
        elif f.type in (int, "int"):
            flags.DEFINE_integer(f.name, f.default, help_text)
        else:
            flags.DEFINE_string(f.name, f.default, help_text)
    return flags.FLAGS


def main(argv):
    """CLI body: flags -> `IJBConfig` -> `evaluate_and_write`; prints the table."""
    del argv
    from absl import app, logging
    flags = _define_flags()
    config = IJBConfig(**{f.name: getattr(flags, f.name)
                          for f in dataclasses.fields(IJBConfig)})
    try:
        config.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    # A DataFileError is an InputError: cli.run prints it as one line, exit 2.
    results, written = evaluate_and_write(config, log=lambda m: logging.info("%s", m))
    for path in written:
        logging.info("wrote %s", path)
    print(results_text(results), end="")


def run():
    """Console-script entry point (``interp-fr-ijb``)."""
    from absl import flags
    from interp_fr.common import cli
    _define_flags()
    flags.mark_flags_as_required(list(REQUIRED))
    cli.run(main)


if __name__ == "__main__":
    run()
