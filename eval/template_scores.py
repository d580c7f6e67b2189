"""Templates of a protocol file and the original's three template-pair scores.

``pdist2(..., 'cosine')`` between the two templates' image rows, then
``mean(d(:))``, ``min(d(:))``, ``mean([min(d), min(d')])`` (MATLAB semantics,
BUILD_NOTES.md, "Templates and distances (`eval/ijba.py`)"), without a loop
over template pairs: blocked matrix products reduced per template.
"""
import dataclasses

import numpy as np

from interp_fr.common.errors import DataFileError

# Work block for the image similarity matrix (float64 entries, ~128 MB).
_BLOCK_ELEMS = 1 << 24


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
