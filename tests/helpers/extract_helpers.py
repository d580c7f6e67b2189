"""Shared fixtures of the extraction and freezing tests.

One small random model (df_dim=4, gfc_dim=dfc_dim=32, n_subjects=5) with
non-trivial batch-norm statistics is written as a TF1 checkpoint with
``save_tf1_checkpoint``; the Keras model loaded back from that checkpoint is
the reference every format is compared with.
"""
import atexit
import functools
import os
import shutil
import tempfile
import types

import numpy as np
import tensorflow as tf

from interp_fr import tf1_checkpoint
from interp_fr.data import dat_files
from interp_fr.model import InterpFRNet

CONFIG = dict(df_dim=4, gfc_dim=32, dfc_dim=32, n_subjects=5)
NUM_IMAGES = 7
# Every format must reproduce the Keras model's outputs this closely.
TOLERANCE = 1e-5


def randomise(model, seed=0):
    """Non-trivial BN statistics and affine parameters, larger conv weights
    (the 0.02 init makes every activation tiny)."""
    rng = np.random.default_rng(seed)
    for name, var in model.tf1_variable_map().items():
        shape = var.shape
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith(("moving_mean", "beta", "biases", "bias")):
            value = rng.normal(0.0, 0.2, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.7, 1.3, shape)
        else:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        var.assign(value.astype(np.float32))


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@functools.lru_cache(maxsize=None)
def world():
    """Builds the shared files once per process.

    Returns a namespace: ``root``, ``tf1_dir`` / ``tf1_prefix`` (TF1
    checkpoint), ``model`` (Keras model loaded from it), ``uint8`` [N, 96,
    96, 3], ``images`` float32 in [-1, 1], ``dat`` (path of a .dat holding
    them), ``feature`` [N, 32] and ``feature_map`` [N, 24, 24, 32] of the
    reference model.
    """
    root = tempfile.mkdtemp(prefix="interp_fr_extract_")
    atexit.register(shutil.rmtree, root, True)
    source = InterpFRNet(**CONFIG)
    randomise(source)
    tf1_dir = os.path.join(root, "tf1")
    prefix = tf1_checkpoint.save_tf1_checkpoint(source, tf1_dir, global_step=3)
    model = InterpFRNet(**CONFIG)
    tf1_checkpoint.load_tf1_checkpoint(model, tf1_dir)

    rng = np.random.default_rng(42)
    # Smooth-ish images (a random low-resolution pattern, upsampled) so
    # that the peak mask sees realistic, untied maps.
    low = rng.integers(0, 256, (NUM_IMAGES, 12, 12, 3)).astype(np.float32)
    big = tf.image.resize(low, [96, 96], method="bilinear").numpy()
    noise = rng.normal(0, 12, big.shape)
    uint8 = np.clip(big + noise, 0, 255).astype(np.uint8)
    images = uint8.astype(np.float32) / 127.5 - 1.0
    dat = os.path.join(root, "IJBA_recrop_images_96_96_test.dat")
    dat_files.write_dat_images(dat, uint8)
    out = model(images, training=False)
    return types.SimpleNamespace(
            root=root, tf1_dir=tf1_dir, tf1_prefix=prefix, model=model,
            uint8=uint8, images=images, dat=dat,
            feature=out["feature"].numpy(),
            feature_map=out["feature_map"].numpy(),
            logits=out["logits"].numpy())


def write_training_run(model, checkpoint_dir, run_name="CASIA_64_96_32_32_4_32"):
    """A training run folder as the trainer leaves it: ``resume/ckpt-1``
    (variables keyed by TF1 name) and a TF1 save. Returns the run folder."""
    from interp_fr.training import resume_variables
    run = os.path.join(checkpoint_dir, run_name)
    ckpt = tf.train.Checkpoint(variables=resume_variables(model))
    tf.train.CheckpointManager(ckpt, os.path.join(run, "resume"),
                               max_to_keep=2).save()
    tf1_checkpoint.save_tf1_checkpoint(model, run, global_step=1)
    return run


@functools.lru_cache(maxsize=None)
def exports():
    """The reference weights in every format we write, built once per
    process: a namespace with ``keras`` (.weights.h5), ``checkpoint_dir``
    and ``run`` (a training run inside it), ``saved_model``, ``frozen``
    (dynamic batch) and ``frozen_fixed`` (batch 1) paths."""
    from interp_fr.export import frozen_graph, saved_model
    w = world()
    root = os.path.join(w.root, "exports")
    os.makedirs(root)
    keras_path = os.path.join(root, "model.weights.h5")
    w.model.save_weights(keras_path)
    checkpoint_dir = os.path.join(root, "checkpoint")
    run = write_training_run(w.model, checkpoint_dir)
    saved = os.path.join(root, "saved_model")
    saved_model.export_saved_model(w.model, saved)
    frozen = os.path.join(root, "pretrained_model.pb")
    frozen_graph.freeze_model(w.model, frozen)
    fixed = os.path.join(root, "fixed1.pb")
    frozen_graph.freeze_model(w.model, fixed, fixed_batch=1)
    return types.SimpleNamespace(keras=keras_path, checkpoint_dir=checkpoint_dir,
                                 run=run, saved_model=saved, frozen=frozen,
                                 frozen_fixed=fixed)
