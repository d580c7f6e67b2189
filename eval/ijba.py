"""IJB-A 1:1 verification and 1:N search, ported from the original MATLAB scripts.

``CNN_single_verify.m`` / ``CNN_single_search.m`` (and their ``_subset`` variants
for the occluded images) with MATLAB's semantics (BUILD_NOTES.md, "IJB-A / IJB-C evaluation", lists each one):

* a template is every sighting of its templateID (file order), no averaging;
* d = pairwise cosine distance (1 - cos, float64) between the two templates'
  feature rows, computed like MATLAB's ``pdist2(..., 'cosine')``: rows scaled to
  unit norm, dot products clamped to <= 1, zero rows give NaN;
* three scores ``mean(d(:))``, ``min(d(:))``, ``mean([min(d), min(d')])``, where
  MATLAB's ``min`` of a row or column vector is its scalar minimum, so the third
  equals the second when either template has one image; ``min`` ignores NaN;
* verification: stable ascending sort, cumulative TAR_j / FAR_j, the first j with
  the smallest |FAR_j - target|; identification: closed-set probes, rank of the
  true gallery template in the stable ascending sort of score 3;
* mean and sample standard deviation (N - 1) over the splits.

Nothing loops over template pairs. Search: one matrix product of the (de-duplicated)
probe images against the gallery images per block, reduced per gallery template
with ``reduceat`` and per probe template with gathers (plus one small loop over
the multi-image probe templates for the column maxima). Verification: the same
per template of the comparison side with fewer distinct templates, against the
images of its partners only.

Beyond the original (labelled so in every output): open-set identification FNIR
at FPIR 0.01 / 0.1, and TAR at exactly FAR 0.01 / 0.001 by linear interpolation
of the ROC.

Command line (``python -m eval.ijba`` in a checkout, ``python -m
interp_fr.eval.ijba`` or ``interp-fr-ijba`` once installed)::

    python -m eval.ijba --features IJBA_features_iter_0.txt \\
        --protocol_dir IJB-A --dataset_mat IJB-A/dataset.mat \\
        --task both --subset all --output_dir out/ijba
"""
import dataclasses
import json
import math
import os
import time

import numpy as np

from interp_fr.common.atomic_io import atomic_save_text
from interp_fr.data import ijba_protocol
from interp_fr.common.errors import DataFileError, check_finite, text_line_numbers
from interp_fr.common import plotting
from interp_fr.eval.blas_threads import blas_threads
from interp_fr.common.json_safe import json_safe

SCORE_NAMES = ("mean", "min", "mean_of_minima")  # MATLAB dist(:, 1..3)
REPORTED_SCORE = 2  # 0-based: score 3 is the one the original prints
FAR_TARGETS = (0.01, 0.001)
RANKS = (1, 5, 10)
FPIR_TARGETS = (0.01, 0.1)
# The subset search script replaces zero distances (empty templates) by this.
EMPTY_DISTANCE = 100.0
NOT_IN_ORIGINAL = "not_in_original"

# Work block for the image similarity matrix (float64 entries, ~128 MB).
_BLOCK_ELEMS = 1 << 24


# --------------------------------------------------------------------------- features


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


# --------------------------------------------------------------------------- templates


@dataclasses.dataclass
class Templates:
    """Templates of one protocol file, as index arrays.

    ``ids`` int64 [T] ascending (MATLAB ``unique``); ``subjects`` int64 [T];
    ``rows`` int64 [sum of sizes]: 0-based feature rows, template by template,
    each template's rows in file order; ``starts`` int64 [T + 1] offsets into
    ``rows`` (template t is ``rows[starts[t]:starts[t + 1]]``, possibly empty).
    """
    ids: np.ndarray
    subjects: np.ndarray
    rows: np.ndarray
    starts: np.ndarray

    @property
    def sizes(self):
        return np.diff(self.starts)

    def __len__(self):
        return len(self.ids)

    def take(self, index):
        """The templates ``index`` (int [k]) in that order, as a new `Templates`."""
        index = np.asarray(index, np.int64)
        sizes = self.sizes[index]
        starts = np.zeros(len(index) + 1, np.int64)
        np.cumsum(sizes, out=starts[1:])
        # Gather the segments without a loop: position p of the output belongs to
        # segment k; its source is old_start[k] + (p - new_start[k]).
        seg = np.repeat(np.arange(len(index)), sizes)
        src = self.starts[index][seg] + (np.arange(starts[-1]) - starts[seg])
        return Templates(ids=self.ids[index], subjects=self.subjects[index],
                         rows=self.rows[src], starts=starts)


def build_templates(table, image_rows, keep=None):
    """Groups a metadata table into templates.

    Args:
        table: `ijba_protocol.ProtocolTable`.
        image_rows: int [R] 0-based feature row of each table row.
        keep: optional bool [R]; rows where it is false are left out (the occluded
            subset); templates may then be empty.

    Returns:
        `Templates`.

    Raises:
        DataFileError: a template whose rows carry more than one subjectID (the
            original's ``temp_subject(p) = unique(subjectID(idx))`` fails then).
    """
    tid = np.asarray(table.templateID, np.int64)
    ids, inverse = np.unique(tid, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(ids))
    full_starts = np.zeros(len(ids) + 1, np.int64)
    np.cumsum(counts, out=full_starts[1:])
    subj_sorted = np.asarray(table.subjectID, np.int64)[order]
    if len(ids):
        lo = np.minimum.reduceat(subj_sorted, full_starts[:-1])
        hi = np.maximum.reduceat(subj_sorted, full_starts[:-1])
        if np.any(lo != hi):
            t = int(ids[np.argmax(lo != hi)])
            raise DataFileError(table.source, f"template {t} has rows with different "
                                "subjectIDs")
        subjects = lo
    else:
        subjects = np.zeros(0, np.int64)
    rows = np.asarray(image_rows, np.int64)[order]
    starts = full_starts
    if keep is not None:
        kept = np.asarray(keep, bool)[order]
        rows = rows[kept]
        starts = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(np.bincount(inverse[order][kept], minlength=len(ids)),
                  out=starts[1:])
    return Templates(ids=ids, subjects=subjects, rows=rows, starts=starts)


def template_index(templates, ids, source="<protocol>"):
    """Positions of template ``ids`` in ``templates.ids`` (error if absent)."""
    ids = np.asarray(ids, np.int64)
    pos = np.searchsorted(templates.ids, ids)
    pos = np.minimum(pos, max(len(templates.ids) - 1, 0))
    ok = templates.ids[pos] == ids if len(templates.ids) else np.zeros(len(ids), bool)
    if not np.all(ok):
        raise DataFileError(source, f"template id {int(ids[~ok][0])} is not in the "
                            "metadata")
    return pos


# --------------------------------------------------------------------------- scores


def _max_op(xn, has_nan):
    # MATLAB's min skips NaN (a slice is NaN only when all of it is); the plain
    # maximum is faster and gives the same values when no NaN can occur.
    if has_nan is None:
        has_nan = bool(np.isnan(xn).any())
    return np.fmax if has_nan else np.maximum


def _to_distance(sim_max):
    """Largest similarities -> smallest distances: 1 - min(s, 1), NaN kept."""
    return 1.0 - np.minimum(sim_max, 1.0)


def cross_scores(xn, probe, gallery, need_mean=True, block_elems=_BLOCK_ELEMS,
                 has_nan=None):
    """The three MATLAB template scores for every (probe, gallery) template pair.

    d(i, j) = 1 - min(x_i . y_j, 1) for unit rows, so every minimum of d is one
    minus a maximum of similarities: the reductions run on similarities and only
    their results are turned into distances.

    Args:
        xn: float64 [N, D] rows from `normalize_rows`.
        probe: `Templates` (P templates), the row side of d. Its images are
            de-duplicated before the matrix product (IJB-A probe sightings recur
            in about three templates each), so give it the larger side.
        gallery: `Templates` (G templates), the column side of d.
        need_mean: also compute score 1 (one more pass over the block).
        block_elems: bound on the image-similarity block held at once.
        has_nan: whether ``xn`` has NaN (None: check).

    Returns:
        (mean, min, mean_of_minima), each float64 [P, G] (mean is None when not
        requested). Pairs with an empty template are NaN.
    """
    n_p, n_g = len(probe), len(gallery)
    out_mean = np.full((n_p, n_g), np.nan) if need_mean else None
    out_min = np.full((n_p, n_g), np.nan)
    out_mom = np.full((n_p, n_g), np.nan)
    g_ne = np.flatnonzero(gallery.sizes > 0)
    p_ne = np.flatnonzero(probe.sizes > 0)
    if len(g_ne) == 0 or len(p_ne) == 0:
        return out_mean, out_min, out_mom
    vmax = _max_op(xn, has_nan)
    g = gallery.take(g_ne)
    g_sizes = g.sizes
    g_starts = g.starts[:-1]
    xg = xn[g.rows]
    n_gi = len(g.rows)
    p = probe.take(p_ne)
    max_rows = max(1, block_elems // n_gi)
    first = 0
    while first < len(p):
        # A block of whole probe templates whose rows fit the element budget.
        last = int(np.searchsorted(p.starts, p.starts[first] + max_rows, "right")) - 1
        last = min(max(last, first + 1), len(p))
        r0 = p.starts[first]
        uniq, inv = np.unique(p.rows[r0:p.starts[last]], return_inverse=True)
        local = p.starts[first:last] - r0
        sizes_b = p.sizes[first:last]
        sim = xn[uniq] @ xg.T                                # [U, Gi]
        # Per (image, gallery template): the row maxima of the block.
        row_max = vmax.reduceat(sim, g_starts, axis=1)       # [U, G']
        # Per probe template; reduceat runs along the contiguous axis (fast).
        per_row_t = np.ascontiguousarray(row_max[inv].T)     # [G', rows]
        best = vmax.reduceat(per_row_t, local, axis=1).T     # [Pb, G']
        sum_row_min = np.add.reduceat(_to_distance(per_row_t), local, axis=1).T
        # Per (probe template, gallery image): the column maxima.
        col_max = sim[inv[local]]                            # right for 1-image
        for k in np.flatnonzero(sizes_b > 1):
            vmax.reduce(sim[inv[local[k]:local[k] + sizes_b[k]]], axis=0,
                        out=col_max[k])
        np.minimum(col_max, 1.0, out=col_max)
        np.subtract(1.0, col_max, out=col_max)
        sum_col_min = np.add.reduceat(col_max, g_starts, axis=1)   # [Pb, G']
        min_d = _to_distance(best)
        # MATLAB: mean([min(d), min(d')]); a row or column d collapses to min(d(:)).
        n_b = sizes_b[:, None]
        mom = (sum_col_min + sum_row_min) / (n_b + g_sizes[None, :])
        mom = np.where((n_b == 1) | (g_sizes[None, :] == 1), min_d, mom)
        block = np.ix_(p_ne[first:last], g_ne)
        out_min[block] = min_d
        out_mom[block] = mom
        if need_mean:
            d_all = _to_distance(sim)
            d_sum_t = np.ascontiguousarray(np.add.reduceat(d_all, g_starts, axis=1)[inv].T)
            tot = np.add.reduceat(d_sum_t, local, axis=1).T
            out_mean[block] = tot / (n_b * g_sizes[None, :])
        first = last
    return out_mean, out_min, out_mom


def _grouped_pair_scores(xn, a, b, ia, ib, vmax):
    """Scores of pairs (a[ia[k]], b[ib[k]]), one matrix product per template of a."""
    out = np.full((len(ia), 3), np.nan)
    order = np.argsort(ia, kind="stable")
    ia_s = ia[order]
    bounds = np.r_[np.flatnonzero(np.r_[True, ia_s[1:] != ia_s[:-1]]), len(order)]
    a_sizes, b_sizes = a.sizes, b.sizes
    for s, e in zip(bounds[:-1], bounds[1:]):
        members = order[s:e]
        t = ia[members[0]]
        n_a = a_sizes[t]
        partners, back = np.unique(ib[members], return_inverse=True)
        n_b = b_sizes[partners]
        if n_a == 0:
            continue
        live = n_b > 0
        if not live.all():
            partners, n_b = partners[live], n_b[live]
            keep = live[back]
            members, back = members[keep], np.cumsum(live)[back[keep]] - 1
            if len(partners) == 0:
                continue
        part = b.take(partners)
        starts = part.starts[:-1]
        sim = xn[a.rows[a.starts[t]:a.starts[t + 1]]] @ xn[part.rows].T   # [n_a, m]
        row_max = vmax.reduceat(sim, starts, axis=1)                       # [n_a, k]
        col_max = vmax.reduce(sim, axis=0)                                 # [m]
        min_d = _to_distance(vmax.reduce(row_max, axis=0))
        sum_row = np.add.reduce(_to_distance(row_max), axis=0)
        sum_col = np.add.reduceat(_to_distance(col_max), starts)
        mom = (sum_col + sum_row) / (n_a + n_b)
        mom = np.where((n_a == 1) | (n_b == 1), min_d, mom)
        mean = np.add.reduce(np.add.reduceat(_to_distance(sim), starts, axis=1),
                             axis=0) / (n_a * n_b)
        out[members, 0] = mean[back]
        out[members, 1] = min_d[back]
        out[members, 2] = mom[back]
    return out


def pair_scores(xn, left, right, pairs, has_nan=None):
    """The three scores of listed template pairs (verification).

    Work is proportional to the image pairs actually compared: the pairs are
    grouped by the side with fewer distinct templates and each group is one
    matrix product of that template against its partners' images. When the
    pairs cover most of the template cross product, one `cross_scores` call is
    used instead.

    Args:
        xn: float64 [N, D] normalised features.
        left, right: `Templates`.
        pairs: int [K, 2] positions (into ``left`` and ``right``).
        has_nan: whether ``xn`` has NaN (None: check).

    Returns:
        float64 [K, 3]: MATLAB ``dist(:, 1:3)``; NaN where a template is empty.
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return np.zeros((0, 3))
    vmax = _max_op(xn, has_nan)
    ul, il = np.unique(pairs[:, 0], return_inverse=True)
    ur, ir = np.unique(pairs[:, 1], return_inverse=True)
    if len(pairs) * 4 >= len(ul) * len(ur):
        lt, rt = left.take(ul), right.take(ur)
        # The de-duplicated (row) side should be the one with more images.
        if lt.sizes.sum() >= rt.sizes.sum():
            m, mn, mom = cross_scores(xn, lt, rt, has_nan=vmax is np.fmax)
            return np.stack([m[il, ir], mn[il, ir], mom[il, ir]], axis=1)
        m, mn, mom = cross_scores(xn, rt, lt, has_nan=vmax is np.fmax)
        return np.stack([m[ir, il], mn[ir, il], mom[ir, il]], axis=1)
    # The scores are symmetric in the two templates (d versus d'), so group by
    # whichever side has fewer distinct templates.
    if len(ur) < len(ul):
        return _grouped_pair_scores(xn, right, left, pairs[:, 1], pairs[:, 0], vmax)
    return _grouped_pair_scores(xn, left, right, pairs[:, 0], pairs[:, 1], vmax)


# --------------------------------------------------------------------------- metrics


def _first_argmin(values):
    """MATLAB ``[~, i] = min(v)``: first minimum, NaN skipped, 0 if all NaN."""
    if values.size == 0:
        return None
    if np.all(np.isnan(values)):
        return 0
    return int(np.nanargmin(values))


def roc(dist, same):
    """Cumulative TAR_j and FAR_j after MATLAB's stable ascending sort.

    Args:
        dist: float [K] distances (NaN sorts last, as in MATLAB).
        same: bool [K] same-subject flags.

    Returns:
        (tar, far): float64 [K] each; TAR_j = (#same in the first j) / (#same),
        FAR_j = (#different in the first j) / (#different); NaN when a class is
        empty (0/0, as MATLAB).
    """
    order = np.argsort(np.asarray(dist, np.float64), kind="stable")
    s = np.asarray(same, bool)[order]
    tp = np.cumsum(s, dtype=np.float64)
    fp = np.cumsum(~s, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / np.float64(s.sum()), fp / np.float64((~s).sum())


def tar_at_far(dist, same, targets=FAR_TARGETS):
    """The original's operating point: TAR_j at the first j minimising |FAR_j - t|.

    Returns:
        (tar, far, j): three lists over ``targets``: the TAR, the FAR actually
        reached and the 1-based j. NaN / None for an empty comparison list.
    """
    tar, far = roc(dist, same)
    out_tar, out_far, out_j = [], [], []
    for t in targets:
        j = _first_argmin(np.abs(far - t))
        if j is None:
            out_tar.append(math.nan), out_far.append(math.nan), out_j.append(None)
        else:
            out_tar.append(float(tar[j])), out_far.append(float(far[j]))
            out_j.append(j + 1)
    return out_tar, out_far, out_j


def interpolated_tar_at_far(dist, same, targets=FAR_TARGETS):
    """Not in the original: TAR at exactly FAR = t on the ROC of distinct thresholds.

    Operating points are taken after each group of tied distances (a threshold
    cannot split ties), starting at (0, 0); TAR is linearly interpolated in FAR
    between the two points around t (the last point wins for equal FARs).

    Returns:
        list of float over ``targets`` (NaN if a class is empty).
    """
    d = np.asarray(dist, np.float64)
    s = np.asarray(same, bool)
    keep = ~np.isnan(d)
    d, s = d[keep], s[keep]
    npos, nneg = s.sum(), (~s).sum()
    if npos == 0 or nneg == 0:
        return [math.nan for _ in targets]
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    last_of_tie = np.r_[d[1:] != d[:-1], True]
    tar = np.r_[0.0, np.cumsum(s)[last_of_tie] / npos]
    far = np.r_[0.0, np.cumsum(~s)[last_of_tie] / nneg]
    # Keep the last point of each FAR value so the abscissae strictly increase.
    last_of_far = np.r_[far[1:] != far[:-1], True]
    return [float(np.interp(t, far[last_of_far], tar[last_of_far])) for t in targets]


def closed_set_mask(probe_subjects, gallery_subjects):
    """The original's ``if intersect(subject, unique(gallery_subject))``.

    True when the subject has a gallery template *and is non-zero*: MATLAB's
    ``if`` on the intersected value is false for a subject id of 0.
    """
    p = np.asarray(probe_subjects, np.int64)
    return np.isin(p, np.asarray(gallery_subjects, np.int64)) & (p != 0)


def true_gallery_index(probe_subjects, gallery_subjects, source="<gallery>"):
    """Gallery position of each probe's subject (exactly one template each)."""
    g = np.asarray(gallery_subjects, np.int64)
    uniq, counts = np.unique(g, return_counts=True)
    p = np.asarray(probe_subjects, np.int64)
    dup = np.isin(p, uniq[counts > 1])
    if np.any(dup):
        raise DataFileError(source, f"subject {int(p[dup][0])} has several gallery "
                            "templates; the original's rank needs exactly one")
    order = np.argsort(g, kind="stable")
    return order[np.searchsorted(g[order], p)]


def ranks_of_true(dist, true_index):
    """1-based rank of the true gallery template in each row's stable ascending sort.

    Ties keep gallery order (MATLAB ``sort`` is stable), NaN sorts last.

    Args:
        dist: float [P, G].
        true_index: int [P].

    Returns:
        int64 [P].
    """
    if dist.shape[0] == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.argmax(order == np.asarray(true_index)[:, None], axis=1).astype(np.int64) + 1


def open_set_fnir(dist, mated, true_index, targets=FPIR_TARGETS):
    """Not in the original: open-set FNIR at FPIR targets (rank-1, distance threshold).

    A search returns its rank-1 gallery template (smallest distance, first on
    ties) when that distance is below the threshold. FPIR = fraction of non-mated
    probes that return a candidate; FNIR = fraction of mated probes that do not
    return their mate. For target t with N non-mated probes, k = floor(t * N)
    false alarms are allowed and the threshold is the (k + 1)-th smallest
    non-mated rank-1 distance, compared with ``<`` (so ties never push FPIR above
    t); with k >= N every candidate is accepted.

    Args:
        dist: float [P, G] distances (NaN/inf never accepted).
        mated: bool [P].
        true_index: int [P] gallery position of the mate (ignored where not mated).

    Returns:
        dict with lists ``fnir``, ``fpir`` (reached) and ``threshold`` over targets,
        plus counts.
    """
    mated = np.asarray(mated, bool)
    out = {"fpir_targets": list(targets), "fnir": [], "fpir": [], "threshold": [],
           "n_mated": int(mated.sum()), "n_nonmated": int((~mated).sum())}
    if dist.shape[0] == 0 or dist.shape[1] == 0:
        for _ in targets:
            out["fnir"].append(math.nan), out["fpir"].append(math.nan)
            out["threshold"].append(math.nan)
        return out
    filled = np.where(np.isnan(dist), np.inf, dist)
    top = np.argmin(filled, axis=1)
    top_d = filled[np.arange(len(filled)), top]
    nm = np.sort(top_d[~mated])
    n_nm = len(nm)
    hit = mated & (top == np.where(mated, true_index, -1))
    for t in targets:
        k = int(math.floor(t * n_nm + 1e-9))
        thr = math.inf if k >= n_nm else float(nm[k])
        accept = top_d < thr if k < n_nm else np.isfinite(top_d)
        fpir = float(np.mean(accept[~mated])) if n_nm else math.nan
        fnir = float(1.0 - np.mean((hit & accept)[mated])) if mated.any() else math.nan
        out["fnir"].append(fnir), out["fpir"].append(fpir), out["threshold"].append(thr)
    return out


# --------------------------------------------------------------------------- splits


def _excluded_images(tables, image_rows_list, n_images):
    """Images whose three visibility flags sum to 3 (the subset scripts' rule)."""
    excluded = np.zeros(n_images, bool)
    for table, rows in zip(tables, image_rows_list):
        full = np.sum(table.visibility, axis=1) == 3
        excluded[rows[full]] = True
    return excluded


def evaluate_verify_split(xn, dataset, split, subset="all", excluded=None, threads=1):
    """One verification split, as CNN_single_verify(_subset).m.

    Args:
        xn: float64 [N, D] normalised features.
        dataset: `ijba_protocol.DatasetIndex`.
        split: `ijba_protocol.VerifySplit`.
        subset: ``"all"`` or ``"occluded"`` (images whose three visibility flags
            are all 1 are excluded; pairs with an empty template dropped).
        excluded: bool [N] images already excluded by earlier splits (the subset
            script never resets its mask); updated in place when given.
        threads: OpenBLAS threads (`blas_threads`).

    Returns:
        dict: ``tar_at_far_<t>`` lists over the three scores, ``far_reached_<t>``,
        ``n_pairs``, ``n_pos``, ``n_neg``, ``n_dropped``, and the extra
        interpolated TARs; plus private ``_dist`` [K', 3] and ``_same`` [K'].
    """
    meta = split.metadata
    rows = dataset.image_rows(meta.sightingID, meta.source, len(xn))
    keep = None
    if subset == "occluded":
        exc = _excluded_images([meta], [rows], len(xn))
        if excluded is not None:
            excluded |= exc
            exc = excluded
        keep = ~exc[rows]
    templates = build_templates(meta, rows, keep)
    src = split.comparison_path or meta.source
    pos = np.stack([template_index(templates, split.comparison[:, 0], src),
                    template_index(templates, split.comparison[:, 1], src)], axis=1)
    with blas_threads(threads):
        dist = pair_scores(xn, templates, templates, pos)
    same = templates.subjects[pos[:, 0]] == templates.subjects[pos[:, 1]]
    n_dropped = 0
    if subset == "occluded":
        empty = (templates.sizes[pos[:, 0]] == 0) | (templates.sizes[pos[:, 1]] == 0)
        dist[empty] = 0.0
        same[empty] = False
        # The script keeps rows whose score sum is non-zero: that drops the pairs
        # with an empty template (scores left at 0), and would also drop a pair
        # whose three scores are exactly 0.
        kept = np.sum(dist, axis=1) != 0
        n_dropped = int(np.sum(~kept))
        dist, same = dist[kept], same[kept]
    result = {"split": split.split, "n_pairs": int(len(dist)),
              "n_pos": int(same.sum()), "n_neg": int((~same).sum()),
              "n_dropped": n_dropped}
    per_score = [tar_at_far(dist[:, i], same) for i in range(3)]
    interp = [interpolated_tar_at_far(dist[:, i], same) for i in range(3)]
    for k, t in enumerate(FAR_TARGETS):
        result[f"tar_at_far_{t}"] = [per_score[i][0][k] for i in range(3)]
        result[f"far_reached_{t}"] = [per_score[i][1][k] for i in range(3)]
        result[f"{NOT_IN_ORIGINAL}_interpolated_tar_at_far_{t}"] = [
            interp[i][k] for i in range(3)]
    result["_dist"], result["_same"] = dist, same
    return result


def evaluate_search_split(xn, dataset, split, subset="all", excluded=None,
                          open_set=True, threads=1):
    """One search split, as CNN_single_search(_subset).m.

    Args:
        xn: float64 [N, D] normalised features.
        dataset: `ijba_protocol.DatasetIndex`.
        split: `ijba_protocol.SearchSplit`.
        subset: ``"all"`` or ``"occluded"``.
        excluded: bool [N] carried across splits like the subset script's mask.
        open_set: also compute the open-set FNIR (needs the non-mated probes too).
        threads: OpenBLAS threads (`blas_threads`).

    Returns:
        dict: ``rank1``, ``rank5``, ``rank10``, ``cmc`` (ranks 1..10),
        ``n_probes`` (closed-set probes counted), ``n_gallery``, and the open-set
        extras; private ``_ranks``.
    """
    g_rows = dataset.image_rows(split.gallery.sightingID, split.gallery.source, len(xn))
    p_rows = dataset.image_rows(split.probe.sightingID, split.probe.source, len(xn))
    g_keep = p_keep = None
    if subset == "occluded":
        exc = _excluded_images([split.gallery, split.probe], [g_rows, p_rows], len(xn))
        if excluded is not None:
            excluded |= exc
            exc = excluded
        g_keep, p_keep = ~exc[g_rows], ~exc[p_rows]
    gallery = build_templates(split.gallery, g_rows, g_keep)
    probe = build_templates(split.probe, p_rows, p_keep)
    closed = closed_set_mask(probe.subjects, gallery.subjects)
    todo = np.arange(len(probe)) if open_set else np.flatnonzero(closed)
    with blas_threads(threads):
        _, _, mom = cross_scores(xn, probe.take(todo), gallery, need_mean=False)
    all_dist = np.full((len(probe), len(gallery)), np.nan)
    all_dist[todo] = mom
    dist = all_dist[closed]
    true_idx = true_gallery_index(probe.subjects[closed], gallery.subjects,
                                  split.gallery.source)
    if subset == "occluded":
        empty = ((probe.sizes[closed] == 0)[:, None] | (gallery.sizes == 0)[None, :])
        dist = np.where(empty, 0.0, dist)
        good = np.sum(dist, axis=1) != 0
        dist = np.where(dist == 0, EMPTY_DISTANCE, dist)
        ranks = ranks_of_true(dist, true_idx)
        ranks[np.sum(dist - EMPTY_DISTANCE, axis=1) == 0] = 0
        counted = ranks[good]
    else:
        counted = ranks = ranks_of_true(dist, true_idx)
    n = len(counted)
    cmc = [float(np.sum(counted <= r) / n) if n else math.nan
           for r in range(1, max(RANKS) + 1)]
    result = {"split": split.split, "n_probes": int(n), "n_gallery": int(len(gallery)),
              "n_closed_templates": int(closed.sum()), "cmc": cmc}
    for r in RANKS:
        result[f"rank{r}"] = cmc[r - 1]
    if open_set:
        # Empty templates (subset) never match: drop empty probes, inf for empty
        # gallery templates.
        d_open = np.where((gallery.sizes == 0)[None, :], np.inf, all_dist)
        live = probe.sizes > 0
        mate = np.zeros(len(probe), np.int64)
        mate[closed] = true_idx
        result[f"{NOT_IN_ORIGINAL}_open_set"] = open_set_fnir(
            d_open[live], closed[live], mate[live])
    result["_ranks"] = counted
    return result


def _mean_std(values):
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return math.nan, math.nan
    # MATLAB std: N - 1 normalisation, 0 for a single value.
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if v.size > 1 else 0.0)


def evaluate_ijba(features, dataset, protocol_dir, task="both", subset="all",
                  splits=None, open_set=True, log=None, threads=1):
    """Evaluates a feature matrix on the IJB-A protocol (all splits).

    Args:
        features: float [N, D] (row i = image i + 1 of ``sightingID2idx``).
        dataset: `ijba_protocol.DatasetIndex` or the path of ``dataset.mat``.
        protocol_dir: the ``IJB-A`` folder (``verify/splitN``, ``search/splitN``).
        task: ``"verify"``, ``"search"`` or ``"both"``.
        subset: ``"all"`` or ``"occluded"``.
        splits: split numbers (default 1..10).
        open_set: compute the open-set extras of search.
        log: optional callable(str) for progress lines.
        threads: OpenBLAS threads during the evaluation (`blas_threads`); None
            leaves the library's setting.

    Returns:
        dict with ``verify`` / ``search`` sections (``splits``, ``mean``, ``std``)
        and ``seconds``; ``verify.splits[i]`` holds private ``_dist`` / ``_same``
        arrays and ``search.splits[i]`` ``_ranks`` (dropped by `write_outputs`).
    """
    if task not in ("verify", "search", "both"):
        raise ValueError(f"task must be verify, search or both, not {task!r}")
    if subset not in ("all", "occluded"):
        raise ValueError(f"subset must be all or occluded, not {subset!r}")
    t0 = time.perf_counter()
    with blas_threads(threads):
        out = _evaluate_ijba(features, dataset, protocol_dir, task, subset, splits,
                             open_set, log)
    out["seconds"] = time.perf_counter() - t0
    return out


def _evaluate_ijba(features, dataset, protocol_dir, task, subset, splits, open_set,
                   log):
    if not isinstance(dataset, ijba_protocol.DatasetIndex):
        dataset = ijba_protocol.read_dataset_mat(dataset)
    splits = list(range(1, ijba_protocol.NUM_SPLITS + 1)) if splits is None else \
        [int(s) for s in splits]
    xn = normalize_rows(features)
    say = log or (lambda _msg: None)
    out = {"task": task, "subset": subset, "n_images": int(len(xn)),
           "feature_dim": int(xn.shape[1]), "splits": splits}
    if task in ("verify", "both"):
        excluded = np.zeros(len(xn), bool)
        per = []
        for s in splits:
            res = evaluate_verify_split(
                xn, dataset, ijba_protocol.read_verify_split(protocol_dir, s, False),
                subset, excluded, threads=None)
            per.append(res)
            say(f"folder: {s} , acc@0.01FAR = {num2str(res['tar_at_far_0.01'][2])} "
                f", acc@0.001FAR = {num2str(res['tar_at_far_0.001'][2])}")
        out["verify"] = _summarise(per, [f"tar_at_far_{t}" for t in FAR_TARGETS] +
                                   [f"{NOT_IN_ORIGINAL}_interpolated_tar_at_far_{t}"
                                    for t in FAR_TARGETS], score=REPORTED_SCORE)
    if task in ("search", "both"):
        excluded = np.zeros(len(xn), bool)
        per = []
        for s in splits:
            res = evaluate_search_split(
                xn, dataset, ijba_protocol.read_search_split(protocol_dir, s, False),
                subset, excluded, open_set, threads=None)
            per.append(res)
            say(f"folder: {s} , rank-1 = {num2str(res['rank1'])}")
        out["search"] = _summarise(per, [f"rank{r}" for r in RANKS])
        if open_set:
            key = f"{NOT_IN_ORIGINAL}_open_set"
            for name in ("fnir", "fpir"):
                vals = np.array([r[key][name] for r in per], np.float64)
                stats = [_mean_std(vals[:, k]) for k in range(len(FPIR_TARGETS))]
                for k, t in enumerate(FPIR_TARGETS):
                    out["search"]["mean"][f"{key}_{name}_at_fpir_{t}"] = stats[k][0]
                    out["search"]["std"][f"{key}_{name}_at_fpir_{t}"] = stats[k][1]
    return out


def _summarise(per_split, keys, score=None):
    mean, std = {}, {}
    for key in keys:
        vals = [r[key][score] if score is not None else r[key] for r in per_split]
        mean[key], std[key] = _mean_std(vals)
    return {"splits": per_split, "mean": mean, "std": std}


# --------------------------------------------------------------------------- output


def num2str(x):
    """A MATLAB-like ``num2str`` of a scalar (about 5 significant digits)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    x = float(x)
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == round(x) and abs(x) < 1e15:
        return str(int(round(x)))
    digits = max(int(math.floor(math.log10(abs(x)))) + 5, 5)
    return f"{x:.{min(digits, 17)}g}"


def results_text(results):
    """The MATLAB scripts' disp lines, then our extra lines (labelled)."""
    lines = []
    if "verify" in results:
        v = results["verify"]
        lines.append("IJB-A verification (CNN_single_verify%s.m), score 3"
                     % ("_subset" if results.get("subset") == "occluded" else ""))
        for r in v["splits"]:
            lines.append(f"folder: {r['split']} , acc@0.01FAR = "
                         f"{num2str(r['tar_at_far_0.01'][2])} , acc@0.001FAR = "
                         f"{num2str(r['tar_at_far_0.001'][2])}")
        m, s = v["mean"], v["std"]
        lines.append(
            f"acc@0.01FAR = {num2str(100 * m['tar_at_far_0.01'])} \\pm "
            f"{num2str(100 * s['tar_at_far_0.01'])} , acc@0.001FAR = "
            f"{num2str(100 * m['tar_at_far_0.001'])} \\pm "
            f"{num2str(100 * s['tar_at_far_0.001'])}")
        key = f"{NOT_IN_ORIGINAL}_interpolated_tar_at_far_"
        lines.append(
            f"[not in the original] TAR at exactly FAR 0.01 (interpolated) = "
            f"{num2str(100 * m[key + '0.01'])} \\pm {num2str(100 * s[key + '0.01'])} , "
            f"at FAR 0.001 = {num2str(100 * m[key + '0.001'])} \\pm "
            f"{num2str(100 * s[key + '0.001'])}")
    if "search" in results:
        v = results["search"]
        lines.append("IJB-A closed-set identification (CNN_single_search%s.m), score 3"
                     % ("_subset" if results.get("subset") == "occluded" else ""))
        for r in v["splits"]:
            lines.append(f"folder: {r['split']} , rank-1 = {num2str(r['rank1'])}")
        m, s = v["mean"], v["std"]
        lines.append(f"rank-1 = {num2str(100 * m['rank1'])} \\pm "
                     f"{num2str(100 * s['rank1'])} , rank-5 = {num2str(100 * m['rank5'])}"
                     f" \\pm {num2str(100 * s['rank5'])}")
        lines.append(f"rank-10 = {num2str(100 * m['rank10'])} \\pm "
                     f"{num2str(100 * s['rank10'])}")
        key = f"{NOT_IN_ORIGINAL}_open_set_fnir_at_fpir_"
        if key + "0.01" in m:
            lines.append(
                f"[not in the original] open-set FNIR at FPIR 0.01 = "
                f"{num2str(100 * m[key + '0.01'])} \\pm {num2str(100 * s[key + '0.01'])}"
                f" , at FPIR 0.1 = {num2str(100 * m[key + '0.1'])} \\pm "
                f"{num2str(100 * s[key + '0.1'])}")
    lines.append(f"seconds: {results.get('seconds', math.nan):.3f}")
    return "\n".join(lines) + "\n"


def write_outputs(results, output_dir):
    """Writes ``ijba_results.json``, ``ijba_results.txt`` and the ROC / CMC PNGs.

    Every file is written atomically. Returns the list of paths written.
    """
    plt = plotting.pyplot()

    os.makedirs(output_dir, exist_ok=True)
    written = []
    path = os.path.join(output_dir, "ijba_results.json")
    atomic_save_text(path, json.dumps(json_safe(results, drop_private=True), indent=2) + "\n")
    written.append(path)
    path = os.path.join(output_dir, "ijba_results.txt")
    atomic_save_text(path, results_text(results))
    written.append(path)
    if "verify" in results:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for r in results["verify"]["splits"]:
            if "_dist" not in r:
                continue
            tar, far = roc(r["_dist"][:, REPORTED_SCORE], r["_same"])
            ok = far > 0
            ax.plot(far[ok], tar[ok], lw=1, label=f"split {r['split']}")
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        ax.set_xlabel("FAR")
        ax.set_ylabel("TAR")
        ax.set_title("IJB-A verification ROC (score 3)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        path = os.path.join(output_dir, "ijba_roc.png")
        plotting.save_figure(fig, path)
        plt.close(fig)
        written.append(path)
    if "search" in results:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ranks = np.arange(1, max(RANKS) + 1)
        for r in results["search"]["splits"]:
            ax.plot(ranks, r["cmc"], lw=1, marker=".", label=f"split {r['split']}")
        ax.set_xlabel("rank")
        ax.set_ylabel("identification rate")
        ax.set_xticks(ranks)
        ax.set_title("IJB-A closed-set CMC (score 3)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        path = os.path.join(output_dir, "ijba_cmc.png")
        plotting.save_figure(fig, path)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":
    # ``python -m eval.ijba`` keeps working; the command itself is ijba_cli.
    from interp_fr.eval.ijba_cli import run
    run()
