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
import json
import math
import os
import time

import numpy as np

from interp_fr.common.atomic_io import atomic_save_text
from interp_fr.data import ijba_protocol
from interp_fr.common import plotting
from interp_fr.eval.blas_threads import blas_threads
from interp_fr.common.json_safe import json_safe
# The pieces of the evaluation live in their own modules; their public names
# stay importable from here, where every caller found them before the split.
from interp_fr.eval.feature_rows import load_features, normalize_rows  # noqa: F401
from interp_fr.eval.score_metrics import (  # noqa: F401
    FAR_TARGETS, FPIR_TARGETS, RANKS, closed_set_mask, interpolated_tar_at_far,
    open_set_fnir, ranks_of_true, roc, tar_at_far, true_gallery_index)
from interp_fr.eval.template_scores import (  # noqa: F401
    Templates, build_templates, cross_scores, pair_scores, template_index)

SCORE_NAMES = ("mean", "min", "mean_of_minima")  # MATLAB dist(:, 1..3)
REPORTED_SCORE = 2  # 0-based: score 3 is the one the original prints
# The subset search script replaces zero distances (empty templates) by this.
EMPTY_DISTANCE = 100.0
NOT_IN_ORIGINAL = "not_in_original"


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
