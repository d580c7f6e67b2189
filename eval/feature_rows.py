"""Per-image feature files and MATLAB-style row normalisation (IJB-A and IJB-C).

Semantics: BUILD_NOTES.md, "Templates and distances (`eval/ijba.py`)".
"""
import os

import numpy as np

from interp_fr.common.errors import DataFileError, check_finite, text_line_numbers


def load_features(path, feature_dim=None):
    """Loads the per-image feature matrix.

    Args:
        path: ``.npy`` array, or text as written by ``numpy.savetxt`` (one row per
            image, whitespace separated).
        feature_dim: if given, the required number of columns (320 for the model).

    Returns:
        float64 [N, D]; row i is the image with 1-based index i + 1 in
        ``sightingID2idx``.

    Raises:
        DataFileError: missing or unreadable file, not 2-D, wrong column count,
            NaN or infinite values (the first rows holding them are named:
            1-based lines of a text file, 0-based rows of a ``.npy``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(path, "feature file not found")
    try:
        if path.endswith(".npy"):
            x = np.load(path, allow_pickle=False)
        else:
            x = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise DataFileError(path, f"not a feature matrix ({e})") from None
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise DataFileError(path, f"features have shape {x.shape}; expected N x D")
    if feature_dim is not None and x.shape[1] != feature_dim:
        raise DataFileError(path, f"features have {x.shape[1]} columns; expected "
                            f"{feature_dim}")
    if path.endswith(".npy"):
        check_finite(path, x, "feature values", unit="0-based row",
                     numbers=lambda rows: rows)
    else:
        check_finite(path, x, "feature values", unit="line",
                     numbers=lambda rows: text_line_numbers(path, rows))
    return x


def normalize_rows(features):
    """Unit-norm rows as MATLAB's pdist/pdist2 'cosine' prepare them.

    Each row is first scaled by its largest absolute value (against overflow),
    its 2-norm taken and the scaling undone; all-zero rows become NaN, so every
    distance involving them is NaN, as in MATLAB.

    Args:
        features: float [N, D].

    Returns:
        float64 [N, D].
    """
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"features must be N x D with D > 0, not {x.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        xmax = np.max(np.abs(x), axis=1, keepdims=True)
        norm = np.sqrt(np.sum((x / xmax) ** 2, axis=1, keepdims=True)) * xmax
        return x / norm
