"""tf.data pipelines over the raw ``.dat`` images.

Training (SPEC A3): batches are consecutive slices of a permutation of the image
indices; each image gets a random 96x96 crop of its 110x110 original (offsets
uniform in 0..14) and is scaled to [-1, 1]; the crop offsets travel with the batch
because the occlusion synthesis needs them.

Optional colour jitter (not in the original, ``colour_jitter`` > 0): per
image, channel gains, a brightness shift and, with some probability, grey
scale. The synthetic world gives each identity one skin and one hair colour,
so a recogniser trained without it can tell its subjects apart by colour alone
and never learn face shape (BUILD_NOTES.md, "What the recognisers encode").

Everything random is a pure function of ``(seed, epoch, batch)``: the permutation
of an epoch is drawn from ``seed`` and the epoch number, the crop offsets of a
batch from ``seed`` and its global batch number. A resumed run that starts at
``start_batch`` therefore sees exactly the batches an uninterrupted run would
have seen, with no RNG state to save.
"""
import dataclasses

import numpy as np
import tensorflow as tf
from interp_fr.data.image_scaling import to_unit_range_tf

TRAIN_CROP_SIZE = 96
# ITU-R 601 luma weights of R, G, B: the grey scale of the colour jitter.
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)


def grey_scale(images):
    """uint8 or float images [..., 3] -> their luminance [...] as float32."""
    return np.asarray(images, np.float32) @ np.array(LUMINANCE_WEIGHTS, np.float32)


def grey_copies(images):
    """uint8 [..., 3] -> their luminance (`grey_scale`, rounded) in all three
    channels, uint8."""
    y = np.clip(np.rint(grey_scale(images)), 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, -1)


@dataclasses.dataclass(frozen=True)
class BatchSchedule:
    """Which images go into which batch.

    Attributes:
        num_images: N.
        batch_size: B; the tail of an epoch smaller than B is dropped.
        seed: base seed.
        reshuffle_each_epoch: False reproduces the original, which permutes once
            before training and reuses that order every epoch.
    """
    num_images: int
    batch_size: int
    seed: int = 0
    reshuffle_each_epoch: bool = False

    @property
    def batches_per_epoch(self):
        return self.num_images // self.batch_size

    def permutation(self, epoch):
        """The image order of ``epoch``: int64 [N]."""
        key = (self.seed, epoch if self.reshuffle_each_epoch else 0, 0x5EED)
        return np.random.default_rng(key).permutation(self.num_images)

    def batch_indices(self, global_batch):
        """Image indices [B] of the ``global_batch``-th batch since training began."""
        epoch, pos = divmod(int(global_batch), self.batches_per_epoch)
        perm = self.permutation(epoch)
        return perm[pos * self.batch_size:(pos + 1) * self.batch_size]

    def colour_rng(self, global_batch):
        """The generator of the colour jitter of batch ``global_batch``."""
        return np.random.default_rng((self.seed, int(global_batch), 0xC010))

    def crop_offsets(self, global_batch, max_offset):
        """Crop offsets [B, 2] (row, col), each uniform in 0..max_offset."""
        rng = np.random.default_rng((self.seed, int(global_batch), 0xC209))
        return rng.integers(0, max_offset + 1, size=(self.batch_size, 2))


def jitter_colours(images, rng, strength):
    """Random colour changes, one draw per image, without a loop over the batch.

    Each image is multiplied by per-channel gains uniform in 1 +- 0.3 s, shifted
    by a brightness uniform in +-25 s grey levels and, with probability 0.5 s,
    replaced by its luminance (ITU-R 601 weights), for strength s in [0, 1].

    Args:
        images: uint8 [B, H, W, 3].
        rng: a ``numpy.random.Generator``.
        strength: s; 0 returns the images unchanged.

    Returns:
        uint8 [B, H, W, 3].
    """
    s = float(strength)
    if s <= 0.0:
        return images
    b = len(images)
    gains = rng.uniform(1.0 - 0.3 * s, 1.0 + 0.3 * s, size=(b, 1, 1, 3))
    shift = rng.uniform(-25.0 * s, 25.0 * s, size=(b, 1, 1, 1))
    grey = rng.uniform(size=(b, 1, 1, 1)) < 0.5 * s
    x = images.astype(np.float32)
    x = np.where(grey, grey_scale(x)[..., None], x)
    return np.clip(np.rint(x * gains + shift), 0, 255).astype(np.uint8)


def crop_batch(images, offsets, size):
    """Crops each image at its own offset, without a Python loop over the batch.

    Args:
        images: uint8 [B, H, W, C].
        offsets: int [B, 2] (row, col) of each crop's top-left corner.
        size: crop side length.

    Returns:
        uint8 [B, size, size, C].
    """
    offsets = np.asarray(offsets)
    rows = offsets[:, 0, None] + np.arange(size)  # [B, size]
    cols = offsets[:, 1, None] + np.arange(size)
    b = np.arange(len(images))[:, None, None]
    return images[b, rows[:, :, None], cols[:, None, :]]


def training_dataset(dat_images, subject_ids, batch_size, *, seed=0,
                     start_batch=0, num_batches=None, crop_size=TRAIN_CROP_SIZE,
                     reshuffle_each_epoch=False, colour_jitter=0.0,
                     num_parallel_calls=tf.data.AUTOTUNE, prefetch=2):
    """Training batches from a CASIA-format image file.

    Args:
        dat_images: a `DatImages` of 110x110 (or any size >= crop_size) images.
        subject_ids: int [N] label per image.
        batch_size: B.
        seed: base seed of the permutation and the crops.
        start_batch: global batch number to start at (for resuming).
        num_batches: how many batches to yield; None = forever.
        crop_size: 96 in the original.
        reshuffle_each_epoch: draw a new permutation every epoch (False = the
            original's single permutation).
        colour_jitter: strength of `jitter_colours` (0: none, the original).

    Returns:
        A ``tf.data.Dataset`` of dicts with
          ``image``: float32 [B, crop, crop, 3] in [-1, 1];
          ``offset``: int32 [B, 2] crop (row, col) offsets in the source image;
          ``label``: int32 [B] subject ids;
          ``index``: int64 [B] image indices in the file;
          ``step``: int64 [] the global batch number.
    """
    subject_ids = np.asarray(subject_ids, np.int32)
    if len(subject_ids) != len(dat_images):
        raise ValueError(f"{dat_images.path}: {len(dat_images)} images but "
                         f"{len(subject_ids)} labels")
    schedule = BatchSchedule(len(dat_images), batch_size, seed, reshuffle_each_epoch)
    if schedule.batches_per_epoch == 0:
        raise ValueError(f"{dat_images.path}: {len(dat_images)} images are fewer "
                         f"than one batch of {batch_size}")
    max_offset = dat_images.image_size - crop_size
    if max_offset < 0:
        raise ValueError(f"{dat_images.path}: images of {dat_images.image_size} px are"
                         f" smaller than the {crop_size} px crop")

    def load(global_batch):
        indices = schedule.batch_indices(global_batch)
        offsets = schedule.crop_offsets(global_batch, max_offset)
        crops = crop_batch(dat_images.read(indices), offsets, crop_size)
        crops = jitter_colours(crops, schedule.colour_rng(global_batch), colour_jitter)
        return (crops, offsets.astype(np.int32), subject_ids[indices],
                indices.astype(np.int64))

    def load_tf(global_batch):
        crops, offsets, labels, indices = tf.numpy_function(
            load, [global_batch], [tf.uint8, tf.int32, tf.int32, tf.int64],
            stateful=False)
        crops.set_shape([batch_size, crop_size, crop_size, 3])
        offsets.set_shape([batch_size, 2])
        labels.set_shape([batch_size])
        indices.set_shape([batch_size])
        return {"image": to_unit_range_tf(crops), "offset": offsets, "label": labels,
                "index": indices, "step": global_batch}

    stop = None if num_batches is None else start_batch + num_batches
    ds = tf.data.Dataset.range(start_batch, stop if stop is not None else 2**62)
    ds = ds.map(load_tf, num_parallel_calls=num_parallel_calls, deterministic=True)
    return ds.prefetch(prefetch)


def inference_dataset(dat_images, batch_size, *, num_parallel_calls=tf.data.AUTOTUNE,
                      prefetch=2, limit=None):
    """Images in file order, scaled to [-1, 1], in batches (the last may be short).

    Args:
        dat_images: a `DatImages` (96x96 for IJB-A).
        batch_size: images per batch.
        limit: only the first ``limit`` images.

    Returns:
        A ``tf.data.Dataset`` of dicts ``image`` float32 [b, S, S, 3] and
        ``index`` int64 [b].
    """
    total = len(dat_images) if limit is None else min(limit, len(dat_images))
    size = dat_images.image_size

    def load(batch):
        start = int(batch) * batch_size
        stop = min(start + batch_size, total)
        return dat_images.read_range(start, stop), np.arange(start, stop, dtype=np.int64)

    def load_tf(batch):
        images, indices = tf.numpy_function(load, [batch], [tf.uint8, tf.int64],
                                            stateful=False)
        images.set_shape([None, size, size, 3])
        indices.set_shape([None])
        return {"image": to_unit_range_tf(images), "index": indices}

    num = -(-total // batch_size)
    ds = tf.data.Dataset.range(num).map(load_tf, num_parallel_calls=num_parallel_calls,
                                        deterministic=True)
    return ds.prefetch(prefetch)
