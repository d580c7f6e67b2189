"""IJB-A evaluation: MATLAB semantics on hand-computed cases, the slow per-pair
reference on a real split, known-structure features on the real protocol, CLI."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from interp_fr.data import ijba_protocol as P
from interp_fr.common.errors import DataFileError
from interp_fr.eval import ijba as E
from interp_fr.eval import ijba_reference as R

from tests.conftest import REPO_ROOT  # noqa: E402

REPO = REPO_ROOT
S2 = math.sqrt(2.0)


# --------------------------------------------------------------------------- helpers


def _templates(groups):
    """Templates from lists of feature rows, ids 1.. in order."""
    tid = np.concatenate([[k + 1] * len(g) for k, g in enumerate(groups)])
    rows = np.concatenate(groups).astype(np.int64)
    table = P.make_table(tid, tid, rows + 1)
    return E.build_templates(table, rows)


@pytest.fixture(scope="module")
def real(shared_dir):
    """Split 1 of the real protocol, an image index over every evaluation sighting
    and random 96-d features (narrower than the model's 320 to keep the per-pair
    reference quick)."""
    root = os.path.join(shared_dir, "ijba_protocol")
    v = P.read_verify_split(root, 1, filenames=False)
    s = P.read_search_split(root, 1, filenames=False)
    sightings, subjects = [], []
    for split in range(1, 11):
        for kind in ("verify_metadata", "search_gallery", "search_probe"):
            raw = scipy.io.loadmat(P.protocol_path(root, kind, split),
                                   variable_names=["sightingID", "subjectID"])
            sightings.append(raw["sightingID"].ravel().astype(np.int64))
            subjects.append(raw["subjectID"].ravel().astype(np.int64))
    sightings, first = np.unique(np.concatenate(sightings), return_index=True)
    subjects = np.concatenate(subjects)[first]
    rng = np.random.default_rng(7)
    perm = rng.permutation(len(sightings))      # image rows are not sighting order
    s2i = np.zeros(sightings.max(), np.int64)
    s2i[sightings[perm] - 1] = np.arange(1, len(sightings) + 1)
    image_subject = subjects[perm]
    feats = rng.standard_normal((len(sightings), 96))
    return {"root": root, "verify": v, "search": s, "s2i": s2i,
            "dataset": P.DatasetIndex(s2i), "features": feats,
            "image_subject": image_subject}


# --------------------------------------------------------------------------- scores


def test_three_scores_by_hand():
    # Rows: 0 (1,0)  1 (0,1)  2 (-1,0)  3 (1,1)  4 (0,3)
    x = E.normalize_rows(np.array([[1, 0], [0, 1], [-1, 0], [1, 1], [0, 3]], float))
    a = _templates([[0, 1], [0, 2, 3], [1], [4]])
    # A = {(1,0), (0,1)}, B = {(1,0), (-1,0), (1,1)}: d rows A, columns B:
    #   [0, 2, 1 - 1/sqrt2; 1, 1, 1 - 1/sqrt2]
    q = 1 - 1 / S2
    mean, mn, mom = E.cross_scores(x, a, a)
    assert mean[0, 1] == pytest.approx((4 + 2 * q) / 6, abs=1e-15)
    assert mn[0, 1] == pytest.approx(0.0, abs=1e-15)
    # column minima [0, 1, q] and row minima [0, q]: mean of five values.
    assert mom[0, 1] == pytest.approx((1 + 2 * q) / 5, abs=1e-15)
    assert mom[1, 0] == pytest.approx(mom[0, 1], abs=1e-15)
    # One-image template C = {(0,1)} against B: d = [1, 1, q] is a row, so
    # MATLAB's min(d) and min(d') are both q and score 3 = q (not (2 + 2q) / 4).
    assert mom[2, 1] == pytest.approx(q, abs=1e-15)
    assert mom[1, 2] == pytest.approx(q, abs=1e-15)
    assert mean[2, 1] == pytest.approx((2 + q) / 3, abs=1e-15)
    # Two one-image templates; (0,1) and (0,3) are the same direction.
    assert mom[2, 3] == pytest.approx(0.0, abs=1e-15)
    # The listed-pair path gives the same numbers.
    pairs = np.array([[0, 1], [2, 1], [1, 2], [2, 3], [0, 0]])
    got = E.pair_scores(x, a, a, pairs)
    want = np.stack([mean[pairs[:, 0], pairs[:, 1]], mn[pairs[:, 0], pairs[:, 1]],
                     mom[pairs[:, 0], pairs[:, 1]]], axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    # Same with a sparse pair list (the grouped path).
    many = _templates([[0, 1]] + [[k % 5] for k in range(40)])
    sparse = np.array([[0, k] for k in range(1, 41)] + [[5, 7]])
    got = E.pair_scores(x, many, many, sparse)
    m2, n2, o2 = E.cross_scores(x, many, many)
    np.testing.assert_allclose(got[:, 2], o2[sparse[:, 0], sparse[:, 1]], atol=1e-15)
    np.testing.assert_allclose(got[:, 0], m2[sparse[:, 0], sparse[:, 1]], atol=1e-15)


def test_zero_feature_rows_give_nan_like_matlab():
    x = E.normalize_rows(np.array([[1, 0], [0, 0], [0, 1]], float))
    assert np.isnan(x[1]).all()
    t = _templates([[0, 1], [2]])
    mean, mn, mom = E.cross_scores(x, t, t)
    # min skips NaN, mean does not.
    assert np.isnan(mean[0, 1]) and mn[0, 1] == pytest.approx(1.0)
    assert mom[0, 1] == pytest.approx(1.0)


def test_block_splitting_does_not_change_scores():
    rng = np.random.default_rng(3)
    x = E.normalize_rows(rng.standard_normal((60, 8)))
    groups = [list(rng.choice(60, size=rng.integers(1, 6), replace=False))
              for _ in range(25)]
    t = _templates(groups)
    whole = E.cross_scores(x, t, t)
    tiny = E.cross_scores(x, t, t, block_elems=7)
    for a, b in zip(whole, tiny):
        # BLAS may round a dot product differently at another row position.
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- verification


def test_tar_at_far_ties_and_far_targets():
    # Stable sort keeps the 0.2 tie in input order: same0 = [1, 0, 1, 0, 0];
    # TAR_j = [.5 .5 1 1 1], FAR_j = [0 1/3 1/3 2/3 1].
    dist = np.array([0.1, 0.2, 0.2, 0.3, 0.4])
    same = np.array([1, 0, 1, 0, 0], bool)
    tar, far, j = E.tar_at_far(dist, same, targets=(0.01, 0.001, 1 / 3))
    assert tar == [0.5, 0.5, 0.5] and j == [1, 1, 2] and far[2] == 1 / 3
    # Swapping the tied pairs changes the answer at FAR 1/3 (first j wins).
    tar, _, j = E.tar_at_far(dist, np.array([1, 1, 0, 0, 0], bool), targets=(1 / 3,))
    assert tar == [1.0] and j == [3]
    # A negative first: every FAR_j >= 1/3, far from 0.01; the nearest is j = 1.
    tar, far, j = E.tar_at_far(np.array([0.1, 0.5, 0.6, 0.7]),
                               np.array([0, 1, 0, 0], bool))
    assert tar == [0.0, 0.0] and far == [1 / 3, 1 / 3] and j == [1, 1]
    # Exactly equidistant FARs (binary fractions): the first one.
    tar, far, _ = E.tar_at_far(np.arange(6.0), np.array([1, 0, 1, 0, 0, 0], bool),
                               targets=(0.375,))
    assert far == [0.25] and tar == [0.5]
    # Unsorted input, NaN sorts last.
    tar, far, j = E.tar_at_far(np.array([np.nan, 0.3, 0.1]),
                               np.array([1, 0, 1], bool), targets=(0.0,))
    assert j == [1] and tar == [0.5]


def test_interpolated_tar_is_labelled_extra_and_exact():
    # Ties grouped: points (0,0) (0,.5) (.5,1) (1,1) for d=[.1,.2,.2,.3], same=[1,0,1,0].
    d = np.array([0.1, 0.2, 0.2, 0.3])
    s = np.array([1, 0, 1, 0], bool)
    got = E.interpolated_tar_at_far(d, s, targets=(0.0, 0.25, 0.5, 0.75))
    assert got == [0.5, 0.75, 1.0, 1.0]
    assert math.isnan(E.interpolated_tar_at_far(d, np.ones(4, bool))[0])


def _write_tiny_world(root, features):
    """A two-split protocol with empty templates in the occluded subset.

    Images (feature rows) and visibility (all 1 = excluded in the subset):
      verify: a (1,0) full  b (1,0) partial  c full  d (0,1) partial  e (1,1) partial
      search: g1 full, g2 (1,0), g3 (0,1), p1 (1,.1), p2 (1,1), p3 full, p4 open set
    """
    names = ["a", "b", "c", "d", "e", "g1", "g2", "g3", "p1", "p2", "p3", "p4"]
    row = {n: k for k, n in enumerate(names)}
    sighting = {n: 100 + 7 * k for k, n in enumerate(names)}
    full, part = [1, 1, 1], [1, 0, 1]
    vis = {n: (full if n in ("a", "c", "g1", "p3") else part) for n in names}

    def table(entries):
        tid = [t for t, _, _ in entries]
        return P.make_table(tid, [s for _, s, _ in entries],
                            [sighting[n] for _, _, n in entries],
                            visibility=[vis[n] for _, _, n in entries])

    verify = table([(1, 1, "a"), (1, 1, "b"), (2, 1, "c"), (3, 2, "d"), (4, 2, "e")])
    comparison = [[1, 2], [1, 3], [1, 4], [3, 4], [2, 3]]
    gallery = table([(11, 1, "g1"), (12, 2, "g2"), (13, 3, "g3")])
    probe = table([(21, 2, "p1"), (22, 1, "p2"), (23, 3, "p3"), (24, 9, "p4")])
    for split in (1, 2):
        P.write_split(root, split, verify_metadata=verify, comparison=comparison,
                      search_gallery=gallery, search_probe=probe, train=verify)
    s2i = np.zeros(max(sighting.values()), np.int64)
    for n in names:
        s2i[sighting[n] - 1] = row[n] + 1
    P.write_dataset_mat(os.path.join(root, "dataset.mat"), s2i)
    feats = np.zeros((len(names), 2))
    for n, f in features.items():
        feats[row[n]] = f
    return feats


TINY_FEATURES = {"a": (1, 0), "b": (1, 0), "c": (1, 0), "d": (0, 1), "e": (1, 1),
                 "g1": (0.3, 1), "g2": (1, 0), "g3": (0, 1), "p1": (1, 0.1),
                 "p2": (1, 1), "p3": (1, 0), "p4": (-1, -1)}


def test_occluded_subset_by_hand(tmp_path):
    root = str(tmp_path / "IJB-A")
    feats = _write_tiny_world(root, TINY_FEATURES)
    out = E.evaluate_ijba(feats, os.path.join(root, "dataset.mat"), root,
                          subset="occluded", splits=[1, 2])
    v = out["verify"]["splits"][0]
    # Template 2 = {c} is empty, so pairs (1,2) and (2,3) are dropped. Left:
    # (1,3): d(b,d) = 1, different; (1,4): d(b,e) = q, different; (3,4): d(d,e) = q,
    # same. The q tie keeps list order, so same0 = [0, 1, 0], FAR = [.5 .5 1]:
    # FAR 0.01 is nearest at j = 1 where TAR = 0.
    assert (v["n_pairs"], v["n_pos"], v["n_neg"], v["n_dropped"]) == (3, 1, 2, 2)
    assert v["tar_at_far_0.01"] == [0.0, 0.0, 0.0]
    assert v["far_reached_0.01"] == [0.5, 0.5, 0.5]
    np.testing.assert_allclose(v["_dist"][:, 2], [1, 1 - 1 / S2, 1 - 1 / S2], atol=1e-15)
    s = out["search"]["splits"][0]
    # Gallery 11 (subject 1) is empty and probe 23 is empty. Probe 21 -> rank 1.
    # Probe 22 (subject 1): its true gallery template is empty, distance 0 -> 100,
    # behind the tie of gallery 12 and 13 at q: rank 3. Probe 23 is not counted.
    assert s["n_probes"] == 2
    assert s["_ranks"].tolist() == [1, 3]
    assert (s["rank1"], s["rank5"], s["rank10"]) == (0.5, 1.0, 1.0)
    assert out["search"]["std"]["rank1"] == 0.0   # two identical splits
    # Without the subset every template is full; the same tie order decides.
    out = E.evaluate_ijba(feats, os.path.join(root, "dataset.mat"), root, splits=[1])
    v = out["verify"]["splits"][0]
    assert (v["n_pairs"], v["n_pos"], v["n_neg"]) == (5, 2, 3)


def test_subset_exclusions_carry_across_splits(tmp_path):
    root = str(tmp_path / "IJB-A")
    feats = _write_tiny_world(root, TINY_FEATURES)
    ds = P.read_dataset_mat(os.path.join(root, "dataset.mat"))
    split = P.read_verify_split(root, 1)
    excluded = np.zeros(len(feats), bool)
    excluded[4] = True       # image e excluded by an earlier split
    res = E.evaluate_verify_split(E.normalize_rows(feats), ds, split, "occluded", excluded)
    assert excluded[[0, 2, 4]].all() and not excluded[[1, 3]].any()
    # Templates 2 and 4 are empty now: only (1,3) is left, a different pair.
    assert (res["n_pairs"], res["n_pos"], res["n_dropped"]) == (1, 0, 4)


def test_identical_features_quirk_in_subset(tmp_path):
    """The subset script drops rows whose three scores sum to 0: also a pair of
    identical features, and turns every zero search distance into 100."""
    root = str(tmp_path / "IJB-A")
    feats = _write_tiny_world(root, dict(TINY_FEATURES, d=(0, 1), e=(0, 2)))
    out = E.evaluate_ijba(feats, os.path.join(root, "dataset.mat"), root,
                          subset="occluded", splits=[1])
    v = out["verify"]["splits"][0]
    # (3,4): d(d,e) = 0 exactly (both unit (0,1)): dropped along with the empties.
    assert v["n_dropped"] == 3 and v["n_pairs"] == 2


# --------------------------------------------------------------------------- search


def test_ranks_ties_nan_and_closed_set():
    dist = np.array([[0.5, 0.3, 0.3, 0.9], [0.5, 0.3, 0.3, 0.9], [np.nan, 0.2, 0.1, 0.1]])
    assert E.ranks_of_true(dist, [2, 1, 0]).tolist() == [2, 1, 4]
    # MATLAB `if intersect(s, gallery)` is false for subject 0.
    mask = E.closed_set_mask([0, 1, 2, 5], [0, 1, 2])
    assert mask.tolist() == [False, True, True, False]
    with pytest.raises(DataFileError, match="several gallery templates"):
        E.true_gallery_index([3], [3, 4, 3])
    np.testing.assert_array_equal(E.true_gallery_index([4, 3], [3, 4, 5]), [1, 0])


def test_open_set_fnir_by_hand():
    # Non-mated rank-1 distances 0.2, 0.4, 0.6, 0.8 (N = 4, k = floor(0.1 * 4) = 0:
    # threshold 0.2 with "<", so FPIR 0). Mated: probe 0 right at 0.1 (accepted),
    # probe 1 right at 0.3 (rejected), probe 2 wrong at rank 1.
    dist = np.array([[0.1, 0.5], [0.9, 0.3], [0.05, 0.7],
                     [0.2, 0.9], [0.4, 0.9], [0.6, 0.9], [0.8, 0.9]])
    mated = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    out = E.open_set_fnir(dist, mated, np.array([0, 1, 1, 0, 0, 0, 0]),
                          targets=(0.1, 0.5, 1.0))
    assert out["fpir"] == [0.0, 0.5, 1.0]
    assert out["threshold"][:2] == [0.2, 0.6] and out["threshold"][2] == math.inf
    assert out["fnir"] == [pytest.approx(2 / 3), pytest.approx(1 / 3), pytest.approx(1 / 3)]


def test_template_with_two_subjects_is_an_error():
    table = P.make_table([5, 5], [1, 2], [10, 11], path="bad_probe.mat")
    with pytest.raises(DataFileError, match="bad_probe.mat: template 5 has rows with "
                       "different subjectIDs"):
        E.build_templates(table, np.array([0, 1]))


def test_sighting_outside_the_image_set_is_an_error(tmp_path):
    root = str(tmp_path / "IJB-A")
    feats = _write_tiny_world(root, TINY_FEATURES)
    ds = P.read_dataset_mat(os.path.join(root, "dataset.mat"))
    ds.sightingID2idx[ds.sightingID2idx == 2] = 0          # image b disappears
    with pytest.raises(DataFileError, match="verify_metadata_1.mat: 1 sighting"):
        E.evaluate_ijba(feats, ds, root, task="verify", splits=[1])
    with pytest.raises(DataFileError, match="only 5 rows"):
        E.evaluate_ijba(feats[:5], os.path.join(root, "dataset.mat"), root,
                        task="search", splits=[1])


# --------------------------------------------------------------------------- real protocol


@pytest.mark.parametrize("subset", ["all", "occluded"])
def test_vectorised_verify_matches_per_pair_reference(real, subset):
    x = real["features"]
    with E.blas_threads(1):
        ref = R.verify_split(x, real["s2i"], real["verify"].comparison,
                             real["verify"].metadata, subset)
    got = E.evaluate_verify_split(E.normalize_rows(x), real["dataset"], real["verify"],
                                  subset)
    assert got["_dist"].shape == ref["dist"].shape
    np.testing.assert_allclose(got["_dist"], ref["dist"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got["_same"], ref["same"] == 1)
    for k, t in enumerate(E.FAR_TARGETS):
        assert got[f"tar_at_far_{t}"] == ref["acc"][:, k].tolist()
    if subset == "all":
        assert (got["n_pairs"], got["n_pos"], got["n_neg"]) == (11786, 1802, 9984)


@pytest.mark.parametrize("subset", ["all", "occluded"])
def test_vectorised_search_matches_per_pair_reference(real, subset):
    split = real["search"]
    # Probe templates of 60 closed-set subjects and 10 open-set ones keep the
    # per-pair loop short.
    ids, first = np.unique(split.probe.templateID, return_index=True)
    closed = np.isin(split.probe.subjectID[first], split.gallery.subjectID)
    rng = np.random.default_rng(1)
    pick = np.r_[rng.choice(ids[closed], 60, replace=False),
                 rng.choice(ids[~closed], 10, replace=False)]
    sub = P.SearchSplit(1, split.gallery, split.probe.rows(
        np.isin(split.probe.templateID, pick)))
    x = real["features"]
    with E.blas_threads(1):
        ref = R.search_split(x, real["s2i"], sub.gallery, sub.probe, subset)
    got = E.evaluate_search_split(E.normalize_rows(x), real["dataset"], sub, subset)
    np.testing.assert_array_equal(got["_ranks"], ref["ranks"][ref["counted"]])
    for r in E.RANKS:
        assert got[f"rank{r}"] == ref["rank_acc"][r - 1]
    # The score-3 distances themselves, via the library's cross product.
    g_rows = real["dataset"].image_rows(sub.gallery.sightingID)
    p_rows = real["dataset"].image_rows(sub.probe.sightingID)
    gal = E.build_templates(sub.gallery, g_rows)
    prb = E.build_templates(sub.probe, p_rows)
    if subset == "all":
        keep = E.closed_set_mask(prb.subjects, gal.subjects)
        _, _, mom = E.cross_scores(E.normalize_rows(x), prb, gal, need_mean=False)
        np.testing.assert_allclose(mom[keep], ref["dist"], rtol=0, atol=1e-12)


def test_known_structure_features_are_perfect(real):
    """One random unit direction per subject plus small noise: every same-subject
    distance is far below every different-subject one."""
    rng = np.random.default_rng(11)
    subjects, inv = np.unique(real["image_subject"], return_inverse=True)
    centre = rng.standard_normal((len(subjects), 320))
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    feats = centre[inv] + 0.01 * rng.standard_normal((len(inv), 320))
    out = E.evaluate_ijba(feats, real["dataset"], real["root"], splits=[1, 7])
    for split in out["verify"]["splits"]:
        assert split["tar_at_far_0.01"] == [1.0, 1.0, 1.0]
        assert split["tar_at_far_0.001"] == [1.0, 1.0, 1.0]
    for split in out["search"]["splits"]:
        assert (split["rank1"], split["rank5"], split["rank10"]) == (1.0, 1.0, 1.0)
        extra = split[f"{E.NOT_IN_ORIGINAL}_open_set"]
        assert extra["fnir"] == [0.0, 0.0] and max(extra["fpir"]) <= 0.1
    assert out["verify"]["mean"]["tar_at_far_0.001"] == 1.0
    assert out["verify"]["std"]["tar_at_far_0.001"] == 0.0
    assert out["search"]["mean"]["rank1"] == 1.0
    assert out["search"]["splits"][0]["n_probes"] == 1252   # README: closed-set probes


# --------------------------------------------------------------------------- outputs and CLI


def test_num2str_like_matlab():
    assert E.num2str(0.85123456) == "0.85123"
    assert E.num2str(85.123456) == "85.1235"
    assert E.num2str(0.0123456) == "0.012346"
    assert E.num2str(1.0) == "1" and E.num2str(float("nan")) == "NaN"


@pytest.mark.parametrize("module", ["eval.ijba", "interp_fr.eval.ijba"])
def test_cli_writes_json_text_and_plots(tmp_path, module):
    root = str(tmp_path / "IJB-A")
    feats = _write_tiny_world(root, TINY_FEATURES)
    feature_file = tmp_path / "IJBA_features_iter_0.txt"
    np.savetxt(feature_file, feats)
    out_dir = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", module, "--features", str(feature_file),
         "--protocol_dir", root, "--dataset_mat", os.path.join(root, "dataset.mat"),
         "--task", "both", "--subset", "occluded", "--splits", "1,2",
         "--output_dir", str(out_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "acc@0.01FAR = 0 \\pm 0" in proc.stdout
    res = json.loads((out_dir / "ijba_results.json").read_text())
    assert len(res["verify"]["splits"]) == 2 and res["seconds"] > 0
    assert res["verify"]["splits"][0]["tar_at_far_0.001"] == [0.0, 0.0, 0.0]
    assert set(res["verify"]["mean"]) >= {"tar_at_far_0.01", "tar_at_far_0.001"}
    assert res["search"]["mean"]["rank1"] == 0.5 and res["search"]["std"]["rank5"] == 0.0
    assert all("_ranks" not in s for s in res["search"]["splits"])
    text = (out_dir / "ijba_results.txt").read_text()
    assert "folder: 2 , rank-1 = 0.5" in text and "[not in the original]" in text
    for png in ("ijba_roc.png", "ijba_cmc.png"):
        assert (out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(out_dir) if p.endswith(".tmp")]
