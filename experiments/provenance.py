"""What every experiment records about where and how it ran."""
import os
import shlex
import sys


def machine_description():
    """"<CPU model name>, <n> cores, <widest vector ISA>, oneDNN kernels <on|off>":
    the last two decide TensorFlow's CPU speed (`interp_fr.common.cpu_kernels`)."""
    from bench.report import cpu_description
    from interp_fr.common.cpu_kernels import ONEDNN_VARIABLE
    cpu, flags = cpu_description()
    isa = next((name for flag, name in (("amx_bf16", "AMX"), ("avx512f", "AVX-512"),
                                         ("avx2", "AVX2")) if flags.get(flag)), "no AVX2")
    onednn = {"1": "on", "0": "off"}.get(os.environ.get(ONEDNN_VARIABLE),
                                         "TensorFlow's default")
    return f"{cpu}, {os.cpu_count()} cores, {isa}, oneDNN kernels {onednn}"


def command_line(script, argv=None):
    """The command that ran ``script`` (``experiments/NAME.py``), with its flags,
    quoted so that it runs again as written."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", script] + args)
