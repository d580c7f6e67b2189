"""Round trips and bad-input errors of the .dat image files and the file list."""
import os

import numpy as np
import pytest

from interp_fr.data import dat_files
from interp_fr.common.errors import DataFileError


def _images(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), np.uint8)


def test_dat_round_trip_memmap_and_positioned_reads(tmp_path):
    imgs = _images(7, 110)
    path = tmp_path / "CASIA_all_images_110_110.dat"
    dat_files.write_dat_images(path, imgs)
    assert os.path.getsize(path) == 7 * 110 * 110 * 3
    mm = dat_files.read_dat_images(path, 110)
    assert isinstance(mm, np.memmap) and mm.shape == (7, 110, 110, 3)
    np.testing.assert_array_equal(mm, imgs)
    d = dat_files.DatImages(path, 110)
    np.testing.assert_array_equal(d.read([5, 0, 5, 3]), imgs[[5, 0, 5, 3]])
    np.testing.assert_array_equal(d.read_range(2, 6), imgs[2:6])
    np.testing.assert_array_equal(d.read_range(5, 100), imgs[5:])
    with pytest.raises(IndexError, match="out of range"):
        d.read([7])


def test_raw_layout_is_row_major_rgb(tmp_path):
    path = tmp_path / "x.dat"
    raw = np.arange(2 * 96 * 96 * 3, dtype=np.uint64) % 251
    raw.astype(np.uint8).tofile(path)
    img = dat_files.read_dat_images(path, 96)
    # Byte k of image 1 is pixel (r, c) channel ch with k = (r*96 + c)*3 + ch.
    r, c, ch = 5, 17, 2
    k = 96 * 96 * 3 + (r * 96 + c) * 3 + ch
    assert img[1, r, c, ch] == raw[k] % 256


def test_dat_size_not_whole_number_of_images(tmp_path):
    path = tmp_path / "IJBA_recrop_images_96_96_test.dat"
    np.zeros(96 * 96 * 3 * 2 + 5, np.uint8).tofile(path)
    with pytest.raises(DataFileError, match="not a whole number.*2 images and 5 bytes"):
        dat_files.read_dat_images(path, 96)
    with pytest.raises(DataFileError, match=str(path)):
        dat_files.DatImages(path, 96)


def test_empty_and_missing_dat(tmp_path):
    empty = tmp_path / "e.dat"
    empty.write_bytes(b"")
    with pytest.raises(DataFileError, match="empty"):
        dat_files.read_dat_images(empty, 96)
    with pytest.raises(DataFileError, match="not found"):
        dat_files.read_dat_images(tmp_path / "nope.dat", 96)


def test_find_data_file_is_case_insensitive_about_suffix(tmp_path):
    (tmp_path / "CASIA_recrop_fileList.DAT").write_text("a,0,1,2.0\n")
    found = dat_files.find_data_file(tmp_path, "CASIA_recrop_fileList.dat")
    assert found.endswith("CASIA_recrop_fileList.DAT")
    with pytest.raises(DataFileError, match="not found"):
        dat_files.find_data_file(tmp_path, "IJBA_recrop_images_96_96_test.dat")


def test_file_list_round_trip(tmp_path):
    fl = dat_files.FileList(["0000045/001.jpg", "0000099/002.jpg"],
                            np.array([3, 10574]), np.array([-12.5, 0.25]))
    path = tmp_path / "list.dat"
    dat_files.write_file_list(path, fl)
    back = dat_files.read_file_list(path, num_subjects=10575)
    assert back.names == fl.names
    np.testing.assert_array_equal(back.subject_ids, [3, 10574])
    np.testing.assert_array_equal(back.yaws, [-12.5, 0.25])


@pytest.mark.parametrize("text,pattern", [
    ("a,0,3\n", "line 1: expected at least 4"),
    ("a,0,3,1.0\nb,0,x,2.0\n", "line 2: subject id 'x'"),
    ("a,0,-1,1.0\n", "line 1: subject id -1 out of range"),
    ("a,0,12,1.0\n", r"line 1: subject id 12 out of range \[0, 10\)"),
    ("", "empty"),
])
def test_file_list_errors(tmp_path, text, pattern):
    path = tmp_path / "list.dat"
    path.write_text(text)
    with pytest.raises(DataFileError, match=pattern):
        dat_files.read_file_list(path, num_subjects=10)


def test_load_casia_count_mismatch(tmp_path):
    dat_files.write_dat_images(tmp_path / dat_files.CASIA_IMAGES_FILE, _images(3, 110))
    dat_files.write_file_list(tmp_path / dat_files.CASIA_FILE_LIST, dat_files.FileList(
        ["a", "b"], np.array([0, 1]), np.array([0.0, 0.0])))
    with pytest.raises(DataFileError, match="holds 3 images but the file list"):
        dat_files.load_casia(tmp_path)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    from interp_fr.common.atomic_io import atomic_write
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write("new, half")
            raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    from interp_fr.common.atomic_io import atomic_save_text
    old = os.umask(0o022)
    try:
        atomic_save_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "p.txt").st_mode & 0o777 == 0o644
