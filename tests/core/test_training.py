"""The trainer: original command line, learning, resume, NaN stop, base restore."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from interp_fr import recipes, tf1_checkpoint, training
from interp_fr.common import cli
from interp_fr.data import synthetic_world
from interp_fr.model import InterpFRNet
from tests.helpers import learning
from tests.conftest import REPO_ROOT

SMALL = dict(df_dim=4, gfc_dim=32, dfc_dim=32)
# The learning test's recipe and thresholds (spread over seeds and kernel sets:
# experiments/results/learning_test_spread/).
LEARNING_RATE = 0.02
STEPS = 120
LOSS_RATIO_BELOW = 0.6
ACCURACY_ABOVE = 0.45


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("world"))
    synthetic_world.build_world(out, synthetic_world.WorldConfig(
        train_subjects=6, train_images_per_subject=16, test_subjects=4,
        test_images_min=3, test_images_max=4, num_splits=2, seed=learning.seed(1)))
    return out


def _config(world, ckpt, **kw):
    base = dict(data_dir=os.path.join(world, "DATA"), aux_dir=os.path.join(world, "aux"),
                checkpoint_dir=str(ckpt), dataset="SYN", batch_size=16, progress=False,
                tensorboard=False, learning_rate=0.002, **SMALL)
    base.update(kw)
    return training.TrainConfig(**base)


def test_tf1_style_boolean_arguments():
    argv = ["prog", "--is_train", "True", "--batch_size", "64", "--is_with_y", "False",
            "--visualize", "--gpu", "0", "--is_crop=False"]
    out = cli.tf1_style_bool_argv(argv, ["is_train", "is_with_y", "visualize", "is_crop"])
    assert out == ["prog", "--is_train=True", "--batch_size", "64", "--is_with_y=False",
                   "--visualize", "--gpu", "0", "--is_crop=False"]
    assert cli.parse_gpu_list("0,1") == [0, 1] and cli.parse_gpu_list("-1") == []


def test_checkpoint_folder_name_is_the_originals():
    c = training.TrainConfig(dataset="CASIA", batch_size=64, gf_dim=32, gfc_dim=320,
                             df_dim=32, dfc_dim=320)
    assert c.model_dir_name == "CASIA_64_96_32_320_32_320"
    assert c.feature_keep == 260
    assert dataclasses.replace(c, dfc_dim=64).feature_keep == 52


def test_short_run_learns_identities(world, tmp_path):
    steps = learning.steps(STEPS)
    logs = []
    trainer = training.Trainer(_config(world, tmp_path, max_steps=steps, log_every=6,
                                       learning_rate=LEARNING_RATE,
                                       seed=learning.seed(0)), log=logs.append)
    trainer.fit()
    losses_logged = [float(line.split("d_loss: ")[1].split()[0])
                     for line in logs if line.startswith("Epoch:")]
    # Identity accuracy of the trained model on its training images (inference
    # mode, all 96 images centre-cropped), against 1/6 chance.
    images = trainer.casia.images.read(range(96))[:, 7:103, 7:103]
    logits = trainer.model(tf.constant(images, tf.float32) / 127.5 - 1.0)["logits"]
    acc = np.mean(np.argmax(logits, -1) == trainer.casia.file_list.subject_ids)
    # No step, no change: the untrained control's loss ratio is 1.
    ratio = np.mean(losses_logged[-2:]) / losses_logged[0] if losses_logged else 1.0
    assert len(losses_logged) == steps // 6
    # 2 * CE starts at 2 ln 6 = 3.58 (chance) and must come well down.
    assert not losses_logged or abs(losses_logged[0] - 2 * np.log(6)) < 0.05
    learning.check("training.short_run", {"accuracy": acc, "loss_ratio": ratio},
                   {"accuracy": (">", ACCURACY_ABOVE),
                    "loss_ratio": ("<", LOSS_RATIO_BELOW)})
    model_dir = trainer.config.model_dir
    assert os.path.isfile(os.path.join(model_dir, f"DCGAN.model-{STEPS // 6}.index"))
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "resume")).endswith(
        f"ckpt-{STEPS}")


@pytest.mark.parametrize("recipe", [{}, {"lr_schedule": "cosine", "warmup_steps": 1,
                                     "head_lr_multiplier": 10.0}],
                         ids=["original", "cosine_and_head_lr"])
def test_resume_continues_exactly(world, tmp_path, recipe):
    straight = training.Trainer(_config(world, tmp_path / "a", max_steps=4, **recipe),
                                log=print)
    straight.fit()
    first = training.Trainer(_config(world, tmp_path / "b", max_steps=2, **recipe),
                             log=print)
    first.fit()
    resumed = training.Trainer(_config(world, tmp_path / "b", max_steps=4, **recipe),
                               log=print)
    assert int(resumed.step.numpy()) == 2
    resumed.fit()
    for a, b in zip(straight.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6, err_msg=a.path)
    optimizers = [(straight.optimizer, resumed.optimizer)]
    if recipe:
        optimizers.append((straight.head_optimizer, resumed.head_optimizer))
    for opt_a, opt_b in optimizers:
        for a, b in zip(opt_a.variables, opt_b.variables):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_continued_training_is_the_longer_run(world, tmp_path):
    # With a constant learning rate the longer run's schedule is the shorter
    # one's, so a continuation must reproduce a straight run of the longer
    # budget exactly; the shorter run's folder must stay as it was.
    recipe = recipes.Recipe(batch_size=16, pretrain_steps=2, lr_schedule="constant",
                            warmup_steps=0, seed=3, **SMALL)
    longer = dataclasses.replace(recipe, pretrain_steps=4)
    straight = recipes.train_paper_model(longer, "base", world, tmp_path / "straight")
    short = recipes.train_paper_model(recipe, "base", world, tmp_path / "short")
    before = sorted(os.listdir(short.trainer.config.model_dir))
    recipes.continue_training(short, longer, "base", world, tmp_path / "long")
    continued = recipes.train_paper_model(longer, "base", world, tmp_path / "long")
    assert continued.trainer.restored_from is not None
    assert [s for s, _ in continued.trainer.history] == [3, 4]  # only these ran
    assert int(continued.trainer.step.numpy()) == 4
    for a, b in zip(straight.model.weights, continued.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6, err_msg=a.path)
    assert sorted(os.listdir(short.trainer.config.model_dir)) == before
    # A second call finds the continuation and leaves it alone.
    recipes.continue_training(short, longer, "base", world, tmp_path / "long")
    again = recipes.train_paper_model(longer, "base", world, tmp_path / "long")
    assert int(again.trainer.step.numpy()) == 4 and again.trainer.history == []


def test_head_learning_rate_multiplier_scales_only_the_new_variables(world, tmp_path):
    """Adam's first step moves each weight by about lr (lr * g / |g|), so a 10x
    head multiplier moves the "_new" variables 10x as far and the rest alike."""
    moved = {}
    for mult in (1.0, 10.0):
        trainer = training.Trainer(_config(world, tmp_path / str(mult), max_steps=1,
                                           head_lr_multiplier=mult), log=print)
        before = {n: v.numpy().copy() for n, v in trainer.model.tf1_variable_map().items()}
        trainer.fit()
        moved[mult] = {n: np.abs(v.numpy() - before[n]).max()
                       for n, v in trainer.model.tf1_variable_map().items()
                       if v.trainable}
    head = [n for n in moved[1.0] if "_new" in n]
    body = [n for n in moved[1.0] if "_new" not in n]
    assert head and body
    for n in head:
        assert moved[10.0][n] == pytest.approx(10 * moved[1.0][n], rel=0.02), n
    for n in body:
        assert moved[10.0][n] == pytest.approx(moved[1.0][n], rel=0.02), n


def test_nonfinite_loss_stops_and_keeps_last_checkpoint(world, tmp_path):
    trainer = training.Trainer(_config(world, tmp_path, max_steps=2), log=print)
    trainer.fit()
    saved = trainer.manager.latest_checkpoint
    again = training.Trainer(_config(world, tmp_path, max_steps=5), log=print)
    # An all-zero k5 kernel makes the filter-diversity cosine 0/0, as in the original.
    again.model.k5_conv.w.assign(tf.zeros_like(again.model.k5_conv.w))
    with pytest.raises(training.NonFiniteLossError, match=r"step 3: .*diver_loss_A"):
        again.fit()
    assert again.manager.latest_checkpoint == saved
    assert tf.train.latest_checkpoint(os.path.join(again.config.model_dir, "resume")) == saved


def test_starts_from_pretrained_base_like_the_original(world, tmp_path):
    config = _config(world, tmp_path, max_steps=1)
    pretrained = InterpFRNet(n_subjects=6, variant="base", **SMALL)
    pretrained.build((None, 96, 96, 3))
    for v in pretrained.weights:
        v.assign(np.random.default_rng(len(v.path)).normal(0, 1, v.shape).astype(np.float32))
    tf1_checkpoint.save_tf1_checkpoint(pretrained, config.model_dir, global_step=5)
    trainer = training.Trainer(config, log=print)
    ours = trainer.model.tf1_variable_map()
    theirs = pretrained.tf1_variable_map()
    for name in tf1_checkpoint.base_variable_names(trainer.model):
        np.testing.assert_array_equal(ours[name].numpy(), theirs[name].numpy())
    # BN moving statistics are not trainable, so the original does not restore them.
    np.testing.assert_array_equal(ours["d_k_bn0_1/moving_mean"].numpy(), 0.0)
    cfg2 = dataclasses.replace(config, checkpoint_dir=str(tmp_path / "c"),
                               restore_bn_moving_stats=True)
    tf1_checkpoint.save_tf1_checkpoint(pretrained, cfg2.model_dir, global_step=5)
    t2 = training.Trainer(cfg2, log=print)
    np.testing.assert_array_equal(t2.model.tf1_variable_map()["d_k_bn0_1/moving_mean"].numpy(),
                                  theirs["d_k_bn0_1/moving_mean"].numpy())


STRATEGY_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from interp_fr import training
config = training.TrainConfig(data_dir=sys.argv[1] + "/DATA", aux_dir=sys.argv[1] + "/aux",
    checkpoint_dir=sys.argv[2], dataset="SYN", batch_size=16, df_dim=4, gfc_dim=32,
    dfc_dim=32, max_steps=3, progress=False, tensorboard=False,
    devices=("/cpu:0", "/cpu:1"))
t = training.Trainer(config)
assert t.strategy.num_replicas_in_sync == 2, t.strategy
last = t.fit()
assert np.isfinite(last["d_loss"]) and int(t.step.numpy()) == 3, last
print("STRATEGY OK", t.strategy.__class__.__name__, last["d_loss"])
"""


def test_mirrored_strategy_on_two_logical_cpus(world, tmp_path):
    proc = subprocess.run([sys.executable, "-c", STRATEGY_SCRIPT, world, str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert "STRATEGY OK MirroredStrategy" in proc.stdout, proc.stderr[-4000:]


def test_original_command_line_trains_then_writes_features(world, tmp_path):
    common = ["--dataset", "SYN", "--batch_size", "16", "--image_size", "96",
              "--is_with_y", "True", "--gf_dim", "32", "--df_dim", "4", "--dfc_dim", "32",
              "--gfc_dim", "32", "--z_dim", "20", "--checkpoint_dir", str(tmp_path),
              "--gpu", "0", "--data_dir", os.path.join(world, "DATA"),
              "--aux_dir", os.path.join(world, "aux"), "--progress", "False"]
    train = subprocess.run([sys.executable, "-m", "interp_fr.train", "--is_train", "True",
                            "--learning_rate", "0.001", "--max_steps", "2"] + common,
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Epoch: [ 0] [   0/   6]" in train.stdout
    feats = tmp_path / "f.txt"
    test = subprocess.run([sys.executable, "-m", "interp_fr.train", "--is_train", "False",
                           "--features_out", str(feats)] + common,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    arr = np.loadtxt(feats)
    n_test = os.path.getsize(os.path.join(world, "DATA",
                                          "IJBA_recrop_images_96_96_test.dat")) // (96 * 96 * 3)
    assert arr.shape == (n_test, 32) and np.all(np.isfinite(arr))


def test_mixed_precision_computes_in_float16_with_loss_scaling(world, tmp_path):
    policy = tf.keras.mixed_precision.global_policy().name
    full = training.Trainer(_config(world, tmp_path / "a", max_steps=1), log=print)
    half = training.Trainer(_config(world, tmp_path / "b", max_steps=1,
                                    mixed_precision=True), log=print)
    # The policy applies to the trainer's model only.
    assert tf.keras.mixed_precision.global_policy().name == policy
    assert half.model.k5_conv.compute_dtype == "float16"
    assert {v.dtype for v in half.model.weights} == {"float32"}
    assert "LossScaleOptimizer" in type(half.optimizer).__name__
    first_full, first_half = full.fit(), half.fit()
    # Same seed, same first batch: the float16 forward is the float32 one to
    # about 1e-2 (measured 1.1e-2 at most, occl_loss).
    for name in ("d_loss", "d_loss_real_id", "diver_loss", "diver_loss_A", "occl_loss"):
        assert np.isfinite(first_half[name]), name
        np.testing.assert_allclose(first_half[name], first_full[name], rtol=2e-2,
                                   err_msg=name)
    # Inference (moving statistics) runs in float16 too and agrees to ~1e-3.
    images = np.random.default_rng(3).uniform(-1, 1, (4, 96, 96, 3)).astype(np.float32)
    for v_half, v_full in zip(half.model.weights, full.model.weights):
        v_full.assign(v_half.numpy())
    out = half.model(images, training=False)
    inferred = out["feature"]
    # k5 is computed in float16; the peak mask and the mean over it in float32.
    assert out["k5"].dtype == tf.float16 and inferred.dtype == tf.float32
    np.testing.assert_allclose(inferred.numpy().astype(np.float32),
                               full.model(images, training=False)["feature"].numpy(),
                               rtol=0, atol=2e-2)
    moving = half.model.tf1_variable_map()["d_k5_new/moving_variance"].numpy()
    assert moving.dtype == np.float32 and not np.allclose(moving, 1.0)
    # The loss scale is part of the resume state.
    resumed = training.Trainer(_config(world, tmp_path / "b", max_steps=2,
                                       mixed_precision=True), log=print)
    assert int(resumed.step.numpy()) == 1
    np.testing.assert_array_equal(
        resumed.model.k5_conv.w.numpy(), half.model.k5_conv.w.numpy())


def test_bfloat16_training_and_the_precision_choice(world, tmp_path, monkeypatch):
    from interp_fr import precision
    # Which precision runs where (flags and GPU given, not read from this machine).
    assert precision.resolve("auto", flags={"amx_bf16", "avx512_bf16"}, gpu=None) \
        == "bfloat16"
    assert precision.resolve("auto", flags={"avx512_bf16"}, gpu=None) == "float32"
    assert precision.resolve("auto", flags=set(), gpu=(8, 0)) == "float16"
    assert precision.resolve("auto", flags=set(), gpu=(6, 1)) == "float32"
    assert precision.resolve("bfloat16", flags={"avx512_bf16"}, gpu=None) == "bfloat16"
    with pytest.raises(precision.PrecisionError, match="neither AMX nor AVX-512 BF16"):
        precision.resolve("bfloat16", flags={"avx2"}, gpu=None)
    # The numerics, on any CPU: pretend it has bfloat16 instructions.
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    full = training.Trainer(_config(world, tmp_path / "a", max_steps=1), log=print)
    bf16 = training.Trainer(_config(world, tmp_path / "b", max_steps=1,
                                    precision="bfloat16"), log=print)
    assert bf16.model.k5_conv.compute_dtype == "bfloat16"
    assert {v.dtype for v in bf16.model.weights} == {"float32"}
    assert "LossScaleOptimizer" not in type(bf16.optimizer).__name__
    first_full, first_bf16 = full.fit(), bf16.fit()
    # bfloat16 keeps 8 bits of mantissa: the first step's terms agree to a few
    # per cent (the 2 x CE to much better).
    for name in ("d_loss", "d_loss_real_id", "diver_loss", "occl_loss"):
        np.testing.assert_allclose(first_bf16[name], first_full[name], rtol=5e-2,
                                   err_msg=name)
    np.testing.assert_allclose(first_bf16["d_loss_real_id"],
                               first_full["d_loss_real_id"], rtol=1e-2)
    # A float32 model copied into bfloat16 for inference.
    copy = precision.model_in_precision(full.model, "bfloat16")
    assert copy.k5_conv.compute_dtype == "bfloat16"
    images = np.random.default_rng(3).uniform(-1, 1, (4, 96, 96, 3)).astype(np.float32)
    a = full.model(images)["feature"].numpy()
    b = copy(images)["feature"].numpy()
    cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.95, cos
    assert precision.model_in_precision(full.model, "float32") is full.model


MULTI_WORKER_SCRIPT = r"""
import hashlib, sys, numpy as np
from interp_fr import training
config = training.TrainConfig(data_dir=sys.argv[1] + "/DATA", aux_dir=sys.argv[1] + "/aux",
    checkpoint_dir=sys.argv[2], dataset="SYN", batch_size=16, df_dim=4, gfc_dim=32,
    dfc_dim=32, max_steps=2, progress=False, tensorboard=False, multi_worker=True)
t = training.Trainer(config)
assert t.strategy.num_replicas_in_sync == 2, t.strategy
last = t.fit()
digest = hashlib.sha1(b"".join(v.numpy().tobytes() for v in t.model.weights)).hexdigest()
print("WORKER OK", t.is_chief, int(t.step.numpy()), np.isfinite(last["d_loss"]), digest)
"""


def test_multi_worker_strategy_with_two_local_workers(world, tmp_path):
    import json
    import socket
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            try:
                s.bind(("localhost", 0))
            except OSError as error:  # a sandbox without a loopback interface
                pytest.skip(f"cannot bind a localhost port: {error}")
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", MULTI_WORKER_SCRIPT, world, str(tmp_path)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    lines = []
    for (out, err), p in zip(outputs, procs):
        assert p.returncode == 0, err[-4000:]
        lines.append([l for l in out.splitlines() if l.startswith("WORKER OK")][0].split())
    chief, other = lines
    assert chief[2:5] == ["True", "2", "True"] and other[2:5] == ["False", "2", "True"]
    assert chief[5] == other[5]  # replicas stay identical across processes
    model_dir = training.TrainConfig(checkpoint_dir=str(tmp_path), dataset="SYN",
                                     batch_size=16, df_dim=4, gfc_dim=32,
                                     dfc_dim=32).model_dir
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "resume"))
    assert tf.train.latest_checkpoint(model_dir).endswith("DCGAN.model-1")
    assert not [n for n in os.listdir(model_dir) if n.startswith(".worker")]


def test_log_lines_show_only_the_terms_computed():
    base = training.log_line({"d_loss": 7.1, "d_loss_real_id": 7.1, "d_acc": 0.25},
                             2, 3, 40, 12.5)
    assert base == ("Epoch: [ 2] [   3/  40] time: 12.5, d_loss: 7.1000 "
                    "(id: 7.100 (R: 0.25))")
    terms = {"d_loss": 9.0, "d_loss_real_id": 7.1, "d_loss_real_id_occl": 7.3,
             "diver_loss": 0.5, "diver_loss_A": 0.01, "occl_loss": 0.2,
             "d_acc": 0.25, "d_acc_occl": 0.125}
    full = training.log_line(terms, 0, 0, 40, 1.0)
    assert "nan" not in full and "d_loss_o: 7.3000" in full and "R_o: 0.12" in full


def test_loop_reads_the_device_only_at_log_steps_and_saves(world, tmp_path, monkeypatch):
    """No device-to-host read between log steps: every tensor-to-numpy
    conversion on the training thread happens at a log step (1, 5, 9), before a
    save (epoch end at 6) or at the end (10)."""
    import threading
    from tensorflow.python.framework import ops
    trainer = training.Trainer(_config(world, tmp_path, max_steps=10, log_every=4),
                               log=print)
    main_thread = threading.get_ident()
    steps_done, reads = [0], []
    to_numpy = ops._EagerTensorBase._numpy

    def spy(tensor):
        # tf.data's py_func threads convert their inputs too; only the loop counts.
        if threading.get_ident() == main_thread:
            reads.append(steps_done[0])
        return to_numpy(tensor)

    step_fn = trainer._train_step

    def counted(batch):
        out = step_fn(batch)
        steps_done[0] += 1
        return out

    trainer._train_step = counted
    monkeypatch.setattr(ops._EagerTensorBase, "_numpy", spy)
    trainer.fit()
    assert steps_done[0] == 10
    assert {1, 5, 9, 10} <= set(reads), reads
    assert set(reads) <= {0, 1, 5, 6, 9, 10}, reads


def test_train_command_defaults_are_the_config_defaults():
    """interp_fr.train takes its defaults from TrainConfig / LossWeights (the
    original's), so a command line with no flags builds the default config, and
    the schedule flags reach the config. (A subprocess: the command defines its
    flags in absl's global registry.)"""
    code = """if 1:
        import dataclasses, sys
        from absl import flags
        from interp_fr import train, training
        flags.FLAGS(["prog", "--gpu=-1"])
        same = dataclasses.asdict(train.config_from_flags()) == dataclasses.asdict(
            training.TrainConfig(devices=()))
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["prog", "--gpu=-1", "--lr_schedule=cosine", "--warmup_steps=7",
                     "--head_lr_multiplier=3"])
        c = train.config_from_flags()
        print(same, c.lr_schedule, c.warmup_steps, c.head_lr_multiplier)
    """
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "cosine", "7", "3.0"]
