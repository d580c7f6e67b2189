"""Significance rankings against known truth: the AUC, and the measures on
representations built to encode exactly the identity attributes."""
import numpy as np
import pytest

from attr_recovery.analysis import significance_truth as st


def test_ranking_auc_closed_form():
    scores = {"a": 3.0, "b": 1.0, "x": 2.0, "y": 0.5, "z": 1.0}
    # Positives a, b against negatives x, y, z: a beats 3, b beats y and ties z.
    assert st.ranking_auc(scores, ("a", "b"), ("x", "y", "z")) == pytest.approx(
        (3 + 1 + 0.5) / 6)
    assert st.ranking_auc(scores, ("a",), ("x", "missing")) == 1.0


def _world_like(n_subjects=60, per=8, seed=0):
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(n_subjects), per)
    attrs = {"subject": subjects}
    for name in st.IDENTITY_ATTRIBUTES:
        attrs[name] = rng.normal(size=n_subjects)[subjects]
    for name in ("yaw", "pitch", "roll", "smile", "mouth_open", "brow_raise",
                 "light_strength"):
        attrs[name] = rng.normal(size=len(subjects))
    attrs["light_angle"] = rng.uniform(0, 2 * np.pi, len(subjects))
    attrs["occluder"] = rng.integers(0, 3, len(subjects)).astype(float)
    return attrs, subjects, rng


def test_a_representation_of_identity_alone_ranks_identity_first():
    attrs, subjects, rng = _world_like()
    truth = st.truth_table(attrs)
    ident = np.stack([truth[n] for n in st.IDENTITY_ATTRIBUTES], axis=1)
    z = ident @ rng.normal(size=(ident.shape[1], 32)) + 0.05 * rng.normal(
        size=(len(subjects), 32)) + 10.0 * rng.normal(size=32)
    res = st.check_against_truth(z, attrs, subjects)
    assert res["auc"]["sensitivity"] == 1.0
    assert res["auc"]["probe_r2"] == 1.0
    # A representation of nuisance alone ranks it the other way round.
    nuis = np.stack([truth[n] for n in st.NUISANCE_ATTRIBUTES], axis=1)
    z2 = nuis @ rng.normal(size=(nuis.shape[1], 32)) + 10.0 * rng.normal(size=32)
    assert st.check_against_truth(z2, attrs, subjects)["auc"]["sensitivity"] < 0.1


def test_noise_gives_no_separation():
    attrs, subjects, rng = _world_like(seed=1)
    aucs = [st.check_against_truth(rng.normal(size=(len(subjects), 32)), attrs,
                                   subjects)["auc"]["sensitivity"] for _ in range(3)]
    assert 0.25 < np.mean(aucs) < 0.75, aucs
