"""Helpers shared by the interpretability tests (peak locations, heat maps,
occlusion analysis): a tiny synthetic world and a hand-built model whose
channels each see one region of the face."""
import os

import numpy as np

TINY_WORLD = dict(train_subjects=2, train_images_per_subject=2, test_subjects=5,
                  test_images_min=3, test_images_max=4, num_splits=2)


def tiny_world(folder):
    """Builds (once per folder) a synthetic world of ~20 test images; returns it."""
    from interp_fr.data import synthetic_world
    if not os.path.isfile(os.path.join(folder, "world.json")):
        synthetic_world.build_world(folder, synthetic_world.WorldConfig(**TINY_WORLD))
    return folder


def region_cells(x, y, w, h, stride=4):
    """Map cells (row, col ranges, 0-based, end exclusive) covering a pixel block."""
    return (y // stride, (y + h - 1) // stride + 1, x // stride, (x + w - 1) // stride + 1)


def region_model(regions, map_size=24):
    """A Keras model whose channel j responds only inside ``regions[j]``.

    Each channel is the mean brightness of the 4x4 pixel cell plus 1.5 (so
    always positive, also where the image is -1), multiplied by a fixed 0/1
    mask of its region's cells; the feature is the spatial mean, like k6.

    Args:
        regions: list of (row0, row1, col0, col1) cell ranges.

    Returns:
        forward(images float32 [b, 96, 96, 3]) -> dict feature [b, C],
        feature_map [b, 24, 24, C].
    """
    import keras
    import tensorflow as tf
    c = len(regions)
    mask = np.zeros((1, map_size, map_size, c), np.float32)
    for j, (r0, r1, c0, c1) in enumerate(regions):
        mask[0, r0:r1, c0:c1, j] = 1.0
    inp = keras.Input((96, 96, 3))
    pooled = keras.layers.AveragePooling2D(96 // map_size)(inp)
    conv = keras.layers.Conv2D(c, 1, name="bright")
    maps = conv(pooled)
    conv.set_weights([np.full((1, 1, 3, c), 1 / 3, np.float32),
                      np.full((c,), 1.5, np.float32)])
    masked = keras.layers.Lambda(lambda t: t * tf.constant(mask))(maps)
    feature = keras.layers.GlobalAveragePooling2D()(masked)
    model = keras.Model(inp, {"feature": feature, "feature_map": masked})

    @tf.function(reduce_retracing=True)
    def forward(images):
        return model(images, training=False)
    return forward
