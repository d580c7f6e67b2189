"""Representation -> image: the latent transformer and decoder as one object.

``FeatureDecoder`` joins a `LatentTransformer` (face representation z [N, d]
-> W+ codes [N, n_latent, style_dim]) and a StyleGAN2 ``Generator`` (W+ ->
image), the original's ``ReconModel.decode``. It is built either from the
converted released weights (``from_converted``) or from a folder written by
our trainer (``load_trained_decoder``).

Noise: the original decodes with fresh random noise on every call. Here that
is ``seed=None``; with a ``seed`` every image gets noise that is a function of
(seed, image id, layer) only, so an image decodes the same whatever batch it is
in (and resumed or repeated runs write identical files).
"""
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf

from attr_recovery.nets.equalized import EqualLinear
from attr_recovery.nets.latent_transformer import IDDEncoder
from attr_recovery.nets.stylegan2 import Generator

CONFIG_FILE = "decoder.json"
CHECKPOINT_SUBDIR = "checkpoints"


class LatentTransformer(keras.Model):
    """``IDDEncoder`` with an input layer for representations of any size d.

    When d equals the style width the encoder is used as it is (the original's
    layout, loadable from its checkpoint). Otherwise a linear EqualLinear(d,
    dim) comes first (not in the original, whose input is always 512-d); its
    output is scaled by sqrt(d / dim) so a unit-norm z stays near unit norm,
    the scale the encoder's x16 input factor was designed for.

    Args:
      feature_dim: d.
      n_latents, n_mlp, dim, input_scale: as ``IDDEncoder``.
      encoder: an existing ``IDDEncoder`` to wrap (e.g. converted weights);
        its sizes win over n_latents / n_mlp / dim.

    Call: z [N, d] -> [N, n_latents, dim] (mean + tanh offset), or only the
    tanh offset with ``add_mean=False``.
    """

    def __init__(self, feature_dim, n_latents=14, n_mlp=8, dim=512, input_scale=16.0,
                 encoder=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder or IDDEncoder(n_latents, n_mlp, dim, input_scale,
                                             name="idd_encoder")
        self.feature_dim = int(feature_dim)
        self.n_latents, self.dim = self.encoder.n_latents, self.encoder.dim
        self.n_mlp, self.input_scale = self.encoder.n_mlp, self.encoder.input_scale
        self.input_proj = None
        if self.feature_dim != self.dim:
            self.input_proj = EqualLinear(self.feature_dim, self.dim, name="input_proj")
            self.proj_gain = math.sqrt(self.feature_dim / self.dim)
        self.built = True

    @property
    def mean_latent(self):
        """The stored mean W+ latent variable [n_latents, dim]."""
        return self.encoder.mean_latent

    def set_mean_latent(self, mean_latent):
        """Stores the mean W+ latent ([n_latents, dim], [1, n_latents, dim] or [dim])."""
        arr = np.asarray(mean_latent, np.float32)
        if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1):
            arr = np.tile(arr.reshape(1, -1), [self.n_latents, 1])
        self.encoder.set_mean_latent(arr)

    def call(self, z, add_mean=True):
        x = tf.convert_to_tensor(z, tf.float32)
        if self.input_proj is not None:
            x = self.input_proj(x) * self.proj_gain
        return self.encoder(x, add_mean=add_mean)

    def transformer_config(self):
        """Constructor arguments (JSON-able)."""
        return dict(feature_dim=self.feature_dim, n_latents=self.n_latents,
                    n_mlp=self.n_mlp, dim=self.dim, input_scale=self.input_scale)


def generator_config(generator):
    """Constructor arguments of a ``Generator`` (JSON-able)."""
    return dict(size=generator.size, style_dim=generator.style_dim,
                n_mlp=generator.n_mlp, channel_multiplier=generator.channel_multiplier,
                lr_mlp=generator.lr_mlp,
                channels=(None if generator.channels_override is None else
                          {str(k): v for k, v in generator.channels_override.items()}))


def build_generator(config):
    """``Generator`` from `generator_config` output."""
    config = dict(config)
    if config.get("channels"):
        config["channels"] = {int(k): int(v) for k, v in config["channels"].items()}
    return Generator(**config)


def named_variables(model, prefix):
    """Checkpoint keys -> variables: ``<prefix>__<index>__<variable name>``.

    tf.train.Checkpoint does not follow Keras 3 layer lists, and Keras 3
    variable paths are neither unique inside our models nor stable (a second
    model in the process becomes ``generator_1/...``), so variables are keyed
    by their position in ``model.variables`` (fixed by the constructor
    arguments) plus their short name for readability.
    """
    return {f"{prefix}__{i:04d}__{v.name}": v
            for i, v in enumerate(model.variables)}


def per_image_noise(generator, image_ids, seed):
    """Noise inputs that depend only on (seed, image id, layer).

    Args:
      generator: the ``Generator`` (for layer count and resolutions).
      image_ids: int [N], one id per image of the batch.
      seed: int.
    Returns: list of ``num_layers`` float32 arrays [N, r, r, 1].
    """
    out = []
    for layer in range(generator.num_layers):
        r = generator.noise_resolution(layer)
        out.append(np.stack([
            np.random.default_rng((int(seed), int(i), layer, 0x401E))
            .standard_normal((r, r, 1), dtype=np.float32)
            for i in np.asarray(image_ids).reshape(-1)]))
    return out


def to_uint8(images):
    """Decoder output [N, H, W, 3] in about [-1, 1] -> uint8 (x + 1) / 2 * 255, clipped.

    Truncated to integers as the original's ``astype('uint8')``; the original
    does not clip, so values outside [0, 255] wrap around there.
    """
    x = (np.asarray(images, np.float32) + 1.0) * 0.5 * 255.0
    return np.clip(x, 0, 255).astype(np.uint8)


class FeatureDecoder:
    """z -> W+ -> image, the original's ``ReconModel.decode``.

    Attributes: ``transformer`` (`LatentTransformer`), ``generator``
    (``Generator``), ``feature_dim``, ``size``.
    """

    def __init__(self, transformer, generator):
        if transformer.dim != generator.style_dim or \
                transformer.n_latents != generator.n_latent:
            raise ValueError(f"transformer emits [{transformer.n_latents}, "
                             f"{transformer.dim}] codes but the generator takes "
                             f"[{generator.n_latent}, {generator.style_dim}]")
        self.transformer = transformer
        self.generator = generator
        # One trace for every call: the batch of z and of each noise map (N
        # for per-image noise, 1 for the stored or zero buffers) is left open.
        # Without the signature, each new combination of batch sizes retraced.
        g = generator
        signature = [tf.TensorSpec([None, transformer.feature_dim], tf.float32),
                     [tf.TensorSpec([None, g.noise_resolution(i),
                                     g.noise_resolution(i), 1], tf.float32)
                      for i in range(g.num_layers)]]
        self._decode_fn = tf.function(self._decode, input_signature=signature)

    @property
    def feature_dim(self):
        return self.transformer.feature_dim

    @property
    def size(self):
        return self.generator.size

    @classmethod
    def from_converted(cls, generator, encoder, mean_latent=None):
        """From converted released models (``convert_checkpoint.load_converted``).

        Args:
          generator: ``Generator``.
          encoder: ``IDDEncoder`` (its mean latent set, or given here).
          mean_latent: optional [n_latent, dim] array (``mean_wplus``).
        """
        transformer = LatentTransformer(encoder.dim, encoder=encoder)
        if mean_latent is not None:
            transformer.set_mean_latent(mean_latent)
        return cls(transformer, generator)

    def _decode(self, z, noise):
        return self.generator(self.transformer(z), noise=noise)

    def decode(self, z, seed=None, image_ids=None, noise_mode="random"):
        """Images for representations z.

        Args:
          z: [N, d] features (used as given: the original does not renormalise).
          seed: None: fresh random noise (the original); an int: per-image noise
            from (seed, image id).
          image_ids: int [N] ids for the per-image noise (default 0..N-1).
          noise_mode: 'random', 'const' (stored buffers) or 'zero'.
        Returns: float32 numpy [N, size, size, 3], about [-1, 1].
        """
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.feature_dim:
            raise ValueError(f"expected features [N, {self.feature_dim}], got {z.shape}")
        g = self.generator
        if noise_mode == "random" and seed is not None:
            ids = np.arange(len(z)) if image_ids is None else np.asarray(image_ids)
            noise = per_image_noise(g, ids, seed)
        elif noise_mode == "random":
            noise = [tf.random.normal([len(z), g.noise_resolution(i),
                                       g.noise_resolution(i), 1])
                     for i in range(g.num_layers)]
        elif noise_mode == "const":
            noise = [tf.convert_to_tensor(v) for v in g.noises]
        elif noise_mode == "zero":
            noise = [tf.zeros([1, g.noise_resolution(i), g.noise_resolution(i), 1])
                     for i in range(g.num_layers)]
        else:
            raise ValueError(f"unknown noise_mode {noise_mode!r}")
        noise = [tf.cast(n, tf.float32) for n in noise]
        return np.asarray(self._decode_fn(tf.constant(z), noise))

    def decode_batched(self, z, batch_size=32, seed=None, image_ids=None,
                       noise_mode="random"):
        """`decode` in chunks of ``batch_size``; ids default to row numbers."""
        z = np.asarray(z, np.float32)
        ids = np.arange(len(z)) if image_ids is None else np.asarray(image_ids)
        out = [self.decode(z[i:i + batch_size], seed, ids[i:i + batch_size], noise_mode)
               for i in range(0, len(z), batch_size)]
        if not out:
            return np.zeros((0, self.size, self.size, 3), np.float32)
        return np.concatenate(out)

    def variables_for_checkpoint(self):
        """Checkpoint keys -> variables of both models."""
        return dict(named_variables(self.transformer, "transformer"),
                    **named_variables(self.generator, "generator"))


def decoder_description(decoder, recognition_spec=None, recognition_variant="full",
                        extra=None):
    """The JSON written next to a trained decoder's checkpoints."""
    out = {"generator": generator_config(decoder.generator),
           "transformer": decoder.transformer.transformer_config(),
           "recognition": recognition_spec,
           "recognition_variant": recognition_variant}
    out.update(extra or {})
    return out


def build_decoder(description):
    """An untrained `FeatureDecoder` shaped as a `decoder_description`."""
    generator = build_generator(description["generator"])
    transformer = LatentTransformer(**description["transformer"], name="transformer")
    return FeatureDecoder(transformer, generator)


def read_folder_json(folder, file_name, written_by):
    """The JSON description ``file_name`` of a trainer's output folder (dict);
    a missing file names the folder and the command that writes it."""
    path = os.path.join(folder, file_name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{folder}: no {file_name}; not a folder written by "
                                f"{written_by}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_description(folder):
    """The ``decoder.json`` of a trained-decoder folder (dict)."""
    return read_folder_json(folder, CONFIG_FILE, "attr-recovery-train")


def load_trained_decoder(folder):
    """The `FeatureDecoder` of the latest checkpoint in a trainer output folder.

    Returns: (decoder, description dict, checkpoint path).
    Raises: FileNotFoundError when the folder has no config or no checkpoint.
    """
    description = read_description(folder)
    latest = tf.train.latest_checkpoint(os.path.join(folder, CHECKPOINT_SUBDIR))
    if not latest:
        raise FileNotFoundError(f"{folder}: no checkpoint in {CHECKPOINT_SUBDIR}/")
    decoder = build_decoder(description)
    status = tf.train.Checkpoint(model=decoder.variables_for_checkpoint()).restore(latest)
    # Optimizer and discriminator states are not needed for decoding; every
    # decoder variable is.
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as err:
        raise ValueError(f"{latest}: does not hold every variable of the decoder "
                         f"described in {CONFIG_FILE}: {err}") from None
    return decoder, description, latest
