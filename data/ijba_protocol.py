"""Readers and writers for the IJB-A protocol ``.mat`` files and ``dataset.mat``.

Layout (as the original's ``test/eval/IJB-A/`` folder; ``protocol_dir`` below is
that ``IJB-A`` folder)::

    verify/splitN/verify_comparisons_N.mat   comparison: K x 2 template-ID pairs
    verify/splitN/verify_metadata_N.mat      15 metadata variables
    verify/splitN/train_N.mat                15 metadata variables
    search/splitN/search_gallery_N.mat       15 metadata variables
    search/splitN/search_probe_N.mat         15 metadata variables
    search/splitN/train_N.mat                15 metadata variables
    dataset.mat                              sightingID2idx (+ badImage, poorIndex)

Every numeric variable of the real files has MATLAB class ``double`` but is stored
on disk in the smallest integer type that holds it exactly when all its values
are integers (templateID/subjectID/mediaID/comparison as uint16, sightingID as
int32, gender/skinTone as uint8). ``scipy.io.loadmat`` returns those on-disk types;
the readers here cast ids to int64 and everything else to float64. The writers
reproduce the real layout: class ``double``, the same compact on-disk types,
compressed, R x 1 columns, ``filename`` as an R x 1 cell of 1 x L char.
"""
import dataclasses
import os
from io import BytesIO
import zlib

import numpy as np
import scipy.io

from interp_fr.common.atomic_io import atomic_write
from interp_fr.common.errors import DataFileError

NUM_SPLITS = 10

# The 15 metadata variables in the order of the real files, with their column count.
METADATA_VARIABLES = (
    ("templateID", 1), ("subjectID", 1), ("mediaID", 1), ("sightingID", 1),
    ("frame", 1), ("filename", 1), ("bbox", 4), ("landmark", 6), ("faceYaw", 1),
    ("visibility", 3), ("indoor", 1), ("gender", 1), ("skinTone", 1), ("age", 1),
    ("facialHair", 1))
METADATA_NAMES = tuple(name for name, _ in METADATA_VARIABLES)
ID_VARIABLES = ("templateID", "subjectID", "mediaID", "sightingID")
COMPARISON_VARIABLE = "comparison"
DATASET_VARIABLES = ("sightingID2idx", "badImage", "poorIndex")

# File kinds -> (folder, file name pattern).
_KINDS = {
    "verify_comparisons": ("verify", "verify_comparisons_{n}.mat"),
    "verify_metadata": ("verify", "verify_metadata_{n}.mat"),
    "verify_train": ("verify", "train_{n}.mat"),
    "search_gallery": ("search", "search_gallery_{n}.mat"),
    "search_probe": ("search", "search_probe_{n}.mat"),
    "search_train": ("search", "train_{n}.mat"),
}


def protocol_path(protocol_dir, kind, split):
    """Path of one protocol file in the original ``IJB-A/`` layout.

    Args:
        protocol_dir: the ``IJB-A`` folder (holding ``verify/`` and ``search/``).
        kind: one of ``verify_comparisons``, ``verify_metadata``, ``verify_train``,
            ``search_gallery``, ``search_probe``, ``search_train``.
        split: 1-based split number.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown protocol file kind {kind!r}; one of {sorted(_KINDS)}")
    folder, pattern = _KINDS[kind]
    split = int(split)
    return os.path.join(os.fspath(protocol_dir), folder, f"split{split}",
                        pattern.format(n=split))


# --------------------------------------------------------------------------- tables


@dataclasses.dataclass
class ProtocolTable:
    """One metadata file: R rows, one per (template, sighting) entry.

    Ids are int64 [R]; ``frame``, ``faceYaw``, ``indoor``, ``gender``,
    ``skinTone``, ``age``, ``facialHair`` float64 [R] (MATLAB doubles, NaN where
    missing); ``bbox`` float64 [R, 4]; ``landmark`` float64 [R, 6]; ``visibility``
    float64 [R, 3]; ``filename`` list of R str. ``path`` is the file it came from
    (None for tables built in memory); error messages name it. ``filename`` is
    None when the table was read with ``filenames=False``.
    """
    templateID: np.ndarray
    subjectID: np.ndarray
    mediaID: np.ndarray
    sightingID: np.ndarray
    frame: np.ndarray
    filename: list
    bbox: np.ndarray
    landmark: np.ndarray
    faceYaw: np.ndarray
    visibility: np.ndarray
    indoor: np.ndarray
    gender: np.ndarray
    skinTone: np.ndarray
    age: np.ndarray
    facialHair: np.ndarray
    path: str = None

    def __len__(self):
        return len(self.templateID)

    @property
    def source(self):
        """What to name in error messages."""
        return self.path if self.path else "<in-memory protocol table>"

    def rows(self, mask):
        """A new table holding the rows where ``mask`` (bool [R]) is true."""
        mask = np.asarray(mask, bool)
        values = {}
        for name in METADATA_NAMES:
            v = getattr(self, name)
            if name == "filename":
                values[name] = None if v is None else [
                    f for f, keep in zip(v, mask) if keep]
            else:
                values[name] = v[mask]
        return ProtocolTable(**values, path=self.path)


def make_table(templateID, subjectID, sightingID, *, mediaID=None, frame=None,
               filename=None, bbox=None, landmark=None, faceYaw=None,
               visibility=None, indoor=None, gender=None, skinTone=None, age=None,
               facialHair=None, path=None):
    """Builds a `ProtocolTable` from columns, filling the optional ones.

    Args:
        templateID, subjectID, sightingID: integer-valued [R].
        mediaID: [R]; defaults to sightingID.
        frame, faceYaw, age: [R]; default NaN.
        filename: R str; default ``img/<sightingID>.jpg``.
        bbox [R, 4], landmark [R, 6]: default NaN.
        visibility [R, 3]: default all 1 (fully visible).
        indoor, gender, skinTone, facialHair: [R]; default 0.

    Returns:
        `ProtocolTable`; shapes are validated.
    """
    t = _as_id(templateID, "templateID")
    r = len(t)

    def col(v, default, width=1):
        if v is None:
            v = np.full((r, width), default, np.float64)
        v = np.asarray(v, np.float64)
        if v.size != r * width or (width > 1 and v.shape != (r, width)):
            raise DataFileError(path or "<in-memory protocol table>",
                                f"a column has shape {v.shape}; expected "
                                f"{(r, width) if width > 1 else (r,)}")
        return v.reshape(r) if width == 1 else v.reshape(r, width)

    sighting = _as_id(sightingID, "sightingID")
    table = ProtocolTable(
        templateID=t, subjectID=_as_id(subjectID, "subjectID"),
        mediaID=sighting.copy() if mediaID is None else _as_id(mediaID, "mediaID"),
        sightingID=sighting, frame=col(frame, np.nan),
        filename=([f"img/{s}.jpg" for s in sighting] if filename is None
                  else [str(f) for f in filename]),
        bbox=col(bbox, np.nan, 4), landmark=col(landmark, np.nan, 6),
        faceYaw=col(faceYaw, np.nan), visibility=col(visibility, 1.0, 3),
        indoor=col(indoor, 0.0), gender=col(gender, 0.0), skinTone=col(skinTone, 0.0),
        age=col(age, np.nan), facialHair=col(facialHair, 0.0), path=path)
    _check_table(table)
    return table


def _as_id(values, name):
    v = np.asarray(values)
    if v.dtype.kind == "f":
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
            raise ValueError(f"{name} must hold integer values")
    return v.astype(np.int64).reshape(-1)


def _check_table(table):
    r = len(table.templateID)
    for name, width in METADATA_VARIABLES:
        v = getattr(table, name)
        shape = (r,) if width == 1 else (r, width)
        if name == "filename":
            if v is None:
                raise DataFileError(table.source, "the table has no filenames (read "
                                    "with filenames=False)")
            ok = len(v) == r
        else:
            ok = np.shape(v) == shape
        if not ok:
            raise DataFileError(table.source, f"variable {name!r} has shape "
                                f"{np.shape(v)}; expected {shape} like templateID")


# --------------------------------------------------------------------------- reading


def _loadmat(path, names=None):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(path, "file not found")
    try:
        return scipy.io.loadmat(path, variable_names=names)
    except NotImplementedError:
        raise DataFileError(path, "MATLAB v7.3 (HDF5) files are not supported; "
                            "re-save with save(..., '-v7')") from None
    except Exception as e:  # scipy raises several exception types for corrupt files
        raise DataFileError(path, f"not a readable MATLAB .mat file ({e})") from None


def _require(contents, path, name):
    if name not in contents:
        present = sorted(k for k in contents if not k.startswith("__"))
        raise DataFileError(path, f"missing variable {name!r}; the file holds {present}")
    return contents[name]


def _ids_from_disk(raw, path, name):
    """Casts an on-disk id column (uint16/int32/... or double) to int64."""
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise DataFileError(path, f"variable {name!r} holds non-integer or NaN "
                                "values; ids must be integers")
    elif raw.dtype.kind not in "iub":
        raise DataFileError(path, f"variable {name!r} has non-numeric type {raw.dtype}")
    return raw.astype(np.int64)


def _cell_strings(raw, path, name, r):
    if raw.dtype != object:
        if raw.dtype.kind == "U" and raw.size == r:
            # A char matrix: scipy hands back one str per row.
            return [str(s) for s in raw.reshape(-1)]
        raise DataFileError(path, f"variable {name!r} must be an R x 1 cell of "
                            f"strings; got a {raw.dtype} array")
    if raw.shape != (r, 1):
        raise DataFileError(path, f"variable {name!r} has shape {raw.shape}; "
                            f"expected ({r}, 1)")
    out = []
    for i, entry in enumerate(raw[:, 0]):
        entry = np.asarray(entry)
        if entry.size == 0:
            out.append("")
        elif entry.dtype.kind == "U":
            out.append("".join(entry.reshape(-1).tolist()))
        else:
            raise DataFileError(path, f"{name}{{{i + 1}}} is not a char array "
                                f"({entry.dtype})")
    return out


def read_metadata(path, filenames=True):
    """Reads a metadata file (verify_metadata_N, search_gallery_N, search_probe_N, train_N).

    Args:
        path: the file.
        filenames: read the ``filename`` cell. Parsing it is most of the reading
            time, and the evaluation does not need it; when false the table's
            ``filename`` is None.

    Returns:
        `ProtocolTable` with ``path`` set.

    Raises:
        DataFileError: missing file, missing variable, or a variable whose shape is
            not R x k (the same R for all 15), or non-integer ids.
    """
    path = os.fspath(path)
    names = None if filenames else [n for n in METADATA_NAMES if n != "filename"]
    contents = _loadmat(path, names)
    t = _require(contents, path, "templateID")
    if t.ndim != 2 or t.shape[1] != 1:
        raise DataFileError(path, f"variable 'templateID' has shape {t.shape}; "
                            "expected R x 1")
    r = t.shape[0]
    values = {}
    for name, width in METADATA_VARIABLES:
        if name == "filename":
            values[name] = (_cell_strings(_require(contents, path, name), path, name, r)
                            if filenames else None)
            continue
        raw = _require(contents, path, name)
        if raw.shape != (r, width) and not (r == 0 and raw.size == 0):
            raise DataFileError(path, f"variable {name!r} has shape {raw.shape}; "
                                f"expected ({r}, {width})")
        raw = raw.reshape(r, width)
        if name in ID_VARIABLES:
            v = _ids_from_disk(raw, path, name)
        elif raw.dtype.kind in "iufb":
            v = raw.astype(np.float64)
        else:
            raise DataFileError(path, f"variable {name!r} has non-numeric type "
                                f"{raw.dtype}")
        values[name] = v[:, 0] if width == 1 else v
    return ProtocolTable(**values, path=path)


def read_comparisons(path, metadata=None):
    """Reads ``verify_comparisons_N.mat``.

    Args:
        path: the file.
        metadata: optional `ProtocolTable` of ``verify_metadata_N``; when given,
            every template id of the comparisons must occur in it.

    Returns:
        int64 [K, 2] template-ID pairs.

    Raises:
        DataFileError: missing file/variable, shape not K x 2, non-integer ids, or
            ids absent from the metadata (the first few are listed).
    """
    path = os.fspath(path)
    raw = _require(_loadmat(path), path, COMPARISON_VARIABLE)
    if raw.ndim != 2 or raw.shape[1] != 2:
        if raw.size == 0:
            return np.zeros((0, 2), np.int64)
        raise DataFileError(path, f"variable 'comparison' has shape {raw.shape}; "
                            "expected K x 2")
    comparison = _ids_from_disk(raw, path, COMPARISON_VARIABLE)
    if metadata is not None:
        check_comparisons(comparison, metadata, path)
    return comparison


def check_comparisons(comparison, metadata, source="<comparisons>"):
    """Raises DataFileError if a compared template id is absent from ``metadata``."""
    missing = np.setdiff1d(np.unique(comparison), np.unique(metadata.templateID))
    if missing.size:
        raise DataFileError(source, f"{missing.size} template id(s) of the comparisons "
                            f"do not occur in {metadata.source}: "
                            f"{missing[:10].tolist()}")


@dataclasses.dataclass
class DatasetIndex:
    """``dataset.mat``: the sighting-ID -> image-row map and optional flags.

    ``sightingID2idx`` is int64 [M]: entry ``s - 1`` is the 1-based image row of
    sighting ``s`` (MATLAB ``sightingID2idx(s)``), 0 when the sighting is not in
    the image set. ``badImage`` / ``poorIndex`` are flattened float64 arrays or None.
    """
    sightingID2idx: np.ndarray
    badImage: np.ndarray = None
    poorIndex: np.ndarray = None
    path: str = None

    def image_rows(self, sighting_ids, source=None, n_images=None):
        """0-based feature rows of ``sighting_ids``.

        Args:
            sighting_ids: int [R].
            source: file the ids came from, for error messages.
            n_images: number of feature rows; rows beyond it are an error.

        Returns:
            int64 [R].

        Raises:
            DataFileError: a sighting id outside 1..M (MATLAB would fail to index),
                one that maps to 0 (not in the image set), or an image row beyond
                ``n_images``.
        """
        s = np.asarray(sighting_ids, np.int64).reshape(-1)
        src = source or "<sighting ids>"
        m = len(self.sightingID2idx)
        bad = (s < 1) | (s > m)
        if bad.any():
            raise DataFileError(src, f"sighting id {int(s[bad][0])} is outside "
                                f"1..{m}, the range of sightingID2idx in "
                                f"{self.path or 'dataset.mat'}")
        idx = self.sightingID2idx[s - 1]
        if np.any(idx == 0):
            first = int(s[idx == 0][0])
            raise DataFileError(src, f"{int(np.sum(idx == 0))} sighting(s) are not in "
                                f"the image set (sightingID2idx = 0), e.g. {first}")
        if n_images is not None and np.any(idx > n_images):
            first = int(s[idx > n_images][0])
            raise DataFileError(src, f"sighting {first} maps to image row "
                                f"{int(self.sightingID2idx[first - 1])} but the "
                                f"features have only {n_images} rows")
        return idx - 1


def read_dataset_mat(path):
    """Reads ``sightingID2idx`` and, when present, ``badImage`` and ``poorIndex``.

    Only these variables are read (the real file also holds the large
    ``croppedImages``).

    Returns:
        `DatasetIndex`.

    Raises:
        DataFileError: missing file, no ``sightingID2idx``, a non-vector, negative
            or non-integer map.
    """
    path = os.fspath(path)
    contents = _loadmat(path, list(DATASET_VARIABLES))
    raw = _require(contents, path, "sightingID2idx")
    if raw.ndim > 2 or (raw.ndim == 2 and min(raw.shape) > 1):
        raise DataFileError(path, f"sightingID2idx has shape {raw.shape}; expected "
                            "a vector")
    raw = raw.reshape(-1)
    idx = _ids_from_disk(raw, path, "sightingID2idx")
    if np.any(idx < 0):
        raise DataFileError(path, "sightingID2idx holds negative values")
    flags = {}
    for name in ("badImage", "poorIndex"):
        flags[name] = (np.asarray(contents[name], np.float64).reshape(-1)
                       if name in contents else None)
    return DatasetIndex(sightingID2idx=idx, path=path, **flags)


@dataclasses.dataclass
class VerifySplit:
    """One verification split: comparisons int64 [K, 2] and their metadata."""
    split: int
    comparison: np.ndarray
    metadata: ProtocolTable
    comparison_path: str = None


@dataclasses.dataclass
class SearchSplit:
    """One search split: gallery and probe metadata tables."""
    split: int
    gallery: ProtocolTable
    probe: ProtocolTable


def read_verify_split(protocol_dir, split, filenames=True):
    """Reads ``verify_comparisons_N`` + ``verify_metadata_N`` (ids checked)."""
    meta = read_metadata(protocol_path(protocol_dir, "verify_metadata", split),
                         filenames)
    cpath = protocol_path(protocol_dir, "verify_comparisons", split)
    comparison = read_comparisons(cpath, meta)
    return VerifySplit(split=int(split), comparison=comparison, metadata=meta,
                       comparison_path=cpath)


def read_search_split(protocol_dir, split, filenames=True):
    """Reads ``search_gallery_N`` + ``search_probe_N``."""
    return SearchSplit(
        split=int(split),
        gallery=read_metadata(protocol_path(protocol_dir, "search_gallery", split),
                              filenames),
        probe=read_metadata(protocol_path(protocol_dir, "search_probe", split),
                            filenames))


# --------------------------------------------------------------------------- writing


def matlab_storage_dtype(values):
    """The on-disk type MATLAB's ``save`` uses for a double array.

    MATLAB stores a double array whose values are all finite integers in the
    smallest integer type that holds them, trying uint8, int8, uint16, int16,
    int32 in that order (the real protocol files confirm uint8 for 0/1 flags,
    uint16 for ids up to 38464 and int32, not uint32, for sighting ids up to
    81487); anything else stays double.

    Args:
        values: float array.

    Returns:
        numpy dtype.
    """
    v = np.asarray(values, np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
        return np.dtype(np.float64)
    lo, hi = v.min(), v.max()
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if lo >= info.min and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.float64)


class _CompactDouble(np.ndarray):
    """Marks an integer array to be written as MATLAB class double."""


def _compact_double(values):
    v = np.asarray(values, np.float64)
    return np.asarray(v.astype(matlab_storage_dtype(v))).view(_CompactDouble)


def _mat_writer_classes():
    # scipy has no public switch for "class double, compact storage", so its
    # writer is extended at the one point where the class is chosen.
    from scipy.io.matlab import _mio5

    class VarWriter(_mio5.VarWriter5):
        def write_numeric(self, arr):
            if isinstance(arr, _CompactDouble):
                self.write_header(_mio5.matdims(arr, self.oned_as),
                                  _mio5.mxDOUBLE_CLASS)
                self.write_element(np.asarray(arr))
            else:
                super().write_numeric(arr)

    class FileWriter(_mio5.MatFile5Writer):
        def put_variables(self, mdict, write_header=None):
            self.write_file_header()
            writer = VarWriter(self)
            for name, var in mdict.items():
                stream = BytesIO()
                writer.file_stream = stream
                writer.write_top(var, name.encode("latin1"), False)
                out = zlib.compress(stream.getvalue())
                tag = np.empty((), _mio5.NDT_TAG_FULL)
                tag["mdtype"] = _mio5.miCOMPRESSED
                tag["byte_count"] = len(out)
                self.file_stream.write(tag.tobytes())
                self.file_stream.write(out)

    return FileWriter


def save_matlab_doubles(path, variables):
    """Writes a compressed v5 ``.mat`` file the way MATLAB saves doubles.

    Numeric arrays are written as class double with MATLAB's compact on-disk
    integer type (`matlab_storage_dtype`); object arrays become cells of char.
    Atomic (temporary file + ``os.replace``).

    Args:
        path: output file.
        variables: dict name -> array (order kept).
    """
    prepared = {}
    for name, v in variables.items():
        v = np.asarray(v)
        prepared[name] = v if v.dtype == object else _compact_double(v)
    file_writer = _mat_writer_classes()
    with atomic_write(path, "wb") as f:
        file_writer(f, do_compression=True, unicode_strings=True,
                    oned_as="column").put_variables(prepared)


def _filename_cell(names):
    cell = np.empty((len(names), 1), dtype=object)
    for i, name in enumerate(names):
        cell[i, 0] = np.array(str(name)) if name else np.zeros((0, 0), "U1")
    return cell


def write_metadata(path, table):
    """Writes a metadata table with the 15 variables of the real files.

    Args:
        path: e.g. ``IJB-A/search/split1/search_probe_1.mat``.
        table: `ProtocolTable` (see `make_table`).
    """
    _check_table(table)
    r = len(table)
    variables = {}
    for name, width in METADATA_VARIABLES:
        v = getattr(table, name)
        if name == "filename":
            variables[name] = _filename_cell(v)
        else:
            variables[name] = np.asarray(v, np.float64).reshape(r, width)
    save_matlab_doubles(path, variables)


def write_comparisons(path, comparison):
    """Writes ``verify_comparisons_N.mat``: ``comparison``, K x 2 template ids."""
    c = np.asarray(comparison, np.float64).reshape(-1, 2)
    save_matlab_doubles(path, {COMPARISON_VARIABLE: c})


def write_dataset_mat(path, sightingID2idx, badImage=None, poorIndex=None):
    """Writes ``dataset.mat`` with ``sightingID2idx`` (an M x 1 column).

    Args:
        sightingID2idx: int [M]; entry ``s - 1`` is the 1-based image row of
            sighting ``s``, 0 for sightings not in the image set.
        badImage, poorIndex: optional per-image vectors, written as N x 1.

    The real file's shapes for these variables are not known here (it is not
    distributed with the protocol); columns are what the evaluation indexes.
    """
    variables = {"sightingID2idx": np.asarray(sightingID2idx, np.float64).reshape(-1, 1)}
    for name, v in (("badImage", badImage), ("poorIndex", poorIndex)):
        if v is not None:
            variables[name] = np.asarray(v, np.float64).reshape(-1, 1)
    save_matlab_doubles(path, variables)


def write_split(protocol_dir, split, *, verify_metadata=None, comparison=None,
                search_gallery=None, search_probe=None, train=None):
    """Writes the files of one split in the original layout (those given).

    Args:
        protocol_dir: the ``IJB-A`` folder.
        split: 1-based split number.
        verify_metadata, search_gallery, search_probe, train: `ProtocolTable`s;
            ``train`` is written to both ``verify/splitN/train_N.mat`` and
            ``search/splitN/train_N.mat`` like the real protocol.
        comparison: int [K, 2]; its ids must occur in ``verify_metadata`` when
            both are given.
    """
    if comparison is not None and verify_metadata is not None:
        check_comparisons(np.asarray(comparison, np.int64).reshape(-1, 2),
                          verify_metadata, "<comparison>")
    items = (("verify_metadata", verify_metadata, write_metadata),
             ("verify_comparisons", comparison, write_comparisons),
             ("search_gallery", search_gallery, write_metadata),
             ("search_probe", search_probe, write_metadata),
             ("verify_train", train, write_metadata),
             ("search_train", train, write_metadata))
    for kind, value, writer in items:
        if value is not None:
            writer(protocol_path(protocol_dir, kind, split), value)
