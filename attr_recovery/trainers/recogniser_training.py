"""Training a face recogniser on a CASIA-format folder (not in the original code).

The attribute-recovery analyses need a recogniser R. Besides the project's
InterpFRNet (``interp_fr.training``), any Keras model that maps images to a
representation can be trained here with a normalised-softmax (cosine) head:
logits ``scale * <unit feature, unit class weight>``, so that the features'
angles carry the identity, which is what the decoder's identity loss, the
significance measures and the verification figures use. Used for the tiny
recogniser of tests and the CPU main job (`decoding_stage.train_small_recognizer`)
and for the ArcFace backbones trained on the synthetic world
(``experiments/train_backbone_recognisers.py``).
"""
import keras
import numpy as np
import tensorflow as tf

from attr_recovery.trainers.training import ImageSource, resize_to
from interp_fr.data import pipeline
from interp_fr.data.image_scaling import to_unit_range


def augment_colours(crops, rng, colour_jitter=0.0, grey_probability=0.0):
    """`pipeline.jitter_colours` of strength ``colour_jitter``, then each image
    replaced by its luminance (in all three channels) with probability
    ``grey_probability``; one draw per image, no loop over the batch.

    Args:
      crops: uint8 [B, H, W, 3].
      rng: a ``numpy.random.Generator`` (the batch's own, for resumable runs).
    Returns: uint8 [B, H, W, 3].
    """
    crops = pipeline.jitter_colours(crops, rng, colour_jitter)
    if grey_probability <= 0:
        return crops
    grey = rng.uniform(size=(len(crops), 1, 1, 1)) < grey_probability
    return np.where(grey, pipeline.grey_copies(crops), crops)


def train_recogniser(model, data_dir, steps=300, batch_size=32, seed=0, input_size=None,
                     scale=16.0, learning_rate=0.003, log=None, log_every=100,
                     colour_jitter=0.0, grey_probability=0.0):
    """Trains ``model`` (images -> features) with a cosine-softmax classifier.

    Random 96 px crops of the 110 px images (resized to ``input_size`` when
    given; backbones that resize themselves take None), a seeded batch order.

    Args:
      model: Keras model, call(images [N, s, s, 3] in [-1, 1], training=True)
        -> [N, d] (normalised or not).
      data_dir: CASIA-format folder (``CASIA_all_images_110_110.dat`` + list).
      log: optional callable(str), every ``log_every`` steps.
      colour_jitter: strength of `pipeline.jitter_colours` on each batch (0: none).
      grey_probability: each image is replaced by its luminance with this
        probability (after any jitter). Without it a recogniser of the synthetic
        world can tell identities by colour alone and learns no face shape
        (BUILD_NOTES.md, "What the recognisers encode"); grey images alone force
        shape while the colour images keep colour a cue, where the jitter's
        per-channel gains make hue useless.
    Returns: training accuracy of the last 50 steps (the model is trained in place).
    """
    source = ImageSource(data_dir, batch_size, seed, crop="random")
    n_classes = int(source.subject_ids.max()) + 1
    feature_dim = int(model(tf.zeros([1, input_size or 96, input_size or 96, 3])).shape[-1])
    classes = tf.Variable(tf.random.stateless_normal([feature_dim, n_classes],
                                                     seed=[seed, 7]), name="classes")
    variables = model.trainable_variables + [classes]
    opt = keras.optimizers.Adam(learning_rate)

    @tf.function(reduce_retracing=True)
    def step_fn(x, labels):
        if input_size:
            x = resize_to(x, input_size)
        with tf.GradientTape() as tape:
            f = tf.math.l2_normalize(model(x, training=True), axis=-1)
            logits = scale * f @ tf.math.l2_normalize(classes, axis=0)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, logits))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        acc = tf.reduce_mean(tf.cast(tf.argmax(logits, -1, output_type=tf.int32)
                                     == labels, tf.float32))
        return loss, acc

    accs = []
    for step in range(steps):
        idx, crops = source.batch(step)
        crops = augment_colours(crops, source.schedule.colour_rng(step), colour_jitter,
                                grey_probability)
        loss, acc = step_fn(tf.constant(to_unit_range(crops)),
                            tf.constant(source.subject_ids[idx], tf.int32))
        accs.append(float(acc))
        if log is not None and (step + 1) % log_every == 0:
            log(f"step {step + 1}/{steps}: loss {float(loss):.3f}, batch accuracy "
                f"{np.mean(accs[-log_every:]):.3f}")
    return float(np.mean(accs[-50:]))
