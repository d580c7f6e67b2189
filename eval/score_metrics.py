"""Metrics of template-pair scores: ROC, TAR at FAR, ranks, open-set FNIR.

Verification as ``CNN_single_verify.m`` (stable ascending sort, first j with
the smallest |FAR_j - target|) plus the interpolated TAR at exactly the target
FAR; identification as ``CNN_single_search.m`` (closed-set probes, rank of the
true gallery template) plus open-set FNIR at FPIR (not in the original).
BUILD_NOTES.md, "Verification" and "Identification".
"""
import math

import numpy as np

from interp_fr.common.errors import DataFileError

FAR_TARGETS = (0.01, 0.001)
RANKS = (1, 5, 10)
FPIR_TARGETS = (0.01, 0.1)


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
