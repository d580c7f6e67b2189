"""Readers and writers for the original raw image ``.dat`` files and file list.

Formats (SPEC A4):
  * ``CASIA_all_images_110_110.dat``: raw uint8, N x 110 x 110 x 3, RGB, row-major,
    no header.
  * ``IJBA_recrop_images_96_96_test.dat``: raw uint8, N x 96 x 96 x 3.
  * ``CASIA_recrop_fileList.dat``: CSV text, one line per image in image order;
    column 0 file name, column 2 subject id (int, 0-based), column 3 yaw (float).

The real CASIA file is about 18 GB, so images are never read whole: `DatImages`
reads the rows it is asked for with positioned reads (which keeps resident
memory flat, see BUILD_NOTES.md), and `read_dat_images` returns a read-only
``np.memmap`` for users who want array semantics.
"""
import csv
import dataclasses
import io
import os

import numpy as np

from interp_fr.common.atomic_io import atomic_write
from interp_fr.common.errors import DataFileError

CASIA_IMAGE_SIZE = 110
IJBA_IMAGE_SIZE = 96
CASIA_IMAGES_FILE = "CASIA_all_images_110_110.dat"
CASIA_FILE_LIST = "CASIA_recrop_fileList.dat"
IJBA_IMAGES_FILE = "IJBA_recrop_images_96_96_test.dat"
CASIA_NUM_SUBJECTS = 10575


def find_data_file(data_dir, name):
    """Returns the path of ``name`` in ``data_dir``, ignoring the case of its suffix.

    The original's download is named ``*.DAT`` while its code opens ``*.dat``;
    either spelling (and any case of the suffix) is accepted.

    Raises:
        DataFileError: no such file, or more than one candidate.
    """
    exact = os.path.join(data_dir, name)
    if os.path.isfile(exact):
        return exact
    stem, ext = os.path.splitext(name)
    try:
        entries = os.listdir(data_dir)
    except FileNotFoundError:
        raise DataFileError(data_dir, "data folder does not exist") from None
    matches = sorted(e for e in entries
                     if os.path.splitext(e)[0] == stem
                     and os.path.splitext(e)[1].lower() == ext.lower())
    if not matches:
        raise DataFileError(exact, f"file not found (also looked for {stem}"
                            f"{ext.upper()} and other cases of the suffix)")
    if len(matches) > 1:
        raise DataFileError(exact, f"ambiguous: several files match: {matches}")
    return os.path.join(data_dir, matches[0])


def _image_count(path, image_size):
    try:
        nbytes = os.path.getsize(path)
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    per_image = image_size * image_size * 3
    if nbytes == 0:
        raise DataFileError(path, "file is empty")
    if nbytes % per_image:
        raise DataFileError(
            path, f"size {nbytes} bytes is not a whole number of "
            f"{image_size}x{image_size}x3 uint8 images ({per_image} bytes each; "
            f"{nbytes // per_image} images and {nbytes % per_image} bytes left over)"
            ". Is the image size right?")
    return nbytes // per_image


class DatImages:
    """Random access to the images of a raw ``.dat`` file without loading it.

    Rows are read with ``os.pread``: the bytes pass through the page cache, which
    the kernel may drop at will, and are never mapped into this process, so its
    resident memory stays at the size of the batches in flight.

    Attributes:
        path: the file.
        image_size: side length (110 for CASIA, 96 for IJB-A).
        shape: (N, image_size, image_size, 3).
    """

    def __init__(self, path, image_size):
        self.path = os.fspath(path)
        self.image_size = int(image_size)
        self._count = _image_count(self.path, self.image_size)
        self._bytes_per_image = self.image_size * self.image_size * 3
        self._fd = None

    def __len__(self):
        return self._count

    @property
    def shape(self):
        return (self._count, self.image_size, self.image_size, 3)

    def _file(self):
        # Opened lazily and per process, so instances survive pickling to workers.
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY))
        return self._fd[1]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fd"] = None
        return state

    def __del__(self, _getpid=os.getpid, _close=os.close):
        # os is bound at definition: at interpreter exit the module's globals
        # may already be cleared when the last instance is collected.
        if getattr(self, "_fd", None) is not None and self._fd[0] == _getpid():
            try:
                _close(self._fd[1])
            except OSError:
                pass

    def read(self, indices):
        """Reads images by index.

        Args:
            indices: int array-like [K], each in [0, N).

        Returns:
            uint8 array [K, S, S, 3] in the order of ``indices``.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self._count):
            raise IndexError(f"{self.path}: image index out of range [0, "
                             f"{self._count}): {indices.min()}..{indices.max()}")
        out = np.empty((indices.size, self.image_size, self.image_size, 3), np.uint8)
        fd, size = self._file(), self._bytes_per_image
        # Reading in file order keeps the disk access sequential-ish.
        for pos in np.argsort(indices, kind="stable"):
            buf = os.pread(fd, size, int(indices[pos]) * size)
            if len(buf) != size:
                raise DataFileError(self.path, "file shrank while being read")
            out[pos] = np.frombuffer(buf, np.uint8).reshape(out.shape[1:])
        return out

    def read_range(self, start, stop):
        """Reads the contiguous images [start, stop) in one call: uint8 [K, S, S, 3]."""
        start, stop = max(0, int(start)), min(self._count, int(stop))
        size = self._bytes_per_image
        buf = os.pread(self._file(), (stop - start) * size, start * size)
        if len(buf) != (stop - start) * size:
            raise DataFileError(self.path, "file shrank while being read")
        return np.frombuffer(buf, np.uint8).reshape(
            (stop - start, self.image_size, self.image_size, 3))


def read_dat_images(path, image_size):
    """Memory-maps a raw image ``.dat`` file read-only.

    Args:
        path: the file.
        image_size: 110 for the CASIA file, 96 for the IJB-A file.

    Returns:
        ``np.memmap`` uint8 [N, image_size, image_size, 3].

    Raises:
        DataFileError: missing file, or a size that is not a whole number of images.
    """
    count = _image_count(path, image_size)
    return np.memmap(path, dtype=np.uint8, mode="r",
                     shape=(count, image_size, image_size, 3))


def write_dat_images(path, images):
    """Writes uint8 images [N, S, S, 3] as a raw ``.dat`` file, atomically."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 \
            or images.shape[1] != images.shape[2]:
        raise ValueError(f"{path}: expected uint8 [N, S, S, 3] images, got "
                         f"{images.dtype} {images.shape}")
    with atomic_write(path, "wb") as f:
        # Chunked so that writing a large array needs no second full copy.
        for start in range(0, len(images), 1024):
            f.write(np.ascontiguousarray(images[start:start + 1024]).tobytes())


@dataclasses.dataclass(frozen=True)
class FileList:
    """Contents of ``CASIA_recrop_fileList.dat``, one entry per image.

    Attributes:
        names: list of str, column 0.
        subject_ids: int64 [N], column 2 (0-based).
        yaws: float64 [N], column 3.
    """
    names: list
    subject_ids: np.ndarray
    yaws: np.ndarray

    def __len__(self):
        return len(self.names)


def read_file_list(path, num_subjects=None):
    """Reads a CASIA-format file list.

    Args:
        path: the CSV file.
        num_subjects: if given, every subject id must be < num_subjects.

    Raises:
        DataFileError: missing file, a short line, a non-numeric id or yaw, a
            negative or out-of-range subject id (the line number is named).
    """
    names, ids, yaws = [], [], []
    try:
        f = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    with f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            if len(row) < 4:
                raise DataFileError(path, f"line {lineno}: expected at least 4 "
                                    f"comma-separated columns, got {len(row)}: {row}")
            try:
                sid = int(row[2])
                yaw = float(row[3])
            except ValueError:
                raise DataFileError(path, f"line {lineno}: subject id {row[2]!r} "
                                    f"or yaw {row[3]!r} is not a number") from None
            if sid < 0 or (num_subjects is not None and sid >= num_subjects):
                raise DataFileError(path, f"line {lineno}: subject id {sid} out of "
                                    f"range [0, {num_subjects})")
            names.append(row[0])
            ids.append(sid)
            yaws.append(yaw)
    if not names:
        raise DataFileError(path, "file list is empty")
    return FileList(names, np.asarray(ids, np.int64), np.asarray(yaws, np.float64))


def write_file_list(path, file_list):
    """Writes a `FileList` in the original CSV layout (column 1 is unused: 0)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for name, sid, yaw in zip(file_list.names, file_list.subject_ids,
                              file_list.yaws):
        writer.writerow([name, 0, int(sid), repr(float(yaw))])
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())


@dataclasses.dataclass
class CasiaData:
    """The CASIA training set: images (not loaded) and their file list."""
    images: DatImages
    file_list: FileList

    @property
    def num_subjects(self):
        return int(self.file_list.subject_ids.max()) + 1


def load_casia(data_dir, num_subjects=None):
    """Opens the CASIA-format training set in ``data_dir``.

    Args:
        data_dir: folder holding ``CASIA_all_images_110_110.dat`` and
            ``CASIA_recrop_fileList.dat`` (any case of ``.dat``).
        num_subjects: if given, subject ids must be below it.

    Raises:
        DataFileError: a missing file, a bad size, or an image count that differs
            from the file list's line count.
    """
    images = DatImages(find_data_file(data_dir, CASIA_IMAGES_FILE),
                       CASIA_IMAGE_SIZE)
    list_path = find_data_file(data_dir, CASIA_FILE_LIST)
    file_list = read_file_list(list_path, num_subjects)
    if len(images) != len(file_list):
        raise DataFileError(images.path, f"holds {len(images)} images but the file "
                            f"list {list_path} has {len(file_list)} lines")
    return CasiaData(images, file_list)


def open_ijba_images(data_dir_or_file):
    """Opens the IJB-A test images: a ``.dat`` path or a folder holding the default name."""
    path = data_dir_or_file
    if os.path.isdir(path):
        path = find_data_file(path, IJBA_IMAGES_FILE)
    return DatImages(path, IJBA_IMAGE_SIZE)
