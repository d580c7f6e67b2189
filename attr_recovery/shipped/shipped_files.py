"""Folders of shipped weights (the reference decoder and estimators): a JSON
description beside a model-only ``tf.train`` checkpoint in ``checkpoints/``."""
import os

import tensorflow as tf

# The trainers' checkpoint folder name, so a shipped folder loads as a trainer's.
from attr_recovery.nets.decoder import CHECKPOINT_SUBDIR


def present(folder, description_file):
    """Whether ``folder`` has its description and a checkpoint."""
    return (os.path.isfile(os.path.join(folder, description_file))
            and tf.train.latest_checkpoint(os.path.join(folder, CHECKPOINT_SUBDIR))
            is not None)


def write_checkpoint(folder, **parts):
    """Replaces the checkpoint of ``folder`` by one of ``parts`` (name -> dict of
    variables), numbered 0; returns the files written."""
    ckpt_dir = os.path.join(folder, CHECKPOINT_SUBDIR)
    os.makedirs(ckpt_dir, exist_ok=True)
    for name in os.listdir(ckpt_dir):
        os.remove(os.path.join(ckpt_dir, name))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(**parts), ckpt_dir,
                                         max_to_keep=1)
    manager.save(checkpoint_number=0)
    return sorted(os.path.join(ckpt_dir, f) for f in os.listdir(ckpt_dir))
