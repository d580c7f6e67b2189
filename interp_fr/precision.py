"""Which floating-point precision to compute in, on the hardware at hand.

``float32`` is the default and what every parity test uses. ``bfloat16`` and
``float16`` build the model under Keras' ``mixed_bfloat16`` / ``mixed_float16``
policy: variables, batch-norm statistics, the peak-mask threshold and the
losses stay float32; convolutions and activations run in 16 bits. ``auto`` picks
float16 on a GPU with tensor cores (compute capability 7.0 or newer), bfloat16
on a CPU with AMX, and float32 elsewhere.

Only AMX makes bfloat16 pay on a CPU. On a CPU with AVX-512 BF16 but no AMX
(AMD Zen 4) a bfloat16 training step of the main job's model was slower than
float32 (BUILD_NOTES.md, "Precision"), so ``auto`` keeps float32 there; a CPU
with neither is refused outright when bfloat16 is asked for, with a message,
instead of running slower.
"""
import contextlib

from interp_fr.common.errors import InputError

PRECISIONS = ("float32", "bfloat16", "float16", "auto")
_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


class PrecisionError(ValueError, InputError):
    """The requested precision cannot run (well) on this machine (a command
    line reports it in one line, exit status 2)."""


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's instruction-set flags (empty where /proc/cpuinfo is absent)."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def gpu_compute_capability():
    """(major, minor) of the first visible GPU, or None without one."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    return tuple(cc) if cc else (0, 0)


def resolve(precision, flags=None, gpu=None):
    """The concrete precision for ``precision`` on this machine.

    Args:
        precision: one of `PRECISIONS`.
        flags: CPU flags (default: this machine's `cpu_flags`).
        gpu: the GPU's compute capability, or None for none (default: this
            machine's).

    Returns:
        "float32", "bfloat16" or "float16".

    Raises:
        PrecisionError: bfloat16 on a CPU-only machine without AVX-512 BF16 or
            AMX (it would be emulated, slower than float32).
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    flags = cpu_flags() if flags is None else frozenset(flags)
    if gpu is None and precision != "float32":
        gpu = gpu_compute_capability()
    if precision == "auto":
        if gpu is not None:
            return "float16" if gpu >= (7, 0) else "float32"
        return "bfloat16" if "amx_bf16" in flags else "float32"
    if gpu is None and precision == "bfloat16" and not (
            {"amx_bf16", "avx512_bf16"} & flags):
        raise PrecisionError("bfloat16 was asked for, but this CPU has neither "
                             "AMX nor AVX-512 BF16 instructions: it would emulate "
                             "bfloat16 and run slower than float32; use float32")
    # float16 on a CPU runs (slowly, without fast kernels) and stays allowed:
    # it is how a GPU run's numerics are checked on a machine without one.
    return precision


def policy_name(precision):
    """The Keras dtype policy of a resolved precision (None for float32)."""
    return _POLICIES[precision]


@contextlib.contextmanager
def dtype_policy(name):
    """Layers built inside use the Keras dtype policy ``name`` (None: leave the
    global policy alone); the previous global policy is restored after, so a
    mixed-precision run does not leak into later models in the process."""
    if name is None:
        yield
        return
    import keras
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def model_in_precision(model, precision):
    """An `InterpFRNet` with ``model``'s weights that computes in ``precision``.

    float32 returns ``model`` itself; otherwise a copy is built under the
    mixed policy (its variables stay float32) and given the same values.
    """
    if precision == "float32":
        return model
    from interp_fr.model import InterpFRNet
    from interp_fr.weights_files import model_config
    with dtype_policy(policy_name(precision)):
        copy = InterpFRNet(**model_config(model))
    source = model.tf1_variable_map()
    for name, var in copy.tf1_variable_map().items():
        var.assign(source[name])
    return copy
