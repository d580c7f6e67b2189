"""The original's input scaling, x / 127.5 - 1: uint8 [0, 255] -> float32 [-1, 1]."""
import numpy as np


def to_unit_range(images_uint8):
    """uint8 (or integer-valued) images [..., 3] -> float32 in [-1, 1], NumPy."""
    return np.asarray(images_uint8, np.float32) / np.float32(127.5) - np.float32(1.0)


def to_unit_range_tf(images_uint8):
    """The same inside a TensorFlow graph: uint8 tensor -> float32 in [-1, 1]."""
    import tensorflow as tf
    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def as_unit_images(images):
    """uint8 images -> `to_unit_range`; float images (already in [-1, 1]) are
    returned as float32. [N, H, W, 3] -> float32 NumPy."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return to_unit_range(images)
    return images.astype(np.float32)
