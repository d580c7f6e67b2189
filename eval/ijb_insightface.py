"""IJB-B / IJB-C 1:1 verification and 1:N identification as insightface evaluates them.

Inputs are the meta files insightface distributes (``IJBC/meta/`` or ``IJBB/meta/``):

* ``ijbc_face_tid_mid.txt``: ``image_name template_id media_id`` per face;
* ``ijbc_name_5pts_score.txt``: ``image_name`` + five landmarks (10 numbers) + the
  detector score, per face, in the same order; its line i is feature row i;
* ``ijbc_template_pair_label.txt``: ``template_1 template_2 label`` per 1:1 pair;
* ``ijbc_1N_gallery_G1.csv``, ``ijbc_1N_gallery_G2.csv``, ``ijbc_1N_probe_mixed.csv``
  (IJB-B: ``ijbb_1N_gallery_S1.csv``, ``ijbb_1N_gallery_S2.csv``,
  ``ijbb_1N_probe_mixed.csv``): a header row, then ``TEMPLATE_ID,SUBJECT_ID,...``
  per image; only the first two columns are read, as insightface does.

Features are a ``.npy`` (row i = line i of the face list), an array, or a
callable; an optional second source holds the features of the flipped images.

What insightface does, and what we reproduce (sources read:
``recognition/arcface_torch/eval_ijbc.py``, ``recognition/_evaluation_/ijb/ijb_11.py``,
``recognition/_evaluation_/ijb/ijb_1n.py`` and
``recognition/_evaluation_/ijb/ijb_evals.py`` of deepinsight/insightface):

* Image features (TestMode F/N/D switches, all on by default there and here):
  flip test *adds* the flipped-image feature to the original (their "F2"; the
  concatenation "F1" is commented out); ``use_norm_score=True`` keeps each feature's
  norm as its weight, ``False`` L2-normalises each (flip-added) feature first;
  ``use_detector_score=True`` then multiplies each feature by its detector score.
  ``ijb_evals.py`` names the norm switch the other way round (its
  ``use_norm_score=True`` normalises); we use ``eval_ijbc.py``'s meaning.
* Template feature: faces of one template are averaged per media id, the media
  features summed, and the sum L2-normalised (``sklearn.preprocessing.normalize``:
  an all-zero template stays zero). Media ids are grouped within a template only.
* 1:1 score: dot product of the two template features, pairs in file order.
* 1:1 table: ``sklearn.metrics.roc_curve(label, score)`` (``drop_intermediate=True``),
  ``auc(fpr, tpr)``, then for each FAR in 1e-6 .. 1e-1 the ROC point whose FPR is
  *nearest* to the target (|fpr - target| smallest, on either side), ties going to
  the later ROC point, i.e. the larger TPR. Not "the last FPR <= target": the chosen
  point may lie above the target FAR. We reimplement ``roc_curve`` / ``auc`` in
  numpy with the same arithmetic (`roc_curve`, `roc_auc`).
* 1:N, per gallery (``ijb_evals.py``, ``evaluation_1N``): the probes whose subject
  is in the gallery are the mated searches, the rest (the other gallery's subjects)
  the non-mated ones. Rank-k = share of mated probes whose mate is among the k best
  gallery scores. TPIR at FPIR f: threshold = the ``max(int(n_nonmated * f) - 1, 0)``-th
  (0-based) largest of the non-mated probes' best scores; TPIR = share of mated
  probes whose mate score is strictly above every non-mate score and strictly above
  the threshold. This is the standard open-set (NIST IJB-C) definition up to ties.
  "mean_of_galleries" is their summary: rank-k = (mated hits in G1 + in G2) / all
  probes, TPIR = mean of the two galleries' TPIRs.
* 1:N, combined (``ijb_1n.py``): one closed-set gallery G1 + G2; every probe subject
  must have exactly one gallery template. Rank-k as above; their "TPIR at FPIR" f:
  threshold = the ``ceil(n_probes * f)``-th largest of *all* probe x non-mate-gallery
  scores, TPIR = share of probes whose mate score is above it (no rank condition).

Our rank counts ties in the mate's favour (rank = 1 + number of gallery scores
strictly above the mate's). insightface reads ranks off numpy's (unstable) argsort,
whose order among exactly equal scores is unspecified; the two agree whenever no
other gallery template scores exactly the mate's score.

Stricter alternatives, always reported beside (never instead of) insightface's
numbers, keys starting with ``stricter_``:

* ``stricter_tar_at_far``: the largest TPR over ROC points whose FPR is <= the
  target (on the full ROC; never above the target FAR);
* ``stricter_rank{k}``: ties counted against the mate (rank = number of gallery
  scores >= the mate's);
* the combined "TPIR" above is not an FPIR at all (it counts non-mate *scores*
  against the number of *searches*); the per-gallery open-set TPIRs are the
  standard alternative and are always computed.

Where the input is malformed insightface silently goes on (a pair naming an
unknown template id below the largest known one is scored with the first template;
the two face lists are assumed to be in the same order) or stops with a bare
exception; we raise `DataFileError` naming the file and line. ``ijb_1n.py``
normalises template features by plain division (an all-zero template gives NaN
scores there); we normalise as sklearn does everywhere (zero stays zero).

Numerics: template features are accumulated in float64; scores are float32 matrix
products (``precision="float64"`` for float64), so they agree with insightface's
float64 scores to ~1e-7 and the tables agree unless a score lies that close to a
threshold. Memory is bounded by chunking: faces are read ``face_chunk`` rows at a
time, pairs scored ``pair_chunk`` at a time.

Command line: ``python -m eval.ijb_insightface_cli`` (`eval/ijb_insightface_cli.py`).
"""
import collections
import dataclasses
import json
import math
import os
import time

import numpy as np
import scipy.sparse

from interp_fr.common.atomic_io import atomic_save_text, atomic_write
from interp_fr.common.errors import DataFileError
from interp_fr.eval.blas_threads import blas_threads
from interp_fr.common import plotting
from interp_fr.common.json_safe import json_safe

TARGETS = ("IJBC", "IJBB")
FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
RANKS = (1, 5, 10)
FPIR_TARGETS = (0.01, 0.1)
GALLERY_NAMES = {"IJBC": ("G1", "G2"), "IJBB": ("S1", "S2")}
N_LANDMARK_VALUES = 10

# Marks each line end for the vectorised text parser (a value no file holds).
_INT_SENTINEL = -9223372036854775801
_FLOAT_SENTINEL = -1.2345678901234567e300
_READ_BLOCK = 1 << 23  # bytes of text parsed at a time (bounds the temporaries)
_SCORE_BLOCK_ELEMS = 1 << 22  # entries of one probe x gallery similarity block
_GATHER_ROWS_ELEMS = 1 << 22  # feature entries gathered per side when scoring pair by pair
_LOOKUP_MAX = 1 << 24  # largest template id mapped through a lookup table


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass
class IJBConfig:
    """Every switch of the evaluation; the command line's flags are these fields.

    Defaults: ``target="IJBC"``, ``task="both"``, ``use_flip_test=True``,
    ``use_norm_score=True``, ``use_detector_score=True`` (insightface's defaults),
    ``concatenated_flip=False``, ``check_names=True``, ``precision="float32"``,
    ``pair_chunk=131072``, ``face_chunk=8192``, ``blas_threads=1``,
    ``output_dir="ijb_insightface_eval"``.
    """
    meta_dir: str = dataclasses.field(default=None, metadata={
        "help": "Folder with insightface's meta files (e.g. IJBC/meta)."})
    features: str = dataclasses.field(default=None, metadata={
        "help": ".npy of image features, row i = line i of <target>_name_5pts_score.txt."})
    flip_features: str = dataclasses.field(default=None, metadata={
        "help": "Optional .npy of the flipped images' features (same shape)."})
    target: str = dataclasses.field(default="IJBC", metadata={
        "help": "IJBC or IJBB (file name prefix and gallery names).",
        "choices": TARGETS})
    task: str = dataclasses.field(default="both", metadata={
        "help": "verify (1:1), search (1:N) or both.",
        "choices": ("verify", "search", "both")})
    use_flip_test: bool = dataclasses.field(default=True, metadata={
        "help": "Add the flipped-image features (insightface F2) when given."})
    concatenated_flip: bool = dataclasses.field(default=False, metadata={
        "help": "The features hold [original | flipped] halves per row, as "
                "insightface's eval_ijbc.py computes them."})
    use_norm_score: bool = dataclasses.field(default=True, metadata={
        "help": "Keep each image feature's norm as its pooling weight (insightface "
                "N1); false L2-normalises each image feature first."})
    use_detector_score: bool = dataclasses.field(default=True, metadata={
        "help": "Weight each image feature by its detector score (insightface D1)."})
    check_names: bool = dataclasses.field(default=True, metadata={
        "help": "Require the face list and name_5pts_score files to name the same "
                "images in the same order."})
    precision: str = dataclasses.field(default="float32", metadata={
        "help": "dtype of the score matrix products.",
        "choices": ("float32", "float64")})
    pair_chunk: int = dataclasses.field(default=1 << 17, metadata={
        "help": "1:1 pairs scored per chunk (bounds the memory)."})
    face_chunk: int = dataclasses.field(default=1 << 13, metadata={
        "help": "Feature rows read per chunk while pooling templates."})
    blas_threads: int = dataclasses.field(default=1, metadata={
        "help": "OpenBLAS threads during the evaluation; 0 = library default."})
    output_dir: str = dataclasses.field(default="ijb_insightface_eval", metadata={
        "help": "Where results, scores, labels and the ROC plot go."})

    def validate(self):
        """Raises ValueError for settings outside their choices."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {choices}, not "
                                 f"{getattr(self, f.name)!r}")
        if self.pair_chunk < 1 or self.face_chunk < 1:
            raise ValueError("pair_chunk and face_chunk must be positive")
        if self.concatenated_flip and self.flip_features:
            raise ValueError("give either flip_features or concatenated_flip, not both")


def meta_paths(meta_dir, target="IJBC"):
    """The meta file paths insightface's scripts read for ``target``.

    Returns:
        dict with keys ``face_tid_mid``, ``name_5pts_score``, ``pairs``,
        ``gallery_1``, ``gallery_2``, ``probe``.
    """
    t = target.lower()
    g1, g2 = GALLERY_NAMES[target]
    join = lambda name: os.path.join(meta_dir, name)  # noqa: E731
    return {"face_tid_mid": join(f"{t}_face_tid_mid.txt"),
            "name_5pts_score": join(f"{t}_name_5pts_score.txt"),
            "pairs": join(f"{t}_template_pair_label.txt"),
            "gallery_1": join(f"{t}_1N_gallery_{g1}.csv"),
            "gallery_2": join(f"{t}_1N_gallery_{g2}.csv"),
            "probe": join(f"{t}_1N_probe_mixed.csv")}


# --------------------------------------------------------------------------- text files


_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[list(b" \t\r\n\v\f")] = True
_NL, _COMMA, _SPACE = 10, 44, 32


def _text_blocks(path):
    """Yields (bytes of whole lines, each ending in a newline; 1-based number of
    the block's first line), about ``_READ_BLOCK`` bytes at a time."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(path, "file not found")
    line = 1
    with open(path, "rb") as f:
        rest = f.read(3)
        if rest == b"\xef\xbb\xbf":  # a UTF-8 byte-order mark is not data
            rest = b""
        while True:
            data = f.read(_READ_BLOCK)
            block = rest + data
            if not data:
                if block and not block.endswith(b"\n"):
                    block += b"\n"
                if block:
                    yield block, line
                return
            cut = block.rfind(b"\n") + 1
            block, rest = block[:cut], block[cut:]
            if block:
                yield block, line
                line += block.count(b"\n")


def _bad_token(buf, n_cols, dtype, path, first_line, name_cols):
    """Slow path: the first line of ``buf`` with a token that is not a number."""
    convert = int if np.issubdtype(dtype, np.integer) else float
    for k, line in enumerate(buf.split(b"\n")):
        for tok in line.split():
            try:
                convert(tok)
            except ValueError:
                kind = "an integer" if convert is int else "a number"
                raise DataFileError(path, f"line {first_line + k}: "
                                    f"{tok.decode(errors='replace')!r} is not "
                                    f"{kind}") from None
    raise DataFileError(path, f"unreadable numbers from line {first_line} on "
                        f"(expected {n_cols + name_cols} columns per line)")


def _numbers(buf, n_lines, dtype, path, first_line, n_cols, name_cols):
    """Every whitespace-separated number of ``buf`` (whole lines) and how many each
    line holds, from one ``np.fromstring`` call: each line end is marked with a
    sentinel value that no file holds.

    Returns:
        (values ``dtype`` [total], counts int64 [n_lines]).
    """
    integer = np.issubdtype(dtype, np.integer)
    sentinel = _INT_SENTINEL if integer else _FLOAT_SENTINEL
    marked = buf.replace(b"\n", b" " + repr(sentinel).encode() + b"\n")
    try:
        v = np.fromstring(marked, dtype=dtype, sep=" ")
    except ValueError:
        _bad_token(buf, n_cols, dtype, path, first_line, name_cols)
    del marked
    is_end = v == sentinel
    ends = np.flatnonzero(is_end)
    if len(ends) != n_lines:  # a token that equals the sentinel
        _bad_token(buf, n_cols, dtype, path, first_line, name_cols)
    return v[~is_end], np.diff(ends, prepend=-1) - 1


def _mask_spans(n, lo, hi):
    """bool [n]: True inside the half-open spans [lo_i, hi_i) (disjoint, lo < hi)."""
    delta = np.zeros(n + 1, np.int8)
    delta[lo] = 1
    delta[hi] -= 1
    return np.cumsum(delta[:-1], dtype=np.int8).astype(bool)


def _table_block(block, first_line, n_cols, dtype, path, kind):
    """Parses one block of whole lines without a per-line Python loop.

    kind ``"numbers"``: ``n_cols`` whitespace-separated numbers per line;
    ``"named"``: a name, then ``n_cols`` numbers; ``"csv"``: the first two
    comma-separated fields are integers (``n_cols`` = 2), the rest ignored.
    Whitespace-only lines are skipped (as pandas does). The name / ignored bytes
    are blanked so that one number parser serves all three.

    Returns:
        (names ``S`` array [n] or None, values [n, n_cols], rows_before_blank int64
        [b]: per skipped line, the data rows before it in this block, line numbers
        1-based from ``first_line``).
    """
    b = np.frombuffer(block, np.uint8)
    nl = np.flatnonzero(b == _NL)
    starts = np.r_[0, nl[:-1] + 1]
    ws = _WHITESPACE[b]
    nonblank = np.logical_or.reduceat(~ws, starts)
    names, name_cols = None, 0
    if kind == "numbers":
        buf = block
    elif kind == "named":
        name_cols = 1
        first = starts.copy()
        lead = np.flatnonzero(nonblank & ws[starts])
        for k in lead:  # rare: leading whitespace before the name
            line = block[starts[k]:nl[k]]
            first[k] += len(line) - len(line.lstrip())
        wpos = np.flatnonzero(ws)
        end = wpos[np.searchsorted(wpos, first)]  # the newline bounds it
        first, end = first[nonblank], end[nonblank]
        width = int((end - first).max()) if len(first) else 1
        idx = np.minimum(first[:, None] + np.arange(width), len(b) - 1)
        chars = b[idx]
        chars[np.arange(width)[None, :] >= (end - first)[:, None]] = 0
        names = np.ascontiguousarray(chars).view(f"S{width}").ravel()
        kept = b.copy()
        kept[_mask_spans(len(b), first, end)] = _SPACE
        buf = kept.tobytes()
    else:
        cpos = np.flatnonzero(b == _COMMA)
        i = np.searchsorted(cpos, starts)
        c1 = cpos[np.minimum(i, len(cpos) - 1)] if len(cpos) else nl
        c2 = cpos[np.minimum(i + 1, len(cpos) - 1)] if len(cpos) else nl
        has1 = (i < len(cpos)) & (c1 < nl)
        has2 = (i + 1 < len(cpos)) & (c2 < nl)
        short = np.flatnonzero(nonblank & ~has1)
        if len(short):
            raise DataFileError(path, f"line {first_line + int(short[0])} has 1 "
                                "column; expected TEMPLATE_ID,SUBJECT_ID,...")
        stop = np.where(has2, c2, nl)
        kept = np.full(len(b), _SPACE, np.uint8)
        keep = _mask_spans(len(b), starts[nonblank], stop[nonblank])
        kept[keep] = b[keep]
        kept[c1[nonblank]] = _SPACE
        kept[nl] = _NL
        buf = kept.tobytes()
    values, counts = _numbers(buf, len(nl), dtype, path, first_line, n_cols, name_cols)
    bad = np.flatnonzero(nonblank & (counts != n_cols))
    if len(bad):
        k = int(bad[0])
        if kind == "csv":
            raise DataFileError(path, f"line {first_line + k}: the first two fields "
                                "are not integer TEMPLATE_ID, SUBJECT_ID")
        raise DataFileError(path, f"line {first_line + k} has "
                            f"{int(counts[k]) + name_cols} columns; expected "
                            f"{n_cols + name_cols}")
    blank = np.flatnonzero(~nonblank)
    return (names, values.reshape(-1, n_cols),
            (blank - np.arange(len(blank))).astype(np.int64))


def _read_table(path, n_cols, dtype, kind="numbers"):
    """A whole file parsed block by block with `_table_block`.

    Returns:
        (names ``S`` array [n] or None, values [n, n_cols], rows_before_blank).
    """
    names, parts, blanks, n_rows = [], [], [], 0
    for block, line in _text_blocks(path):
        nm, values, before = _table_block(block, line, n_cols, dtype, os.fspath(path),
                                          kind)
        names.append(nm)
        if np.issubdtype(dtype, np.integer) and len(values) and (
                values.min() >= -2 ** 31 and values.max() < 2 ** 31):
            values = values.astype(np.int32)  # halves the memory of 15 M pair lines
        parts.append(values)
        blanks.append(before + n_rows)
        n_rows += len(values)
    if not parts:
        return (None if kind != "named" else np.zeros(0, "S1"),
                np.zeros((0, n_cols), dtype), np.zeros(0, np.int64))
    return (np.concatenate(names) if kind == "named" else None,
            np.concatenate(parts), np.concatenate(blanks))


def _lines_of(rows, rows_before_blank):
    """1-based line numbers of data rows ``rows`` (0-based) given the skipped
    blank lines (`_table_block`); int64 array like ``rows``."""
    rows = np.asarray(rows, np.int64)
    return rows + 1 + np.searchsorted(rows_before_blank, rows, side="right")


def _line_of(row, rows_before_blank):
    return int(_lines_of(row, rows_before_blank))


@dataclasses.dataclass
class FaceList:
    """The faces of one dataset, in the order of the face list (= feature rows).

    ``names`` bytes array (numpy ``S``) [N]; ``templates``, ``medias`` int64 [N];
    ``landmarks`` float32 [N, 5, 2]; ``detector_scores`` float32 [N] (float32 as
    insightface casts them); ``paths`` the two files read.
    """
    names: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    landmarks: np.ndarray
    detector_scores: np.ndarray
    paths: tuple

    def __len__(self):
        return len(self.templates)


def read_face_tid_mid(path):
    """``<target>_face_tid_mid.txt``: ``image_name template_id media_id`` per line.

    Returns:
        (names ``S`` array [N], templates int64 [N], medias int64 [N]).

    Raises:
        DataFileError: missing or empty file, a line without exactly three columns,
        a non-integer id.
    """
    names, values, _ = _read_table(path, 2, np.int64, "named")
    if len(values) == 0:
        raise DataFileError(path, "no faces")
    return names, values[:, 0].copy(), values[:, 1].copy()


def read_name_5pts_score(path):
    """``<target>_name_5pts_score.txt``: name, 10 landmark values, detector score.

    Returns:
        (names ``S`` array [N], landmarks float32 [N, 5, 2], scores float32 [N]).

    Raises:
        DataFileError: missing or empty file, a line without exactly 12 columns, a
        non-number, a NaN / infinite detector score.
    """
    names, values, blanks = _read_table(path, N_LANDMARK_VALUES + 1, np.float64,
                                        "named")
    if len(values) == 0:
        raise DataFileError(path, "no faces")
    scores = values[:, -1].astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise DataFileError(path, f"line {_line_of(bad[0], blanks)}: detector score "
                            f"{values[bad[0], -1]} is not finite")
    landmarks = values[:, :-1].astype(np.float32).reshape(-1, 5, 2)
    return names, landmarks, scores


def read_face_list(face_tid_mid_path, name_5pts_path, check_names=True):
    """Both per-face files, checked against each other.

    Args:
        face_tid_mid_path: ``<target>_face_tid_mid.txt``.
        name_5pts_path: ``<target>_name_5pts_score.txt``.
        check_names: require the same image name on every line (insightface
            assumes the two files are in the same order without checking).

    Returns:
        `FaceList`.

    Raises:
        DataFileError: see the two readers; different line counts; a name mismatch.
    """
    names, templates, medias = read_face_tid_mid(face_tid_mid_path)
    names5, landmarks, scores = read_name_5pts_score(name_5pts_path)
    if len(names5) != len(names):
        raise DataFileError(name_5pts_path, f"{len(names5)} faces, but "
                            f"{face_tid_mid_path} lists {len(names)}")
    if check_names:
        differ = np.flatnonzero(names5 != names)
        if len(differ):
            k = int(differ[0])
            raise DataFileError(name_5pts_path, f"face {k + 1} is "
                                f"{names5[k].decode(errors='replace')!r}, but "
                                f"{face_tid_mid_path} names "
                                f"{names[k].decode(errors='replace')!r} there; the two "
                                "lists must be in the same order")
    return FaceList(names, templates, medias, landmarks, scores,
                    (os.fspath(face_tid_mid_path), os.fspath(name_5pts_path)))


@dataclasses.dataclass
class PairList:
    """1:1 pairs in file order: ``t1``, ``t2`` int64 [P], ``labels`` int8 [P] (0/1)."""
    t1: np.ndarray
    t2: np.ndarray
    labels: np.ndarray
    path: str
    rows_before_blank: np.ndarray

    def line_of(self, row):
        return _line_of(row, self.rows_before_blank)


def read_template_pairs(path):
    """``<target>_template_pair_label.txt``: ``template_1 template_2 label`` per line.

    Parsed in blocks without a per-line Python loop (15.6 M lines in seconds).

    Returns:
        `PairList`.

    Raises:
        DataFileError: missing or empty file, a line without exactly three
        columns, a non-integer, a label other than 0 / 1, only one label present.
    """
    _, values, blanks = _read_table(path, 3, np.int64)
    path = os.fspath(path)
    if len(values) == 0:
        raise DataFileError(path, "no pairs")
    labels = values[:, 2]
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad):
        raise DataFileError(path, f"line {_line_of(bad[0], blanks)}: label "
                            f"{int(labels[bad[0]])} is not 0 or 1")
    n_pos = int(np.count_nonzero(labels))
    if n_pos in (0, len(labels)):
        raise DataFileError(path, f"all {len(labels)} labels are {int(labels[0])}; "
                            "an ROC needs genuine and impostor pairs")
    t1, t2 = values[:, 0].copy(), values[:, 1].copy()
    return PairList(t1, t2, labels.astype(np.int8), path, blanks)


@dataclasses.dataclass
class SearchSet:
    """Templates of one 1:N file: ``templates`` int64 [n] ascending (unique),
    ``subjects`` int64 [n], ``lines`` int64 [n] (first line of each template)."""
    templates: np.ndarray
    subjects: np.ndarray
    lines: np.ndarray
    path: str

    def __len__(self):
        return len(self.templates)


def read_search_csv(path):
    """A 1:N file (gallery or probe): header row, then ``TEMPLATE_ID,SUBJECT_ID,...``.

    As insightface: the first row is skipped, the first two columns read, one
    template per distinct TEMPLATE_ID (ascending), its subject from its first row.

    Returns:
        `SearchSet`.

    Raises:
        DataFileError: missing file, no header (first row numeric), fewer than two
        columns, a non-integer, one template with two subjects.
    """
    path = os.fspath(path)
    blocks = _text_blocks(path)
    try:
        head, line = next(blocks)
    except StopIteration:
        raise DataFileError(path, "empty file") from None
    lines = head.split(b"\n")
    k = next((k for k, text in enumerate(lines) if text.strip()), None)
    if k is None:
        raise DataFileError(path, "empty file")
    if lines[k].split(b",")[0].strip().lstrip(b"-").isdigit():
        raise DataFileError(path, f"line {k + 1} is data, not a header; insightface "
                            "skips the first line (TEMPLATE_ID,SUBJECT_ID,...)")
    # Blank the header line in place so that line numbers stay put.
    head = b"\n".join([b""] * (k + 1) + lines[k + 1:])
    parts, blanks, n_rows = [], [], 0
    for block, first in [(head, line)] + list(blocks):
        _, values, before = _table_block(block, first, 2, np.int64, path, "csv")
        parts.append(values)
        blanks.append(before + n_rows)
        n_rows += len(values)
    values, blanks = np.concatenate(parts), np.concatenate(blanks)
    if len(values) == 0:
        raise DataFileError(path, "no templates after the header")
    ids, subjects = values[:, 0], values[:, 1]
    order = np.argsort(ids, kind="stable")
    ids_s, subj_s = ids[order], subjects[order]
    first = np.r_[True, ids_s[1:] != ids_s[:-1]]
    run = np.cumsum(first) - 1
    clash = np.flatnonzero(subj_s != subj_s[first][run])
    if len(clash):
        k = int(clash[0])
        raise DataFileError(path, f"line {_line_of(order[k], blanks)}: template "
                            f"{int(ids_s[k])} has subject {int(subj_s[k])} here and "
                            f"{int(subj_s[first][run[k]])} on an earlier line")
    return SearchSet(ids_s[first], subj_s[first], _lines_of(order[first], blanks),
                     path)


# --------------------------------------------------------------------------- features


FaceChunk = collections.namedtuple(
        "FaceChunk", "start stop names landmarks detector_scores")
FaceChunk.__doc__ = """Faces [start, stop) of the face list, given to a feature callable:
``names`` list of str, ``landmarks`` float32 [n, 5, 2], ``detector_scores`` float32 [n]."""


class _FeatureRows:
    """Blocks of rows of a feature matrix: an ``.npy`` (read with seeks, so that
    only one block is resident), an array, or a callable ``f(FaceChunk) -> [n, D]``."""

    def __init__(self, source, faces, what):
        self.faces = faces
        self.file = None
        self.dim = None
        if callable(source) and not isinstance(source, np.ndarray):
            self.name, self.fn = f"<{what} callable>", source
            return
        self.fn = None
        if isinstance(source, np.ndarray):
            self.name, shape, self.array = f"<{what} array>", source.shape, source
            dtype = source.dtype
        else:
            self.name = os.fspath(source)
            if not os.path.isfile(self.name):
                raise DataFileError(self.name, f"{what} file not found")
            try:
                mm = np.load(self.name, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as e:
                raise DataFileError(self.name, f"not a numeric .npy file ({e})") from None
            shape, dtype = mm.shape, mm.dtype
            if mm.ndim == 2 and mm.flags.c_contiguous:
                self.offset, self.array = mm.offset, None
                self.file = open(self.name, "rb")
                del mm
            else:
                self.array = mm
        if len(shape) != 2:
            raise DataFileError(self.name, f"{what} have shape {shape}; expected "
                                "faces x dim")
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise DataFileError(self.name, f"{what} have dtype {dtype}; expected numbers")
        if shape[0] != len(faces):
            raise DataFileError(self.name, f"{shape[0]} {what} rows, but the face list "
                                f"{faces.paths[1]} has {len(faces)} lines")
        self.dtype, self.dim = np.dtype(dtype), int(shape[1])

    def read(self, start, stop):
        """float64 [stop - start, D]."""
        if self.fn is not None:
            f = self.faces
            names = [n.decode("utf-8", errors="replace") for n in f.names[start:stop]]
            x = np.asarray(self.fn(FaceChunk(start, stop, names,
                                             f.landmarks[start:stop],
                                             f.detector_scores[start:stop])))
            if x.ndim != 2 or x.shape[0] != stop - start or (
                    self.dim is not None and x.shape[1] != self.dim):
                raise DataFileError(self.name, f"returned shape {x.shape} for faces "
                                    f"{start}..{stop - 1}; expected ({stop - start}, "
                                    f"{self.dim or 'D'})")
            self.dim = int(x.shape[1])
            return x.astype(np.float64)
        if self.file is None:
            return np.asarray(self.array[start:stop], np.float64)
        self.file.seek(self.offset + start * self.dim * self.dtype.itemsize)
        n = (stop - start) * self.dim
        x = np.fromfile(self.file, self.dtype, count=n)
        if x.size != n:
            raise DataFileError(self.name, "file is shorter than its header says")
        return x.reshape(stop - start, self.dim).astype(np.float64)

    def close(self):
        if self.file is not None:
            self.file.close()


@dataclasses.dataclass
class TemplateFeatures:
    """Pooled, L2-normalised template features.

    ``ids`` int64 [T] ascending template ids; ``features`` float64 [T, D] (unit
    rows, or zero where a template's pooled feature is zero); ``flip_applied``.
    """
    ids: np.ndarray
    features: np.ndarray
    flip_applied: bool

    def index_of(self, templates, path, where, lines=None):
        """Rows of ``templates`` (int [n]) in `features`: int32 [n].

        Args:
            path, where: the file naming ``templates`` and the face list, for the
                message; lines: line numbers (array, or callable(row)), default
                row + 1.

        Raises:
            DataFileError: naming ``path`` and the first unknown template.
        """
        templates = np.asarray(templates)
        top = int(max(self.ids[-1], templates.max(initial=0)))
        if self.ids[0] >= 0 and templates.min(initial=0) >= 0 and top < _LOOKUP_MAX:
            # IJB template ids are small: a lookup table beats a binary search.
            table = np.full(top + 1, -1, np.int32)
            table[self.ids] = np.arange(len(self.ids), dtype=np.int32)
            pos = table[templates]
            bad = np.flatnonzero(pos < 0)
        else:
            pos = np.minimum(np.searchsorted(self.ids, templates), len(self.ids) - 1)
            bad = np.flatnonzero(self.ids[pos] != templates)
            pos = pos.astype(np.int32)
        if len(bad):
            k = int(bad[0])
            line = lines(k) if callable(lines) else (
                int(lines[k]) if lines is not None else k + 1)
            raise DataFileError(path, f"line {line}: template {int(templates[k])} is "
                                f"not in {where} ({len(bad)} unknown entries)")
        return pos


def pool_templates(faces, features, flip_features=None, *, concatenated_flip=False,
                   use_flip_test=True, use_norm_score=True, use_detector_score=True,
                   chunk_rows=1 << 13):
    """Template features as insightface's ``image2template_feature`` pools them.

    Per face (row i): x = feature (+ flipped feature if ``use_flip_test`` and one is
    given), L2-normalised unless ``use_norm_score``, times the detector score if
    ``use_detector_score``. Per template: the mean of x over each media id, summed
    over its media ids, L2-normalised (zero stays zero, as sklearn's ``normalize``).
    Computed as one weighted sum per template (weight = score / faces of the same
    media in the template [/ the face's norm]): a sparse product per chunk of rows,
    accumulated in float64; no loop over templates or faces.

    Args:
        faces: `FaceList` [N].
        features: ``.npy`` path, array [N, D] (or [N, 2D] with
            ``concatenated_flip``), or callable ``f(FaceChunk) -> [n, D]``.
        flip_features: same kinds, the flipped images; optional.
        concatenated_flip: ``features`` rows are ``[original | flipped]`` (the layout
            of insightface's eval_ijbc.py). Default False.
        use_flip_test: default True; without flipped features it has no effect.
        use_norm_score: default True (keep norms); False normalises each face.
        use_detector_score: default True.
        chunk_rows: rows per chunk (memory: a few chunk x D float64 arrays).

    Returns:
        `TemplateFeatures` over every template of the face list.

    Raises:
        DataFileError: row-count or shape mismatch, NaN / inf feature rows (named).
    """
    if concatenated_flip and flip_features is not None:
        raise ValueError("give either flip_features or concatenated_flip, not both")
    ids, tidx = np.unique(faces.templates, return_inverse=True)
    _, media = np.unique(faces.medias, return_inverse=True)
    key = tidx.astype(np.int64) * (int(media.max()) + 1) + media
    _, kinv, kcnt = np.unique(key, return_inverse=True, return_counts=True)
    weight = 1.0 / kcnt[kinv]
    if use_detector_score:
        weight = weight * faces.detector_scores.astype(np.float64)
    main = _FeatureRows(features, faces, "features")
    flip = None
    if flip_features is not None:
        flip = _FeatureRows(flip_features, faces, "flipped features")
    try:
        acc, bad = None, {main.name: [], getattr(flip, "name", None): []}
        for start in range(0, len(faces), chunk_rows):
            stop = min(start + chunk_rows, len(faces))
            x = _finite_rows(main.read(start, stop), start, bad[main.name])
            if concatenated_flip:
                if x.shape[1] % 2:
                    raise DataFileError(main.name, f"{x.shape[1]} columns cannot be "
                                        "[original | flipped] halves")
                half = x.shape[1] // 2
                x = x[:, :half] + x[:, half:] if use_flip_test else x[:, :half]
            elif flip is not None and use_flip_test:
                xf = _finite_rows(flip.read(start, stop), start, bad[flip.name])
                if xf.shape != x.shape:
                    raise DataFileError(flip.name, f"{xf.shape[1]} columns; the "
                                        f"features have {x.shape[1]}")
                x += xf
            w = weight[start:stop]
            if not use_norm_score:
                norm = np.sqrt(np.einsum("ij,ij->i", x, x))
                w = w / np.where(norm > 0, norm, 1.0)
            if acc is None:
                acc = np.zeros((len(ids), x.shape[1]), np.float64)
            # Sum of weighted rows per template of this chunk: one sparse product
            # (faces need not be grouped by template in the face list).
            u, inv = np.unique(tidx[start:stop], return_inverse=True)
            a = scipy.sparse.csr_matrix((w, (inv, np.arange(len(w)))),
                                        shape=(len(u), len(w)))
            acc[u] += a @ x
        for name, rows in bad.items():
            if rows:
                shown = ", ".join(str(r) for r in rows[:10])
                more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
                raise DataFileError(name, f"NaN or inf in {len(rows)} rows (0-based, "
                                    f"in face-list order): {shown}{more}")
    finally:
        main.close()
        if flip is not None:
            flip.close()
    norm = np.sqrt(np.einsum("ij,ij->i", acc, acc))
    acc /= np.where(norm > 0, norm, 1.0)[:, None]
    applied = bool(use_flip_test and (flip is not None or concatenated_flip))
    return TemplateFeatures(ids, acc, applied)


def _finite_rows(x, start, bad_rows):
    """Zeroes (and records in ``bad_rows``) the rows of ``x`` with NaN / inf, so
    that one pass names every bad row before the error is raised."""
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad_rows.extend((start + np.flatnonzero(~finite)).tolist())
        x[~finite] = 0.0
    return x


# --------------------------------------------------------------------------- 1:1


def pair_scores(features, i1, i2, chunk_pairs=1 << 17, dtype=np.float32,
                dense_factor=32):
    """Dot products of template feature pairs, chunk by chunk with matrix products.

    Pairs are visited grouped by the side with fewer distinct templates. Within a
    chunk of pairs with templates A (first side) and B (second side), when
    |A| x |B| <= ``dense_factor`` x chunk size, one product F[A] F[B]^T yields all
    of them (the IJB protocols pair a few thousand gallery templates with many
    probes, so this is the usual case); otherwise the rows are gathered and
    multiplied pair by pair in sub-chunks. A matrix product does ~50x more
    multiply-adds per second than the gathered pairs (measured here: 55-90 GFLOP/s
    against ~1.2 M pairs/s at 512-d, one thread), hence the default 32. Memory:
    O(chunk_pairs x dense_factor + chunk x D), independent of the number of pairs.

    Args:
        features: float [T, D] template features (unit rows).
        i1, i2: int [P] row indices into ``features``.
        chunk_pairs: pairs per chunk.
        dtype: ``np.float32`` (default) or ``np.float64`` for the products.
        dense_factor: see above.

    Returns:
        ``dtype`` [P]; entry p = features[i1[p]] . features[i2[p]].
    """
    F = np.ascontiguousarray(features, dtype)
    n_t = len(F)
    i1 = np.asarray(i1)
    i2 = np.asarray(i2)
    out = np.empty(len(i1), dtype)
    if len(i1) == 0:
        return out
    distinct = lambda i: np.count_nonzero(np.bincount(i, minlength=n_t))  # noqa: E731
    if distinct(i2) < distinct(i1):
        i1, i2 = i2, i1
    order = None if np.all(i1[1:] >= i1[:-1]) else np.argsort(i1, kind="stable")
    mark = np.zeros(n_t, bool)
    slot = np.zeros(n_t, np.int64)
    gather_rows = max(1, _GATHER_ROWS_ELEMS // max(F.shape[1], 1))
    for start in range(0, len(i1), chunk_pairs):
        sel = slice(start, start + chunk_pairs) if order is None else \
            order[start:start + chunk_pairs]
        a, b = i1[sel], i2[sel]
        new = np.r_[True, a[1:] != a[:-1]]
        u1, inv1 = a[new], np.cumsum(new) - 1
        mark[:] = False
        mark[b] = True
        u2 = np.flatnonzero(mark)
        if len(u1) * len(u2) <= dense_factor * len(a):
            if 2 * len(u2) >= n_t:
                s = (F[u1] @ F.T)[inv1, b]
            else:
                slot[u2] = np.arange(len(u2))
                s = (F[u1] @ F[u2].T)[inv1, slot[b]]
        else:
            s = np.empty(len(a), dtype)
            for g in range(0, len(a), gather_rows):
                aa, bb = a[g:g + gather_rows], b[g:g + gather_rows]
                s[g:g + gather_rows] = np.einsum("ij,ij->i", F[aa], F[bb])
        out[sel] = s
    return out


def roc_points(labels, scores):
    """The full ROC's counts as sklearn's ``_binary_clf_curve`` computes them.

    Scores sorted descending, one point per distinct score: tps = float64 running
    count of positives, fps = 1 + index - tps.

    Args:
        labels: int / bool [P], 1 = genuine.
        scores: float [P], larger = more similar.

    Returns:
        (fps float64 [R], tps float64 [R], thresholds float64 [R]).
    """
    y = np.asarray(labels) == 1
    s = np.asarray(scores)
    order = np.argsort(s)[::-1]  # ties are grouped below, so stability is moot
    s = s[order]
    y = y[order]
    del order
    idx = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y, dtype=np.float64)[idx]
    return 1 + idx - tps, tps, s[idx].astype(np.float64)


def roc_from_points(fps, tps, thresholds, drop_intermediate=True):
    """sklearn's ``roc_curve`` from `roc_points`: collinear points dropped with
    ``drop_intermediate`` (sklearn's default and what insightface gets), a (0, 0)
    point prepended, fpr = fps / fps[-1], tpr = tps / tps[-1].

    Returns:
        (fpr float64 [R'], tpr float64 [R'], thresholds float64 [R']) with
        ``thresholds[0] = inf`` (sklearn >= 1.3).
    """
    if drop_intermediate and len(fps) > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2),
                                                        np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_curve(labels, scores, drop_intermediate=True):
    """``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=...)`` for 0/1
    labels, in numpy with the same arithmetic (`roc_points`, `roc_from_points`).

    Args:
        labels: int / bool [P], 1 = genuine; scores: float [P].
        drop_intermediate: default True (sklearn's default).

    Returns:
        (fpr float64 [R], tpr float64 [R], thresholds float64 [R]).
    """
    return roc_from_points(*roc_points(labels, scores), drop_intermediate)


def roc_auc(fpr, tpr):
    """sklearn.metrics.auc: the trapezoidal area under (fpr, tpr), as np.trapz."""
    fpr = np.asarray(fpr, np.float64)
    tpr = np.asarray(tpr, np.float64)
    return float(np.add.reduce(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def tar_at_far_insightface(fpr, tpr, targets=FAR_TARGETS):
    """insightface's TAR at each FAR: the ROC point with the nearest FPR.

    Their code flips the ROC (``np.flipud``) and takes the first minimum of
    ``|fpr - target|``, i.e. on the unflipped ROC the *last* point among the
    nearest, which at a vertical step is the top (largest TPR). The chosen FPR may
    exceed the target.

    Args:
        fpr, tpr: float [R] from `roc_curve` (with ``drop_intermediate=True``).
        targets: FARs.

    Returns:
        (tar float64 [len(targets)], index int64 [len(targets)] of the ROC point).
    """
    fpr = np.asarray(fpr, np.float64)
    d = np.abs(fpr[None, :] - np.asarray(targets, np.float64)[:, None])
    index = fpr.size - 1 - np.argmin(d[:, ::-1], axis=1)
    return np.asarray(tpr, np.float64)[index], index


def tar_at_far_at_most(fps, tps, targets=FAR_TARGETS):
    """Stricter (not insightface): the largest TPR among ROC points with FPR <= target.

    Read off the full ROC (`roc_points`, no point dropped: dropping collinear
    points can remove the last one at or below the target) without building it:
    FPR = fps / fps[-1] is monotone in fps, so a binary search on fps, corrected
    by one step for rounding, finds the last point with FPR <= target; the (0, 0)
    point sklearn prepends gives TPR 0 when none qualifies.

    Args:
        fps, tps: float64 [R] from `roc_points`.

    Returns:
        (tar float64 [len(targets)], fpr float64 [len(targets)] of that point).
    """
    fps = np.asarray(fps, np.float64)
    n_neg, n_pos = fps[-1], np.asarray(tps, np.float64)[-1]
    tar, fpr = [], []
    for t in targets:
        i = int(np.searchsorted(fps, t * n_neg, side="right")) - 1
        while i + 1 < len(fps) and fps[i + 1] / n_neg <= t:
            i += 1
        while i >= 0 and fps[i] / n_neg > t:
            i -= 1
        tar.append(tps[i] / n_pos if i >= 0 else 0.0)
        fpr.append(fps[i] / n_neg if i >= 0 else 0.0)
    return np.array(tar, np.float64), np.array(fpr, np.float64)


def _far_key(far):
    return f"{far:g}"


def verify(templates, pairs, dtype=np.float32, chunk_pairs=1 << 17,
           face_list_path="<face list>", far_targets=FAR_TARGETS):
    """1:1 verification of `PairList` ``pairs`` with `TemplateFeatures` ``templates``.

    Returns:
        dict: ``n_pairs``, ``n_genuine``, ``n_impostor``, ``auc``, ``tar_at_far``
        and ``fpr_at_chosen_point`` (insightface's rule), ``stricter_tar_at_far``;
        private ``_scores`` ``dtype`` [P] (file order), ``_labels`` int8 [P],
        ``_fpr`` / ``_tpr`` (the ROC insightface plots).

    Raises:
        DataFileError: a pair names a template missing from the face list.
    """
    i1 = templates.index_of(pairs.t1, pairs.path, face_list_path, pairs.line_of)
    i2 = templates.index_of(pairs.t2, pairs.path, face_list_path, pairs.line_of)
    scores = pair_scores(templates.features, i1, i2, chunk_pairs, dtype)
    del i1, i2
    fps, tps, thresholds = roc_points(pairs.labels, scores)
    strict, _ = tar_at_far_at_most(fps, tps, far_targets)
    fpr, tpr, _ = roc_from_points(fps, tps, thresholds)
    del fps, tps, thresholds
    tar, idx = tar_at_far_insightface(fpr, tpr, far_targets)
    n_pos = int(np.count_nonzero(pairs.labels))
    return {
        "n_pairs": int(len(scores)), "n_genuine": n_pos,
        "n_impostor": int(len(scores) - n_pos),
        "far_targets": list(far_targets),
        "auc": roc_auc(fpr, tpr),
        "tar_at_far": {_far_key(f): float(v) for f, v in zip(far_targets, tar)},
        "fpr_at_chosen_point": {_far_key(f): float(fpr[i])
                                for f, i in zip(far_targets, idx)},
        "stricter_tar_at_far": {_far_key(f): float(v)
                                for f, v in zip(far_targets, strict)},
        "_scores": scores, "_labels": pairs.labels, "_fpr": fpr, "_tpr": tpr}


# --------------------------------------------------------------------------- 1:N


def _similarity_blocks(probe, gallery):
    """Yields (rows slice, probe-block x gallery similarity) with bounded memory."""
    rows = max(1, _SCORE_BLOCK_ELEMS // max(len(gallery), 1))
    for start in range(0, len(probe), rows):
        sl = slice(start, min(start + rows, len(probe)))
        yield sl, probe[sl] @ gallery.T


def search_scores(probe, gallery, groups):
    """Per-probe search statistics for galleries that are column sets of one
    gallery matrix, from a single probe x gallery product per block of probes.

    Args:
        probe: float [Q, D]; gallery: float [G, D] (unit rows).
        groups: sequence of (columns, mate, top_k): ``columns`` a slice or int
            array of gallery rows forming one gallery; ``mate`` int [Q], the mate's
            position within those columns or -1 (non-mated probe); ``top_k`` > 0
            also keeps the ``top_k`` largest non-mate scores of the mated probes
            (for insightface's ijb_1n rule).

    Returns:
        list, per group, of dicts of arrays over the Q probes: ``mate_score`` (NaN
        if non-mated), ``rank`` (1 + scores strictly above the mate's; 0 if
        non-mated), ``rank_ties_against`` (scores >= the mate's, the mate
        included), ``best_score`` (the row's largest score); and ``top_nonmate``
        (float64 [<= top_k], descending).
    """
    q = len(probe)
    groups = [(cols, np.asarray(mate, np.int64), int(top_k))
              for cols, mate, top_k in groups]
    outs = [{"mate_score": np.full(q, np.nan), "rank": np.zeros(q, np.int64),
             "rank_ties_against": np.zeros(q, np.int64),
             "best_score": np.full(q, np.nan), "top_nonmate": np.zeros(0)}
            for _ in groups]
    for sl, s_all in _similarity_blocks(probe, gallery):
        for (cols, mate, top_k), out in zip(groups, outs):
            s = s_all[:, cols]
            m = mate[sl]
            r = np.flatnonzero(m >= 0)
            if s.shape[1]:
                out["best_score"][sl] = s.max(axis=1)
            if not len(r):
                continue
            sr = s if len(r) == len(m) else s[r]
            pos = sr[np.arange(len(r)), m[r]]
            out["mate_score"][sl][r] = pos
            out["rank"][sl][r] = 1 + np.count_nonzero(sr > pos[:, None], axis=1)
            out["rank_ties_against"][sl][r] = np.count_nonzero(sr >= pos[:, None],
                                                               axis=1)
            if top_k:
                # A copy: ``s`` may be a view that the other groups read.
                nm = sr.copy() if sr is s else sr
                nm[np.arange(len(r)), m[r]] = -np.inf
                flat = nm.ravel()
                if flat.size > top_k:
                    flat = np.partition(flat, flat.size - top_k)[flat.size - top_k:]
                top = np.concatenate([out["top_nonmate"], flat.astype(np.float64)])
                if top.size > top_k:
                    top = np.partition(top, top.size - top_k)[top.size - top_k:]
                out["top_nonmate"] = top
    for out in outs:
        out["top_nonmate"] = np.sort(out["top_nonmate"])[::-1]
    return outs


def open_set_tpir(mate_score, rank_ties_against, nonmated_best, fpirs=FPIR_TARGETS):
    """TPIR at FPIR as insightface's ``ijb_evals.py`` computes it for one gallery.

    threshold = descending non-mated best scores at index
    ``max(int(n_nonmated * fpir) - 1, 0)``; TPIR = share of mated probes whose mate
    score is strictly above every non-mate gallery score and strictly above the
    threshold.

    Args:
        mate_score: float [M] of the mated probes; rank_ties_against: int [M];
        nonmated_best: float [U] best score of each non-mated probe.

    Returns:
        (tpir float64 [len(fpirs)], threshold float64 [len(fpirs)]); NaN where
        there are no mated or no non-mated probes.
    """
    n_m, n_u = len(mate_score), len(nonmated_best)
    desc = np.sort(np.asarray(nonmated_best, np.float64))[::-1]
    tpir, thr = [], []
    for f in fpirs:
        if n_m == 0 or n_u == 0:
            tpir.append(math.nan)
            thr.append(math.nan)
            continue
        t = desc[max(int(n_u * f) - 1, 0)]
        hit = (np.asarray(rank_ties_against) == 1) & (np.asarray(mate_score) > t)
        tpir.append(np.count_nonzero(hit) / n_m)
        thr.append(float(t))
    return np.array(tpir), np.array(thr)


def closed_set_tpir_ijb_1n(mate_score, top_nonmate, n_nonmate, fars=FPIR_TARGETS):
    """insightface ``ijb_1n.py``'s "TPIR at FPIR" (labelled so; not a NIST FPIR).

    k = ceil(n_probes * far); threshold = the k-th largest of all n_nonmate
    probe x non-mate-gallery scores; TPIR = share of probes whose mate score is
    strictly above it.

    Args:
        mate_score: float [Q]; top_nonmate: float [>= max k] descending;
        n_nonmate: how many non-mate scores there are (Q x (G - 1)).

    Returns:
        (tpir float64 [len(fars)], threshold float64 [len(fars)]).
    """
    q = len(mate_score)
    tpir, thr = [], []
    for f in fars:
        k = math.ceil(q * f)
        if q == 0 or k < 1 or k > n_nonmate or k > len(top_nonmate):
            tpir.append(math.nan)
            thr.append(math.nan)
            continue
        t = float(top_nonmate[k - 1])
        tpir.append(np.count_nonzero(np.asarray(mate_score) > t) / q)
        thr.append(t)
    return np.array(tpir), np.array(thr)


def _rank_rates(ranks, n, prefix=""):
    return {f"{prefix}rank{k}": (float(np.count_nonzero((ranks >= 1) & (ranks <= k)) / n)
                                 if n else math.nan) for k in RANKS}


def _unique_subjects(gallery, name):
    """Checks one template per subject in one gallery (insightface's mate lookup
    takes the first and ignores the rest)."""
    order = np.argsort(gallery.subjects, kind="stable")
    s = gallery.subjects[order]
    dup = np.flatnonzero(s[1:] == s[:-1])
    if len(dup):
        k = order[dup[0] + 1]
        raise DataFileError(gallery.path, f"line {int(gallery.lines[k])}: subject "
                            f"{int(gallery.subjects[k])} has more than one template in "
                            f"gallery {name}; the protocol has one per subject")


def _mates(probe_subjects, gallery_subjects):
    """Gallery row of each probe's subject, -1 where absent (gallery subjects unique)."""
    order = np.argsort(gallery_subjects)
    sorted_subj = gallery_subjects[order]
    pos = np.minimum(np.searchsorted(sorted_subj, probe_subjects), len(order) - 1)
    hit = sorted_subj[pos] == probe_subjects
    return np.where(hit, order[pos], -1)


def search(templates, gallery_1, gallery_2, probe, names=("G1", "G2"),
           dtype=np.float32, face_list_path="<face list>", fpirs=FPIR_TARGETS):
    """1:N identification: each gallery on its own (open set), their mean, and the
    combined closed-set gallery, as insightface's ijb_evals.py / ijb_1n.py.

    Args:
        templates: `TemplateFeatures`.
        gallery_1, gallery_2, probe: `SearchSet` (from `read_search_csv`).
        names: the galleries' names for the output (IJB-B: S1, S2).
        dtype: dtype of the similarity products.

    Returns:
        dict with one entry per gallery name, ``mean_of_galleries`` and
        ``combined``; each has ``rank1/5/10`` and ``stricter_rank1/5/10``, the
        galleries and combined ``tpir_at_fpir`` and ``thresholds`` (see
        `open_set_tpir` and `closed_set_tpir_ijb_1n` for which rule).

    Raises:
        DataFileError: unknown templates, a subject with two templates in one
        gallery, a probe subject without exactly one template in G1 + G2.
    """
    feats = templates.features.astype(dtype, copy=False)

    def rows(s):
        return feats[templates.index_of(s.templates, s.path, face_list_path, s.lines)]

    p_feats = rows(probe)
    for name, g in zip(names, (gallery_1, gallery_2)):
        # Unknown templates are reported against their own file.
        templates.index_of(g.templates, g.path, face_list_path, g.lines)
        _unique_subjects(g, name)
    q = len(probe)

    # One gallery matrix: G1's templates, then G2's that are not in G1 (the combined
    # gallery of ijb_1n.py is their union); each gallery is a column set of it.
    in_g1 = np.isin(gallery_2.templates, gallery_1.templates)
    g_ids = np.r_[gallery_1.templates, gallery_2.templates[~in_g1]]
    g_subj = np.r_[gallery_1.subjects, gallery_2.subjects[~in_g1]]
    n1 = len(gallery_1)
    sorter = np.argsort(g_ids)
    g2_cols = sorter[np.searchsorted(g_ids, gallery_2.templates, sorter=sorter)]
    if not in_g1.any():
        g2_cols = slice(n1, len(g_ids))  # a view, no copy per block
    # Combined mates: every probe subject needs exactly one gallery template.
    order = np.argsort(g_subj, kind="stable")
    sorted_subj = g_subj[order]
    lo = np.searchsorted(sorted_subj, probe.subjects, side="left")
    hi = np.searchsorted(sorted_subj, probe.subjects, side="right")
    bad = np.flatnonzero(hi - lo != 1)
    if len(bad):
        k = int(bad[0])
        raise DataFileError(probe.path, f"line {int(probe.lines[k])}: subject "
                            f"{int(probe.subjects[k])} has {int(hi[k] - lo[k])} templates "
                            f"in {names[0]} + {names[1]}; the combined search "
                            "(insightface ijb_1n.py) needs exactly one")
    mates = [_mates(probe.subjects, gallery_1.subjects),
             _mates(probe.subjects, gallery_2.subjects), order[lo]]
    k_max = max(math.ceil(q * f) for f in fpirs)
    g_feats = feats[templates.index_of(g_ids, gallery_1.path, face_list_path)]
    stats = search_scores(p_feats, g_feats, [(slice(0, n1), mates[0], 0),
                                             (g2_cols, mates[1], 0),
                                             (slice(None), mates[2], k_max)])

    out = {"fpir_targets": list(fpirs)}
    for name, g, st, mate in zip(names, (gallery_1, gallery_2), stats, mates):
        mated = mate >= 0
        n_m = int(np.count_nonzero(mated))
        tpir, thr = open_set_tpir(st["mate_score"][mated],
                                  st["rank_ties_against"][mated],
                                  st["best_score"][~mated], fpirs)
        res = {"n_gallery": int(len(g)), "n_mated_probes": n_m,
               "n_nonmated_probes": int(q - n_m)}
        res.update(_rank_rates(st["rank"], n_m))
        res.update(_rank_rates(st["rank_ties_against"], n_m, "stricter_"))
        res["tpir_at_fpir"] = {_far_key(f): float(v) for f, v in zip(fpirs, tpir)}
        res["thresholds"] = {_far_key(f): float(v) for f, v in zip(fpirs, thr)}
        res["_ranks"] = st["rank"]
        out[name] = res
    mean = {"n_probes": q}
    for prefix, key in (("", "rank"), ("stricter_", "rank_ties_against")):
        for k in RANKS:
            hits = sum(int(np.count_nonzero((st[key] >= 1) & (st[key] <= k)))
                       for st in stats[:2])
            mean[f"{prefix}rank{k}"] = hits / q if q else math.nan
    mean["tpir_at_fpir"] = {
        k: (out[names[0]]["tpir_at_fpir"][k] + out[names[1]]["tpir_at_fpir"][k]) / 2
        for k in out[names[0]]["tpir_at_fpir"]}
    out["mean_of_galleries"] = mean

    st = stats[2]
    tpir, thr = closed_set_tpir_ijb_1n(st["mate_score"], st["top_nonmate"],
                                       q * (len(g_ids) - 1), fpirs)
    comb = {"n_gallery": int(len(g_ids)), "n_probes": q}
    comb.update(_rank_rates(st["rank"], q))
    comb.update(_rank_rates(st["rank_ties_against"], q, "stricter_"))
    comb["tpir_at_fpir"] = {_far_key(f): float(v) for f, v in zip(fpirs, tpir)}
    comb["thresholds"] = {_far_key(f): float(v) for f, v in zip(fpirs, thr)}
    comb["_ranks"] = st["rank"]
    out["combined"] = comb
    return out


# --------------------------------------------------------------------------- driver


def evaluate(config, features=None, flip_features=None, log=None):
    """Reads the meta files, pools the templates and runs the tasks of ``config``.

    Args:
        config: `IJBConfig`.
        features: overrides ``config.features``: path, array [N, D] or callable
            ``f(FaceChunk) -> [n, D]``.
        flip_features: overrides ``config.flip_features`` likewise.
        log: optional callable(str) for progress lines.

    Returns:
        dict (see `verify` / `search`; private ``_`` keys hold arrays) with
        ``settings``, ``seconds`` per stage.

    Raises:
        DataFileError: any malformed input (the message names the file).
    """
    config.validate()
    if not config.meta_dir:
        raise ValueError("meta_dir is required")
    say = log or (lambda _m: None)
    features = config.features if features is None else features
    flip_features = config.flip_features if flip_features is None else flip_features
    if features is None:
        raise ValueError("no features given")
    paths = meta_paths(config.meta_dir, config.target)
    dtype = np.dtype(config.precision).type
    seconds = {}
    t0 = time.perf_counter()
    faces = read_face_list(paths["face_tid_mid"], paths["name_5pts_score"],
                           config.check_names)
    seconds["read_face_list"] = time.perf_counter() - t0
    say(f"{len(faces)} faces in {seconds['read_face_list']:.2f} s")
    with blas_threads(config.blas_threads or None):
        t0 = time.perf_counter()
        templates = pool_templates(
                faces, features, flip_features,
                concatenated_flip=config.concatenated_flip,
                use_flip_test=config.use_flip_test, use_norm_score=config.use_norm_score,
                use_detector_score=config.use_detector_score,
                chunk_rows=config.face_chunk)
        seconds["pool_templates"] = time.perf_counter() - t0
        say(f"{len(templates.ids)} templates in {seconds['pool_templates']:.2f} s")
        results = {
            "target": config.target, "meta_dir": os.path.abspath(config.meta_dir),
            "n_faces": len(faces), "n_templates": int(len(templates.ids)),
            "feature_dim": int(templates.features.shape[1]),
            "settings": {"use_flip_test": config.use_flip_test,
                         "flip_test_applied": templates.flip_applied,
                         "concatenated_flip": config.concatenated_flip,
                         "use_norm_score": config.use_norm_score,
                         "use_detector_score": config.use_detector_score,
                         "precision": config.precision}}
        if config.task in ("verify", "both"):
            t0 = time.perf_counter()
            pairs = read_template_pairs(paths["pairs"])
            seconds["read_pairs"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            results["verify"] = verify(templates, pairs, dtype, config.pair_chunk,
                                       paths["face_tid_mid"])
            del pairs
            seconds["verify"] = time.perf_counter() - t0
            say(f"{results['verify']['n_pairs']} pairs: read in "
                f"{seconds['read_pairs']:.2f} s, scored + ROC in {seconds['verify']:.2f} s")
        if config.task in ("search", "both"):
            t0 = time.perf_counter()
            sets = [read_search_csv(paths[k]) for k in ("gallery_1", "gallery_2", "probe")]
            results["search"] = search(templates, *sets, names=GALLERY_NAMES[config.target],
                                       dtype=dtype, face_list_path=paths["face_tid_mid"])
            seconds["search"] = time.perf_counter() - t0
            say(f"1:N search in {seconds['search']:.2f} s")
    results["seconds"] = seconds
    return results


def _pct(x):
    return "nan" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"


def results_text(results):
    """insightface's TAR@FAR table and 1:N lines, then the stricter ones (labelled)."""
    lines = []
    s = results.get("settings", {})
    lines.append(f"{results.get('target', 'IJB')}: {results.get('n_faces')} faces, "
                 f"{results.get('n_templates')} templates, dim "
                 f"{results.get('feature_dim')}; flip {s.get('flip_test_applied')}, "
                 f"norm score {s.get('use_norm_score')}, detector score "
                 f"{s.get('use_detector_score')}")
    if "verify" in results:
        v = results["verify"]
        keys = [_far_key(f) for f in v["far_targets"]]
        lines.append(f"1:1 verification: {v['n_pairs']} pairs ({v['n_genuine']} genuine),"
                     f" AUC = {100 * v['auc']:.4f} %")
        lines.append("TAR (%) at FAR    " + " ".join(f"{k:>7}" for k in keys))
        lines.append("insightface       " + " ".join(
            f"{_pct(v['tar_at_far'][k]):>7}" for k in keys))
        lines.append("  (its point FPR) " + " ".join(
            f"{v['fpr_at_chosen_point'][k]:>7.2g}" for k in keys))
        lines.append("[stricter] FPR<=  " + " ".join(
            f"{_pct(v['stricter_tar_at_far'][k]):>7}" for k in keys))
    if "search" in results:
        sr = results["search"]
        keys = [_far_key(f) for f in sr["fpir_targets"]]
        for name, res in sr.items():
            if not isinstance(res, dict) or "rank1" not in res:
                continue
            label = {"mean_of_galleries": "mean of the two galleries (ijb_evals.py)",
                     "combined": "combined gallery, closed set (ijb_1n.py)"}.get(
                         name, f"gallery {name}, open set (ijb_evals.py)")
            ranks = ", ".join(f"rank-{k} {_pct(res[f'rank{k}'])}" for k in RANKS)
            strict = ", ".join(f"{_pct(res[f'stricter_rank{k}'])}" for k in RANKS)
            tp = ", ".join(f"TPIR@{k} {_pct(res['tpir_at_fpir'][k])}" for k in keys)
            lines.append(f"1:N {label}: {ranks}; {tp}")
            lines.append(f"    [stricter, ties against the mate] rank-1/5/10: {strict}")
        lines.append("    (combined TPIR is ijb_1n.py's rule: threshold = k-th largest "
                     "of all non-mate scores, k = ceil(probes x FPIR); not a NIST FPIR)")
    secs = results.get("seconds", {})
    lines.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in secs.items()))
    return "\n".join(lines) + "\n"


def _plot_points(fpr, n=4000):
    """Indices of the ROC worth drawing on a log-FPR axis (the steps stay steps)."""
    if len(fpr) <= 2 * n:
        return np.arange(len(fpr))
    grid = np.logspace(-8, 0, n)
    i = np.searchsorted(fpr, grid, side="right") - 1
    return np.unique(np.clip(np.r_[0, i, i + 1, len(fpr) - 1], 0, len(fpr) - 1))


def plot_roc(fpr, tpr, auc, path, title="ROC on IJB"):
    """The ROC as insightface draws it (log FPR 1e-6 .. 0.1), written atomically."""
    plt = plotting.pyplot()

    keep = _plot_points(fpr)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(fpr[keep], tpr[keep], lw=1, label=f"AUC = {100 * auc:.4f} %")
    ax.set_xscale("log")
    ax.set_xlim(1e-6, 0.1)
    ax.set_ylim(0.0, 1.0)
    ax.set_xticks(FAR_TARGETS)
    ax.grid(linestyle="--", linewidth=1)
    ax.set_xlabel("False Positive Rate")
    ax.set_ylabel("True Positive Rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    plotting.save_figure(fig, path)


def write_outputs(results, output_dir):
    """``<target>_results.json`` / ``.txt``; with 1:1 also ``<target>_scores.npy``
    (file order, float), ``<target>_labels.npy`` (int8) and ``<target>_roc.png``.
    Every file is written atomically. Returns the paths written."""
    stem = os.path.join(output_dir, results.get("target", "ijb").lower())
    written = []
    path = stem + "_results.json"
    atomic_save_text(path, json.dumps(json_safe(results, drop_private=True), indent=2) + "\n")
    written.append(path)
    path = stem + "_results.txt"
    atomic_save_text(path, results_text(results))
    written.append(path)
    v = results.get("verify")
    if v and "_scores" in v:
        for name in ("scores", "labels"):
            path = f"{stem}_{name}.npy"
            with atomic_write(path, "wb") as f:
                np.save(f, v["_" + name])
            written.append(path)
        path = stem + "_roc.png"
        plot_roc(v["_fpr"], v["_tpr"], v["auc"], path,
                 f"ROC on {results.get('target', 'IJB')}")
        written.append(path)
    return written


def evaluate_and_write(config, log=None):
    """`evaluate` then `write_outputs` into ``config.output_dir``.

    Returns:
        (results dict, list of paths written).
    """
    results = evaluate(config, log=log)
    results["features"] = os.path.abspath(config.features)
    if config.flip_features:
        results["flip_features"] = os.path.abspath(config.flip_features)
    return results, write_outputs(results, config.output_dir)
