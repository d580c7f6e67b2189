"""absl command-line helpers shared by the entry points.

The original programs used TF1's ``tf.app.flags``, whose boolean flags took a
separate value: ``--is_train True``. absl's boolean flags take no value, so
``--is_train False`` would set the flag to True and leave ``False`` behind as a
stray argument. `run_tf1_style` rewrites ``--flag VALUE`` into ``--flag=VALUE``
for the boolean flags before absl parses the command line, so the original
command lines work unchanged and absl's own forms keep working too.
"""
import sys

from absl import app, flags

_BOOL_WORDS = {"true", "false", "t", "f", "1", "0", "yes", "no"}


def tf1_style_bool_argv(argv, bool_flag_names):
    """Joins ``--name VALUE`` into ``--name=VALUE`` for the given boolean flags.

    Args:
        argv: the full argument vector (argv[0] is the program).
        bool_flag_names: iterable of flag names (without dashes).

    Returns:
        A new list.
    """
    names = set(bool_flag_names)
    out = [argv[0]]
    i = 1
    while i < len(argv):
        arg = argv[i]
        name = arg.lstrip("-")
        if (arg.startswith("-") and "=" not in arg and name in names
                and i + 1 < len(argv) and argv[i + 1].lower() in _BOOL_WORDS):
            out.append(f"--{name}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def boolean_flag_names(flag_values=flags.FLAGS):
    """Names of every boolean flag defined in ``flag_values``."""
    return [name for name, flag in flag_values._flags().items()  # pylint: disable=protected-access
            if isinstance(flag, flags.BooleanFlag)]


def run_tf1_style(main, argv=None):
    """``app.run(main)`` accepting TF1-style ``--bool_flag True`` arguments."""
    argv = list(sys.argv if argv is None else argv)
    app.run(main, argv=tf1_style_bool_argv(argv, boolean_flag_names()))


def parse_gpu_list(text):
    """``"0,1"`` -> [0, 1]; empty or ``"-1"`` -> [] (CPU)."""
    text = (text or "").strip()
    if not text or text == "-1":
        return []
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--gpu must be a comma-separated list of device "
                         f"numbers, got {text!r}") from None
