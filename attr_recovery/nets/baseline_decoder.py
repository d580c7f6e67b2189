"""A linear representation -> image decoder fitted in closed form (not in the original code).

``RidgeDecoder.fit(z, images)`` solves ridge regression from [1, z] to the
pixels of the images resized to ``size``. It is a baseline (what a linear
read-out of z shows) and the stage-2 fallback when no trained decoder is at
hand; it is deterministic and differentiable, and decodes thousands of faces
per second.
"""
import io

import numpy as np

from interp_fr.data.image_scaling import as_unit_images
from attr_recovery.nets.estimators import resize_images
from interp_fr.common.atomic_io import atomic_write


class RidgeDecoder:
    """``decode(z [N, d]) -> images [N, size, size, 3]`` in [-1, 1].

    Args:
      weights: [d + 1, size * size * 3] (bias row first).
      size: output side length.
    """

    def __init__(self, weights, size):
        self.weights = np.asarray(weights, np.float32)
        self.size = int(size)
        if self.weights.shape[1] != self.size * self.size * 3:
            raise ValueError(f"weights {self.weights.shape} do not make {size} px images")

    @property
    def feature_dim(self):
        return self.weights.shape[0] - 1

    @classmethod
    def fit(cls, z, images, size=32, ridge=1e-3):
        """Fits the decoder.

        Args:
          z: [N, d] representations of ``images``.
          images: [N, H, W, 3] uint8 or float in [-1, 1].
          size: output resolution (images are area-resized to it).
          ridge: penalty relative to N.
        """
        z = np.asarray(z, np.float64)
        y = np.asarray(resize_images(as_unit_images(images), size), np.float64)
        y = y.reshape(len(y), -1)
        x = np.concatenate([np.ones((len(z), 1)), z], axis=1)
        reg = ridge * len(z) * np.eye(x.shape[1])
        reg[0, 0] = 0.0                                  # bias not penalised
        w = np.linalg.solve(x.T @ x + reg, x.T @ y)
        return cls(w, size)

    def decode(self, z):
        """[N, d] -> float32 [N, size, size, 3], clipped to [-1, 1]."""
        z = np.asarray(z, np.float32)
        out = self.weights[0] + z @ self.weights[1:]
        return np.clip(out, -1.0, 1.0).reshape(len(z), self.size, self.size, 3)

    __call__ = decode

    def save(self, path):
        """Writes an ``.npz`` (atomically)."""
        buf = io.BytesIO()
        np.savez(buf, weights=self.weights, size=self.size)
        with atomic_write(path, "wb") as f:
            f.write(buf.getvalue())
        return path

    @classmethod
    def load(cls, path):
        """Reads a file written by `save`."""
        with np.load(path) as f:
            return cls(f["weights"], int(f["size"]))
