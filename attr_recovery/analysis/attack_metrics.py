"""Reconstruction-attack figures of a decoder, as the embedding-inversion literature
reports them (NbNet, Mai et al. 2018, and later work).

The recogniser R's threshold at a false accept rate is set on genuine and
impostor pairs of *real* images. A decoded face D(R(x)) then attacks R:

* type I: it is accepted against its own input x (cos(R(D(R(x))), R(x)) above
  the threshold);
* type II: it is accepted against the *other* images of x's subject.

Image similarity of decoded and input faces at the decoder's resolution (the
input resized to it with area averaging): SSIM (Gaussian window 11, sigma 1.5,
as `tf.image.ssim`) and PSNR, both on [0, 1] intensities.
"""
import numpy as np

from attr_recovery.readers.recognition import as_recognition_model
from interp_fr.data.image_scaling import to_unit_range

FARS = (1e-2, 1e-3)


def threshold_at_far(impostor_scores, far):
    """(threshold, the FAR it gives): accept when score > threshold.

    The threshold is the k-th largest impostor score, k = max(1, floor(far * n)),
    so that at most k - 1 impostors (FAR <= far) pass.
    """
    s = np.sort(np.asarray(impostor_scores, np.float64))[::-1]
    k = max(1, int(np.floor(far * len(s))))
    thr = s[k - 1]
    return float(thr), float(np.mean(s > thr))


def attack_rates(z_real, z_decoded, subjects, fars=FARS):
    """Type-I and type-II acceptance rates at each FAR.

    Args:
        z_real: [N, d] unit representations of real images.
        z_decoded: [N, d] unit representations of their decoded faces.
        subjects: int [N].
        fars: false accept rates at which R's threshold is set.

    Returns:
        dict with, per FAR f, ``threshold@f``, ``real FAR@f`` (reached on the
        impostor pairs), ``real TAR@f`` (R on genuine pairs of real images),
        ``type-I TAR@f`` and ``type-II TAR@f``; and the pair counts.
    """
    z_real = np.asarray(z_real, np.float64)
    z_dec = np.asarray(z_decoded, np.float64)
    subjects = np.asarray(subjects)
    n = len(z_real)
    same = subjects[:, None] == subjects[None, :]
    upper = np.triu(np.ones((n, n), bool), k=1)
    real = z_real @ z_real.T
    genuine, impostor = real[same & upper], real[~same & upper]
    attack = z_dec @ z_real.T                         # [decoded i, real j]
    type1 = np.diag(attack)
    type2 = attack[same & ~np.eye(n, dtype=bool)]
    out = {"images": int(n), "genuine pairs": int(genuine.size),
           "impostor pairs": int(impostor.size),
           "type-II pairs": int(type2.size)}
    for far in fars:
        thr, reached = threshold_at_far(impostor, far)
        out[f"threshold@{far:g}"] = thr
        out[f"real FAR@{far:g}"] = reached
        out[f"real TAR@{far:g}"] = float(np.mean(genuine > thr)) if genuine.size else np.nan
        out[f"type-I TAR@{far:g}"] = float(np.mean(type1 > thr))
        out[f"type-II TAR@{far:g}"] = float(np.mean(type2 > thr)) if type2.size else np.nan
    return out


def image_similarity(real, decoded):
    """Mean SSIM and PSNR (dB) of decoded faces against their inputs.

    Args:
        real: [N, H, W, 3] inputs, uint8 or float in [-1, 1].
        decoded: [N, S, S, 3] float in about [-1, 1] (the decoder's resolution).

    Returns:
        dict ``SSIM``, ``PSNR (dB)``, ``resolution``.
    """
    import tensorflow as tf
    real = np.asarray(real)
    x = real / 255.0 if real.dtype == np.uint8 else (real.astype(np.float32) + 1) / 2
    y = np.clip((np.asarray(decoded, np.float32) + 1) / 2, 0, 1)
    size = y.shape[1]
    x = tf.image.resize(tf.constant(x, tf.float32), (size, size), method="area")
    x = tf.clip_by_value(x, 0.0, 1.0)
    y = tf.constant(y)
    return {"SSIM": float(tf.reduce_mean(tf.image.ssim(x, y, max_val=1.0))),
            "PSNR (dB)": float(tf.reduce_mean(tf.image.psnr(x, y, max_val=1.0))),
            "resolution": int(size)}


def attack_figures(decoder, recognition, images, subjects, seed=0, batch_size=32,
                   fars=FARS, portraits=None):
    """All figures of the module for one image set.

    Args:
        decoder: `decoder.FeatureDecoder`.
        recognition: anything ``recognition.as_recognition_model`` takes.
        images: [N, H, W, 3] uint8 or float in [-1, 1] (several per subject).
        subjects: int [N].
        portraits: optional [N, H, W, 3] canonical portraits of each image's
            identity (synthetic world): SSIM and PSNR against them too, the
            image a decoder of an identity-only representation can reach.

    Returns:
        dict of figures (`attack_rates` and `image_similarity`; with portraits
        also ``SSIM vs portrait`` and ``PSNR vs portrait (dB)``).
    """
    z, decoded, zd = decode_round_trip(decoder, recognition, images, seed, batch_size)
    out = attack_rates(z, zd, subjects, fars)
    out.update(image_similarity(np.asarray(images), decoded))
    if portraits is not None:
        sim = image_similarity(np.asarray(portraits), decoded)
        out["SSIM vs portrait"] = sim["SSIM"]
        out["PSNR vs portrait (dB)"] = sim["PSNR (dB)"]
    return out


def decode_round_trip(decoder, recognition, images, seed=0, batch_size=32):
    """x -> z = R(x) -> y = decoder(z) -> R(y), the step every decoding figure starts from.

    Args:
      decoder: `decoder.FeatureDecoder`.
      recognition: anything ``as_recognition_model`` takes.
      images: [N, H, W, 3] uint8 or float in [-1, 1].
      seed: decoder noise seed (per image).
    Returns: (z [N, d], decoded float images [N, size, size, 3], R(decoded) [N, d]),
      representations unit-normalised.
    """
    rec = as_recognition_model(recognition)
    images = np.asarray(images)
    x = to_unit_range(images) if images.dtype == np.uint8 else images.astype(np.float32)
    z = rec.features(x, batch_size)
    decoded = decoder.decode_batched(z, batch_size, seed=seed)
    return z, decoded, rec.features(decoded, batch_size)


def identity_figures(decoder, recognition, images, subject_ids=None, seed=0,
                     batch_size=32):
    """How well decoded faces keep the identity of their representation.

    For images x_i (z_i = R(x_i)) and decoded y_i = decoder(z_i), with
    zr_i = R(y_i):

    - ``matched cosine``: mean_i cos(z_i, zr_i);
    - ``random-pair cosine``: mean over i != j of cos(z_j, zr_i);
    - ``different-subject cosine``: the same over pairs of different subjects;
    - ``rank-1 decoded -> input``: fraction of i whose nearest input
      representation (cosine) to zr_i belongs to x_i's subject (or is x_i when
      no subjects are given);
    - ``real same-subject cosine`` / ``real different-subject cosine``: the
      recognition model's own cosines between real images, for reference.

    Args:
      decoder: `decoder.FeatureDecoder`.
      recognition: anything ``as_recognition_model`` takes.
      images: [N, H, W, 3] uint8 or float in [-1, 1].
      subject_ids: int [N] or None.
      seed: decoder noise seed (per image).
    Returns: (figures dict, decoded float images [N, size, size, 3]).
    """
    z, decoded, zr = decode_round_trip(decoder, recognition, images, seed, batch_size)
    n = len(z)
    cos = zr @ z.T                                  # [decoded i, input j]
    off = ~np.eye(n, dtype=bool)
    same = (np.arange(n)[:, None] == np.arange(n)[None] if subject_ids is None else
            np.asarray(subject_ids)[:, None] == np.asarray(subject_ids)[None])
    nearest = np.argmax(cos, axis=1)
    figures = {
        "images": int(n),
        "matched cosine": float(np.mean(np.diag(cos))),
        "random-pair cosine": float(np.mean(cos[off])) if n > 1 else float("nan"),
        "different-subject cosine": (float(np.mean(cos[~same])) if np.any(~same)
                                     else float("nan")),
        "rank-1 decoded -> input": float(np.mean(same[np.arange(n), nearest])),
    }
    real = z @ z.T
    if np.any(same & off):
        figures["real same-subject cosine"] = float(np.mean(real[same & off]))
    if np.any(~same):
        figures["real different-subject cosine"] = float(np.mean(real[~same]))
    figures["matched minus random"] = figures["matched cosine"] - figures["random-pair cosine"]
    return figures, decoded
