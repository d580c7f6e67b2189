"""TensorFlow's oneDNN CPU kernels on every x86-64 CPU, not only on those TensorFlow picks.

TensorFlow 2.21's x86-64 wheel carries two sets of CPU kernels for convolutions
and batch norm: Eigen's, and oneDNN's. ``TF_ENABLE_ONEDNN_OPTS`` chooses; when
it is unset TensorFlow takes oneDNN only on CPUs with AVX-512 VNNI, AVX-512
BF16, AVX-VNNI or AMX. On an AVX2-only CPU (measured on a 2-core AMD EPYC
exposing AVX2 and FMA only) it falls back to Eigen, whose convolution gradients
are about three times slower there: a training step of the main job's full
model took 0.77 s with Eigen and 0.44 s with oneDNN (BUILD_NOTES.md, "oneDNN
kernels on AVX2-only CPUs"). The results agree to float32 rounding (oneDNN
sums in another order), as they do between any two machines.

TensorFlow reads the variable once, when it is first imported, so
`use_onednn_kernels` must run before that: the project's command lines do it
in their process set-up (`interp_fr.common.cli.prepare_command_process`), the
tests in ``tests/conftest.py``, experiments and benchmarks first thing. A user's
own setting of the variable is always kept.
"""
import os
import platform

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
X86_64_MACHINES = ("x86_64", "amd64")


def use_onednn_kernels(environ=None, machine=None):
    """Sets ``TF_ENABLE_ONEDNN_OPTS=1`` on an x86-64 machine where it is unset.

    Args:
      environ: the environment to change (default ``os.environ``).
      machine: ``platform.machine()`` (a parameter for tests).
    Returns: the variable's value afterwards, or None where it stays unset
      (other machines: TensorFlow's own choice there).
    """
    environ = os.environ if environ is None else environ
    machine = (platform.machine() if machine is None else machine).lower()
    if ONEDNN_VARIABLE not in environ and machine in X86_64_MACHINES:
        environ[ONEDNN_VARIABLE] = "1"
    return environ.get(ONEDNN_VARIABLE)
