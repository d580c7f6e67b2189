"""Training the representation decoder (not in the original code: it publishes none).

Two modes (BUILD_NOTES.md, "Training design"):

- ``transformer`` (mode A): a frozen recognition model R and a frozen decoder
  (e.g. the converted released StyleGAN2); only the latent transformer T
  learns. Loss: w_id * (1 - cos(R(G(T(z))), z)) + w_reg * mean(offset^2),
  optionally + w_latent_adv * non-saturating loss of the latent discriminator
  whose layout the original defines (``latentDiscrimonator``: flattened W+ ->
  512 -> 256 -> 128 -> 64 -> 1, equalised linear layers, fused leaky ReLU).
  Real latents for that discriminator are W codes of the generator's own
  mapping network, repeated over the W+ slots.
- ``joint`` (mode B, our CPU default): decoder and transformer learn together
  from images: w_rec * L1(G(T(z)), x resized to the decoder's resolution) +
  w_id * identity + w_reg * offset, optionally + w_adv * non-saturating loss of
  a small image discriminator.

z = R(x) is the representation of a training image x (a 96 px crop of a
CASIA-format 110 px image: the centre crop, or a random one per batch).

Checkpoints: ``tf.train.CheckpointManager`` in ``<out_dir>/checkpoints`` with
every model variable, the optimizers and the global step; ``decoder.json``
describes the models so a folder can be loaded without the training flags.
The image order (``interp_fr.data.pipeline.BatchSchedule``), the crops, the
decoder noise and the discriminator's real latents are functions of
(seed, step), so a resumed run continues exactly as an uninterrupted one.
"""
import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from attr_recovery.nets import decoder as decoder_lib
from attr_recovery.conversion.convert_checkpoint import load_converted
from attr_recovery.nets.equalized import FUSED_LRELU, EqualConv2d, EqualLinear, FusedLeakyReLU
from attr_recovery.readers.recognition import as_recognition_model, load_recognition_model
from attr_recovery.nets.stylegan2 import Generator
from attr_recovery.nets.upfirdn import Downsample
from interp_fr.common import progress as progress_lib
from interp_fr.common import tf_logging
from interp_fr.common.atomic_io import atomic_save_text
from interp_fr.data import dat_files, pipeline
from interp_fr.training import NonFiniteLossError, write_scalar
from interp_fr.data.image_scaling import to_unit_range

MODE_JOINT = "joint"
MODE_TRANSFORMER = "transformer"
MODES = (MODE_JOINT, MODE_TRANSFORMER)
CROP_CENTER = "center"
CROP_RANDOM = "random"
LOG_FILE = "log.jsonl"
TENSORBOARD_SUBDIR = "logs"
# The original discriminator's hidden widths.
LATENT_DISCRIMINATOR_WIDTHS = (512, 256, 128, 64)
# Loss defaults per mode: (w_rec, w_id, w_reg).
# Joint: the reconstruction leads, identity refines (a larger w_id reaches a
# high identity cosine sooner but with less face-like images); measured in
# BUILD_NOTES.md, "Training design".
MODE_DEFAULT_WEIGHTS = {MODE_JOINT: (1.0, 0.1, 0.05), MODE_TRANSFORMER: (0.0, 1.0, 0.01)}
# Architectures selectable by name (CLI --preset): the small CPU decoder and
# the original's (StyleGAN2 256 px, 512-d styles, IDDEncoder(14, 8)).
PRESETS = {
    "cpu": dict(size=32, style_dim=64, channels={4: 64, 8: 64, 16: 32, 32: 16},
                channel_multiplier=1, generator_n_mlp=2, transformer_n_mlp=5),
    # The 64 px decoder of the legible reference decoder (BUILD_NOTES.md,
    # "Legible decoding").
    "legible64": dict(size=64, style_dim=128,
                      channels={4: 128, 8: 128, 16: 96, 32: 64, 64: 32},
                      channel_multiplier=1, generator_n_mlp=2, transformer_n_mlp=5),
    "original": dict(size=256, style_dim=512, channels=None, channel_multiplier=2,
                     generator_n_mlp=8, transformer_n_mlp=8),
}


def parse_channels(text):
    """``"4:128,8:128,16:64,32:32"`` -> {4: 128, 8: 128, 16: 64, 32: 32}; '' -> None."""
    if text is None or isinstance(text, dict):
        return text
    text = text.strip()
    if not text:
        return None
    out = {}
    for item in text.split(","):
        res, _, ch = item.partition(":")
        try:
            out[int(res)] = int(ch)
        except ValueError:
            raise ValueError(f"channels must look like '4:128,8:64', got {text!r}") from None
    return out


@dataclasses.dataclass
class DecoderTrainConfig:
    """Everything a decoder training run needs (defaults: a small CPU model).

    Loss weights left at None take the mode's default (`MODE_DEFAULT_WEIGHTS`;
    w_adv and w_latent_adv default to 0, i.e. no discriminator).
    """
    data_dir: str = "DATA"
    out_dir: str = "attr_decoder"
    mode: str = MODE_JOINT
    recognition: str = None          # spec (recognition.load_recognition_model)
    recognition_variant: str = "full"
    batch_size: int = 8
    max_steps: int = 1000
    max_seconds: float = None        # also stop (and save) after this long
    seed: int = 0
    crop: str = CROP_CENTER
    crop_size: int = pipeline.TRAIN_CROP_SIZE
    reshuffle_each_epoch: bool = True
    # A CASIA-format folder of per-image targets in the order of data_dir
    # (e.g. canonical portraits, data/canonical_pairs.py); their centre crops
    # are the reconstruction targets. None: each input image is its own target.
    target_dir: str = None
    # joint mode: the decoder built here
    size: int = 32
    style_dim: int = 64
    channels: dict = dataclasses.field(
        default_factory=lambda: {4: 64, 8: 64, 16: 32, 32: 16})
    channel_multiplier: int = 1
    generator_n_mlp: int = 2          # mapping network (unused by decoding)
    # transformer mode: the frozen decoder
    generator_weights: str = None     # converted *.weights.h5
    generator_from: str = None        # or a folder of this trainer
    mean_latent: str = None           # .npy; default: the generator's mean W
    mean_latent_samples: int = 4096
    # transformer
    transformer_n_mlp: int = 5        # trunk depth n_mlp - 4 (8 in the original)
    input_scale: float = 16.0
    # optimisation
    learning_rate: float = 0.005
    beta1: float = 0.0
    beta2: float = 0.99
    d_learning_rate: float = 0.002
    w_rec: float = None
    w_id: float = None
    w_reg: float = None
    w_adv: float = 0.0
    w_latent_adv: float = 0.0
    identity_every: int = 1           # identity loss on every k-th step only (x k)
    disc_channels: int = 32
    # bookkeeping
    save_every_steps: int = 200
    keep_checkpoints: int = 2
    log_every: int = 25
    tensorboard: bool = True
    progress: bool = True
    cache_limit: int = 20000          # centre crops: cache features of <= this many images

    def weights(self):
        """(w_rec, w_id, w_reg) with the mode defaults filled in."""
        defaults = MODE_DEFAULT_WEIGHTS[self.mode]
        return tuple(d if v is None else float(v)
                     for v, d in zip((self.w_rec, self.w_id, self.w_reg), defaults))


class LatentDiscriminator(keras.Model):
    """The original's latent discriminator layout (``latentDiscrimonator``).

    Flattened W+ [N, n_latent * dim] -> EqualLinear + fused leaky ReLU through
    ``widths`` -> EqualLinear(., 1). Call: [N, n_latent, dim] -> [N, 1] logits.
    """

    def __init__(self, n_latent=14, dim=512, widths=LATENT_DISCRIMINATOR_WIDTHS, **kwargs):
        super().__init__(**kwargs)
        self.n_latent, self.dim = int(n_latent), int(dim)
        sizes = [self.n_latent * self.dim] + [int(w) for w in widths]
        self.hidden = [EqualLinear(a, b, activation=FUSED_LRELU, name=f"linear_{i}")
                       for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        self.out = EqualLinear(sizes[-1], 1, name=f"linear_{len(self.hidden)}")
        self.built = True

    def call(self, w):
        x = tf.reshape(w, [-1, self.n_latent * self.dim])
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)


class ImageDiscriminator(keras.Model):
    """A small StyleGAN2-style image discriminator (not in the original code).

    1x1 from-RGB conv, then per resolution a 3x3 equalised conv + fused leaky
    ReLU and a blurred x2 down-sampling, down to 4 px; flatten, EqualLinear +
    fused leaky ReLU, EqualLinear to one logit. Call: [N, S, S, 3] -> [N, 1].
    """

    def __init__(self, size=32, channels=32, **kwargs):
        super().__init__(**kwargs)
        self.size, self.channels = int(size), int(channels)
        c = self.channels
        self.from_rgb = EqualConv2d(3, c, 1, name="from_rgb")
        self.from_rgb_act = FusedLeakyReLU(c, name="from_rgb_act")
        self.convs, self.acts, self.downs = [], [], []
        res = self.size
        while res > 4:
            self.convs.append(EqualConv2d(c, c, 3, padding=1, bias=False,
                                          name=f"conv_{res}"))
            self.acts.append(FusedLeakyReLU(c, name=f"act_{res}"))
            self.downs.append(Downsample(name=f"down_{res}"))
            res //= 2
        self.final = EqualLinear(c * 16, c, activation=FUSED_LRELU, name="final")
        self.out = EqualLinear(c, 1, name="out")
        self.built = True

    def call(self, images):
        x = self.from_rgb_act(self.from_rgb(images))
        for conv, act, down in zip(self.convs, self.acts, self.downs):
            x = down(act(conv(x)))
        x = tf.reshape(x, [-1, self.channels * 16])
        return self.out(self.final(x))


class ImageSource:
    """Training images of a CASIA-format folder, batch by global step.

    The batch of step s holds the images ``BatchSchedule.batch_indices(s)``,
    cropped to ``crop_size`` at the centre or at ``BatchSchedule.crop_offsets``.
    """

    def __init__(self, data_dir, batch_size, seed=0, crop=CROP_CENTER,
                 crop_size=pipeline.TRAIN_CROP_SIZE, reshuffle_each_epoch=True):
        casia = dat_files.load_casia(data_dir)
        self.images = casia.images
        self.subject_ids = np.asarray(casia.file_list.subject_ids)
        if crop not in (CROP_CENTER, CROP_RANDOM):
            raise ValueError(f"crop must be {CROP_CENTER!r} or {CROP_RANDOM!r}")
        self.crop, self.crop_size = crop, int(crop_size)
        self.max_offset = self.images.image_size - self.crop_size
        if self.max_offset < 0:
            raise ValueError(f"{self.images.path}: images smaller than the "
                             f"{crop_size} px crop")
        self.schedule = pipeline.BatchSchedule(len(self.images), batch_size, seed,
                                               reshuffle_each_epoch)
        if self.schedule.batches_per_epoch == 0:
            raise ValueError(f"{self.images.path}: {len(self.images)} images are fewer "
                             f"than one batch of {batch_size}")

    def __len__(self):
        return len(self.images)

    def center_crops(self, indices):
        """uint8 [K, crop, crop, 3] centre crops of the given images."""
        o = self.max_offset // 2
        return self.images.read(indices)[:, o:o + self.crop_size, o:o + self.crop_size]

    def batch(self, step):
        """(indices int64 [B], uint8 crops [B, crop, crop, 3]) of global step ``step``."""
        indices = self.schedule.batch_indices(step)
        if self.crop == CROP_CENTER:
            return indices, self.center_crops(indices)
        offsets = self.schedule.crop_offsets(step, self.max_offset)
        return indices, pipeline.crop_batch(self.images.read(indices), offsets,
                                            self.crop_size)


def resize_to(images, size):
    """[N, H, W, 3] -> [N, size, size, 3]: area averaging down, bilinear up."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape[1] == size and images.shape[2] == size:
        return images
    method = "area" if images.shape[1] > size else "bilinear"
    return tf.image.resize(images, (size, size), method=method)


def _load_frozen_generator(c):
    if c.generator_weights:
        kind, generator = load_converted(c.generator_weights)
        if kind != "generator":
            raise ValueError(f"{c.generator_weights} holds a converted {kind!r}, "
                             "not a generator")
        return generator
    if c.generator_from:
        trained, _, _ = decoder_lib.load_trained_decoder(c.generator_from)
        return trained.generator
    raise ValueError("mode 'transformer' needs a frozen decoder: generator_weights "
                     "(converted) or generator_from (a folder of this trainer)")


class DecoderTrainer:
    """Builds data, models and optimizers from a `DecoderTrainConfig` and trains.

    Args:
      config: `DecoderTrainConfig`.
      recognition: a recognition model object (anything
        ``recognition.as_recognition_model`` takes); None: ``config.recognition``
        is loaded.
      log: callable(str) for log lines.

    Attributes: ``decoder`` (`decoder.FeatureDecoder`), ``recognition``,
    ``step`` (tf.Variable, global step), ``source`` (`ImageSource`),
    ``restored_from``.
    """

    def __init__(self, config, recognition=None, log=print):
        self.config = c = config
        self.log = log
        if c.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {c.mode!r}")
        if recognition is None:
            if not c.recognition:
                raise ValueError("no recognition model: pass one or set "
                                 "config.recognition (e.g. 'interp_fr:DIR')")
            recognition = load_recognition_model(c.recognition, c.recognition_variant)
        self.recognition = as_recognition_model(recognition)
        self.source = ImageSource(c.data_dir, c.batch_size, c.seed, c.crop, c.crop_size,
                                  c.reshuffle_each_epoch)
        self.targets = None
        if c.target_dir:
            self.targets = ImageSource(c.target_dir, c.batch_size, c.seed, CROP_CENTER,
                                       c.crop_size, c.reshuffle_each_epoch)
            if len(self.targets) != len(self.source):
                raise ValueError(f"{self.targets.images.path}: {len(self.targets)} target "
                                 f"images for {len(self.source)} training images in "
                                 f"{c.data_dir}")
        self.w_rec, self.w_id, self.w_reg = c.weights()
        # Seeds the initialisers: the same seed builds the same models.
        keras.utils.set_random_seed(c.seed)
        feature_dim = self.recognition.feature_dim
        if c.mode == MODE_JOINT:
            generator = Generator(c.size, c.style_dim, c.generator_n_mlp,
                                  c.channel_multiplier, channels=parse_channels(c.channels),
                                  name="generator")
        else:
            generator = _load_frozen_generator(c)
        transformer = decoder_lib.LatentTransformer(
            feature_dim, generator.n_latent, c.transformer_n_mlp, generator.style_dim,
            c.input_scale, name="transformer")
        self.decoder = decoder_lib.FeatureDecoder(transformer, generator)
        if c.mode == MODE_TRANSFORMER:
            if c.mean_latent:
                transformer.set_mean_latent(np.load(c.mean_latent))
            else:
                transformer.set_mean_latent(np.asarray(
                    generator.mean_latent(c.mean_latent_samples, seed=c.seed)))
        # Joint mode keeps a zero mean latent: the decoder learns its own W space.

        self.latent_disc = self.image_disc = None
        if c.w_latent_adv:
            widths = [min(w, generator.style_dim) for w in LATENT_DISCRIMINATOR_WIDTHS]
            self.latent_disc = LatentDiscriminator(generator.n_latent, generator.style_dim,
                                                   widths, name="latent_disc")
        if c.w_adv:
            self.image_disc = ImageDiscriminator(generator.size, c.disc_channels,
                                                 name="image_disc")
        self.train_vars = list(transformer.trainable_variables)
        if c.mode == MODE_JOINT:
            # The mapping network is bypassed (W+ codes are fed directly).
            mapping = {id(v) for v in generator.style.trainable_variables}
            self.train_vars += [v for v in generator.trainable_variables
                                if id(v) not in mapping]
        self.disc_vars = []
        for disc in (self.latent_disc, self.image_disc):
            if disc is not None:
                self.disc_vars += list(disc.trainable_variables)
        self.optimizer = keras.optimizers.Adam(c.learning_rate, beta_1=c.beta1,
                                               beta_2=c.beta2)
        self.optimizer.build(self.train_vars)
        self.d_optimizer = None
        if self.disc_vars:
            self.d_optimizer = keras.optimizers.Adam(c.d_learning_rate, beta_1=c.beta1,
                                                     beta_2=c.beta2)
            self.d_optimizer.build(self.disc_vars)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")

        model_vars = self.decoder.variables_for_checkpoint()
        for name, disc in (("latent_disc", self.latent_disc),
                           ("image_disc", self.image_disc)):
            if disc is not None:
                model_vars.update(decoder_lib.named_variables(disc, name))
        parts = dict(model=model_vars, optimizer=self.optimizer, step=self.step)
        if self.d_optimizer is not None:
            parts["d_optimizer"] = self.d_optimizer
        self.checkpoint = tf.train.Checkpoint(**parts)
        os.makedirs(c.out_dir, exist_ok=True)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(c.out_dir, decoder_lib.CHECKPOINT_SUBDIR),
            max_to_keep=c.keep_checkpoints)
        self.restored_from = self._restore()
        self._write_description()
        self._features_fn = tf.function(self.recognition.__call__, reduce_retracing=True)
        self._target_fn = tf.function(lambda x: resize_to(x, generator.size),
                                      reduce_retracing=True)
        self.cache = self._build_cache()
        if c.identity_every < 1:
            raise ValueError(f"identity_every must be >= 1, got {c.identity_every}")
        self._train_step = self._make_train_step(with_identity=True)
        self._train_step_no_id = (self._make_train_step(with_identity=False)
                                  if c.identity_every > 1 else None)

    # -- checkpoints -------------------------------------------------------
    def _restore(self):
        latest = self.manager.latest_checkpoint
        if not latest:
            return None
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        self.log(f" [*] Resumed from {latest} at step {int(self.step.numpy())}")
        return latest

    def _write_description(self):
        c = self.config
        train = {k: v for k, v in dataclasses.asdict(c).items()}
        train["channels"] = (None if c.channels is None else
                             {str(k): v for k, v in parse_channels(c.channels).items()})
        spec = c.recognition if isinstance(c.recognition, str) else None
        desc = decoder_lib.decoder_description(
            self.decoder, spec, c.recognition_variant,
            extra={"recognition_name": self.recognition.name, "train_config": train})
        atomic_save_text(os.path.join(c.out_dir, decoder_lib.CONFIG_FILE),
                         json.dumps(desc, indent=1, default=str))

    def save(self):
        """Writes a checkpoint numbered by the step (the index file is replaced last)."""
        with tf_logging.quiet():
            return self.manager.save(checkpoint_number=int(self.step.numpy()))

    # -- data --------------------------------------------------------------
    def _build_cache(self):
        """Centre crops are the same every epoch: their z and targets are computed once."""
        c = self.config
        if c.crop != CROP_CENTER or len(self.source) > c.cache_limit:
            return None
        feats, targets = [], []
        for start in range(0, len(self.source), 64):
            idx = np.arange(start, min(start + 64, len(self.source)))
            x = tf.constant(to_unit_range(self.source.center_crops(idx)))
            feats.append(np.asarray(self._features_fn(x)))
            targets.append(np.asarray(self._target_fn(self._target_images(idx, x))))
        return np.concatenate(feats), np.concatenate(targets)

    def _target_images(self, indices, inputs):
        """[B, crop, crop, 3] in [-1, 1]: the targets of ``indices`` (the inputs
        themselves without a ``target_dir``)."""
        if self.targets is None:
            return inputs
        return tf.constant(to_unit_range(self.targets.center_crops(indices)))

    def batch_inputs(self, step):
        """(z [B, d], target [B, size, size, 3]) of global step ``step``."""
        if self.cache is not None:
            idx = self.source.schedule.batch_indices(step)
            return tf.constant(self.cache[0][idx]), tf.constant(self.cache[1][idx])
        indices, crops = self.source.batch(step)
        x = tf.constant(to_unit_range(crops))
        return self._features_fn(x), self._target_fn(self._target_images(indices, x))

    # -- step --------------------------------------------------------------
    def _make_train_step(self, with_identity):
        """The tf.function of one step; ``with_identity=False`` skips R(decoded).

        Lazy identity loss (config ``identity_every`` = k): like StyleGAN2's lazy
        regularisation, the costly term (a forward and backward pass through R)
        runs on every k-th step with k times the weight.
        """
        c = self.config
        dec, rec = self.decoder, self.recognition
        gen, tr = dec.generator, dec.transformer
        ldisc, idisc = self.latent_disc, self.image_disc
        w_rec, w_id, w_reg = self.w_rec, self.w_id * c.identity_every, self.w_reg
        seed_base = tf.constant(int(c.seed) * 2 ** 32, tf.int64)

        def step_fn(z, target):
            step = self.step.read_value()
            noise_seed = seed_base + step
            with tf.GradientTape() as tape:
                delta = tr(z, add_mean=False)
                w = tr.mean_latent[None] + delta
                images = gen(w, seed=noise_seed)
                terms = {"reg": tf.reduce_mean(tf.square(delta))}
                loss = w_reg * terms["reg"]
                if with_identity:
                    zr = rec(images)
                    terms["id"] = tf.reduce_mean(1.0 - tf.reduce_sum(z * zr, axis=-1))
                    loss += w_id * terms["id"]
                if w_rec:
                    terms["rec"] = tf.reduce_mean(tf.abs(images - target))
                    loss += w_rec * terms["rec"]
                if idisc is not None:
                    terms["adv"] = tf.reduce_mean(tf.nn.softplus(-idisc(images)))
                    loss += c.w_adv * terms["adv"]
                if ldisc is not None:
                    terms["latent_adv"] = tf.reduce_mean(tf.nn.softplus(-ldisc(w)))
                    loss += c.w_latent_adv * terms["latent_adv"]
                terms["loss"] = loss
            grads = tape.gradient(loss, self.train_vars)
            self.optimizer.apply_gradients(zip(grads, self.train_vars))
            if self.disc_vars:
                with tf.GradientTape() as d_tape:
                    d_loss = 0.0
                    if idisc is not None:
                        d_loss += tf.reduce_mean(
                            tf.nn.softplus(idisc(tf.stop_gradient(images)))
                            + tf.nn.softplus(-idisc(target)))
                    if ldisc is not None:
                        # Real latents: the generator's W codes, repeated over W+.
                        zs = tf.random.stateless_normal(
                            [tf.shape(z)[0], gen.style_dim],
                            seed=tf.stack([seed_base + 1, step]))
                        real = tf.tile(gen.style(zs)[:, None], [1, gen.n_latent, 1])
                        d_loss += tf.reduce_mean(
                            tf.nn.softplus(ldisc(tf.stop_gradient(w)))
                            + tf.nn.softplus(-ldisc(real)))
                d_grads = d_tape.gradient(d_loss, self.disc_vars)
                self.d_optimizer.apply_gradients(zip(d_grads, self.disc_vars))
                terms["d_loss"] = d_loss
            self.step.assign_add(1)
            return terms

        return tf.function(step_fn, reduce_retracing=True)

    # -- loop --------------------------------------------------------------
    def fit(self):
        """Trains until ``max_steps`` (or ``max_seconds``); returns the last scalars.

        A checkpoint is written every ``save_every_steps`` and at the end.
        Raises `NonFiniteLossError` (without saving) when a loss is NaN or inf.
        """
        c = self.config
        start = int(self.step.numpy())
        if start >= c.max_steps:
            self.log(f"nothing to do: step {start} >= {c.max_steps}")
            return {}
        writer = (tf.summary.create_file_writer(os.path.join(c.out_dir, TENSORBOARD_SUBDIR))
                  if c.tensorboard else None)
        progress = progress_lib.ProgressLine(c.max_steps, 1, "steps", c.progress)
        t0 = time.perf_counter()
        last = {}
        with open(os.path.join(c.out_dir, LOG_FILE), "a", encoding="utf-8") as log_file:
            while int(self.step.numpy()) < c.max_steps:
                current = int(self.step.numpy())
                z, target = self.batch_inputs(current)
                step_fn = (self._train_step if current % c.identity_every == 0
                           else self._train_step_no_id)
                terms = step_fn(z, target)
                step = int(self.step.numpy())
                scalars = {k: float(v.numpy()) for k, v in terms.items()}
                bad = [k for k, v in scalars.items() if not math.isfinite(v)]
                if bad:
                    progress.close()
                    raise NonFiniteLossError(
                        f"non-finite loss at step {step}: {', '.join(bad)}; stopped "
                        f"without saving, the last checkpoint in {c.out_dir} is intact")
                last = scalars
                elapsed = time.perf_counter() - t0
                if (step - 1) % c.log_every == 0 or step == c.max_steps:
                    progress.close()
                    self.log(f"step {step:6d}/{c.max_steps} time {elapsed:7.1f} s  " +
                             "  ".join(f"{k} {v:.4f}" for k, v in sorted(scalars.items())))
                    log_file.write(json.dumps(dict(step=step, seconds=elapsed,
                                                   **scalars)) + "\n")
                    log_file.flush()
                    if writer is not None:
                        with writer.as_default():
                            for name, value in scalars.items():
                                write_scalar(name, value, step)
                progress.update(step)
                if c.save_every_steps and step % c.save_every_steps == 0:
                    self.save()
                if c.max_seconds is not None and elapsed >= c.max_seconds:
                    progress.close()
                    self.log(f"time budget of {c.max_seconds:.0f} s reached at step {step}")
                    break
        progress.close()
        if not c.save_every_steps or int(self.step.numpy()) % c.save_every_steps:
            self.save()
        if writer is not None:
            writer.flush()
        return last
