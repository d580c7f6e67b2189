"""Feature extraction: every model format against the Keras model's own
outputs, the original's file formats, image folders, atomic output, the CLI."""
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from interp_fr import extraction, features, model_loading as ml
from interp_fr.common.errors import DataFileError
from interp_fr.export import frozen_graph as fg
from tests.conftest import REPO_ROOT
from tests.helpers.extract_helpers import (CONFIG, NUM_IMAGES, TOLERANCE, exports,
                                   max_abs, world)


@pytest.fixture(scope="module")
def w():
    return world()


@pytest.fixture(scope="module")
def formats(w):
    """The reference weights in every format; name -> (path, expected kind)."""
    e = exports()
    return {
        "keras weights": (e.keras, ml.KIND_KERAS_WEIGHTS),
        "training run folder": (e.run, ml.KIND_TRAINING_CHECKPOINT),
        "training resume folder": (os.path.join(e.run, "resume"),
                                   ml.KIND_TRAINING_CHECKPOINT),
        "checkpoint_dir with one run": (e.checkpoint_dir,
                                        ml.KIND_TRAINING_CHECKPOINT),
        "TF1 folder": (w.tf1_dir, ml.KIND_TF1_CHECKPOINT),
        "TF1 prefix": (w.tf1_prefix, ml.KIND_TF1_CHECKPOINT),
        "SavedModel": (e.saved_model, ml.KIND_SAVED_MODEL),
        "frozen graph": (e.frozen, ml.KIND_FROZEN_GRAPH),
        "frozen graph, batch 1": (e.frozen_fixed, ml.KIND_FROZEN_GRAPH),
    }


# Other spellings of a kind loaded below: checked by detection only, to keep
# the test short.
DETECTION_ONLY = ("training resume folder", "checkpoint_dir with one run",
                  "TF1 prefix")


def test_every_format_agrees_with_keras(w, formats):
    ref = {n: v.numpy() for n, v in w.model.tf1_variable_map().items()}
    errors = {}
    for name, (path, kind) in formats.items():
        assert ml.detect_model_kind(path)[0] == kind, name
        if name in DETECTION_ONLY:
            continue
        loaded = ml.load_forward(path)
        assert loaded.kind == kind, name
        result = features.extract_features(
                loaded.forward, _dat(w), batch_size=3, num_maps=NUM_IMAGES)
        errors[name] = (max_abs(result.features, w.feature),
                        max_abs(result.feature_maps,
                                w.feature_map.reshape(NUM_IMAGES, -1)))
        if loaded.model is not None:
            # Dims were inferred from the stored shapes.
            model = loaded.model
            assert {k: getattr(model, k) for k in CONFIG} == CONFIG, name
            for var_name, var in model.tf1_variable_map().items():
                np.testing.assert_array_equal(var.numpy(), ref[var_name],
                                              err_msg=f"{name}: {var_name}")
    print("max abs error (feature, feature map):", errors)
    for name, (feat_err, map_err) in errors.items():
        assert feat_err <= TOLERANCE and map_err <= TOLERANCE, (name, errors[name])


def _dat(w):
    return extraction.open_images(w.dat)


def test_keras_model_from_graph_kinds(w, formats):
    """load_keras_model also rebuilds Keras models from our SavedModel and
    from a frozen graph (no classifier there: n_subjects defaults to CASIA's)."""
    for name in ("SavedModel", "frozen graph"):
        path, kind = formats[name]
        model, got_kind, _ = ml.load_keras_model(path)
        assert got_kind == kind
        assert max_abs(model(w.images)["feature"], w.feature) == 0.0
        assert model.n_subjects == (5 if kind == ml.KIND_SAVED_MODEL else 10575)


def test_dims_given_must_match(w, formats):
    path = formats["keras weights"][0]
    assert ml.infer_keras_weights_config(path) == dict(CONFIG, variant="full")
    model, _, _ = ml.load_keras_model(path, df_dim=4, variant="hypercolumn_no_mask")
    assert model.variant == "hypercolumn_no_mask"
    with pytest.raises(ml.ModelLoadError, match="df_dim=8 was requested but the "
                       "weights have df_dim=4"):
        ml.load_keras_model(path, df_dim=8)
    with pytest.raises(ml.ModelLoadError, match="'base'"):
        ml.load_keras_model(formats["TF1 folder"][0], variant="base")


def test_detection_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ml.ModelLoadError) as err:
        ml.detect_model_kind(str(empty))
    assert str(err.value).startswith(str(empty)) and "notes.txt" in str(err.value)
    with pytest.raises(ml.ModelLoadError, match="no such file"):
        ml.detect_model_kind(str(tmp_path / "missing"))
    bad = empty / "bad.pb"
    bad.write_bytes(b"not a graph at all")
    # A folder with a single .pb (the original's models/) is that graph.
    assert ml.detect_model_kind(str(empty)) == (ml.KIND_FROZEN_GRAPH, str(bad))
    with pytest.raises(fg.FrozenGraphError, match="not a binary GraphDef"):
        ml.load_forward(str(bad))


def _same_answer_for_the_same_batch(forward):
    """``forward`` that returns its first answer again for a batch it has seen.

    Two forward passes of the same batch agree to float32 rounding, not always
    bit for bit (oneDNN gave a 1-ulp change on a single-image batch of one of
    two calls; BUILD_NOTES.md, "oneDNN kernels on AVX2-only CPUs"). The files'
    layout is what this test checks exactly, so each batch is computed once."""
    seen = {}

    def cached(images):
        a = np.asarray(images)
        key = (a.shape, a.dtype.str, a.tobytes())
        if key not in seen:
            seen[key] = forward(images)
        return seen[key]
    return cached


def test_files_match_the_original_formats(w, formats, tmp_path):
    loaded = ml.load_forward(formats["TF1 folder"][0])
    forward = _same_answer_for_the_same_batch(loaded.forward)
    feats = tmp_path / "IJBA_features_iter_0.txt"
    maps = tmp_path / "IJBA_feature_maps_ours.txt"
    seen = []
    summary = extraction.extract_to_files(
            forward, _dat(w), str(feats), maps_path=str(maps),
            num_maps=4, batch_size=3,
            progress=lambda done, total, s: seen.append((done, total)))
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert (summary.num_images, summary.feature_dim, summary.num_maps) == (7, 32, 4)
    # Text written batch by batch is exactly np.savetxt of the whole matrix.
    whole = features.extract_features(forward, _dat(w), batch_size=3,
                                      num_maps=4)
    buf = io.StringIO()
    np.savetxt(buf, whole.features)
    assert feats.read_text() == buf.getvalue()
    got = np.loadtxt(feats)
    assert got.shape == (7, 32) and max_abs(got, w.feature) <= TOLERANCE
    got_maps = np.loadtxt(maps)
    assert got_maps.shape == (4, 24 * 24 * 32)
    # Row i is the [24, 24, C] map in C order, as test_pre_train.py flattens.
    assert max_abs(got_maps, w.feature_map[:4].reshape(4, -1)) <= TOLERANCE
    assert max_abs(got_maps[1].reshape(24, 24, 32), w.feature_map[1]) <= TOLERANCE

    # .npy on request, streamed with a header written up front.
    extraction.extract_to_files(forward, _dat(w), str(tmp_path / "f.npy"),
                                maps_path=str(tmp_path / "m.npy"), num_maps=100,
                                batch_size=3)
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"),
                                  whole.features.astype(np.float32))
    assert np.load(tmp_path / "m.npy").shape == (7, 24 * 24 * 32)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_outputs_are_atomic(w, tmp_path):
    feats = tmp_path / "features.txt"
    feats.write_text("old\n")
    calls = []

    def failing(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise RuntimeError("boom")
        return {"feature": np.zeros((len(images), 3)),
                "feature_map": np.zeros((len(images), 2, 2, 1))}

    with pytest.raises(RuntimeError, match="boom"):
        extraction.extract_to_files(failing, _dat(w), str(feats),
                                    maps_path=str(tmp_path / "maps.txt"),
                                    batch_size=3)
    assert feats.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["features.txt"]


def test_image_folder(w, formats, tmp_path):
    from PIL import Image
    folder = tmp_path / "faces"
    folder.mkdir()
    names = [f"img_{i:02d}.png" for i in range(NUM_IMAGES)]
    for name, img in zip(names, w.uint8):
        Image.fromarray(img).save(folder / name)
    (folder / "readme.txt").write_text("not an image")
    images = extraction.open_images(str(folder))
    assert isinstance(images, extraction.ImageFolder) and images.names == names
    loaded = ml.load_forward(formats["frozen graph, batch 1"][0])
    feats = tmp_path / "out" / "features.txt"
    summary = extraction.extract_to_files(loaded.forward, images, str(feats),
                                          batch_size=4)
    assert summary.file_list_path == str(tmp_path / "out" / "features_files.txt")
    assert open(summary.file_list_path).read().split() == names
    assert max_abs(np.loadtxt(feats), w.feature) <= TOLERANCE

    # Other sizes need --resize; JPEG and grey images are read too.
    Image.fromarray(w.uint8[0]).resize((120, 120)).save(folder / "z_big.jpg")
    with pytest.raises(DataFileError, match="z_big.jpg: image is 120x120"):
        extraction.extract_to_files(loaded.forward, extraction.open_images(str(folder)),
                                    str(feats), batch_size=4)
    Image.fromarray(w.uint8[1, :, :, 0]).save(folder / "z_grey.png")
    resized = extraction.open_images(str(folder), resize=True)
    block = resized.read_range(NUM_IMAGES, NUM_IMAGES + 2)
    assert block.shape == (2, 96, 96, 3)
    assert np.array_equal(block[1], np.repeat(w.uint8[1, :, :, :1], 3, axis=2))
    with pytest.raises(DataFileError, match="no .png"):
        extraction.open_images(str(tmp_path / "out"))


def _cli(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "interp_fr.extract"] + args,
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_end_to_end(w, formats, tmp_path):
    # The original's layout: ../DATA/IJBA_recrop_images_96_96_test.dat beside
    # the working folder, models/ inside it.
    work = tmp_path / "test"
    (tmp_path / "DATA").mkdir()
    shutil.copy(w.dat, tmp_path / "DATA")
    shutil.copytree(w.tf1_dir, work / "models")
    out = work / "IJBA_features_iter_0.txt"
    proc = _cli(["--model", str(work / "models"),
                 "--images", str(tmp_path / "DATA" / os.path.basename(w.dat)),
                 "--output", str(out), "--feature_maps", "--num_maps", "2",
                 "--maps_output", str(work / "maps.npy"), "--batch_size", "4",
                 "--progress", "False"])
    assert proc.returncode == 0, proc.stderr
    assert "tf1_checkpoint" in proc.stdout and "wrote 7 features" in proc.stdout
    assert max_abs(np.loadtxt(out), w.feature) <= TOLERANCE
    assert max_abs(np.load(work / "maps.npy"),
                   w.feature_map[:2].reshape(2, -1)) <= TOLERANCE

    bad = tmp_path / "broken.pb"
    bad.write_bytes(b"\x00\x01garbage")
    proc = _cli(["--model", str(bad), "--images", w.dat, "--output",
                 str(tmp_path / "never.txt")])
    assert proc.returncode != 0
    assert f"{bad}: not a binary GraphDef" in proc.stderr
    assert not os.path.exists(tmp_path / "never.txt")
