"""IJB-C 1:1 verification and 1:N search, ported from the original ``verify.m`` /
``search.m`` (and the template preparation of ``process.m``).

Inputs, as the original reads them from its ``protocols/`` folder:

* ``ijbc_1N_gallery_G1.csv``, ``ijbc_1N_gallery_G2.csv``,
  ``ijbc_1N_probe_mixed.csv``: header row, columns ``TEMPLATE_ID``,
  ``SUBJECT_ID``, ``FILENAME`` (more columns are ignored);
* ``ijbc_metadata.csv``: header row, ``SUBJECT_ID``, ``FILENAME`` and
  ``OCC1`` .. ``OCC18``; its selected rows are the feature rows;
* ``ijbc_11_G1_G2_matches.csv``: no header, two integer columns (G1/G2
  template, probe template), as ``csvread`` reads it;
* or, instead of the first four, the prepared ``ijbc_temp_ID_face_indx.mat``
  (struct of ``probe_temp_ID``, ``probe_subj_ID``, ``probe_face_indx``,
  ``G1_*``, ``G2_*``; face indices 1-based rows of the feature matrix).

A template's feature is the mean of its image features; d = cosine distance
(MATLAB ``pdist2``) between the two template means, so the three scores of
``verify.m`` coincide. Verification uses the IJB-A rule (stable sort, first j
minimising |FAR_j - target|); search is closed-set with the rank of the true
gallery template. BUILD_NOTES.md ("IJB-C") lists the original's quirks and what we do.

Command line (``python -m eval.ijbc`` in a checkout, ``interp-fr-ijbc`` installed)::

    python -m eval.ijbc --features IJBC_features_iter_0.txt --protocol_dir protocols \\
        --task both --output_dir out/ijbc
"""
import csv
import dataclasses
import json
import math
import os
import time

import numpy as np
import scipy.io

from interp_fr.common import plotting
from interp_fr.eval.blas_threads import blas_threads
from interp_fr.common.json_safe import json_safe
from interp_fr.common.atomic_io import atomic_save_text, atomic_write
from interp_fr.data import mat_files
from interp_fr.common.errors import DataFileError, check_finite
from interp_fr.eval import ijba

GALLERY_G1_CSV = "ijbc_1N_gallery_G1.csv"
GALLERY_G2_CSV = "ijbc_1N_gallery_G2.csv"
PROBE_CSV = "ijbc_1N_probe_mixed.csv"
MATCHES_CSV = "ijbc_11_G1_G2_matches.csv"
METADATA_CSV = "ijbc_metadata.csv"
TEMPLATE_INDEX_VAR = "ijbc_temp_ID_face_indx"
# process.m builds its occlusion matrix from these columns: OCC18 where OCC8
# belongs, so OCC8 never counts and OCC18 counts twice (any > 0 matters only).
PROCESS_M_OCC_COLUMNS = tuple(f"OCC{k}" for k in (1, 2, 3, 4, 5, 6, 7, 18, 9, 10, 11,
                                                   12, 13, 14, 15, 16, 17, 18))
_GROUPS = ("probe", "G1", "G2")

# Pairs of templates scored per matrix-product block (gallery chunk x all probes).
_BLOCK_ELEMS = 1 << 23


# --------------------------------------------------------------------------- CSV


def _read_csv(path, required):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(path, "file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise DataFileError(path, "empty file")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFileError(path, f"missing column(s) {missing}; the header is {header}")
    cols = {name: header.index(name) for name in header}
    body = rows[1:]
    for i, r in enumerate(body):
        if len(r) < len(header):
            raise DataFileError(path, f"line {i + 2} has {len(r)} fields; the header "
                                f"has {len(header)}")
    return cols, body


def _numbers(path, body, col, name, integer):
    out = np.empty(len(body), np.float64)
    for i, r in enumerate(body):
        text = r[col].strip()
        try:
            out[i] = float(text) if text else math.nan
        except ValueError:
            raise DataFileError(path, f"line {i + 2}: {name} {text!r} is not a "
                                "number") from None
    if integer:
        bad = ~np.isfinite(out) | (out != np.round(out))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataFileError(path, f"line {i + 2}: {name} {body[i][col]!r} is not "
                                "an integer")
        return out.astype(np.int64)
    return out


@dataclasses.dataclass
class TemplateList:
    """One protocol CSV: per row TEMPLATE_ID, SUBJECT_ID (int64 [R]), FILENAME."""
    template_id: np.ndarray
    subject_id: np.ndarray
    filename: list
    path: str = None


def read_template_csv(path):
    """Reads ``ijbc_1N_gallery_G1/G2.csv`` or ``ijbc_1N_probe_mixed.csv``."""
    cols, body = _read_csv(path, ("TEMPLATE_ID", "SUBJECT_ID", "FILENAME"))
    return TemplateList(
        template_id=_numbers(path, body, cols["TEMPLATE_ID"], "TEMPLATE_ID", True),
        subject_id=_numbers(path, body, cols["SUBJECT_ID"], "SUBJECT_ID", True),
        filename=[r[cols["FILENAME"]].strip() for r in body], path=os.fspath(path))


@dataclasses.dataclass
class Metadata:
    """``ijbc_metadata.csv``: SUBJECT_ID float64 [R] (NaN where empty), FILENAME,
    OCC float64 [R, 18] in process.m's column order (NaN where empty)."""
    subject_id: np.ndarray
    filename: list
    occ: np.ndarray
    path: str = None


def read_metadata_csv(path, need_occlusion=True):
    """Reads ``ijbc_metadata.csv`` (OCC columns only required when needed)."""
    required = ("SUBJECT_ID", "FILENAME") + (
        tuple(sorted(set(PROCESS_M_OCC_COLUMNS))) if need_occlusion else ())
    cols, body = _read_csv(path, required)
    occ = np.full((len(body), len(PROCESS_M_OCC_COLUMNS)), math.nan)
    for k, name in enumerate(PROCESS_M_OCC_COLUMNS):
        if name in cols:
            occ[:, k] = _numbers(path, body, cols[name], name, False)
    return Metadata(subject_id=_numbers(path, body, cols["SUBJECT_ID"], "SUBJECT_ID",
                                        False),
                    filename=[r[cols["FILENAME"]].strip() for r in body], occ=occ,
                    path=os.fspath(path))


def read_matches_csv(path):
    """Reads ``ijbc_11_G1_G2_matches.csv``: int64 [K, 2] (gallery, probe) ids.

    The official file has no header (``csvread`` would fail on one); a first line
    that is not numeric is skipped anyway.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(path, "file not found")
    pairs = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for i, r in enumerate(csv.reader(f)):
            if not r:
                continue
            try:
                a, b = int(r[0]), int(r[1])
            except (ValueError, IndexError):
                if i == 0:
                    continue
                raise DataFileError(path, f"line {i + 1}: expected two integer "
                                    f"template ids, got {r}") from None
            pairs.append((a, b))
    return np.array(pairs, np.int64).reshape(-1, 2)


def metadata_rows(metadata, occluded=True, available=None):
    """The metadata rows that have features, in order (process.m's ``valid_idx``).

    Args:
        metadata: `Metadata`.
        occluded: keep only rows with an occlusion flag (process.m's active part:
            ``sum(OCC) > 0`` over its 18 columns, OCC8 replaced by OCC18; an empty
            flag makes the sum NaN, so the row is not selected).
        available: optional bool [R]: rows whose face crop exists (the original
            checks the crop file; we cannot).

    Returns:
        int64 [F] 0-based metadata rows; feature row f is metadata row ``[f]``.
    """
    keep = np.ones(len(metadata.filename), bool)
    if occluded:
        keep &= np.sum(metadata.occ, axis=1) > 0
    if available is not None:
        keep &= np.asarray(available, bool)
    return np.flatnonzero(keep)


# --------------------------------------------------------------------------- templates


@dataclasses.dataclass
class TemplateIndex:
    """The prepared ``ijbc_temp_ID_face_indx`` struct, 0-based.

    For each group g in ``probe``, ``G1``, ``G2``: ``ids[g]`` int64 [T] template ids
    (ascending, as MATLAB ``unique``), ``subjects[g]`` int64 [T], ``faces[g]`` list
    of T int64 arrays: 0-based feature rows (possibly empty).
    """
    ids: dict
    subjects: dict
    faces: dict
    path: str = None
    n_feature_rows: int = None   # selected metadata rows, when built from the CSVs


def build_template_index(metadata, g1, g2, probe, rows=None):
    """process.m: maps every protocol template to feature rows.

    For each template (ascending id), its subject is the one subject of its rows;
    each of its rows, in CSV order, becomes the first selected metadata row of that
    subject with the same FILENAME (rows with no match are left out, so templates
    can be empty).

    Args:
        metadata: `Metadata`.
        g1, g2, probe: `TemplateList`.
        rows: int [F] selected metadata rows (`metadata_rows`); default all.

    Returns:
        `TemplateIndex`.
    """
    rows = np.arange(len(metadata.filename)) if rows is None else np.asarray(rows)
    first = {}
    for f, r in enumerate(rows):
        s = metadata.subject_id[r]
        if np.isfinite(s):
            first.setdefault((int(s), metadata.filename[r]), f)
    out = TemplateIndex(ids={}, subjects={}, faces={})
    for name, tl in (("probe", probe), ("G1", g1), ("G2", g2)):
        ids, inverse = np.unique(tl.template_id, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(ids)))]
        subjects = np.zeros(len(ids), np.int64)
        faces = []
        for t in range(len(ids)):
            members = order[bounds[t]:bounds[t + 1]]
            subj = np.unique(tl.subject_id[members])
            if len(subj) != 1:
                raise DataFileError(tl.path or name, f"template {int(ids[t])} has "
                                    f"several SUBJECT_IDs {subj.tolist()}")
            subjects[t] = subj[0]
            hits = [first.get((int(subj[0]), tl.filename[m])) for m in members]
            faces.append(np.array([h for h in hits if h is not None], np.int64))
        out.ids[name], out.subjects[name], out.faces[name] = ids, subjects, faces
    return out


def _cell_of_rows(faces):
    cell = np.empty((len(faces), 1), dtype=object)
    for i, f in enumerate(faces):
        f = np.asarray(f, np.float64) + 1.0
        cell[i, 0] = f.reshape(1, -1) if f.size else np.zeros((0, 0))
    return cell


def write_template_index_mat(path, index):
    """Writes ``ijbc_temp_ID_face_indx.mat`` as process.m saves it (1-based)."""
    struct = {}
    for g in _GROUPS:
        struct[f"{g}_temp_ID"] = np.asarray(index.ids[g], np.float64).reshape(-1, 1)
        struct[f"{g}_subj_ID"] = np.asarray(index.subjects[g], np.float64).reshape(-1, 1)
        struct[f"{g}_face_indx"] = _cell_of_rows(index.faces[g])
    with atomic_write(path, "wb") as f:
        scipy.io.savemat(f, {TEMPLATE_INDEX_VAR: struct}, do_compression=True)


def read_template_index_mat(path):
    """Reads the prepared ``ijbc_temp_ID_face_indx.mat``.

    Raises:
        DataFileError: missing file, struct or field, mismatched lengths, face
            indices that are not positive integers.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(path, "file not found")
    try:
        raw = scipy.io.loadmat(path, variable_names=[TEMPLATE_INDEX_VAR])
    except NotImplementedError:
        raise DataFileError(path, "MATLAB v7.3 (HDF5) files are not supported; "
                            "re-save with save(..., '-v7')") from None
    except Exception as e:  # scipy raises several exception types for corrupt files
        raise DataFileError(path, f"not a readable MATLAB .mat file ({e})") from None
    if TEMPLATE_INDEX_VAR not in raw:
        raise DataFileError(path, f"missing variable {TEMPLATE_INDEX_VAR!r}")
    s = raw[TEMPLATE_INDEX_VAR]
    if s.dtype.names is None or s.size != 1:
        raise DataFileError(path, f"{TEMPLATE_INDEX_VAR} is not a 1 x 1 struct")
    s = s.reshape(-1)[0]
    out = TemplateIndex(ids={}, subjects={}, faces={}, path=path)
    for g in _GROUPS:
        fields = [f"{g}_temp_ID", f"{g}_subj_ID", f"{g}_face_indx"]
        for name in fields:
            if name not in s.dtype.names:
                raise DataFileError(path, f"struct field {name!r} is missing; it has "
                                    f"{list(s.dtype.names)}")
        ids = np.asarray(s[fields[0]], np.float64).reshape(-1)
        subj = np.asarray(s[fields[1]], np.float64).reshape(-1)
        cell = np.asarray(s[fields[2]]).reshape(-1)
        if not (len(ids) == len(subj) == len(cell)):
            raise DataFileError(path, f"{g}: {len(ids)} template ids, {len(subj)} "
                                f"subjects and {len(cell)} face lists")
        faces = []
        for t, entry in enumerate(cell):
            f = np.asarray(entry, np.float64).reshape(-1)
            if f.size and (np.any(f < 1) or np.any(f != np.round(f))):
                raise DataFileError(path, f"{g}_face_indx{{{t + 1}}} holds values "
                                    "that are not 1-based indices")
            faces.append(f.astype(np.int64) - 1)
        out.ids[g] = ids.astype(np.int64)
        out.subjects[g] = subj.astype(np.int64)
        out.faces[g] = faces
    return out


def template_means(features, faces, source="<template index>"):
    """Mean feature of each template: float64 [T, D] and bool [T] non-empty."""
    n, dim = features.shape
    sizes = np.array([len(f) for f in faces], np.int64)
    rows = np.concatenate([np.asarray(f, np.int64) for f in faces]) if len(faces) \
        else np.zeros(0, np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise DataFileError(source, f"face index {int(rows.max()) + 1} is beyond the "
                            f"{n} feature rows")
    means = np.full((len(faces), dim), np.nan)
    live = sizes > 0
    if live.any():
        starts = np.r_[0, np.cumsum(sizes)][:-1][live]
        means[live] = np.add.reduceat(features[rows], starts, axis=0) / sizes[live, None]
    return means, live


# --------------------------------------------------------------------------- evaluation


def _lookup(ids, wanted):
    """Position of each wanted id in ascending ``ids``, -1 where absent."""
    pos = np.searchsorted(ids, wanted)
    pos = np.minimum(pos, max(len(ids) - 1, 0))
    ok = (ids[pos] == wanted) if len(ids) else np.zeros(len(wanted), bool)
    return np.where(ok, pos, -1)


def _pair_distances(gallery_n, probe_n, gi, pi):
    """1 - min(g . p, 1) for the listed (gallery, probe) rows, by blocks of gallery."""
    out = np.empty(len(gi))
    order = np.argsort(gi, kind="stable")
    gs = gi[order]
    step = max(1, _BLOCK_ELEMS // max(len(probe_n), 1))
    for g0 in range(0, len(gallery_n), step):
        lo, hi = np.searchsorted(gs, [g0, g0 + step])
        if lo == hi:
            continue
        sel = order[lo:hi]
        sim = gallery_n[g0:g0 + step] @ probe_n.T
        out[sel] = sim[gi[sel] - g0, pi[sel]]
    return 1.0 - np.minimum(out, 1.0)


def verify_ijbc(features, index, matches, matches_path="<matches>", threads=1):
    """verify.m: template-mean 1:1 verification.

    A match's first id is looked up in G1 and then G2 (G2 wins when in both, as
    in the original); its second id in the probes. Pairs with an empty template
    are skipped.

    Args:
        features: float [N, D].
        index: `TemplateIndex`.
        matches: int [K, 2].

    Returns:
        dict: ``tar_at_far_<t>`` (three equal scores), ``far_reached_<t>``,
        ``n_pairs``, ``n_pos``, ``n_neg``, ``n_skipped``, interpolated extras;
        private ``_dist`` [K'] and ``_same`` [K'].

    Raises:
        DataFileError: a match id in no gallery (the original silently reuses the
            previous match's template then) or not among the probes.
    """
    feats = np.asarray(features, np.float64)
    matches = np.asarray(matches, np.int64).reshape(-1, 2)
    g1 = _lookup(index.ids["G1"], matches[:, 0])
    g2 = _lookup(index.ids["G2"], matches[:, 0])
    pr = _lookup(index.ids["probe"], matches[:, 1])
    if np.any((g1 < 0) & (g2 < 0)):
        bad = int(matches[(g1 < 0) & (g2 < 0), 0][0])
        raise DataFileError(matches_path, f"template {bad} is in neither G1 nor G2")
    if np.any(pr < 0):
        raise DataFileError(matches_path, f"template {int(matches[pr < 0, 1][0])} is "
                            "not a probe template")
    n_g1 = len(index.ids["G1"])
    gi = np.where(g2 >= 0, n_g1 + g2, g1)       # position in [G1; G2]
    src = index.path or "<template index>"
    gm, g_live = template_means(feats, index.faces["G1"] + index.faces["G2"], src)
    pm, p_live = template_means(feats, index.faces["probe"], src)
    g_subj = np.r_[index.subjects["G1"], index.subjects["G2"]]
    keep = g_live[gi] & p_live[pr]
    gi, pr = gi[keep], pr[keep]
    with blas_threads(threads):
        dist = _pair_distances(ijba.normalize_rows(gm), ijba.normalize_rows(pm), gi, pr)
    same = g_subj[gi] == index.subjects["probe"][pr]
    result = {"n_pairs": int(len(dist)), "n_pos": int(same.sum()),
              "n_neg": int((~same).sum()), "n_skipped": int((~keep).sum())}
    tar, far, _ = ijba.tar_at_far(dist, same)
    interp = ijba.interpolated_tar_at_far(dist, same)
    for k, t in enumerate(ijba.FAR_TARGETS):
        result[f"tar_at_far_{t}"] = [tar[k]] * 3
        result[f"far_reached_{t}"] = [far[k]] * 3
        result[f"{ijba.NOT_IN_ORIGINAL}_interpolated_tar_at_far_{t}"] = [interp[k]] * 3
    result["_dist"], result["_same"] = dist, same
    return result


def search_ijbc(features, index, empty_rule="original", threads=1):
    """search.m: closed-set identification against the G1 + G2 gallery.

    Args:
        features: float [N, D].
        index: `TemplateIndex`.
        empty_rule: ``"original"``: as search.m, keep the probe rows whose
            distance to the *first* gallery template is non-zero and the gallery
            columns whose distance to the *first* closed-set probe is non-zero
            (empty templates have distance 0); ``"nonempty"``: keep the non-empty
            probe and gallery templates.

    Returns:
        dict: ``rank1`` (search.m's ``acc``), ``rank5``, ``rank10``, ``cmc``,
        ``n_probes``, ``n_gallery``; private ``_ranks``.
    """
    if empty_rule not in ("original", "nonempty"):
        raise ValueError(f"empty_rule must be original or nonempty, not {empty_rule!r}")
    feats = np.asarray(features, np.float64)
    src = index.path or "<template index>"
    g_subj = np.r_[index.subjects["G1"], index.subjects["G2"]]
    p_subj = index.subjects["probe"]
    closed = (ijba.closed_set_mask(p_subj, index.subjects["G1"])
              | ijba.closed_set_mask(p_subj, index.subjects["G2"]))
    gm, g_live = template_means(feats, index.faces["G1"] + index.faces["G2"], src)
    faces = [f for f, c in zip(index.faces["probe"], closed) if c]
    pm, p_live = template_means(feats, faces, src)
    p_subj = p_subj[closed]
    with blas_threads(threads):
        sim = ijba.normalize_rows(pm) @ ijba.normalize_rows(gm).T
    dist = 1.0 - np.minimum(sim, 1.0)
    dist[~p_live] = 0.0
    dist[:, ~g_live] = 0.0
    if empty_rule == "original":
        if dist.size == 0:
            rows = cols = np.zeros(0, np.int64)
        else:
            rows, cols = np.flatnonzero(dist[:, 0]), np.flatnonzero(dist[0, :])
        if len(rows) == 0 or len(cols) == 0:
            raise DataFileError(src, "search.m's rule keeps the rows/columns with a "
                                "non-zero distance to the first gallery template / "
                                "first closed-set probe, and that leaves nothing here "
                                "(one of them is empty); use empty_rule='nonempty'")
    else:
        rows, cols = np.flatnonzero(p_live), np.flatnonzero(g_live)
    dist = dist[np.ix_(rows, cols)]
    g_subj, p_subj = g_subj[cols], p_subj[rows]
    still = ijba.closed_set_mask(p_subj, g_subj)
    dist, p_subj = dist[still], p_subj[still]
    true_idx = ijba.true_gallery_index(p_subj, g_subj, src)
    ranks = ijba.ranks_of_true(dist, true_idx)
    n = len(ranks)
    cmc = [float(np.sum(ranks <= r) / n) if n else math.nan
           for r in range(1, max(ijba.RANKS) + 1)]
    result = {"n_probes": int(n), "n_gallery": int(len(cols)), "cmc": cmc,
              "empty_rule": empty_rule}
    for r in ijba.RANKS:
        result[f"rank{r}"] = cmc[r - 1]
    result["_ranks"] = ranks
    return result


def load_template_index(protocol_dir=None, template_index_mat=None,
                        metadata_selection="occluded"):
    """The template index: from the prepared .mat when given, else from the CSVs.

    Args:
        protocol_dir: folder with the official CSVs.
        template_index_mat: ``ijbc_temp_ID_face_indx.mat`` (takes precedence).
        metadata_selection: ``"occluded"`` (process.m) or ``"all"`` metadata rows
            as feature rows when building from the CSVs.
    """
    if template_index_mat:
        return read_template_index_mat(template_index_mat)
    if not protocol_dir:
        raise ValueError("give protocol_dir or template_index_mat")
    meta = read_metadata_csv(os.path.join(protocol_dir, METADATA_CSV),
                             need_occlusion=metadata_selection == "occluded")
    rows = metadata_rows(meta, occluded=metadata_selection == "occluded")
    index = build_template_index(
        meta, read_template_csv(os.path.join(protocol_dir, GALLERY_G1_CSV)),
        read_template_csv(os.path.join(protocol_dir, GALLERY_G2_CSV)),
        read_template_csv(os.path.join(protocol_dir, PROBE_CSV)), rows)
    index.path = os.path.join(protocol_dir, METADATA_CSV)
    index.n_feature_rows = len(rows)
    return index


def evaluate_ijbc(features, index, matches=None, task="both", empty_rule="original",
                  matches_path="<matches>", threads=1):
    """Runs verify.m and/or search.m on a feature matrix.

    Args:
        features: float [N, D] rows in the order of the face indices.
        index: `TemplateIndex`.
        matches: int [K, 2] (needed for verification).
        task: ``"verify"``, ``"search"`` or ``"both"``.

    Returns:
        dict with ``verify`` and/or ``search`` sections and ``seconds``.
    """
    if task not in ("verify", "search", "both"):
        raise ValueError(f"task must be verify, search or both, not {task!r}")
    t0 = time.perf_counter()
    feats = np.asarray(features, np.float64)
    expected = index.n_feature_rows
    if expected is not None and expected != len(feats):
        raise DataFileError(index.path or "<template index>",
                            f"{expected} metadata rows are selected as feature rows, "
                            f"but the features have {len(feats)} rows")
    out = {"task": task, "n_images": int(len(feats))}
    if task in ("verify", "both"):
        if matches is None:
            raise ValueError("verification needs the matches")
        out["verify"] = verify_ijbc(feats, index, matches, matches_path, threads)
    if task in ("search", "both"):
        out["search"] = search_ijbc(feats, index, empty_rule, threads)
    out["seconds"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- output


def results_text(results):
    """verify.m / search.m disp lines, then the labelled extras."""
    num = ijba.num2str
    lines = []
    if "verify" in results:
        v = results["verify"]
        lines.append(f"IJB-C: acc@0.01FAR = {num(v['tar_at_far_0.01'][2])} , "
                     f"acc@0.001FAR = {num(v['tar_at_far_0.001'][2])}")
        key = f"{ijba.NOT_IN_ORIGINAL}_interpolated_tar_at_far_"
        lines.append(f"[not in the original] TAR at exactly FAR 0.01 = "
                     f"{num(v[key + '0.01'][2])} , at FAR 0.001 = "
                     f"{num(v[key + '0.001'][2])}")
    if "search" in results:
        s = results["search"]
        lines.append(f"IJB-C: rank-1 = {num(s['rank1'])}")
        lines.append(f"rank-5 = {num(s['rank5'])} , rank-10 = {num(s['rank10'])}")
    lines.append(f"seconds: {results.get('seconds', math.nan):.3f}")
    return "\n".join(lines) + "\n"


def write_outputs(results, output_dir):
    """Writes ``ijbc_results.json``, ``ijbc_results.txt`` and ROC / CMC PNGs."""
    plt = plotting.pyplot()

    os.makedirs(output_dir, exist_ok=True)
    written = []
    path = os.path.join(output_dir, "ijbc_results.json")
    atomic_save_text(path, json.dumps(json_safe(results, drop_private=True), indent=2) + "\n")
    written.append(path)
    path = os.path.join(output_dir, "ijbc_results.txt")
    atomic_save_text(path, results_text(results))
    written.append(path)
    if "verify" in results:
        tar, far = ijba.roc(results["verify"]["_dist"], results["verify"]["_same"])
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ok = far > 0
        ax.plot(far[ok], tar[ok], lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("FAR")
        ax.set_ylabel("TAR")
        ax.set_title("IJB-C 1:1 verification ROC")
        ax.grid(True, which="both", alpha=0.3)
        path = os.path.join(output_dir, "ijbc_roc.png")
        plotting.save_figure(fig, path)
        written.append(path)
    if "search" in results:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ranks = np.arange(1, max(ijba.RANKS) + 1)
        ax.plot(ranks, results["search"]["cmc"], marker=".")
        ax.set_xticks(ranks)
        ax.set_xlabel("rank")
        ax.set_ylabel("identification rate")
        ax.set_title("IJB-C closed-set CMC")
        ax.grid(True, alpha=0.3)
        path = os.path.join(output_dir, "ijbc_cmc.png")
        plotting.save_figure(fig, path)
        written.append(path)
    return written


def load_features(path):
    """Features from .txt / .npy (as `ijba.load_features`) or a .mat with ``feat``.

    Raises:
        DataFileError: missing or unreadable file, no ``feat``, NaN or infinite
            values (the first 1-based rows of ``feat`` holding them are named).
    """
    if os.fspath(path).endswith(".mat"):
        feat = np.asarray(mat_files.load_mat_variable(path, "feat"), np.float64)
        check_finite(path, feat, "feature values in feat", unit="row")
        return feat
    return ijba.load_features(path)


if __name__ == "__main__":
    # ``python -m`` on this module keeps working; the command is ijbc_cli.
    from interp_fr.eval.ijbc_cli import run
    run()
