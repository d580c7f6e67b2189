"""Batched feature extraction and the original feature / feature-map text files.

File formats (SPEC A6):
  * feature file (``IJBA_features_iter_0.txt``): one line per image in ``.dat``
    order, the 320 feature values, numpy ``savetxt`` format ("%.18e", space
    separated);
  * feature-map file (``IJBA_feature_maps_<model>.txt``): one line per image for
    the first 1000 images, the masked k5 map [24, 24, C] flattened in C order.
"""
import dataclasses
import io

import numpy as np
import tensorflow as tf

from interp_fr import extraction
from interp_fr.common.atomic_io import atomic_write



@dataclasses.dataclass
class Extracted:
    """Features [N, D] and (optionally) flattened feature maps [M, H*W*C]."""
    features: np.ndarray
    feature_maps: np.ndarray = None


def extract_features(forward, images, batch_size=64, num_maps=0, progress=None):
    """Runs ``forward`` over every image of a ``.dat`` (or image folder) in
    order and keeps the results in memory (`extraction.batched_outputs`).

    Args:
        forward: callable float32 images [b, 96, 96, 3] in [-1, 1] -> dict with
            ``feature`` [b, D] and, when ``num_maps`` > 0, ``feature_map``
            [b, H, W, C].
        images: a `DatImages` (or `extraction.ImageFolder`).
        batch_size: images per call.
        num_maps: keep the feature maps of the first ``num_maps`` images.
        progress: optional callable(done, total, seconds).

    Returns:
        `Extracted`; ``feature_maps`` flattened to [M, H*W*C].
    """
    feats, maps = [], []
    for batch_feats, batch_maps in extraction.batched_outputs(
            forward, images, batch_size, num_maps=num_maps, progress=progress):
        feats.append(batch_feats)
        if batch_maps is not None:
            maps.append(batch_maps.reshape(len(batch_maps), -1))
    features = np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)
    return Extracted(features, np.concatenate(maps) if maps else None)


def keras_forward(model, jit_compile=False):
    """An inference ``forward`` for `extract_features` from an `InterpFRNet`."""
    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def forward(images):
        out = model(images, training=False)
        return {"feature": out["feature"], "feature_map": out["feature_map"]}
    return forward


def save_feature_text(path, rows):
    """Writes a float matrix [N, D] as numpy ``savetxt`` text, atomically."""
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(rows))
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())
