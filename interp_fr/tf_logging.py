"""Quieting TensorFlow's own INFO records around routine operations."""
import contextlib

import tensorflow as tf


@contextlib.contextmanager
def quiet(level="WARNING"):
    """Raises the ``tensorflow`` logger to ``level`` for the block.

    Checkpoint savers log bookkeeping at INFO on every save; a training run
    saves every epoch, and those lines would bury the training log.
    """
    logger = tf.get_logger()
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)
