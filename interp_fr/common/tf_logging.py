"""Quieting TensorFlow's own log: its start-up lines, and INFO records around
routine operations.

Start-up (`quiet_startup`, for command lines only): importing TensorFlow 2.21
writes, before any user code can intervene, lines such as

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, ...
    I0000 ... cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...

(the first three twice: two of TensorFlow's libraries carry their own copy of
absl logging), and its first look for a GPU on a machine without an NVIDIA
driver writes ``E0000 ... cuda_platform.cc:52] failed call to cuInit: ...``.
``TF_CPP_MIN_LOG_LEVEL`` does not help with most of them: the lines written
before absl::InitializeLog ignore it, and the cuInit line is an ERROR, which
only level 3 hides, together with every real error. So the first import of
TensorFlow runs with file descriptor 2 sent to a temporary file, and what it
wrote is then passed on without the records below the log level (TensorFlow's
own rule, applied to the lines it forgets to apply it to). On a machine where
no GPU can be found by design (no NVIDIA driver, or ``CUDA_VISIBLE_DEVICES``
empty or -1) the GPU probe is made inside that window and its failed cuInit
counts as INFO: the expected answer, not an error. ``TF_ENABLE_ONEDNN_OPTS``
is not this module's business (`interp_fr.common.cpu_kernels` sets it, for
speed).
"""
import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Commands hide INFO and WARNING records of TensorFlow's C++ code (a user who
# sets the variable keeps theirs): the usual choice, and this project's tests'.
COMMAND_LEVEL = "2"

# A glog/absl record: severity letter, MMDD, time (hh:mm:ss.uuuuuu, or
# 00:00:<epoch seconds> before absl::InitializeLog), thread id, file:line].
_RECORD = re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_BEFORE_INIT = "All log messages before absl::InitializeLog() is called"
_CUINIT_FAILED = "failed call to cuInit"


@contextlib.contextmanager
def quiet(level="WARNING"):
    """Raises the ``tensorflow`` logger and absl's verbosity to ``level`` for
    the block.

    Checkpoint savers log bookkeeping at INFO on every save (TF's own logger,
    and since TF 2.16 absl directly, e.g. "Sharding callback duration"); a
    training run saves every epoch, and those lines would bury the training log.
    """
    import tensorflow as tf  # here, so that quiet_startup can run before it
    from absl import logging as absl_logging
    logger = tf.get_logger()
    old = logger.level
    old_absl = absl_logging.get_verbosity()
    logger.setLevel(level)
    absl_logging.set_verbosity(level.lower())
    try:
        yield
    finally:
        logger.setLevel(old)
        absl_logging.set_verbosity(old_absl)


def quiet_startup():
    """Hides TensorFlow's start-up log in this process (see the module docstring).

    Sets ``TF_CPP_MIN_LOG_LEVEL`` to 2 unless the user set it, and arranges for
    the first ``import tensorflow`` to drop the start-up records below that
    level. Does nothing when TensorFlow is already imported or the level is 0
    (everything asked for). For command lines (`interp_fr.common.cli`), which own
    their process; a library must not change a process's logging.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault(LEVEL_VARIABLE, COMMAND_LEVEL)
    level = min_log_level()
    if level > 0 and not any(isinstance(f, _QuietFirstImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport(level))


def min_log_level():
    """``TF_CPP_MIN_LOG_LEVEL`` as TensorFlow reads it (0 when unset or not a number)."""
    try:
        return int(os.environ.get(LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


def gpu_absent_by_design():
    """True when no GPU can be found here: ``CUDA_VISIBLE_DEVICES`` is empty or
    -1, or no NVIDIA driver library (``libcuda.so.1``) can be loaded."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return True
    import ctypes
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return True
    return False


def without_startup_noise(text, level, gpu_absent=False):
    """``text`` (what TensorFlow wrote to stderr) without records below ``level``.

    A record is a glog/absl line (``I0000 00:00:... file.cc:12] message``) and
    the lines after it up to the next record (multi-line messages are written
    as they are). The "All log messages before absl::InitializeLog()" notice
    counts as INFO; with ``gpu_absent`` so does the failed cuInit.
    """
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _RECORD.match(line)
        if match:
            severity = _SEVERITY[line[0]]
            if gpu_absent and _CUINIT_FAILED in line:
                severity = 0
            dropping = severity < level
        elif _BEFORE_INIT in line:
            dropping = level > 0
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _filtered_stderr(level, gpu_absent):
    """File descriptor 2 goes to a temporary file for the block; its text is
    then written to the real stderr through `without_startup_noise`."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):   # no usable stderr: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = without_startup_noise(tmp.read().decode("utf-8", "replace"),
                                         level, gpu_absent)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` inside `_filtered_stderr`."""

    def __init__(self, loader, level):
        self._loader = loader
        self._level = level

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module sees its own loader, as if this one had never been there.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        gpu_absent = gpu_absent_by_design()
        with _filtered_stderr(self._level, gpu_absent):
            self._loader.exec_module(module)
            if gpu_absent:
                # The first GPU probe logs the failed cuInit: make it here,
                # inside the window (it costs nothing on such a machine).
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices("GPU")

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first ``import tensorflow``, then steps aside."""

    def __init__(self, level):
        self.level = level

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self.level)
        return spec
