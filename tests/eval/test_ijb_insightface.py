"""IJB-B / IJB-C evaluation in insightface's layout (eval/ijb_insightface.py).

A small meta folder in exactly insightface's formats, with features chosen so that
every pooled template, pair score, ROC point, TAR and rank is computed by hand in
the comments; plus random cross-checks against loop transcriptions of
insightface's pooling, and the error cases.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from interp_fr.common.errors import DataFileError
from interp_fr.eval import ijb_insightface as E

from tests.conftest import REPO_ROOT  # noqa: E402

REPO = REPO_ROOT
R2 = math.sqrt(0.5)

# 1:1 faces: (name, template, media, feature, detector score). Templates and media
# interleaved; media 10 occurs in templates 1 and 3 (grouped per template only).
#   T1: media 10 = mean((4,2), (2,2)) = (3,2); media 11 = (0,2); sum (3,4) -> (.6,.8)
#   T2: (5,0) -> (1,0)       T3: (0,1) + (0,3) -> (0,1)       T4: (-2,0) -> (-1,0)
#   T5: (4,0) x 0.25 + (0,1) = (1,1) -> (R2, R2)   [detector score 0.25 on h]
FACES_11 = [("a.jpg", 1, 10, (4, 2), 1.0), ("d.jpg", 2, 20, (5, 0), 1.0),
            ("b.jpg", 1, 10, (2, 2), 1.0), ("e.jpg", 3, 10, (0, 1), 1.0),
            ("c.jpg", 1, 11, (0, 2), 1.0), ("f.jpg", 3, 31, (0, 3), 1.0),
            ("g.jpg", 4, 40, (-2, 0), 1.0), ("h.jpg", 5, 50, (4, 0), 0.25),
            ("i.jpg", 5, 51, (0, 1), 1.0)]
# (t1, t2, label, score with the default settings)
PAIRS = [(1, 5, 0, 1.4 * R2), (1, 3, 1, 0.8), (2, 5, 0, R2), (3, 5, 0, R2),
         (1, 2, 1, 0.6), (2, 3, 0, 0.0), (3, 4, 0, 0.0), (1, 4, 0, -0.6),
         (4, 5, 0, -R2), (2, 4, 0, -1.0)]
# 1:N: one face per template at an angle (degrees), norm 2; score = cos(difference).
GALLERY_1 = {101: (1, 0), 102: (2, 90), 103: (3, 180)}  # template: (subject, angle)
GALLERY_2 = {201: (4, 45), 202: (5, 270)}
PROBES = {301: (1, 10), 302: (2, 30), 303: (4, 50), 304: (5, 105), 305: (3, 200)}


def _faces():
    rows = list(FACES_11)
    for tid, (_, deg) in {**GALLERY_1, **GALLERY_2, **PROBES}.items():
        a = math.radians(deg)
        rows.append((f"t{tid}.jpg", tid, 1000 + tid, (2 * math.cos(a), 2 * math.sin(a)),
                     1.0))
    return rows


def _write_csv(path, templates):
    lines = ["TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID"]
    lines += [f"{t},{s},img/{t}.jpg,{t}" for t, (s, _) in templates.items()]
    path.write_text("\n".join(lines) + "\n")


def write_meta(folder, faces=None, pairs=None, flip_row_1=(-2, 4)):
    """insightface's meta files for IJB-C plus features.npy / flip.npy in ``folder``.

    flip.npy equals features.npy except row 1 (face d of T2), so that flip test
    (adding) doubles every feature but turns d into (5,0) + (-2,4) = (3,4)."""
    faces = _faces() if faces is None else faces
    pairs = PAIRS if pairs is None else pairs
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ijbc_face_tid_mid.txt").write_text(
        "".join(f"{n} {t} {m}\n" for n, t, m, _, _ in faces))
    (folder / "ijbc_name_5pts_score.txt").write_text("".join(
        f"{n} " + " ".join(f"{10 + k}.5" for k in range(10)) + f" {s}\n"
        for n, _, _, _, s in faces))
    (folder / "ijbc_template_pair_label.txt").write_text(
        "".join(f"{a} {b} {y}\n" for a, b, y, *_ in pairs))
    _write_csv(folder / "ijbc_1N_gallery_G1.csv", GALLERY_1)
    _write_csv(folder / "ijbc_1N_gallery_G2.csv", GALLERY_2)
    _write_csv(folder / "ijbc_1N_probe_mixed.csv", PROBES)
    x = np.array([f for _, _, _, f, _ in faces], np.float32)
    xf = x.copy()
    xf[1] = flip_row_1
    np.save(folder / "features.npy", x)
    np.save(folder / "flip.npy", xf)
    return folder


@pytest.fixture
def meta(tmp_path):
    return write_meta(tmp_path / "meta")


def _config(meta, **kw):
    kw.setdefault("features", str(meta / "features.npy"))
    return E.IJBConfig(meta_dir=str(meta), output_dir=str(meta.parent / "out"), **kw)


def _faces_of(meta):
    return E.read_face_list(meta / "ijbc_face_tid_mid.txt",
                            meta / "ijbc_name_5pts_score.txt")


def _template(t, ids, features):
    return features[np.searchsorted(ids, t)]


# --------------------------------------------------------------------------- pooling


def test_pooled_templates_by_hand(meta):
    tf = E.pool_templates(_faces_of(meta), meta / "features.npy")
    assert not tf.flip_applied
    expect = {1: (0.6, 0.8), 2: (1, 0), 3: (0, 1), 4: (-1, 0), 5: (R2, R2),
              101: (1, 0), 202: (0, -1)}
    for t, v in expect.items():
        np.testing.assert_allclose(_template(t, tf.ids, tf.features), v, atol=1e-12)


@pytest.mark.parametrize("norm,det,t5", [
    (True, True, (R2, R2)),                                # (4,0) x .25 + (0,1)
    (True, False, (4 / math.sqrt(17), 1 / math.sqrt(17))),  # (4,0) + (0,1)
    (False, True, (0.25 / math.sqrt(1.0625), 1 / math.sqrt(1.0625))),  # (1,0)x.25+(0,1)
    (False, False, (R2, R2))])                             # (1,0) + (0,1)
def test_norm_and_detector_score_weighting(meta, norm, det, t5):
    tf = E.pool_templates(_faces_of(meta), meta / "features.npy",
                          use_norm_score=norm, use_detector_score=det)
    np.testing.assert_allclose(_template(5, tf.ids, tf.features), t5, atol=1e-12)
    # T1 (all scores 1): with norms (3,2) + (0,2); without, the unit vectors
    # (4,2)/sqrt20 and (2,2)/sqrt8 averaged, plus (0,1).
    unit = lambda v: np.array(v) / np.linalg.norm(v)  # noqa: E731
    t1 = (3, 4) if norm else (unit((4, 2)) + unit((2, 2))) / 2 + (0, 1)
    np.testing.assert_allclose(_template(1, tf.ids, tf.features), unit(t1), atol=1e-12)


def test_flip_test_adds_flipped_features(meta):
    faces = _faces_of(meta)
    tf = E.pool_templates(faces, meta / "features.npy", meta / "flip.npy")
    assert tf.flip_applied
    # d + flip(d) = (5,0) + (-2,4) = (3,4): T2 turns to (.6,.8); the rest is doubled.
    np.testing.assert_allclose(_template(2, tf.ids, tf.features), (0.6, 0.8), atol=1e-12)
    np.testing.assert_allclose(_template(1, tf.ids, tf.features), (0.6, 0.8), atol=1e-12)
    # insightface's eval_ijbc.py layout: one array of [original | flipped] halves.
    both = np.concatenate([np.load(meta / "features.npy"), np.load(meta / "flip.npy")], 1)
    tc = E.pool_templates(faces, both, concatenated_flip=True)
    np.testing.assert_allclose(tc.features, tf.features, atol=1e-12)
    off = E.pool_templates(faces, both, concatenated_flip=True, use_flip_test=False)
    np.testing.assert_allclose(_template(2, off.ids, off.features), (1, 0), atol=1e-12)
    off2 = E.pool_templates(faces, meta / "features.npy", meta / "flip.npy",
                            use_flip_test=False)
    assert not off2.flip_applied


def test_callable_features_see_the_face_list(meta):
    faces = _faces_of(meta)
    x = np.load(meta / "features.npy")
    seen = []

    def fn(chunk):
        seen.append((chunk.start, chunk.stop, chunk.names[0], chunk.landmarks.shape))
        return x[chunk.start:chunk.stop]

    tf = E.pool_templates(faces, fn, chunk_rows=4)
    ref = E.pool_templates(faces, x)
    np.testing.assert_allclose(tf.features, ref.features, atol=1e-12)
    assert seen[0] == (0, 4, "a.jpg", (4, 5, 2)) and seen[-1][1] == len(faces)


def _insightface_loop_pool(x, xf, templates, medias, scores, flip, norm, det):
    """A loop transcription of insightface's steps (eval_ijbc.py), as an oracle."""
    f = x + xf if flip else x
    if not norm:
        f = f / np.sqrt(np.sum(f ** 2, -1, keepdims=True))
    if det:
        f = f * scores[:, None]
    uniq = np.unique(templates)
    out = np.zeros((len(uniq), f.shape[1]))
    for c, t in enumerate(uniq):
        ft, mt = f[templates == t], medias[templates == t]
        media_feats = [ft[mt == m].mean(0) for m in np.unique(mt)]
        out[c] = np.sum(media_feats, 0)
    n = np.sqrt(np.sum(out ** 2, -1, keepdims=True))
    return uniq, out / np.where(n == 0, 1, n)


@pytest.mark.parametrize("flip,norm,det", [(True, True, True), (False, False, True),
                                           (True, False, False), (False, True, False)])
def test_pooling_matches_loop_transcription(tmp_path, flip, norm, det):
    rng = np.random.default_rng(int(flip) * 4 + int(norm) * 2 + int(det))
    n = 300
    templates = rng.integers(1, 40, n)
    medias = rng.integers(1, 6, n) * 7
    faces = E.FaceList([f"{k}.jpg" for k in range(n)], templates, medias,
                       np.zeros((n, 5, 2), np.float32),
                       rng.uniform(0.1, 1, n).astype(np.float32), ("f", "g"))
    x = rng.standard_normal((n, 8)).astype(np.float32)
    xf = rng.standard_normal((n, 8)).astype(np.float32)
    tf = E.pool_templates(faces, x, xf, use_flip_test=flip, use_norm_score=norm,
                          use_detector_score=det, chunk_rows=37)
    ids, ref = _insightface_loop_pool(x.astype(np.float64), xf.astype(np.float64),
                                      templates, medias,
                                      faces.detector_scores.astype(np.float64),
                                      flip, norm, det)
    np.testing.assert_array_equal(tf.ids, ids)
    np.testing.assert_allclose(tf.features, ref, atol=1e-12)


# --------------------------------------------------------------------------- 1:1


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_pair_scores_by_hand_and_defaults(meta, precision):
    res = E.evaluate(_config(meta, task="verify", precision=precision))
    v = res["verify"]
    np.testing.assert_allclose(v["_scores"], [p[3] for p in PAIRS],
                               atol=1e-6 if precision == "float32" else 1e-12)
    assert v["_scores"].dtype == np.dtype(precision)
    np.testing.assert_array_equal(v["_labels"], [p[2] for p in PAIRS])
    assert v["n_genuine"] == 2 and v["n_impostor"] == 8


def test_roc_tar_and_auc_by_hand(meta):
    # Descending: .99 N | .8 P | .71 N N | .6 P | 0 N P | -.6 N | -.71 N | -1 N.
    # One point per distinct score: fps 1 1 3 3 5 6 7 8, tps 0 1 1 2 2 2 2 2; sklearn's
    # drop_intermediate removes the collinear -.6 and -.71 points; (0,0) prepended.
    v = E.evaluate(_config(meta, task="verify"))["verify"]
    np.testing.assert_allclose(v["_fpr"], [0, 1 / 8, 1 / 8, 3 / 8, 3 / 8, 5 / 8, 1])
    np.testing.assert_allclose(v["_tpr"], [0, 0, .5, .5, 1, 1, 1])
    # insightface: nearest FPR. For 0.1, |0 - .1| = .1 > |.125 - .1|, and of the two
    # points at .125 the later (TPR .5) wins: above the target FAR.
    assert v["tar_at_far"] == {"1e-06": 0, "1e-05": 0, "0.0001": 0, "0.001": 0,
                               "0.01": 0, "0.1": 0.5}
    assert v["fpr_at_chosen_point"]["0.1"] == 0.125
    assert set(v["stricter_tar_at_far"].values()) == {0.0}
    # Mann-Whitney: (.8 beats 7 negatives + .6 beats 5) / 16 = .75.
    assert v["auc"] == pytest.approx(0.75, abs=1e-12)


def test_flip_changes_pair_scores_by_hand(meta):
    v = E.evaluate(_config(meta, task="verify",
                           flip_features=str(meta / "flip.npy")))["verify"]
    # T2 -> (.6,.8): 1-2 = 1, 2-3 = .8, 2-4 = -.6, 2-5 = 1.4 R2; the rest unchanged.
    expect = {(1, 2): 1.0, (2, 3): 0.8, (2, 4): -0.6, (2, 5): 1.4 * R2}
    want = [expect.get((a, b), s) for a, b, _, s in PAIRS]
    np.testing.assert_allclose(v["_scores"], want, atol=1e-6)


def test_detector_score_changes_pair_scores_by_hand(meta):
    v = E.evaluate(_config(meta, task="verify", use_detector_score=False))["verify"]
    t5 = np.array([4, 1]) / math.sqrt(17)  # (4,0) + (0,1) without the .25 weight
    t = {1: (0.6, 0.8), 2: (1, 0), 3: (0, 1), 4: (-1, 0), 5: t5}
    want = [np.dot(t[a], t[b]) for a, b, *_ in PAIRS]
    np.testing.assert_allclose(v["_scores"], want, atol=1e-6)


def test_roc_curve_sklearn_semantics_with_ties():
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    scores = np.array([.9, .9, .8, .7, .7, .5, .5, .1])
    # Distinct scores .9 .8 .7 .5 .1 -> fps 1 1 2 3 4, tps 1 2 3 4 4.
    fpr, tpr, thr = E.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, np.array([0, 1, 1, 2, 3, 4]) / 4)
    np.testing.assert_allclose(tpr, np.array([0, 1, 2, 3, 4, 4]) / 4)
    np.testing.assert_allclose(thr, [np.inf, .9, .8, .7, .5, .1])
    # (2,3) lies on the line from (1,2) to (3,4): dropped by default.
    fpr, tpr, thr = E.roc_curve(labels, scores)
    np.testing.assert_allclose(fpr, np.array([0, 1, 1, 3, 4]) / 4)
    np.testing.assert_allclose(thr, [np.inf, .9, .8, .5, .1])
    assert E.roc_auc(fpr, tpr) == pytest.approx(
        np.mean([(p > n) + 0.5 * (p == n) for p in scores[labels == 1]
                 for n in scores[labels == 0]]))


def test_tar_rules_on_crafted_roc():
    fpr = np.array([0, 0.05, 0.09, 0.12, 0.12, 0.5, 1])
    tpr = np.array([0, 0.1, 0.2, 0.3, 0.6, 0.9, 1])
    tar, idx = E.tar_at_far_insightface(fpr, tpr, [0.1, 0.105, 0.2, 0.0])
    # .1: |.09-.1| = .01 < .02; .105: tie .015 between .09 and .12 -> later, top (.6).
    np.testing.assert_array_equal(idx, [2, 4, 4, 0])
    np.testing.assert_allclose(tar, [0.2, 0.6, 0.6, 0])
    # Stricter rule, on the counts of a full ROC (10 positives, 100 negatives; the
    # point (0, 0) is implicit): highest TPR with FPR <= target.
    fps = np.array([5, 9, 12, 12, 50, 100], np.float64)
    tps = np.array([1, 2, 3, 6, 9, 10], np.float64)
    tar, at = E.tar_at_far_at_most(fps, tps, [0.1, 0.105, 0.12, 0.2, 0.0, 0.04])
    np.testing.assert_allclose(tar, [0.2, 0.2, 0.6, 0.6, 0, 0])
    np.testing.assert_allclose(at, [0.09, 0.09, 0.12, 0.12, 0, 0])
    # Equals the last point with fpr <= target on the materialised full curve.
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 5000), np.round(rng.standard_normal(5000), 2)
    fpr_full, tpr_full, _ = E.roc_curve(labels, scores, drop_intermediate=False)
    targets = np.r_[0, np.unique(fpr_full), np.linspace(0, 1, 101)]
    want = tpr_full[np.searchsorted(fpr_full, targets, side="right") - 1]
    got, _ = E.tar_at_far_at_most(*E.roc_points(labels, scores)[:2], targets)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dense_factor", [0, 8, 10 ** 9])
def test_pair_scores_chunked_paths(dense_factor):
    rng = np.random.default_rng(dense_factor % 7)
    f = rng.standard_normal((50, 16))
    i1 = rng.integers(0, 6, 4000)    # few first-side templates (dense products) ...
    i2 = rng.integers(0, 50, 4000)
    i1[::7], i2[::7] = i2[::7].copy(), i1[::7].copy()  # ... both sides mixed, unsorted
    want = np.einsum("ij,ij->i", f[i1], f[i2])
    got = E.pair_scores(f, i1, i2, chunk_pairs=333, dense_factor=dense_factor)
    np.testing.assert_allclose(got, want, atol=1e-5)
    got64 = E.pair_scores(f, i1, i2, chunk_pairs=333, dtype=np.float64,
                          dense_factor=dense_factor)
    np.testing.assert_allclose(got64, want, atol=1e-12)


# --------------------------------------------------------------------------- 1:N


def test_search_by_hand(meta):
    s = E.evaluate(_config(meta, task="search"))["search"]
    g1, g2, mean, comb = s["G1"], s["G2"], s["mean_of_galleries"], s["combined"]
    # G1: mated 301 (rank 1), 302 (.866 above its mate's .5: rank 2), 305 (rank 1);
    # non-mated best: 303 cos40, 304 cos15; n = 2 -> threshold index 0 = cos15;
    # TPIR: 301's cos10 > cos15 (305's cos20 is not) -> 1/3.
    assert (g1["n_mated_probes"], g1["n_nonmated_probes"]) == (3, 2)
    assert (g1["rank1"], g1["rank5"], g1["rank10"]) == (2 / 3, 1.0, 1.0)
    assert g1["thresholds"]["0.01"] == pytest.approx(math.cos(math.radians(15)), abs=1e-6)
    assert g1["tpir_at_fpir"] == {"0.01": 1 / 3, "0.1": 1 / 3}
    # G2: 303 rank 1 (cos5), 304 rank 2 (cos60 above cos165); non-mated best cos35,
    # cos15, cos70 -> threshold cos15; TPIR 1/2.
    assert (g2["rank1"], g2["rank5"]) == (0.5, 1.0)
    assert g2["tpir_at_fpir"] == {"0.01": 0.5, "0.1": 0.5}
    # ijb_evals.py's mean: (2 + 1) / 5 rank-1 hits, TPIR (1/3 + 1/2) / 2.
    assert mean["rank1"] == pytest.approx(0.6) and mean["rank5"] == 1.0
    assert mean["tpir_at_fpir"]["0.1"] == pytest.approx(5 / 12)
    # ijb_1n.py, gallery G1+G2: ranks 1, 3, 1, 5, 1; k = ceil(5 x f) = 1 -> the largest
    # non-mate score (cos15); mates above it: 301 (cos10) and 303 (cos5) -> 2/5.
    np.testing.assert_array_equal(comb["_ranks"], [1, 3, 1, 5, 1])
    assert (comb["rank1"], comb["rank5"], comb["rank10"]) == (0.6, 1.0, 1.0)
    assert comb["tpir_at_fpir"] == {"0.01": 0.4, "0.1": 0.4}
    assert comb["stricter_rank1"] == comb["rank1"]  # no ties here


def test_rank_ties_and_blockwise_top_scores(monkeypatch):
    g = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
    p = np.array([[R2, R2], [1, 0], [0, -1]], np.float32)
    monkeypatch.setattr(E, "_SCORE_BLOCK_ELEMS", 3)  # one probe per block
    st, sub = E.search_scores(p, g, [(slice(None), np.array([0, 2, -1]), 2),
                                     (np.array([2, 1]), np.array([-1, 0, 1]), 0)])
    # Probe 0 ties its mate with template 1: rank 1 for insightface's rule, 2 stricter.
    np.testing.assert_array_equal(st["rank"], [1, 3, 0])
    np.testing.assert_array_equal(st["rank_ties_against"], [2, 3, 0])
    np.testing.assert_allclose(st["best_score"], [R2, 1, 0], atol=1e-6)
    # Non-mate scores of mated probes: R2, -R2 | 1, 0 -> the two largest 1, R2.
    np.testing.assert_allclose(st["top_nonmate"], [1, R2], atol=1e-6)
    # The gallery of rows (2, 1) = (-1,0), (0,1), from the same products: probe 1
    # scores -1 (mate), 0; probe 2 scores 0, -1 (mate): both mates rank 2.
    np.testing.assert_array_equal(sub["rank"], [0, 2, 2])
    np.testing.assert_allclose(sub["best_score"], [R2, 0, 0], atol=1e-6)
    assert sub["top_nonmate"].size == 0


def test_open_set_and_ijb_1n_thresholds():
    nonmated = np.arange(20, dtype=np.float64)  # 19 18 ... descending
    mate = np.array([18.5, 17.5, 19.5, 30.0])
    tie_rank = np.array([1, 1, 1, 2])
    # int(20 x .1) - 1 = 1 -> 18; int(20 x .01) = 0 -> index 0 -> 19.
    tpir, thr = E.open_set_tpir(mate, tie_rank, nonmated, [0.1, 0.01])
    np.testing.assert_array_equal(thr, [18, 19])
    np.testing.assert_allclose(tpir, [2 / 4, 1 / 4])  # 30 is not rank 1
    # ijb_1n: k = ceil(4 x .1) = 1 -> 19; ceil(4 x .5) = 2 -> 18.
    tpir, thr = E.closed_set_tpir_ijb_1n(mate, nonmated[::-1], 100, [0.1, 0.5])
    np.testing.assert_array_equal(thr, [19, 18])
    np.testing.assert_allclose(tpir, [2 / 4, 3 / 4])


# --------------------------------------------------------------------------- outputs


def test_outputs_and_cli(meta, tmp_path):
    cfg = _config(meta)
    results, written = E.evaluate_and_write(cfg)
    out = tmp_path / "out"
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["ijbc_labels.npy", "ijbc_results.json", "ijbc_results.txt",
                     "ijbc_roc.png", "ijbc_scores.npy"]
    np.testing.assert_array_equal(np.load(out / "ijbc_labels.npy"), [p[2] for p in PAIRS])
    np.testing.assert_allclose(np.load(out / "ijbc_scores.npy"), [p[3] for p in PAIRS],
                               atol=1e-6)
    doc = json.loads((out / "ijbc_results.json").read_text())
    assert doc["verify"]["tar_at_far"]["0.1"] == 0.5
    assert doc["search"]["combined"]["rank1"] == 0.6 and "_ranks" not in doc["search"]["G1"]
    assert "[stricter]" in (out / "ijbc_results.txt").read_text()
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]

    cli = [sys.executable, "-m", "eval.ijb_insightface_cli", f"--meta_dir={meta}",
           f"--output_dir={tmp_path / 'cli'}"]
    ok = subprocess.run(cli + [f"--features={meta / 'features.npy'}", "--task=verify"],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "insightface" in ok.stdout and (tmp_path / "cli" / "ijbc_scores.npy").exists()
    np.save(tmp_path / "short.npy", np.zeros((3, 2), np.float32))
    bad = subprocess.run(cli + [f"--features={tmp_path / 'short.npy'}"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    # One error line (after absl's progress log lines), no traceback.
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and bad.stderr.strip().endswith(errors[0])
    assert "short.npy: 3 features rows" in errors[0] and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- errors


def _raises(match, fn, *args, **kw):
    with pytest.raises(DataFileError, match=match) as e:
        fn(*args, **kw)
    return e.value


def test_wrong_column_counts(tmp_path):
    m = write_meta(tmp_path / "m1")
    (m / "ijbc_template_pair_label.txt").write_text("1 2 1\n1 3 0\n2 3\n")
    e = _raises(r"line 3 has 2 columns; expected 3", E.read_template_pairs,
                m / "ijbc_template_pair_label.txt")
    assert e.path.endswith("ijbc_template_pair_label.txt")
    (m / "ijbc_template_pair_label.txt").write_text("1 2 1\n\n1 x 0\n")
    _raises(r"line 3: 'x' is not an integer", E.read_template_pairs,
            m / "ijbc_template_pair_label.txt")
    (m / "ijbc_template_pair_label.txt").write_text("1 2 1\n1 3 2\n")
    _raises(r"line 2: label 2 is not 0 or 1", E.read_template_pairs,
            m / "ijbc_template_pair_label.txt")
    (m / "ijbc_face_tid_mid.txt").write_text("a.jpg 1 10\nb.jpg 1 10 7\n")
    _raises(r"ijbc_face_tid_mid.txt: line 2 has 4 columns; expected 3",
            E.read_face_tid_mid, m / "ijbc_face_tid_mid.txt")
    (m / "ijbc_name_5pts_score.txt").write_text("a.jpg " + "1 " * 10 + "0.9\nb.jpg 1 2\n")
    _raises(r"line 2 has 3 columns; expected 12", E.read_name_5pts_score,
            m / "ijbc_name_5pts_score.txt")
    (m / "ijbc_1N_probe_mixed.csv").write_text("301,1,x.jpg\n")
    _raises("not a header", E.read_search_csv, m / "ijbc_1N_probe_mixed.csv")


def test_unknown_templates(tmp_path):
    m = write_meta(tmp_path / "m", pairs=PAIRS[:3] + [(1, 99, 0, 0)])
    e = _raises(r"line 4: template 99 is not in .*ijbc_face_tid_mid.txt",
                E.evaluate, _config(m, task="verify"))
    assert e.path.endswith("ijbc_template_pair_label.txt")
    m = write_meta(tmp_path / "n")
    (m / "ijbc_1N_gallery_G2.csv").write_text("TEMPLATE_ID,SUBJECT_ID\n201,4\n299,5\n")
    e = _raises(r"line 3: template 299", E.evaluate, _config(m, task="search"))
    assert e.path.endswith("ijbc_1N_gallery_G2.csv")
    (m / "ijbc_1N_gallery_G2.csv").write_text("TEMPLATE_ID,SUBJECT_ID\n201,4\n")
    _raises(r"subject 5 has 0 templates in G1 \+ G2", E.evaluate,
            _config(m, task="search"))


def test_bad_features(tmp_path, meta):
    x = np.load(meta / "features.npy")
    x[[2, 5]] = [np.nan, np.inf]
    np.save(tmp_path / "nan.npy", x)
    e = _raises(r"NaN or inf in 2 rows .*: 2, 5$", E.evaluate,
                _config(meta, features=str(tmp_path / "nan.npy")))
    assert e.path.endswith("nan.npy")
    flip = np.load(meta / "flip.npy")
    flip[7] = np.nan
    np.save(tmp_path / "flipnan.npy", flip)
    e = _raises(r"in 1 rows .*: 7$", E.evaluate,
                _config(meta, flip_features=str(tmp_path / "flipnan.npy")))
    assert e.path.endswith("flipnan.npy")
    np.save(tmp_path / "long.npy", np.zeros((len(_faces()) + 1, 2), np.float32))
    _raises(rf"{len(_faces()) + 1} features rows, but the face list .* has "
            rf"{len(_faces())} lines", E.evaluate,
            _config(meta, features=str(tmp_path / "long.npy")))
    np.save(tmp_path / "wide.npy", np.zeros((len(_faces()), 3), np.float32))
    _raises(r"3 columns; the features have 2", E.evaluate,
            _config(meta, flip_features=str(tmp_path / "wide.npy")))


def test_face_lists_must_agree(tmp_path):
    m = write_meta(tmp_path / "m")
    text = (m / "ijbc_name_5pts_score.txt").read_text().replace("b.jpg", "z.jpg")
    (m / "ijbc_name_5pts_score.txt").write_text(text)
    _raises(r"face 3 is 'z.jpg', but .* names 'b.jpg'", _faces_of, m)
    assert len(E.read_face_list(m / "ijbc_face_tid_mid.txt",
                                m / "ijbc_name_5pts_score.txt", check_names=False)) > 0
    (m / "ijbc_name_5pts_score.txt").write_text("".join(text.splitlines(True)[:-1]))
    _raises(r"faces, but .* lists", _faces_of, m)


def test_text_layout_tolerance(tmp_path):
    """Blank lines, CRLF, tabs, leading blanks and a UTF-8 BOM read as pandas would;
    line numbers in messages count every line."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"\xef\xbb\xbfa.jpg 1 10\r\n\n  b.jpg\t2 20\n   \nc.jpg 3 30")
    names, t, m = E.read_face_tid_mid(path)
    assert names.tolist() == [b"a.jpg", b"b.jpg", b"c.jpg"]
    np.testing.assert_array_equal(t, [1, 2, 3])
    np.testing.assert_array_equal(m, [10, 20, 30])
    path.write_bytes(b"a.jpg 1 10\n\nb.jpg 2\n")
    _raises(r"line 3 has 2 columns; expected 3", E.read_face_tid_mid, path)
    pairs = tmp_path / "p.txt"
    pairs.write_text("1 2 1\n\n\n2 3 0\n2 99 0\n")
    p = E.read_template_pairs(pairs)
    assert [p.line_of(r) for r in range(3)] == [1, 4, 5]
    tf = E.TemplateFeatures(np.array([1, 2, 3]), np.eye(3), False)
    _raises(r"line 5: template 99 is not in faces", tf.index_of, p.t2, pairs, "faces",
            p.line_of)
    csv = tmp_path / "g.csv"
    csv.write_bytes(b"\xef\xbb\xbfTEMPLATE_ID,SUBJECT_ID,FILENAME\r\n\r\n"
                    b"7,70,a,b\r\n5,50\r\n7,70,c\r\n")
    g = E.read_search_csv(csv)
    np.testing.assert_array_equal(g.templates, [5, 7])
    np.testing.assert_array_equal(g.subjects, [50, 70])
    np.testing.assert_array_equal(g.lines, [4, 3])
    csv.write_text("TEMPLATE_ID,SUBJECT_ID\n7,70\n7,71\n")
    _raises(r"line 3: template 7 has subject 71 here and 70", E.read_search_csv, csv)
    csv.write_text("TEMPLATE_ID,SUBJECT_ID\n7\n")
    _raises(r"line 2 has 1 column", E.read_search_csv, csv)


def test_large_and_negative_template_ids():
    ids = np.array([-4, 5, 1 << 30])  # beyond the lookup table: binary search
    tf = E.TemplateFeatures(ids, np.eye(3), False)
    np.testing.assert_array_equal(tf.index_of(np.array([1 << 30, -4, 5]), "p", "f"),
                                  [2, 0, 1])
    _raises(r"line 2: template 6 is not in f", tf.index_of, np.array([5, 6]), "p", "f")


def test_meta_file_names():
    ijbb = E.meta_paths("m", "IJBB")
    assert ijbb["gallery_1"] == os.path.join("m", "ijbb_1N_gallery_S1.csv")
    assert ijbb["pairs"] == os.path.join("m", "ijbb_template_pair_label.txt")
    assert E.meta_paths("m")["gallery_2"] == os.path.join("m", "ijbc_1N_gallery_G2.csv")
    with pytest.raises(ValueError, match="target"):
        E.IJBConfig(meta_dir="m", target="IJBA").validate()
