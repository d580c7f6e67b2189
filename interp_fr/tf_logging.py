"""Quieting TensorFlow's own INFO records around routine operations."""
import contextlib

import tensorflow as tf
from absl import logging as absl_logging


@contextlib.contextmanager
def quiet(level="WARNING"):
    """Raises the ``tensorflow`` logger and absl's verbosity to ``level`` for
    the block.

    Checkpoint savers log bookkeeping at INFO on every save (TF's own logger,
    and since TF 2.16 absl directly, e.g. "Sharding callback duration"); a
    training run saves every epoch, and those lines would bury the training log.
    """
    logger = tf.get_logger()
    old = logger.level
    old_absl = absl_logging.get_verbosity()
    logger.setLevel(level)
    absl_logging.set_verbosity(level.lower())
    try:
        yield
    finally:
        logger.setLevel(old)
        absl_logging.set_verbosity(old_absl)
