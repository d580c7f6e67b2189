"""Latent space transformer: face representation z -> W+ codes (``IDDEncoder(14, 8)``).

z [N, 512] is multiplied by 16 (unit-norm features are small), passed through a
trunk of ``n_mlp - 4`` EqualLinear + fused-leaky-ReLU layers, then through
``n_latents`` independent heads (3 fused-lrelu EqualLinear + 1 plain
EqualLinear each); the stacked head outputs [N, n_latents, 512] go through tanh
and are added to a stored mean W+ latent. The original keeps the mean latent
outside the encoder (``ReconModel``); here it is a non-trainable variable of the
layer so one object maps features to decoder input.

The heads are computed together with StackedEqualLinear (one einsum per head
layer instead of 14 matmuls); head i is slice i of each stacked variable.
"""
import keras
import numpy as np
import tensorflow as tf

from attr_recovery.nets.equalized import FUSED_LRELU, EqualLinear, StackedEqualLinear

HEAD_DEPTH = 4


class IDDEncoder(keras.Model):
    """Feature-to-W+ transformer of the original (``IDDEncoder(n_latents, n_mlp)``).

    Args:
      n_latents: number of W+ codes (14 for the 256 px decoder).
      n_mlp: the original's constructor argument; the trunk has n_mlp - 4
        layers (8 -> 4).
      dim: feature / style width (512). Small values for tests.
      input_scale: factor applied to z first (16).

    Variables: ``trunk[i]`` EqualLinear(dim, dim); ``heads[j]`` StackedEqualLinear
    (n_latents, dim, dim), j = 0..3 (activation on j < 3); ``mean_latent``
    [n_latents, dim], non-trainable, zeros until loaded (``mean_wplus.pth``).

    Call: z [N, dim] -> W+ [N, n_latents, dim] = mean_latent + tanh(heads)
      (``add_mean=False`` returns only the tanh delta, the original encoder's
      own output).
    """

    def __init__(self, n_latents=14, n_mlp=8, dim=512, input_scale=16.0, **kwargs):
        super().__init__(**kwargs)
        self.n_latents = int(n_latents)
        self.n_mlp = int(n_mlp)
        self.dim = int(dim)
        self.input_scale = float(input_scale)
        if self.n_mlp < 4:
            raise ValueError(f"n_mlp must be >= 4 (trunk depth n_mlp - 4), got {n_mlp}")
        self.trunk = [EqualLinear(self.dim, self.dim, activation=FUSED_LRELU,
                                  name=f"trunk_{i}")
                      for i in range(self.n_mlp - 4)]
        self.heads = [StackedEqualLinear(
            self.n_latents, self.dim, self.dim,
            activation=FUSED_LRELU if j < HEAD_DEPTH - 1 else None,
            name=f"heads_{j}") for j in range(HEAD_DEPTH)]
        self.mean_latent = self.add_weight(shape=(self.n_latents, self.dim),
                                           initializer="zeros", trainable=False,
                                           name="mean_latent")
        self.built = True

    def set_mean_latent(self, mean_latent):
        """Store the mean W+ latent; accepts [n_latents, dim] or [1, n_latents, dim]."""
        arr = np.asarray(mean_latent, dtype=np.float32)
        arr = arr.reshape(arr.shape[-2:]) if arr.ndim == 3 and arr.shape[0] == 1 else arr
        if arr.shape != (self.n_latents, self.dim):
            raise ValueError(f"mean latent must be [{self.n_latents}, {self.dim}] "
                             f"(or with a leading 1), got {np.shape(mean_latent)}")
        self.mean_latent.assign(arr)

    def call(self, z, add_mean=True):
        x = tf.convert_to_tensor(z, dtype=self.compute_dtype) * self.input_scale
        for layer in self.trunk:
            x = layer(x)
        h = x
        for layer in self.heads:
            h = layer(h)
        delta = tf.tanh(h)
        if add_mean:
            return self.mean_latent[None] + delta
        return delta

    def get_config(self):
        config = super().get_config()
        config.update(n_latents=self.n_latents, n_mlp=self.n_mlp, dim=self.dim,
                      input_scale=self.input_scale)
        return config
