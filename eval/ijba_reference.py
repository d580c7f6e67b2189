"""A direct, slow, per-pair port of the IJB-A MATLAB scripts (reference only).

Loops over templates and pairs one by one the way ``CNN_single_verify(_subset).m``
and ``CNN_single_search(_subset).m`` do, with small helpers that spell out
MATLAB's ``pdist2(..., 'cosine')``, ``min`` and ``sort``. It exists to check the
vectorised `interp_fr.eval.ijba` (tests) and to time it (``bench/ijba.py``); it
shares no scoring code with it. Use `interp_fr.eval.ijba` for real work.
"""
import numpy as np


def pdist2_cosine(a, b):
    """MATLAB ``pdist2(a, b, 'cosine')`` for float64 rows: [n1, n2]."""
    def unit(x):
        scale = np.max(np.abs(x), axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.sqrt(np.sum((x / scale) ** 2, axis=1, keepdims=True)) * scale
            return x / norm
    dots = unit(a) @ unit(b).T
    dots = np.where(dots > 1, 1.0, dots)  # pdist2 clamps round-off; NaN stays
    return 1.0 - dots


def matlab_min(x):
    """MATLAB ``min(x)`` of a 2-D array: along the first non-singleton dimension.

    NaN is ignored unless a whole slice is NaN. Returns a 1-D array (a single
    value for a row or column vector).
    """
    x = np.asarray(x, np.float64)
    axis = 0 if x.shape[0] != 1 else 1
    with np.errstate(all="ignore"):
        return np.fmin.reduce(x, axis=axis).reshape(-1)


def three_scores(d):
    """``[mean(d(:)), min(d(:)), mean([min(d), min(d')])]``."""
    flat = d.reshape(-1)
    return (float(np.mean(flat)), float(matlab_min(flat.reshape(-1, 1))[0]),
            float(np.mean(np.concatenate([matlab_min(d), matlab_min(d.T)]))))


def matlab_sort_index(values):
    """Indices of MATLAB's stable ascending ``sort`` (NaN last)."""
    return np.argsort(np.asarray(values, np.float64), kind="stable")


def _templates(template_id, subject_id, sighting_id, s2i, good):
    """Per template (ascending ids): feature rows (0-based) and subject."""
    ids = np.unique(template_id)
    rows, subjects = [], []
    for t in ids:
        idx = np.flatnonzero(template_id == t)
        img = s2i[sighting_id[idx] - 1]
        if np.any(img == 0):
            raise ValueError("sighting not in the image set")
        valid = [i for i in img if good is None or good[i - 1]]
        rows.append(np.array(valid, np.int64) - 1)
        subjects.append(int(np.unique(subject_id[idx])[0]))
    return ids, rows, subjects


def _mark_fully_visible(good, tables, s2i):
    for t in tables:
        full = np.flatnonzero(np.sum(t.visibility, axis=1) == 3)
        good[s2i[t.sightingID[full] - 1] - 1] = False


def _rates_at_far(dist, same):
    n = len(dist)
    acc = np.full((3, 2), np.nan)
    for i in range(3):
        idx = matlab_sort_index(dist[:, i])
        same0 = same[idx]
        npos, nneg = np.sum(same0 == 1), np.sum(same0 == 0)
        tar, far = np.zeros(n), np.zeros(n)
        tp = fp = 0
        for j in range(n):  # incremental form of sum(same0(1:j)==1) etc.
            tp += same0[j] == 1
            fp += same0[j] == 0
            with np.errstate(all="ignore"):
                tar[j] = np.float64(tp) / np.float64(npos)
                far[j] = np.float64(fp) / np.float64(nneg)
        for k, target in enumerate((0.01, 0.001)):
            gap = np.abs(far - target)
            if n:
                j = 0 if np.all(np.isnan(gap)) else int(np.nanargmin(gap))
                acc[i, k] = tar[j]
    return acc


def verify_split(features, s2i, comparison, meta, subset="all", good=None):
    """One split of CNN_single_verify(_subset).m.

    Args:
        features: float64 [N, D].
        s2i: int [M] sightingID2idx (1-based rows, 0 = absent).
        comparison: int [K, 2].
        meta: `ProtocolTable` of verify_metadata_N.
        subset: ``"all"`` or ``"occluded"``.
        good: bool [N] image mask carried across splits (subset); updated.

    Returns:
        dict: ``dist`` [K', 3], ``same`` [K'], ``acc`` [3, 2] (TAR at FAR 0.01,
        0.001 for the three scores).
    """
    if subset == "occluded":
        good = np.ones(len(features), bool) if good is None else good
        _mark_fully_visible(good, [meta], s2i)
    else:
        good = None
    ids, rows, subjects = _templates(meta.templateID, meta.subjectID, meta.sightingID,
                                     s2i, good)
    pos = {int(t): k for k, t in enumerate(ids)}
    dist = np.zeros((len(comparison), 3))
    same = np.zeros(len(comparison))
    for c, (t1, t2) in enumerate(comparison):
        i1, i2 = pos[int(t1)], pos[int(t2)]
        if len(rows[i1]) == 0 or len(rows[i2]) == 0:
            continue  # subset: the row stays 0 and is dropped below
        d = pdist2_cosine(features[rows[i1]], features[rows[i2]])
        dist[c] = three_scores(d)
        same[c] = subjects[i1] == subjects[i2]
    if subset == "occluded":
        kept = np.sum(dist, axis=1) != 0
        dist, same = dist[kept], same[kept]
    return {"dist": dist, "same": same, "acc": _rates_at_far(dist, same)}


def search_split(features, s2i, gallery, probe, subset="all", good=None):
    """One split of CNN_single_search(_subset).m.

    Returns:
        dict: ``dist`` [P_closed, G], ``ranks`` [P_closed] (0 where the subset
        script skips a probe), ``counted`` bool [P_closed] (the probes the rates
        divide by) and ``rank_acc`` [10].
    """
    if subset == "occluded":
        good = np.ones(len(features), bool) if good is None else good
        _mark_fully_visible(good, [gallery, probe], s2i)
    else:
        good = None
    _, g_rows, g_subj = _templates(gallery.templateID, gallery.subjectID,
                                   gallery.sightingID, s2i, good)
    _, p_rows, p_subj = _templates(probe.templateID, probe.subjectID,
                                   probe.sightingID, s2i, good)
    gallery_subjects = set(g_subj)
    closed = [p for p in range(len(p_rows))
              if p_subj[p] in gallery_subjects and p_subj[p] != 0]
    dist = np.zeros((len(closed), len(g_rows)))
    for a, p in enumerate(closed):
        if len(p_rows[p]) == 0:
            continue
        for g in range(len(g_rows)):
            if len(g_rows[g]) == 0:
                continue
            d = pdist2_cosine(features[p_rows[p]], features[g_rows[g]])
            dist[a, g] = np.mean(np.concatenate([matlab_min(d), matlab_min(d.T)]))
    ranks = np.zeros(len(closed), np.int64)
    if subset == "occluded":
        counted = np.sum(dist, axis=1) != 0
        dist = np.where(dist == 0, 100.0, dist)
    else:
        counted = np.ones(len(closed), bool)
    g_subj = np.array(g_subj)
    for a, p in enumerate(closed):
        if subset == "occluded" and np.sum(dist[a] - 100.0) == 0:
            continue
        order = matlab_sort_index(dist[a])
        true = np.flatnonzero(g_subj == p_subj[p])
        ranks[a] = int(np.flatnonzero(order == true[0])[0]) + 1
    n = int(np.sum(counted))
    rank_acc = np.array([np.sum(ranks[counted] <= r) / n if n else np.nan
                         for r in range(1, 11)])
    return {"dist": dist, "ranks": ranks, "counted": counted, "rank_acc": rank_acc}
