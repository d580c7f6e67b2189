"""MATLAB side files: the real ones in shared/, round trips, and bad input."""
import os

import numpy as np
import pytest
import scipy.io

from interp_fr.data import mat_files
from interp_fr.common.errors import DataFileError


def test_real_triangulation(shared_dir):
    tri = mat_files.read_triangulation(os.path.join(shared_dir, "interp_fr_aux", "tVM.mat"))
    assert tri.shape == (142, 3) and tri.min() == 0 and tri.max() == 75
    assert np.all(np.diff(tri, axis=1) > 0)
    # Row 0 of the real tVM marks vertices 0, 1 and 36 (jaw, jaw, eye corner).
    np.testing.assert_array_equal(tri[0], [0, 1, 36])


def test_real_frontal_template(shared_dir):
    tmpl = mat_files.read_frontal_template(
        os.path.join(shared_dir, "interp_fr_aux", "landmark68_7.mat"))
    assert tmpl.shape == (2, 76) and tmpl.dtype == np.float32
    # Frame points at 1 / 55 / 110; face landmarks inside x 12..90, y 32..93.
    np.testing.assert_array_equal(tmpl[0, 68:], [1, 1, 1, 55, 110, 110, 110, 55])
    np.testing.assert_array_equal(tmpl[1, 68:], [1, 55, 110, 110, 110, 55, 1, 1])
    assert 12 <= tmpl[0, :68].min() and tmpl[0, :68].max() <= 91
    assert 31 <= tmpl[1, :68].min() and tmpl[1, :68].max() <= 94


def test_landmarks_round_trip_cell_layout(tmp_path):
    lm = np.random.default_rng(0).uniform(0, 110, (5, 2, 76))
    path = tmp_path / "landmarks68.mat"
    mat_files.write_landmarks(path, lm)
    raw = scipy.io.loadmat(path)["landmarks68"]
    # The original indexes lmks[i][0] -> 2 x 76: an N x 1 cell array.
    assert raw.shape == (5, 1) and raw[3][0].shape == (2, 76)
    np.testing.assert_array_equal(raw[3][0], lm[3])
    np.testing.assert_array_equal(mat_files.read_landmarks(path, expected_count=5), lm)


def test_landmarks_errors(tmp_path):
    path = tmp_path / "lm.mat"
    cell = np.empty((3, 1), dtype=object)
    for i in range(3):
        cell[i, 0] = np.zeros((2, 76))
    cell[1, 0] = np.zeros((2, 68))
    scipy.io.savemat(path, {"landmarks68": cell})
    with pytest.raises(DataFileError, match=r"entry 1\) has shape \(2, 68\)"):
        mat_files.read_landmarks(path)
    scipy.io.savemat(path, {"lmks": np.zeros((2, 76))})
    with pytest.raises(DataFileError, match=r"missing variable 'landmarks68'.*\['lmks'\]"):
        mat_files.read_landmarks(path)
    mat_files.write_landmarks(path, np.zeros((2, 2, 76)))
    with pytest.raises(DataFileError, match="describes 2 images but 4"):
        mat_files.read_landmarks(path, expected_count=4)
    bad = np.zeros((2, 2, 76))
    bad[1, 0, 3] = np.nan
    mat_files.write_landmarks(path, bad)
    with pytest.raises(DataFileError, match=r"non-finite.*\[1\]"):
        mat_files.read_landmarks(path)


def test_triangulation_and_template_errors(tmp_path):
    path = tmp_path / "tVM.mat"
    tvm = np.zeros((2, 76), np.uint8)
    tvm[0, [0, 1, 2]] = 1
    tvm[1, [0, 1]] = 1
    scipy.io.savemat(path, {"tVM": tvm})
    with pytest.raises(DataFileError, match=r"rows \[1\]"):
        mat_files.read_triangulation(path)
    scipy.io.savemat(path, {"landmark68_7": np.zeros((2, 68))})
    with pytest.raises(DataFileError, match=r"shape \(2, 68\)"):
        mat_files.read_frontal_template(path)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataFileError, match="junk.mat"):
        mat_files.read_frontal_template(tmp_path / "junk.mat")
