"""Streaming feature extraction to the original's files (SPEC A6).

The counterpart of the original ``test_pre_train.py``: every image of an
IJB-A-format ``.dat`` (or of a folder of image files) goes through a model in
batches, and rows are appended to the output files as they come:

* features: one line per image, D values, numpy ``savetxt`` format (the
  original's ``IJBA_features_iter_0.txt``), or ``.npy`` when the file name
  ends in ``.npy``;
* feature maps (optional): the first ``num_maps`` images, each its map
  [H, W, C] flattened in C order (``IJBA_feature_maps_ours.txt``), the same
  text or ``.npy`` choice;
* for an image folder, the file names in row order beside the features.

Nothing is held in memory beyond a batch, and every file is written under a
temporary name and moved into place only when the whole run succeeded.
"""
import collections
import concurrent.futures
import contextlib
import dataclasses
import os
import sys
import time

import numpy as np

from interp_fr.common.atomic_io import atomic_save_text, atomic_write
from interp_fr.data import dat_files
from interp_fr.common.errors import DataFileError, check_finite
from interp_fr.data.image_scaling import to_unit_range

DEFAULT_IMAGES = os.path.join("..", "DATA", dat_files.IJBA_IMAGES_FILE)
DEFAULT_FEATURES_FILE = "IJBA_features_iter_0.txt"
DEFAULT_MAPS_FILE = "IJBA_feature_maps_ours.txt"
DEFAULT_NUM_MAPS = 1000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
IMAGE_SIZE = dat_files.IJBA_IMAGE_SIZE


class ImageFolder:
    """The image files (PNG / JPEG) of one folder, in sorted name order, with
    the `DatImages` reading interface (``read_range``, ``image_size``).

    Args:
        folder: the folder (not searched recursively).
        resize: resize images of another size to 96x96 (bilinear); without
            it such an image is an error.

    Attributes:
        names: file names, in row order.
    """

    def __init__(self, folder, resize=False, image_size=IMAGE_SIZE):
        self.path = os.fspath(folder)
        self.image_size = int(image_size)
        self.resize = bool(resize)
        self.names = sorted(n for n in os.listdir(self.path)
                            if n.lower().endswith(IMAGE_EXTENSIONS)
                            and os.path.isfile(os.path.join(self.path, n)))
        if not self.names:
            raise DataFileError(self.path, "no .png / .jpg / .jpeg files in this "
                                "folder")

    def __len__(self):
        return len(self.names)

    @property
    def shape(self):
        return (len(self.names), self.image_size, self.image_size, 3)

    def _read_one(self, name):
        from PIL import Image
        path = os.path.join(self.path, name)
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                if img.size != (self.image_size, self.image_size):
                    if not self.resize:
                        raise DataFileError(
                                path, f"image is {img.size[0]}x{img.size[1]}, "
                                f"expected {self.image_size}x{self.image_size} "
                                "(use --resize to resize)")
                    img = img.resize((self.image_size, self.image_size),
                                     Image.BILINEAR)
                return np.asarray(img, np.uint8)
        except OSError as e:
            raise DataFileError(path, f"cannot read image ({e})") from None

    def read_range(self, start, stop):
        """Images [start, stop): uint8 [K, 96, 96, 3]."""
        names = self.names[max(0, int(start)):int(stop)]
        out = np.empty((len(names), self.image_size, self.image_size, 3), np.uint8)
        for i, name in enumerate(names):
            out[i] = self._read_one(name)
        return out

    def read(self, indices):
        """Images by index: uint8 [K, 96, 96, 3]."""
        return np.stack([self._read_one(self.names[int(i)]) for i in indices])


def open_images(source, resize=False):
    """A ``.dat`` file of 96x96 images, a folder of image files, or a folder
    holding ``IJBA_recrop_images_96_96_test.dat``.

    Returns:
        `DatImages` or `ImageFolder`.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        has_images = any(n.lower().endswith(IMAGE_EXTENSIONS)
                         for n in os.listdir(source))
        if has_images:
            return ImageFolder(source, resize=resize)
        try:
            return dat_files.open_ijba_images(source)
        except DataFileError:
            raise DataFileError(source, "no .png / .jpg / .jpeg files and no "
                                f"{dat_files.IJBA_IMAGES_FILE} in this "
                                "folder") from None
    return dat_files.DatImages(source, IMAGE_SIZE)


def _prefetched_batches(images, batch_size, total, depth=2):
    """Float32 batches [b, 96, 96, 3] of images [0, total) in order, read
    ``depth`` batches ahead on worker threads (file reads and image
    decoding release the GIL).  A reading error is raised unchanged."""
    starts = list(range(0, total, batch_size))

    def load(start):
        return to_unit_range(images.read_range(start, min(start + batch_size, total)))

    with concurrent.futures.ThreadPoolExecutor(max_workers=depth) as pool:
        pending = collections.deque()
        for start in starts:
            pending.append(pool.submit(load, start))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def batched_outputs(forward, images, batch_size=64, *, total=None, num_maps=0,
                    progress=None):
    """Runs ``forward`` over ``images`` in order, a batch at a time.

    The one extraction loop: `extract_to_files` streams what it yields to
    files, `interp_fr.features.extract_features` collects it in memory.

    Args:
        forward: callable float32 images [b, 96, 96, 3] in [-1, 1] -> dict
            ``feature`` [b, D] and (when ``num_maps`` > 0) ``feature_map``
            [b, H, W, C].
        images: `DatImages` or `ImageFolder`.
        batch_size: images per forward call.
        total: only the first ``total`` images (default all).
        num_maps: also yield the maps of the first ``num_maps`` images.
        progress: optional callable(done, total, seconds).

    Yields:
        (features float32 [b, D], maps float32 [m, H, W, C] or None), where
        m = the part of this batch among the first ``num_maps`` images.

    Raises:
        DataFileError: the model gave NaN or infinite values; the message names
            the images file and the first such images (1-based, file order).
    """
    total = len(images) if total is None else int(total)
    start = time.perf_counter()
    done = 0
    for batch in _prefetched_batches(images, batch_size, total):
        out = forward(batch)
        feats = np.asarray(out["feature"], np.float32)
        count = len(batch)
        if feats.ndim != 2 or feats.shape[0] != count:
            raise RuntimeError(f"the model returned features of shape "
                               f"{feats.shape} for {count} images")
        maps = None
        if done < num_maps:
            take = min(count, num_maps - done)
            maps = np.asarray(out["feature_map"], np.float32)[:take]
        # Images cannot hold NaN (uint8), so a NaN here comes from the model
        # (e.g. NaN weights); it would pass silently into every score.
        for values, what in ((feats, "features"), (maps, "feature maps")):
            if values is not None:
                check_finite(getattr(images, "path", "<images>"), values,
                             f"{what} from the model", unit="image",
                             numbers=lambda rows, first=done: rows + first + 1,
                             stream=True)
        done += count
        if progress is not None:
            progress(done, total, time.perf_counter() - start)
        yield feats, maps


def default_file_list_path(features_path):
    """``<features without extension>_files.txt``."""
    return os.path.splitext(os.fspath(features_path))[0] + "_files.txt"


class _RowWriter:
    """Appends float32 rows to an open temporary file as text or ``.npy``."""

    def __init__(self, f, npy, total_rows):
        self.f, self.npy, self.total, self.rows = f, npy, total_rows, 0

    def write(self, rows):
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        rows = rows.reshape(len(rows), -1)
        if self.npy:
            if self.rows == 0:
                # The header needs the final shape, which is known up front.
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                          "fortran_order": False,
                          "shape": (self.total, rows.shape[1])}
                np.lib.format.write_array_header_1_0(self.f, header)
            self.f.write(rows.astype("<f4", copy=False).tobytes())
        else:
            np.savetxt(self.f, rows)
        self.rows += len(rows)

    def check(self, path):
        if self.rows != self.total:
            raise RuntimeError(f"{path}: wrote {self.rows} rows, expected "
                               f"{self.total}")


@dataclasses.dataclass
class ExtractionSummary:
    """What `extract_to_files` wrote."""
    num_images: int
    feature_dim: int
    num_maps: int
    seconds: float
    features_path: str
    maps_path: str = None
    file_list_path: str = None

    @property
    def images_per_second(self):
        return self.num_images / self.seconds if self.seconds > 0 else float("inf")


def extract_to_files(forward, images, features_path, *, maps_path=None,
                     num_maps=DEFAULT_NUM_MAPS, batch_size=64,
                     file_list_path=None, progress=None, limit=None):
    """Runs ``forward`` over ``images`` and streams the results to files.

    Args:
        forward: callable float32 images [b, 96, 96, 3] in [-1, 1] -> dict
            ``feature`` [b, D] and ``feature_map`` [b, H, W, C] (e.g.
            ``model_loading.load_forward(...).forward``).
        images: `DatImages` or `ImageFolder` (see `open_images`).
        features_path: feature file; ``.npy`` suffix for numpy, else text.
        maps_path: feature-map file (``.npy`` or text), or None for none.
        num_maps: maps of the first ``num_maps`` images (all if fewer).
        batch_size: images per forward call.
        file_list_path: for an `ImageFolder`, where the file names go
            (default `default_file_list_path`); ignored for ``.dat`` input.
        progress: optional callable(done, total, seconds).
        limit: only the first ``limit`` images.

    Returns:
        `ExtractionSummary`.
    """
    total = len(images) if limit is None else min(int(limit), len(images))
    if total == 0:
        raise ValueError("no images to extract")
    n_maps = min(int(num_maps), total) if maps_path else 0
    start = time.perf_counter()
    done, dim = 0, None
    with contextlib.ExitStack() as stack:
        feat_npy = os.fspath(features_path).lower().endswith(".npy")
        feat_out = _RowWriter(stack.enter_context(
                atomic_write(features_path, "wb" if feat_npy else "w")),
                feat_npy, total)
        map_out = None
        if n_maps:
            map_npy = os.fspath(maps_path).lower().endswith(".npy")
            map_out = _RowWriter(stack.enter_context(
                    atomic_write(maps_path, "wb" if map_npy else "w")),
                    map_npy, n_maps)
        for feats, maps in batched_outputs(forward, images, batch_size,
                                           total=total, num_maps=n_maps,
                                           progress=progress):
            dim = feats.shape[1]
            feat_out.write(feats)
            if maps is not None:
                map_out.write(maps)
            done += len(feats)
        feat_out.check(features_path)
        if map_out is not None:
            map_out.check(maps_path)
    list_path = None
    if isinstance(images, ImageFolder):
        list_path = file_list_path or default_file_list_path(features_path)
        atomic_save_text(list_path, "".join(n + "\n" for n in images.names[:total]))
    return ExtractionSummary(done, dim, n_maps, time.perf_counter() - start,
                             os.fspath(features_path),
                             os.fspath(maps_path) if n_maps else None, list_path)


def progress_printer(stream=None, every_seconds=1.0):
    """A ``progress`` callable printing ``done/total, images/s, ETA`` on one
    line, at most once per ``every_seconds`` and at the end."""
    state = {"last": -1e9}

    def report(done, total, seconds):
        out = stream if stream is not None else sys.stderr
        if done < total and seconds - state["last"] < every_seconds:
            return
        state["last"] = seconds
        rate = done / seconds if seconds > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        out.write(f"\r{done}/{total} images, {rate:.1f} images/s, "
                  f"ETA {eta:.0f} s   ")
        if done >= total:
            out.write("\n")
        out.flush()

    return report
