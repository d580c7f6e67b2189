"""Training losses of the interpretable face recognition model (SPEC A2).

All functions are batched (no Python loops over samples or channels) and
faithful by default: the diversity losses have no epsilon, so an all-zero
kernel tap or masked channel gives NaN exactly as the original does.  Pass
``epsilon`` to add it to the cosine denominators (where the original had it
commented out) and use :func:`nonfinite_terms` / :func:`zero_channels` to
diagnose a NaN.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from interp_fr.model import VARIANT_BASE

DEFAULT_NUM_KEEP = 260
# Fixed smoothing kernel of the spatial activation diversity loss.
GAUSSIAN_3X3 = np.array([[0.0947416, 0.118318, 0.0947416],
                         [0.118318, 0.147761, 0.118318],
                         [0.0947416, 0.118318, 0.0947416]], dtype=np.float32)

# Scalar entries of model_losses' result, in the original's logging order.
LOSS_TERMS = ("d_loss", "d_loss_real_id", "d_loss_real_id_occl",
              "diver_loss", "diver_loss_o", "diver_loss_A", "occl_loss",
              "d_acc", "d_acc_occl")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Multipliers of the d_loss terms; the defaults are the original's."""
    identity: float = 2.0
    identity_occl: float = 2.0
    filter_diversity: float = 100.0
    spatial_diversity: float = 1.0
    spatial_diversity_occl: float = 1.0
    occlusion: float = 0.1


def _mean_squared_pairwise_cosine(vectors, epsilon=None):
    """Mean over unordered pairs i < j of cos^2(v_i, v_j).

    Args:
        vectors: [..., N, L] (N vectors of length L per leading index).
        epsilon: None (faithful, NaN for a zero vector) or added to the
            product of norms.

    Returns:
        [...] tensor.
    """
    n = int(vectors.shape[-2])
    gram = tf.matmul(vectors, vectors, transpose_b=True)
    # Subtracting the diagonal (not overwriting it) keeps the original's NaN
    # for zero vectors: 0 / 0 on the diagonal.
    off_diagonal = gram - tf.linalg.diag(tf.linalg.diag_part(gram))
    norms = tf.sqrt(tf.reduce_sum(tf.square(vectors), axis=-1))
    denominator = norms[..., :, None] * norms[..., None, :]
    if epsilon is not None:
        denominator = denominator + epsilon
    cos_sq = tf.square(off_diagonal / denominator)
    # The full matrix counts every pair twice.
    return tf.reduce_sum(cos_sq, axis=[-2, -1]) / 2.0 / (n * (n - 1) / 2.0)


def filter_diversity(kernel, epsilon=None):
    """D_A: diversity of the spatial taps of each k5 filter.

    Args:
        kernel: conv weight [kh, kw, C_in, C_out] (d_k5_conv_new/w).
        epsilon: see module docstring.

    Returns:
        scalar: mean over the C_out filters of the mean squared cosine
        similarity between the kh*kw tap vectors (each of length C_in).
    """
    kh, kw, c_in, c_out = kernel.shape
    taps = tf.reshape(kernel, [kh * kw, c_in, c_out])
    per_filter = tf.transpose(taps, [2, 0, 1])  # [C_out, taps, C_in]
    return tf.reduce_mean(_mean_squared_pairwise_cosine(per_filter, epsilon))


def gaussian_smooth(feature_map):
    """Per-channel 3x3 Gaussian smoothing, SAME, stride 1: [B,H,W,C] -> same."""
    c = int(feature_map.shape[-1])
    kernel = tf.constant(np.tile(GAUSSIAN_3X3[:, :, None, None], [1, 1, c, 1]),
                         dtype=feature_map.dtype)
    return tf.nn.depthwise_conv2d(feature_map, kernel, strides=[1, 1, 1, 1],
                                  padding="SAME")


def spatial_activation_diversity(feature_map, epsilon=None):
    """D_B (SAD): diversity of the smoothed channel maps, averaged over the batch.

    Args:
        feature_map: masked k5 [B, H, W, C].
        epsilon: see module docstring.

    Returns:
        scalar: mean over samples of the mean squared cosine similarity between
        the C smoothed channel maps (vectors of length H*W).
    """
    smoothed = gaussian_smooth(feature_map)
    _, h, w, c = smoothed.shape
    per_channel = tf.transpose(tf.reshape(smoothed, [-1, h * w, c]), [0, 2, 1])
    return tf.reduce_mean(_mean_squared_pairwise_cosine(per_channel, epsilon))


def feature_activation_diversity(feature, feature_occl,
                                 num_keep=DEFAULT_NUM_KEEP):
    """FAD: the occlusion loss and the feature mask m.

    Args:
        feature: clean pre-dropout k6 [B, D].
        feature_occl: k6 of the occluded images [B, D].
        num_keep: how many of the least-changed dimensions enter the loss.

    Returns:
        (loss, mask): loss is the (unweighted) sum of the ``num_keep``
        smallest values of c = mean_b |feature - feature_occl|; mask [D] is
        1.0 where c is at or below the ``num_keep``-th smallest value (ties
        keep more than ``num_keep`` dimensions) and 0.0 elsewhere.
    """
    dim = int(feature.shape[-1])
    if not 0 < num_keep <= dim:
        raise ValueError(f"num_keep must be in [1, {dim}] (feature size), "
                         f"got {num_keep}")
    change = tf.reduce_mean(tf.abs(feature - feature_occl), axis=0)
    smallest = -tf.math.top_k(-change, k=num_keep, sorted=True).values
    loss = tf.reduce_sum(smallest)
    mask = 1.0 - tf.cast(change > smallest[num_keep - 1], change.dtype)
    return loss, mask


def _one_hot(labels, num_classes, dtype):
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 1:
        return tf.one_hot(labels, num_classes, dtype=dtype)
    return tf.cast(labels, dtype)


def identity_cross_entropy(logits, labels):
    """Mean softmax cross-entropy (unweighted).

    Args:
        logits: [B, n_subjects].
        labels: int [B] subject ids or one-hot [B, n_subjects].

    Returns:
        scalar.
    """
    onehot = _one_hot(labels, logits.shape[-1], logits.dtype)
    return tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits))


def accuracy(logits, labels):
    """Fraction (in [0, 1]) of samples whose argmax logit is the label.

    Args:
        logits: [B, n_subjects].
        labels: int [B] or one-hot [B, n_subjects].
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2:
        labels = tf.argmax(labels, axis=-1)
    predicted = tf.argmax(logits, axis=-1)
    return tf.reduce_mean(
            tf.cast(tf.equal(predicted, tf.cast(labels, predicted.dtype)),
                    tf.float32))


def zero_channels(feature_map):
    """Which channels are entirely zero (these make D_B NaN).

    Args:
        feature_map: [B, H, W, C].

    Returns:
        bool [B, C].
    """
    return tf.reduce_all(tf.equal(feature_map, 0.0), axis=[1, 2])


def nonfinite_terms(terms):
    """Names of the entries of ``terms`` (name -> tensor/array) holding a NaN
    or inf, in the mapping's order."""
    names = []
    for name, value in terms.items():
        if isinstance(value, dict):
            continue
        if not np.all(np.isfinite(np.asarray(value))):
            names.append(name)
    return names


def _float32_outputs(outputs):
    return {name: tf.cast(value, tf.float32) for name, value in outputs.items()}


def model_losses(model, images, images_occl, labels, training=True,
                 apply_dropout=None, weights=LossWeights(),
                 num_keep=DEFAULT_NUM_KEEP, epsilon=None):
    """One training step's losses (SPEC A2) for a clean and an occluded batch.

    The clean batch runs first, then the occluded one, so in training mode
    the moving statistics take the clean update first.

    Args:
        model: an ``InterpFRNet`` with a hypercolumn ("full" or
            "hypercolumn_no_mask").
        images, images_occl: [B, 96, 96, 3] in [-1, 1].
        labels: int [B] or one-hot [B, n_subjects].
        training: batch-norm mode and (by default) dropout.
        apply_dropout: overrides ``training`` for dropout only (False gives a
            deterministic training-mode step).
        weights: ``LossWeights``.
        num_keep: FAD dimensions kept (260 in the original).
        epsilon: None (faithful) or the diversity-loss epsilon.

    Returns:
        dict with the scalar ``LOSS_TERMS`` (weighted as in the original:
        ``d_loss_real_id`` is 2 * CE, ``diver_loss_A`` is 100 * D_A,
        ``occl_loss`` 0.1 * sum, ...), plus ``occlusion_mask`` [D],
        ``logits_occl`` [B, n_subjects], ``outputs`` and ``outputs_occl``
        (the model's output dicts).
    """
    if model.variant == VARIANT_BASE:
        raise ValueError("the diversity and occlusion losses need the "
                         "hypercolumn head; the 'base' variant has none")
    out = model(images, training=training, apply_dropout=apply_dropout)
    out_o = model(images_occl, training=training, apply_dropout=apply_dropout)
    # Under mixed precision the model computes in float16; the losses (norms,
    # cosines, cross-entropy) are taken in float32.  A no-op otherwise.
    out, out_o = _float32_outputs(out), _float32_outputs(out_o)
    fad_sum, mask = feature_activation_diversity(out["feature"],
                                                 out_o["feature"], num_keep)
    logits_occl = tf.cast(model.classify(out_o["feature"], training=training,
                                         mask=mask, apply_dropout=apply_dropout),
                          tf.float32)
    terms = {
        "d_loss_real_id":
            weights.identity * identity_cross_entropy(out["logits"], labels),
        "d_loss_real_id_occl":
            weights.identity_occl * identity_cross_entropy(logits_occl, labels),
        "diver_loss_A": weights.filter_diversity
            * filter_diversity(tf.cast(model.filter_kernel, tf.float32), epsilon),
        "diver_loss": weights.spatial_diversity
            * spatial_activation_diversity(out["feature_map"], epsilon),
        "diver_loss_o": weights.spatial_diversity_occl
            * spatial_activation_diversity(out_o["feature_map"], epsilon),
        "occl_loss": weights.occlusion * fad_sum,
    }
    terms["d_loss"] = tf.add_n([terms[k] for k in (
            "d_loss_real_id", "d_loss_real_id_occl", "diver_loss_A",
            "diver_loss", "diver_loss_o", "occl_loss")])
    terms["d_acc"] = accuracy(out["logits"], labels)
    terms["d_acc_occl"] = accuracy(logits_occl, labels)
    result = {name: terms[name] for name in LOSS_TERMS}
    result.update(occlusion_mask=mask, logits_occl=logits_occl,
                  outputs=out, outputs_occl=out_o)
    return result
