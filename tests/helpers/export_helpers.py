"""What every export command test checks: written from a weights file, the file
computes the Keras features; a missing model is one error line, exit status 2."""
import subprocess
import sys

import numpy as np

from interp_fr import weights_files
from tests.conftest import REPO_ROOT


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def check_command_from_weights_file(module, suffix, label, forward_class, model,
                                    tmp_path):
    """``python -m module --model_dir W --output O`` writes a file whose
    ``forward_class(O)`` gives the model's features."""
    weights = str(tmp_path / "m.weights.h5")
    weights_files.save_weights_with_config(model, weights)
    out = str(tmp_path / "out" / f"m{suffix}")
    proc = _run(module, "--model_dir", weights, "--output", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote {label}" in proc.stdout
    x = np.random.default_rng(2).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(forward_class(out)(x)["feature"],
                               model(x, training=False)["feature"].numpy(), atol=1e-6)


def check_missing_model_is_one_line(module, suffix, tmp_path):
    proc = _run(module, "--model_dir", str(tmp_path / "missing.weights.h5"),
                "--output", str(tmp_path / f"x{suffix}"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "missing.weights.h5" in proc.stderr


def small_model():
    """A randomised df-4 InterpFRNet (12-d features) for export tests."""
    from interp_fr.model import InterpFRNet
    from tests.helpers.extract_helpers import randomise
    m = InterpFRNet(df_dim=4, gfc_dim=16, dfc_dim=12, n_subjects=5)
    m.build((None, 96, 96, 3))
    randomise(m, 0)
    return m


def check_matches_keras(forward, model, batches=(3, 1, 5)):
    """An exported file's ``forward`` gives the Keras features (<= 1e-5 relative)
    and keeps the same peak positions, for each batch size from one file."""
    rng = np.random.default_rng(1)
    for batch in batches:
        x = rng.uniform(-1, 1, (batch, 96, 96, 3)).astype(np.float32)
        want = model(x, training=False)
        got = forward(x)
        assert got["feature"].shape == (batch, 12)
        assert got["feature_map"].shape == (batch, 24, 24, 12)
        scale = float(np.abs(want["feature"]).max())
        assert np.abs(got["feature"] - want["feature"].numpy()).max() <= 1e-5 * scale
        np.testing.assert_array_equal(got["feature_map"] != 0,
                                      want["feature_map"].numpy() != 0)
