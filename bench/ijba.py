"""Times the vectorised IJB-A evaluation against a direct per-pair loop port.

Both run in this process on the real protocol (split 1 by default) with random
features, and must agree; the ratio is printed. Then the vectorised evaluation
of all 10 splits (verification + search) is timed on its own.

    python bench/ijba.py [--protocol_dir ../shared/ijba_protocol] [--dim 320]
        [--search_probes 300] [--splits 1]

``--search_probes`` limits the probe templates the *loop* port searches (all
closed-set probes take it minutes); the vectorised code runs on the same
subset for the comparison and on everything for the 10-split timing.
"""
import argparse
import os
import sys
import time

import numpy as np
import scipy.io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from interp_fr.data import ijba_protocol as P  # noqa: E402
from interp_fr.eval import ijba as E  # noqa: E402
from interp_fr.eval import ijba_reference as R  # noqa: E402
from bench.report import add_json_flag, write_json  # noqa: E402


def _image_index(root, seed):
    """sightingID2idx over every evaluation sighting of the 10 splits, shuffled."""
    sightings = []
    for split in range(1, 11):
        for kind in ("verify_metadata", "search_gallery", "search_probe"):
            raw = scipy.io.loadmat(P.protocol_path(root, kind, split),
                                   variable_names=["sightingID"])
            sightings.append(raw["sightingID"].ravel().astype(np.int64))
    sightings = np.unique(np.concatenate(sightings))
    perm = np.random.default_rng(seed).permutation(len(sightings))
    s2i = np.zeros(sightings.max(), np.int64)
    s2i[sightings[perm] - 1] = np.arange(1, len(sightings) + 1)
    return s2i


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol_dir",
                        default=os.path.join(os.environ.get(
                            "INTERP_FR_SHARED", os.path.join(os.path.dirname(REPO),
                                                             "shared")), "ijba_protocol"),
                        help="the real IJB-A protocol files (default: "
                             "$INTERP_FR_SHARED/ijba_protocol, else ../shared beside "
                             "the checkout)")
    parser.add_argument("--dim", type=int, default=320)
    parser.add_argument("--search_probes", type=int, default=300,
                        help="probe templates for the loop port's search (0 = all)")
    parser.add_argument("--splits", default="1", help="splits compared with the loop")
    parser.add_argument("--seed", type=int, default=0)
    add_json_flag(parser)
    args = parser.parse_args()

    root = args.protocol_dir
    s2i = _image_index(root, args.seed)
    dataset = P.DatasetIndex(s2i)
    feats = np.random.default_rng(args.seed).standard_normal(
        (int(s2i.max()), args.dim))
    print(f"{feats.shape[0]} images x {args.dim}; OpenBLAS threads limited to 1 "
          "for both implementations")
    xn, t_norm = _timed(lambda: E.normalize_rows(feats))
    total_fast = total_loop = 0.0
    with E.blas_threads(1):
        for split in [int(s) for s in args.splits.split(",")]:
            v = P.read_verify_split(root, split, filenames=False)
            s = P.read_search_split(root, split, filenames=False)
            if args.search_probes:
                ids = np.unique(s.probe.templateID)[:args.search_probes]
                s = P.SearchSplit(split, s.gallery,
                                  s.probe.rows(np.isin(s.probe.templateID, ids)))
            fast_v, tv = _timed(lambda: E.evaluate_verify_split(xn, dataset, v))
            loop_v, lv = _timed(lambda: R.verify_split(feats, s2i, v.comparison,
                                                       v.metadata))
            fast_s, ts = _timed(lambda: E.evaluate_search_split(xn, dataset, s,
                                                                open_set=False))
            loop_s, ls = _timed(lambda: R.search_split(feats, s2i, s.gallery, s.probe))
            diff = float(np.max(np.abs(fast_v["_dist"] - loop_v["dist"])))
            same_tar = all(fast_v[f"tar_at_far_{t}"] == loop_v["acc"][:, k].tolist()
                           for k, t in enumerate(E.FAR_TARGETS))
            same_rank = np.array_equal(fast_s["_ranks"], loop_s["ranks"])
            n_pairs = len(v.comparison)
            n_search = len(loop_s["ranks"]) * len(np.unique(s.gallery.templateID))
            print(f"split {split} verify ({n_pairs} pairs): vectorised {tv:.3f} s, "
                  f"loop {lv:.3f} s, ratio {lv / tv:.1f}x; max |d diff| {diff:.2e}, "
                  f"TARs identical: {same_tar}")
            print(f"split {split} search ({n_search} probe-gallery pairs): vectorised "
                  f"{ts:.3f} s, loop {ls:.3f} s, ratio {ls / ts:.1f}x; ranks "
                  f"identical: {same_rank}")
            total_fast += tv + ts
            total_loop += lv + ls
    print(f"compared work: vectorised {total_fast:.3f} s, loop {total_loop:.3f} s, "
          f"ratio {total_loop / total_fast:.1f}x")
    out, t_all = _timed(lambda: E.evaluate_ijba(feats, dataset, root, "both", "all"))
    print(f"all 10 splits, verify + search (+ open-set extras), vectorised: "
          f"{t_all:.2f} s (normalising the features: {t_norm:.2f} s)")
    out, t_closed = _timed(lambda: E.evaluate_ijba(feats, dataset, root, "both", "all",
                                                   open_set=False))
    print(f"all 10 splits, verify + closed-set search only: {t_closed:.2f} s")
    out, t_occ = _timed(lambda: E.evaluate_ijba(feats, dataset, root, "both",
                                                "occluded"))
    print(f"all 10 splits, occluded subset: {t_occ:.2f} s")
    write_json(args.json, {
        "benchmark": "IJB-A evaluation", "precision": "float64",
        "size": {"images": int(feats.shape[0]), "dim": args.dim},
        "compared_splits": args.splits,
        "seconds": {"vectorised": total_fast, "loop_port": total_loop,
                    "all_splits_with_open_set": t_all, "all_splits_closed_set": t_closed,
                    "occluded_subset": t_occ},
        "ratio_to_baseline": total_loop / total_fast,
        "baseline": "a line-by-line loop port of CNN_single_verify/search.m"})


if __name__ == "__main__":
    main()
