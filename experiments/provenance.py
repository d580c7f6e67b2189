"""What every experiment records about where and how it ran."""
import os
import platform
import shlex
import sys


def machine_description():
    """"<CPU model name>, <n> cores" (the model name from /proc/cpuinfo when
    there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def command_line(script, argv=None):
    """The command that ran ``script`` (``experiments/NAME.py``), with its flags,
    quoted so that it runs again as written."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", script] + args)
