"""Shared test configuration: quiet TensorFlow, paths to ../shared."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# The kernels the project's commands use (before any test imports TensorFlow).
from interp_fr.common.cpu_kernels import ONEDNN_VARIABLE, use_onednn_kernels  # noqa: E402
ONEDNN_CHOSEN_BY_USER = ONEDNN_VARIABLE in os.environ
use_onednn_kernels()

import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get("INTERP_FR_SHARED",
                            os.path.join(os.path.dirname(REPO_ROOT), "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    """Path of the steering repo's shared/ folder (real protocol and side files)."""
    if not os.path.isdir(SHARED_DIR):
        pytest.fail(f"shared/ folder not found at {SHARED_DIR}; set INTERP_FR_SHARED")
    return SHARED_DIR


@pytest.fixture(scope="session")
def reference_world(tmp_path_factory):
    """The synthetic world of seed 0, the one every shipped reference model was
    made on (a pure function of its seed, so rebuilt here once per session)."""
    from interp_fr.data import synthetic_world
    out = str(tmp_path_factory.mktemp("reference_world"))
    synthetic_world.build_world(out, synthetic_world.WorldConfig(seed=0))
    return out
