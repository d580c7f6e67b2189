"""The raw-pixel baseline: what a recogniser must beat to have learned anything.

Each 96x96 face is averaged down to 24x24 (4x4 blocks), flattened, centred and
projected on the top principal components of the training images; the
evaluation then compares these vectors by cosine like any feature. Reported
beside the trained models' figures so that a reader sees the margin.
"""
import numpy as np

BLOCK = 4
DEFAULT_DIMS = 64


def downsampled_pixels(images, block=BLOCK, chunk=512):
    """uint8 or float images [N, H, W, 3] -> float64 [N, (H/block)*(W/block)*3].

    Converted ``chunk`` images at a time, so a large uint8 set never exists
    whole in float64.
    """
    n, h, w, c = np.shape(images)
    out = np.empty((n, (h // block) * (w // block) * c), np.float64)
    for i in range(0, n, chunk):
        x = np.asarray(images[i:i + chunk], np.float64)[:, :h - h % block, :w - w % block]
        m = len(x)
        out[i:i + m] = x.reshape(m, h // block, block, w // block, block, c).mean(
            axis=(2, 4)).reshape(m, -1)
    return out


def fit_pca(rows, dims=DEFAULT_DIMS):
    """Mean [D] and the top ``dims`` principal directions [D, dims] of ``rows``."""
    mean = rows.mean(axis=0)
    # The right singular vectors of the centred data are the principal axes.
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    return mean, vt[:dims].T


def pixel_baseline_features(train_images, test_images, dims=DEFAULT_DIMS):
    """PCA features of ``test_images`` fitted on ``train_images``.

    Args:
        train_images: [N, 96, 96, 3] face crops of the training set (for CASIA
            110 px images, their centre crop).
        test_images: [M, 96, 96, 3].
        dims: PCA dimensions kept.

    Returns:
        float32 [M, dims] features (compare by cosine).
    """
    mean, axes = fit_pca(downsampled_pixels(train_images), dims)
    return ((downsampled_pixels(test_images) - mean) @ axes).astype(np.float32)
