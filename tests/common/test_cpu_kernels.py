"""TensorFlow's oneDNN kernels are asked for on x86-64 unless the user chose."""
import os
import platform

import pytest

from interp_fr.common import cli
from interp_fr.common.cpu_kernels import ONEDNN_VARIABLE, X86_64_MACHINES, use_onednn_kernels
from tests.conftest import ONEDNN_CHOSEN_BY_USER


@pytest.mark.parametrize("machine", ["x86_64", "AMD64"])
def test_x86_64_without_a_choice_gets_onednn(machine):
    environ = {}
    assert use_onednn_kernels(environ, machine) == "1"
    assert environ == {ONEDNN_VARIABLE: "1"}


@pytest.mark.parametrize("value", ["0", "1"])
def test_the_users_choice_is_kept(value):
    environ = {ONEDNN_VARIABLE: value}
    assert use_onednn_kernels(environ, "x86_64") == value
    assert environ == {ONEDNN_VARIABLE: value}


def test_other_machines_keep_tensorflows_choice():
    environ = {}
    assert use_onednn_kernels(environ, "aarch64") is None
    assert environ == {}


def test_a_command_process_asks_for_onednn(monkeypatch):
    # setenv first, so that the variable is put back as it was afterwards.
    monkeypatch.setenv(ONEDNN_VARIABLE, "unset below")
    monkeypatch.delenv(ONEDNN_VARIABLE)
    cli.prepare_command_process(["--verbose"])   # --verbose: no log redirection
    expected = "1" if platform.machine().lower() in X86_64_MACHINES else None
    assert os.environ.get(ONEDNN_VARIABLE) == expected


def test_this_test_process_runs_the_onednn_kernels():
    """conftest asks before TensorFlow is imported, so TensorFlow took it."""
    if platform.machine().lower() not in X86_64_MACHINES:
        pytest.skip("oneDNN is TensorFlow's choice on this machine")
    if ONEDNN_CHOSEN_BY_USER:
        pytest.skip(f"{ONEDNN_VARIABLE} set to {os.environ.get(ONEDNN_VARIABLE)!r} by the user")
    assert os.environ.get(ONEDNN_VARIABLE) == "1"
    port = pytest.importorskip("tensorflow.python.util._pywrap_util_port")
    assert port.IsMklEnabled()
