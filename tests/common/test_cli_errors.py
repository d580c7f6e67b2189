"""Command lines fail cleanly (the project's rule): bad input gets one line,
``error: <file>: <problem>``, exit status 2 and no traceback unless --verbose;
NaN is bad input; TensorFlow's start-up log is hidden.

Each subprocess imports the command's modules (those importing TensorFlow take
about 5 s), so the bad-input cases are one run each.
"""
import ast
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import interp_fr
from interp_fr.common import cli, tf_logging
from interp_fr.data import dat_files, synthetic_world
from interp_fr.common.errors import DataFileError, check_finite, text_line_numbers
from tests.conftest import REPO_ROOT
from tests.core.test_packaging import _setup_literal

# The command's own absl log records (progress before the failure, e.g.
# "loaded 3 x 4 features"); TensorFlow's C++ records name a .cc file instead.
_OWN_LOG = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+\.py:\d+\] ")
_TF_NOISE = ("oneDNN", "cuInit", "cudart_stub", "absl::InitializeLog",
             "cpu_feature_guard")
FEATURE_DIM = 4


def _env():
    """A user's environment: conftest's TF log level and GPU hiding removed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)


def _one_error_line(proc, *fragments):
    """Asserts exit status 2, no traceback and one ``error:`` line holding
    ``fragments`` (besides the command's own log records); returns it."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines()
             if line.strip() and not _OWN_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The smallest synthetic world: CASIA-format training files, an IJB-A
    protocol (one split) and 9 test images."""
    root = str(tmp_path_factory.mktemp("world"))
    synthetic_world.build_world(root, synthetic_world.WorldConfig(
        train_subjects=2, train_images_per_subject=2, test_subjects=3,
        test_images_min=2, test_images_max=3, num_splits=1))
    return root


def _ijba(world, features, tmp_path, *extra):
    return _run("eval.ijba", "--features", features,
                "--protocol_dir", os.path.join(world, synthetic_world.IJBA_DIR),
                "--splits", "1", "--output_dir", tmp_path / "out", *extra)


def _num_test_images(world):
    return len(dat_files.DatImages(os.path.join(world, synthetic_world.DATA_DIR,
                                                dat_files.IJBA_IMAGES_FILE),
                                   dat_files.IJBA_IMAGE_SIZE))


# --------------------------------------------------------------------------- bad input


def test_ijba_short_feature_file_one_line_or_traceback_with_verbose(world, tmp_path):
    short = tmp_path / "short.txt"
    np.savetxt(short, np.ones((3, FEATURE_DIM)))
    _one_error_line(_ijba(world, short, tmp_path), "verify_metadata_1.mat",
                    "the features have only 3 rows")
    assert not (tmp_path / "out").exists()

    verbose = _ijba(world, short, tmp_path, "--verbose")
    assert verbose.returncode not in (0, 2)
    assert "Traceback" in verbose.stderr and "DataFileError" in verbose.stderr


def test_ijba_corrupt_dataset_mat(world, tmp_path):
    features = tmp_path / "features.txt"
    np.savetxt(features, np.ones((_num_test_images(world), FEATURE_DIM)))
    bad = tmp_path / "dataset.mat"
    bad.write_bytes(np.random.default_rng(0).bytes(512))
    _one_error_line(_ijba(world, features, tmp_path, "--dataset_mat", bad),
                    f"{bad}: not a readable MATLAB .mat file")


def test_ijba_nan_features_are_refused_with_the_lines_named(world, tmp_path):
    x = np.ones((_num_test_images(world), FEATURE_DIM))
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    features = tmp_path / "features.txt"
    np.savetxt(features, x)
    _one_error_line(_ijba(world, features, tmp_path),
                    f"{features}: NaN or infinite feature values on lines 5, 8")
    assert not (tmp_path / "out").exists()


def test_train_file_list_of_the_wrong_length(world, tmp_path):
    # One TensorFlow command: its one stderr line also shows that the start-up
    # log (oneDNN, cudart, cuInit) is hidden.
    data = tmp_path / "DATA"
    shutil.copytree(os.path.join(world, synthetic_world.DATA_DIR), data)
    file_list = data / dat_files.CASIA_FILE_LIST
    lines = file_list.read_text().splitlines(keepends=True)
    file_list.write_text("".join(lines[:2]))
    proc = _run("interp_fr.train", "--is_train", "True", "--data_dir", data,
                "--aux_dir", os.path.join(world, synthetic_world.AUX_DIR),
                "--checkpoint_dir", tmp_path / "ckpt", "--gpu", "-1", "--max_steps", 1,
                "--df_dim", 4, "--gfc_dim", 8, "--dfc_dim", 8, "--progress", "False")
    _one_error_line(proc, dat_files.CASIA_IMAGES_FILE,
                    f"the file list {file_list} has 2 lines")


def test_a_bad_flag_value_is_bad_input(tmp_path):
    _one_error_line(_run("interp_fr.pipeline.demo", "--out", tmp_path / "job",
                         "--attribute_recogniser", "reference:nothing"),
                    "--attribute_recogniser", "reference:mobilefacenet")
    assert not (tmp_path / "job").exists()


def test_main_job_refuses_options_that_do_not_go_together(tmp_path):
    """A shipped recogniser is explained with its shipped decoder: asking for
    one together with decoders trained in the run is refused before any stage."""
    out = tmp_path / "job"
    _one_error_line(_run("interp_fr.pipeline.demo", "--out", out, "--attribute_models",
                         "train", "--attribute_recogniser", "reference:mobilefacenet"),
                    "needs attribute_models=reference")
    assert not out.exists()


@pytest.mark.parametrize("module, args", [
    ("interp_fr.convert_checkpoint", ["--tf1_checkpoint", "Interp_FR/CASIA"]),
    ("attr_recovery.cli.convert_checkpoint", ["--kind", "generator", "--input", "550000.pt"]),
])
def test_converters_refuse_an_output_without_the_suffix(tmp_path, module, args):
    out = tmp_path / "converted.h5"
    _one_error_line(_run(module, *args, "--output", out),
                    f"{out}: ", "must end in '.weights.h5'", "nothing was written")
    assert os.listdir(tmp_path) == []


def test_extract_is_quiet_and_refuses_nan_features_from_the_model(tmp_path):
    from interp_fr import tf1_checkpoint
    from interp_fr.model import InterpFRNet
    from tests.helpers.extract_helpers import CONFIG, world as extract_world
    w = extract_world()
    ok = _run("interp_fr.extract", "--model", w.tf1_dir, "--images", w.dat,
              "--output", tmp_path / "features.txt", "--progress", "False")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert not [line for line in ok.stderr.splitlines()
                if any(n in line for n in _TF_NOISE)], ok.stderr[-3000:]

    model = InterpFRNet(**CONFIG)
    tf1_checkpoint.load_tf1_checkpoint(model, w.tf1_dir)
    beta = [v for n, v in model.tf1_variable_map().items() if n.endswith("beta")][-1]
    beta.assign(np.full(beta.shape, np.nan, np.float32))
    weights = tmp_path / "nan.weights.h5"
    model.save_weights(str(weights))
    bad = _run("interp_fr.extract", "--model", weights, "--images", w.dat,
               "--output", tmp_path / "never.txt", "--progress", "False",
               "--batch_size", 4)
    _one_error_line(bad, f"{w.dat}: NaN or infinite features from the model on "
                    "images 1, 2, 3, 4 (later images not checked)")
    assert not (tmp_path / "never.txt").exists()


# --------------------------------------------------------------------------- pieces


def test_every_command_runs_through_cli_run():
    """Each console script's module hands its main to `cli.run` (the one place
    that turns bad input into one line), read without importing."""
    # The other engineer's file; it prints its DataFileError in one line, exit 2.
    own_handler = set()
    for entry in _setup_literal("CONSOLE_SCRIPTS"):
        name, target = (s.strip() for s in entry.split("="))
        assert name.startswith(interp_fr._SCRIPT_PREFIXES), name
        module = target.split(":")[0]
        if module in own_handler:
            continue
        path = module.replace("interp_fr.", "", 1) if module.split(".")[1] in (
            "data", "eval", "tools") else module
        source = open(os.path.join(REPO_ROOT, *path.split(".")) + ".py").read()
        calls = {ast.unparse(n.func) for n in ast.walk(ast.parse(source))
                 if isinstance(n, ast.Call)}
        assert "cli.run" in calls and "app.run" not in calls, module


def test_check_finite_names_the_first_rows(tmp_path):
    check_finite("ints.dat", np.zeros((3, 2), np.uint8))      # cannot hold NaN
    check_finite("ok.txt", np.ones((3, 2)))
    x = np.ones((9, 2))
    x[[1, 2, 3, 5, 6, 8], 0] = np.nan
    with pytest.raises(DataFileError, match=r"^x.npy: NaN or infinite values on "
                       r"rows 2, 3, 4, 6, 7 and more$"):
        check_finite("x.npy", x)
    text = tmp_path / "f.txt"
    text.write_text("# header\n1 2\n\n3 4\n# note\n5 6\n")
    assert text_line_numbers(text, [0, 1, 2]) == [2, 4, 6]


def test_nan_maps_and_mat_features_are_refused_with_the_rows_named(tmp_path):
    import scipy.io
    from interp_fr.eval import ijbc, peak_locations
    maps = np.ones((40, 24 * 24 * 2))
    maps[35, 3] = np.nan
    text, npy = tmp_path / "maps.txt", tmp_path / "maps.npy"
    np.savetxt(text, maps)
    np.save(npy, maps)
    with pytest.raises(DataFileError, match=r"maps.txt: NaN or infinite map values "
                       r"on line 36 \(later lines not checked\)"):
        list(peak_locations.iter_map_file(str(text), num_images=40))
    with pytest.raises(DataFileError, match=r"on 0-based row 35 "):
        list(peak_locations.iter_map_file(str(npy), num_images=40))
    mat = tmp_path / "IJBC_features.mat"
    scipy.io.savemat(mat, {"feat": np.where(np.eye(3) > 0, np.inf, 1.0)})
    with pytest.raises(DataFileError, match=r"feat on rows 1, 2, 3$"):
        ijbc.load_features(str(mat))


# What TensorFlow 2.21 writes to stderr on import and first GPU probe on a
# machine without an NVIDIA driver (measured; messages shortened), after a
# line of another library. A line right after a hidden record counts as part
# of it (absl writes multi-line messages as they are: "To enable ...").
TF_STARTUP = """\
some line a library printed
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795993536.381150   29558 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1795993536.381467   29558 cudart_stub.cc:31] Could not find cuda drivers
I0000 00:00:1795993536.424770   29558 cpu_feature_guard.cc:227] This TensorFlow binary
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild.
E0000 00:00:1795993539.753932   29558 cuda_platform.cc:52] failed call to cuInit: (303)
W0000 00:00:1795993539.753932   29558 other.cc:1] a warning
E0000 00:00:1795993539.753932   29558 other.cc:2] a real error
"""


def test_startup_noise_filter_applies_the_log_level():
    f = tf_logging.without_startup_noise
    assert f(TF_STARTUP, 0) == TF_STARTUP
    kept = f(TF_STARTUP, 2, gpu_absent=True).splitlines()
    assert kept == ["some line a library printed", TF_STARTUP.splitlines()[-1]]
    assert any("cuInit" in line for line in f(TF_STARTUP, 2).splitlines())
    assert len(f(TF_STARTUP, 1, gpu_absent=True).splitlines()) == 3


def test_verbose_and_command_detection(monkeypatch):
    assert cli.verbose_requested(["--x=1", "--verbose"])
    assert cli.verbose_requested(["--verbose", "True"])
    assert not cli.verbose_requested(["--verbose=false"])
    assert not cli.verbose_requested(["--noverbose", "--", "--verbose"])
    monkeypatch.setattr(sys, "argv", ["-m", "--out", "x"])
    monkeypatch.setattr(sys, "orig_argv", ["python", "-u", "-m", "eval.ijba", "--out"])
    assert interp_fr.started_as_command()
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "pytest"])
    assert not interp_fr.started_as_command()
    monkeypatch.setattr(sys, "argv", ["/usr/bin/interp-fr-train", "--is_train"])
    assert interp_fr.started_as_command()
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest"])
    assert not interp_fr.started_as_command()


@pytest.mark.parametrize("module, flag", [("eval.ijba", "--features"),
                                          ("eval.peak_locations", "--peak_maps"),
                                          ("interp_fr.train", "--learning_rate"),
                                          ("tools.freeze.export_litert", "--fixed_batch")])
def test_help_lists_the_commands_own_flags(module, flag):
    """--help shows the usage text and the flags the project defines for the
    command (absl's own lists only the main module's: none for a thin CLI or a
    console script), and exits 0."""
    proc = _run(module, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert flag in proc.stdout and "verbose" in proc.stdout
    assert "Traceback" not in proc.stderr
