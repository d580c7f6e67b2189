"""Readers and writers for the original MATLAB side files (SPEC A4).

  * ``landmarks68.mat`` (CASIA, 110x110 space) and ``landmarks68_IJBA.mat`` (IJB-A
    test set, 96x96 space): variable ``landmarks68``, an N x 1 cell array whose
    entries are 2 x 76 arrays (row 0 x, row 1 y): 68 facial landmarks, then 8
    frame points. The original indexes it as ``lmks[i][0]``.
  * ``tVM.mat``: ``tVM``, T x 76 uint8 incidence matrix; row t has three ones.
  * ``landmark68_7.mat``: ``landmark68_7``, 2 x 76 float32 frontal template in 96x96
    face coordinates (shifted by +7 px in 110x110 space).
"""
import os

import numpy as np
import scipy.io

from interp_fr.common.atomic_io import atomic_write
from interp_fr.common.errors import DataFileError

NUM_POINTS = 76  # 68 facial landmarks + 8 frame points
LANDMARKS_VAR = "landmarks68"
TRIANGULATION_VAR = "tVM"
FRONTAL_TEMPLATE_VAR = "landmark68_7"
# The frontal template lives in 96x96 face space; CASIA images are 110x110 with
# the face centred, so the original adds this shift in CASIA space.
FRONTAL_TEMPLATE_SHIFT_110 = 7.0


def load_mat_variable(path, name):
    """Loads one variable of a ``.mat`` file (v5/v7; v7.3 HDF5 is refused clearly).

    Raises:
        DataFileError: missing file, unreadable file, or missing variable (the
            message lists the variables the file does hold).
    """
    if not os.path.isfile(path):
        raise DataFileError(path, "file not found")
    try:
        # Only the one variable: feature files can be large.
        contents = scipy.io.loadmat(path, variable_names=[name])
    except NotImplementedError:
        raise DataFileError(path, "MATLAB v7.3 (HDF5) files are not supported; "
                            "re-save with save(..., '-v7')") from None
    except Exception as e:  # scipy raises several types for corrupt files
        raise DataFileError(path, f"not a readable MATLAB .mat file ({e})") from None
    if name not in contents:
        present = sorted(entry[0] for entry in scipy.io.whosmat(path))
        raise DataFileError(path, f"missing variable {name!r}; the file holds "
                            f"{present}")
    return contents[name]


def save_mat(path, variables):
    """Saves a dict of variables as a MATLAB v5 file, atomically."""
    with atomic_write(path, "wb") as f:
        scipy.io.savemat(f, variables, do_compression=True, oned_as="column")


def read_landmarks(path, expected_count=None, variable=LANDMARKS_VAR):
    """Reads per-image landmarks.

    Args:
        path: ``landmarks68.mat`` or ``landmarks68_IJBA.mat``.
        expected_count: if given, the number of images the file must describe.
        variable: the variable name (both original files use ``landmarks68``).

    Returns:
        float64 [N, 2, 76]: x row then y row per image.

    Raises:
        DataFileError: missing variable, an entry that is not 2 x 76 (its 0-based
            index is named), NaN coordinates, or a count mismatch.
    """
    raw = load_mat_variable(path, variable)
    if raw.dtype == object:
        entries = raw.reshape(-1)
        out = np.empty((len(entries), 2, NUM_POINTS), np.float64)
        for i, entry in enumerate(entries):
            entry = np.asarray(entry)
            if entry.shape != (2, NUM_POINTS):
                raise DataFileError(path, f"{variable}{{{i}}} (0-based entry {i}) has "
                                    f"shape {entry.shape}; expected (2, {NUM_POINTS})")
            out[i] = entry
    elif raw.ndim == 3 and raw.shape[1:] == (2, NUM_POINTS):
        out = raw.astype(np.float64)
    else:
        raise DataFileError(path, f"{variable} has shape {raw.shape} and dtype "
                            f"{raw.dtype}; expected an N x 1 cell of 2 x "
                            f"{NUM_POINTS} arrays")
    if not np.all(np.isfinite(out)):
        bad = np.unique(np.nonzero(~np.isfinite(out))[0])
        raise DataFileError(path, f"non-finite landmark coordinates in entries "
                            f"{bad[:10].tolist()}{'...' if len(bad) > 10 else ''}")
    if expected_count is not None and len(out) != expected_count:
        raise DataFileError(path, f"describes {len(out)} images but {expected_count} "
                            "were expected (one entry per image of the .dat file)")
    return out


def write_landmarks(path, landmarks, variable=LANDMARKS_VAR):
    """Writes float [N, 2, 76] landmarks as the original N x 1 cell array."""
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (2, NUM_POINTS):
        raise ValueError(f"{path}: expected [N, 2, {NUM_POINTS}] landmarks, got "
                         f"{landmarks.shape}")
    cell = np.empty((len(landmarks), 1), dtype=object)
    for i, entry in enumerate(landmarks):
        cell[i, 0] = entry
    save_mat(path, {variable: cell})


def read_triangulation(path):
    """Reads ``tVM.mat`` into vertex triples.

    Returns:
        int64 [T, 3]: the three vertex indices (ascending) of each triangle, in
        the row order of ``tVM`` (the original scans triangles in that order).

    Raises:
        DataFileError: wrong width, or a row without exactly three ones.
    """
    tvm = np.asarray(load_mat_variable(path, TRIANGULATION_VAR))
    if tvm.ndim != 2 or tvm.shape[1] != NUM_POINTS:
        raise DataFileError(path, f"{TRIANGULATION_VAR} has shape {tvm.shape}; "
                            f"expected T x {NUM_POINTS}")
    counts = np.count_nonzero(tvm, axis=1)
    if np.any(counts != 3):
        bad = np.nonzero(counts != 3)[0]
        raise DataFileError(path, f"rows {bad[:10].tolist()} of {TRIANGULATION_VAR} "
                            "do not mark exactly three vertices")
    return np.nonzero(tvm)[1].reshape(-1, 3).astype(np.int64)


def write_triangulation(path, triangles):
    """Writes vertex triples [T, 3] as the original T x 76 uint8 incidence matrix."""
    triangles = np.asarray(triangles, np.int64)
    tvm = np.zeros((len(triangles), NUM_POINTS), np.uint8)
    tvm[np.arange(len(triangles))[:, None], triangles] = 1
    save_mat(path, {TRIANGULATION_VAR: tvm})


def read_frontal_template(path):
    """Reads ``landmark68_7.mat``: float32 [2, 76] in 96x96 face coordinates."""
    tmpl = np.asarray(load_mat_variable(path, FRONTAL_TEMPLATE_VAR))
    if tmpl.shape != (2, NUM_POINTS):
        raise DataFileError(path, f"{FRONTAL_TEMPLATE_VAR} has shape {tmpl.shape}; "
                            f"expected (2, {NUM_POINTS})")
    if not np.all(np.isfinite(tmpl)):
        raise DataFileError(path, f"{FRONTAL_TEMPLATE_VAR} holds non-finite values")
    return tmpl.astype(np.float32)


def write_frontal_template(path, template):
    """Writes a [2, 76] frontal template as float32."""
    template = np.asarray(template, np.float32)
    if template.shape != (2, NUM_POINTS):
        raise ValueError(f"{path}: expected (2, {NUM_POINTS}), got {template.shape}")
    save_mat(path, {FRONTAL_TEMPLATE_VAR: template})
