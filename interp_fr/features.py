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
import time

import numpy as np
import tensorflow as tf

from interp_fr.atomic_io import atomic_write
from interp_fr.data import pipeline

DEFAULT_NUM_MAPS = 1000


@dataclasses.dataclass
class Extracted:
    """Features [N, D] and (optionally) flattened feature maps [M, H*W*C]."""
    features: np.ndarray
    feature_maps: np.ndarray = None


def extract_features(forward, dat_images, batch_size=64, num_maps=0, progress=None):
    """Runs ``forward`` over every image of a ``.dat`` file in order.

    Args:
        forward: callable float32 images [b, 96, 96, 3] in [-1, 1] -> dict with
            ``feature`` [b, D] and, when ``num_maps`` > 0, ``feature_map``
            [b, H, W, C].
        dat_images: a `DatImages`.
        batch_size: images per call.
        num_maps: keep the feature maps of the first ``num_maps`` images.
        progress: optional callable(done, total, seconds).

    Returns:
        `Extracted`.
    """
    total = len(dat_images)
    feats, maps = [], []
    start = time.perf_counter()
    done = 0
    for batch in pipeline.inference_dataset(dat_images, batch_size):
        out = forward(batch["image"])
        feats.append(np.asarray(out["feature"], np.float32))
        if done < num_maps:
            fmap = np.asarray(out["feature_map"], np.float32)
            take = min(len(fmap), num_maps - done)
            maps.append(fmap[:take].reshape(take, -1))
        done += int(batch["image"].shape[0])
        if progress is not None:
            progress(done, total, time.perf_counter() - start)
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


def save_feature_npy(path, rows):
    """Writes a float matrix as ``.npy``, atomically."""
    with atomic_write(path, "wb") as f:
        np.save(f, np.asarray(rows))
