"""What makes a module a command line: `run`, the one entry point of every command.

`run` is ``app.run(main)`` plus the project's rule for bad input: "one clear
line naming the file and what is wrong, exit status 2, never a traceback
(unless asked for)". An exception marked `InputError` (`DataFileError`, and
the model, checkpoint, frozen-graph and SavedModel errors) raised by ``main``
is printed as ``error: <message>`` on one line of stderr and the program exits
with status 2; ``--verbose``, defined here once for every command, re-raises
it for the traceback. Any other exception is a bug and keeps its traceback.
absl's own usage errors are left to absl: an unknown flag or a missing
required flag prints ``FATAL Flags parsing error: ...`` and exits with 1, and
an ``app.UsageError`` raised by ``main`` (a wrong flag value) prints the usage
text with the message and exits with 1.

TF1-style boolean flags: the original programs used TF1's ``tf.app.flags``,
whose boolean flags took a separate value: ``--is_train True``. absl's boolean
flags take no value, so ``--is_train False`` would set the flag to True and
leave ``False`` behind as a stray argument. ``run(main, tf1_style_bools=True)``
rewrites ``--flag VALUE`` into ``--flag=VALUE`` for the boolean flags before
absl parses the command line, so the original command lines work unchanged and
absl's own forms keep working too.

TensorFlow's start-up log: `prepare_command_process` (called by
``interp_fr/__init__.py`` when the process was started as one of our
commands) hides it; see `interp_fr.common.tf_logging.quiet_startup`.
"""
import contextlib
import functools
import sys

from absl import app, flags

from interp_fr.common.errors import InputError

VERBOSE_FLAG = "verbose"
# Exit status for bad input; absl uses 1 for its usage errors, Python 1 for
# uncaught exceptions.
INPUT_ERROR_STATUS = 2

_BOOL_WORDS = {"true", "false", "t", "f", "1", "0", "yes", "no"}
_TRUE_WORDS = {"true", "t", "1", "yes", "y"}


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


def one_line(error):
    """The message of ``error`` on one line (some list their problems on several)."""
    return " ".join(str(error).split()) or type(error).__name__


def _define_verbose_flag():
    if VERBOSE_FLAG not in flags.FLAGS:
        flags.DEFINE_boolean(
                VERBOSE_FLAG, False,
                "Bad input: show the Python traceback instead of one 'error:' "
                "line; also show TensorFlow's start-up log.")


def _reporting_input_errors(main):
    """``main`` with `InputError` turned into one stderr line and exit status 2."""
    @functools.wraps(main)
    def guarded(argv):
        try:
            return main(argv)
        except InputError as e:
            if flags.FLAGS[VERBOSE_FLAG].value:
                raise
            sys.stdout.flush()
            print(f"error: {one_line(e)}", file=sys.stderr)
            sys.exit(INPUT_ERROR_STATUS)
    return guarded


HELP_ARGS = {"--help", "-h", "-?", "--helpshort"}
# Modules whose flags a command's help lists (absl's own --help lists only the
# main module's, which for a console script or a thin CLI module is none).
_PROJECT_MODULES = ("interp_fr", "attr_recovery", "data.", "eval.", "tools.", "__main__")


def command_help(program, flag_values=flags.FLAGS):
    """The command's usage text (its main module's docstring) and every flag
    that the project's modules define, grouped by module."""
    main = sys.modules.get("__main__")
    lines = [(getattr(main, "__doc__", None) or "").strip() or f"USAGE: {program} [flags]",
             ""]
    for module, module_flags in sorted(flag_values.flags_by_module_dict().items()):
        # absl files the flags of the main module under the program's path.
        ours = module.startswith(_PROJECT_MODULES) or module in (program, sys.argv[0])
        if ours and module_flags:
            lines.append(flag_values.module_help(module))
    lines.append("\nTry --helpfull for TensorFlow's and absl's flags too.")
    return "\n".join(lines)


def run(main, argv=None, tf1_style_bools=False, required=()):
    """Runs ``main`` as a command line: the entry point of every command.

    Args:
        main: absl main function, ``main(argv)``.
        argv: the argument vector (default ``sys.argv``).
        tf1_style_bools: also accept TF1-style ``--bool_flag True`` (see the
            module docstring).
        required: names of flags the command cannot run without.

    Bad input (`InputError`) ends the program with ``error: <message>`` on
    stderr and exit status 2, or with the traceback under ``--verbose``.
    """
    _define_verbose_flag()
    if required:
        flags.mark_flags_as_required(list(required))
    argv = list(sys.argv if argv is None else argv)
    if HELP_ARGS & set(argv[1:]):
        print(command_help(argv[0]))
        sys.exit(0)
    if tf1_style_bools:
        argv = tf1_style_bool_argv(argv, boolean_flag_names())
    # absl reports a bad flag (unknown, or a value its type refuses) with exit
    # status 1 and a second line of advice; to us it is bad input like any other.
    app.define_help_flags()     # --helpfull etc., which app.run would define
    try:
        flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(INPUT_ERROR_STATUS)
    app.run(_reporting_input_errors(main), argv=argv)


@contextlib.contextmanager
def usage_errors(*types):
    """Inside the block, an exception of ``types`` is a wrong flag value.

    It becomes absl's ``app.UsageError`` (usage text, exit status 1), except an
    `InputError` (a wrong file), which passes through for `run` to report.

    Args:
        *types: exception types (default ``ValueError`` and ``FileNotFoundError``).
    """
    types = types or (ValueError, FileNotFoundError)
    try:
        yield
    except InputError:
        raise
    except types as e:
        raise app.UsageError(str(e)) from None


def verbose_requested(args):
    """Whether the arguments (without argv[0]) ask for ``--verbose``.

    Read before absl parses the command line: TensorFlow is imported, and its
    start-up log written, while the command's modules are imported.
    """
    args = list(args)
    verbose = False
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name == VERBOSE_FLAG:
            if not eq and i + 1 < len(args) and args[i + 1].lower() in _BOOL_WORDS:
                value, eq = args[i + 1], "="      # TF1 style: --verbose True
            verbose = value.lower() in _TRUE_WORDS if eq else True
        elif name == "no" + VERBOSE_FLAG:
            verbose = False
    return verbose


def prepare_command_process(args=None):
    """Process set-up of a command, before its modules are imported.

    Asks for TensorFlow's oneDNN CPU kernels where the user has not chosen
    (`interp_fr.common.cpu_kernels.use_onednn_kernels`) and hides TensorFlow's
    start-up log unless ``--verbose`` is among ``args`` (default
    ``sys.argv[1:]``); see `interp_fr.common.tf_logging.quiet_startup`.
    """
    from interp_fr.common.cpu_kernels import use_onednn_kernels
    use_onednn_kernels()
    if not verbose_requested(sys.argv[1:] if args is None else args):
        from interp_fr.common.tf_logging import quiet_startup
        quiet_startup()


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
