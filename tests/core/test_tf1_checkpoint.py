"""TF1 checkpoint loading / writing and the conversion CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from interp_fr import tf1_checkpoint as tc
from interp_fr.model import InterpFRNet
from tests.conftest import REPO_ROOT
from tests.reference.tf1_reference import SMALL_CONFIG, TRAIN_STEPS, trained_reference

N_TRAINABLE = 70  # 14 conv + 3 head conv (w, biases), 17 BN (beta, gamma), k7


@pytest.fixture(scope="module")
def reference():
    return trained_reference()


def _write_raw_checkpoint(directory, tensors):
    """A TF1 checkpoint holding exactly ``tensors`` (name -> array)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variables = {n: v1.Variable(np.asarray(x), name=n.replace("/", "_"))
                     for n, x in tensors.items()}
        saver = v1.train.Saver(var_list=variables)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            return saver.save(session, os.path.join(directory, "DCGAN.model"),
                              global_step=1, write_meta_graph=False)


def _values(model):
    return {n: v.numpy().copy() for n, v in model.tf1_variable_map().items()}


def test_full_load_values_and_optimizer_state(reference):
    model = InterpFRNet(**SMALL_CONFIG)
    result = tc.load_tf1_checkpoint(model, reference.ckpt_dir)
    assert result.checkpoint == reference.prefix
    assert result.global_step == TRAIN_STEPS
    assert result.skipped == []
    assert len(result.loaded) == len(model.tf1_variable_map()) == 104
    for name, var in model.tf1_variable_map().items():
        np.testing.assert_array_equal(var.numpy(), reference.values[name])
    trainable = [n for n, v in model.tf1_variable_map().items() if v.trainable]
    assert len(trainable) == N_TRAINABLE
    expected = {"beta1_power", "beta2_power"}
    expected |= {n + s for n in trainable for s in ("/Adam", "/Adam_1")}
    assert set(result.optimizer_state) == expected
    np.testing.assert_allclose(result.optimizer_state["beta1_power"],
                               0.5 ** (TRAIN_STEPS + 1), rtol=1e-6)
    np.testing.assert_array_equal(result.optimizer_state["d_k01_conv/w/Adam"],
                                  reference.values["d_k01_conv/w/Adam"])


def test_partial_base_load_like_original(reference):
    model = InterpFRNet(**SMALL_CONFIG)
    before = _values(model)
    result = tc.load_tf1_checkpoint(model, reference.prefix, subset="base")
    base = set(tc.base_variable_names(model))
    assert set(result.loaded) == base
    assert len(base) == 56  # 14 conv (w, biases) + 14 BN (beta, gamma)
    assert all("new" not in n and "moving" not in n for n in base)
    after = _values(model)
    for name in after:
        if name in base:
            np.testing.assert_array_equal(after[name], reference.values[name])
        else:
            # New layers and every moving statistic keep their values, as the
            # original's saver_old restores only trainable "old" variables.
            np.testing.assert_array_equal(after[name], before[name])
    assert set(result.skipped) == set(after) - base
    assert "d_k_bn0_1/moving_mean" in result.skipped


def test_error_lists_missing_unexpected_and_mismatched(reference, tmp_path):
    tensors = dict(tc.read_tf1_checkpoint(reference.prefix))
    del tensors["d_k5_new/gamma"]
    del tensors["d_k01_conv/biases"]
    tensors["d_k9_conv_new/w"] = np.zeros([3, 3, 2, 2], np.float32)
    tensors["d_k7_id_lin_new/Matrix"] = np.zeros([32, 12], np.float32)
    tensors["d_k7_id_lin_new/bias"] = np.zeros([12], np.float32)
    prefix = _write_raw_checkpoint(str(tmp_path), tensors)

    model = InterpFRNet(**SMALL_CONFIG)
    before = _values(model)
    with pytest.raises(tc.TF1CheckpointError) as info:
        tc.load_tf1_checkpoint(model, prefix)
    err = info.value
    assert err.missing == ["d_k01_conv/biases", "d_k5_new/gamma"]
    assert err.unexpected == ["d_k9_conv_new/w"]
    assert err.mismatched == [("d_k7_id_lin_new/Matrix", (32, 12), (32, 10)),
                              ("d_k7_id_lin_new/bias", (12,), (10,))]
    message = str(err)
    for name in ("d_k01_conv/biases", "d_k5_new/gamma", "d_k9_conv_new/w",
                 "d_k7_id_lin_new/Matrix"):
        assert name in message
    assert "classifier has 12 subjects" in message
    assert "n_subjects=10" in message
    # Nothing was assigned.
    for name, value in _values(model).items():
        np.testing.assert_array_equal(value, before[name])


def test_n_subjects_message_and_config_inference(reference):
    assert tc.infer_model_config(reference.ckpt_dir) == dict(
            SMALL_CONFIG, variant="full")
    model = InterpFRNet(**dict(SMALL_CONFIG, n_subjects=7))
    with pytest.raises(tc.TF1CheckpointError,
                       match=r"classifier has 10 subjects .*n_subjects=7"):
        tc.load_tf1_checkpoint(model, reference.ckpt_dir)
    # The base CNN's variables still load: the classifier is a "new" layer.
    assert len(tc.load_tf1_checkpoint(model, reference.ckpt_dir,
                                      subset="base").loaded) == 56
    # A base model finds the hypercolumn layers unexpected.
    base = InterpFRNet(**dict(SMALL_CONFIG, variant="base"))
    with pytest.raises(tc.TF1CheckpointError) as info:
        tc.load_tf1_checkpoint(base, reference.ckpt_dir)
    assert len(info.value.unexpected) == 18 and not info.value.missing


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        tc.load_tf1_checkpoint(InterpFRNet(**SMALL_CONFIG), str(tmp_path))


def test_round_trip_identical_and_restorable_by_v1_saver(reference, tmp_path):
    model = InterpFRNet(**SMALL_CONFIG)
    loaded = tc.load_tf1_checkpoint(model, reference.ckpt_dir)
    prefix = tc.save_tf1_checkpoint(model, str(tmp_path / "out"),
                                    global_step=TRAIN_STEPS,
                                    optimizer_state=loaded.optimizer_state)
    assert os.path.basename(prefix) == f"DCGAN.model-{TRAIN_STEPS}"
    assert tf.train.latest_checkpoint(str(tmp_path / "out")) == prefix
    original = tc.read_tf1_checkpoint(reference.prefix)
    written = tc.read_tf1_checkpoint(prefix)
    assert sorted(written) == sorted(original)
    for name, value in original.items():
        assert written[name].dtype == value.dtype, name
        np.testing.assert_array_equal(written[name], value, err_msg=name)

    # The original's own v1 Saver (full graph, all variables) restores it.
    ref = reference.ref
    image, feature, k5 = reference.sampler[0]
    ref.restore(prefix)
    restored = ref.sampler(image)
    np.testing.assert_array_equal(restored[0], feature)
    np.testing.assert_array_equal(restored[1], k5)


def test_keras_weights_round_trip_without_optimizer(tmp_path):
    model = InterpFRNet(**SMALL_CONFIG)
    prefix = tc.save_tf1_checkpoint(model, str(tmp_path))
    assert os.path.basename(prefix) == "DCGAN.model"
    assert set(tc.read_tf1_checkpoint(prefix)) == set(model.tf1_variable_map())
    other = InterpFRNet(**SMALL_CONFIG)
    assert tc.load_tf1_checkpoint(other, str(tmp_path)).optimizer_state == {}
    for name, value in _values(other).items():
        np.testing.assert_array_equal(value, model.tf1_variable_map()[name])


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
            [sys.executable, "-m", "interp_fr.convert_checkpoint", *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=300)


def test_cli_both_directions(reference, tmp_path):
    dims = [f"--{k}={v}" for k, v in SMALL_CONFIG.items()]
    weights = str(tmp_path / "model.weights.h5")
    proc = _cli(f"--tf1_checkpoint={reference.ckpt_dir}", f"--output={weights}",
                *dims)
    assert proc.returncode == 0, proc.stderr
    model = InterpFRNet(**SMALL_CONFIG)
    model.load_weights(weights)
    for name, value in _values(model).items():
        np.testing.assert_array_equal(value, reference.values[name])

    out_dir = str(tmp_path / "tf1")
    proc = _cli(f"--keras_weights={weights}", f"--tf1_output={out_dir}",
                "--global_step=5", *dims)
    assert proc.returncode == 0, proc.stderr
    written = tc.read_tf1_checkpoint(out_dir)
    assert tf.train.latest_checkpoint(out_dir).endswith("DCGAN.model-5")
    assert set(written) == set(model.tf1_variable_map())
    for name, value in written.items():
        np.testing.assert_array_equal(value, reference.values[name])


def test_convert_refuses_mismatch_and_writes_nothing(reference, tmp_path):
    weights = tmp_path / "x.weights.h5"
    with pytest.raises(tc.TF1CheckpointError, match="classifier has 10"):
        tc.convert_tf1_to_keras(reference.ckpt_dir, str(weights),
                                **dict(SMALL_CONFIG, n_subjects=10575))
    assert not weights.exists()
    with pytest.raises(ValueError, match="weights.h5"):
        tc.convert_tf1_to_keras(reference.ckpt_dir, str(tmp_path / "x.h5"),
                                **SMALL_CONFIG)
