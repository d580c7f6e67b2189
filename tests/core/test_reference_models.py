"""The shipped reference weights load and give the figures recorded with them.

They were made by ``experiments/reproduce_paper.py --export`` on the synthetic
world of seed 0; the world is a pure function of its seed, so it is rebuilt here
and every recorded figure is measured again. Features differ between CPUs in
the last bits, which can move an operating point by a pair or a probe: hence
the tolerances.
"""
import os

import numpy as np
import pytest

from interp_fr import features, reference_models, weights_files
from interp_fr.eval import peak_locations, recognition_report

FIGURE_TOLERANCE = 0.02       # a few pairs / probes of the ~250 / ~300 per split
SPREADNESS_TOLERANCE = 0.5    # px


@pytest.fixture(scope="module")
def world(reference_world):
    return reference_world


@pytest.fixture(scope="module")
def loaded():
    assert reference_models.available() == list(reference_models.NAMES), \
        f"reference weights missing from {reference_models.REFERENCE_DIR}"
    return {name: reference_models.load_reference_model(name)
            for name in reference_models.NAMES}


def test_each_file_has_its_description_and_size_limit(loaded):
    total = 0
    for name, (model, doc) in loaded.items():
        assert doc["name"] == name and doc["provenance"]["seed"] == 0
        assert doc["model"] == weights_files.model_config(model)
        assert "reproduce_paper.py" in doc["provenance"]["command"]
        total += os.path.getsize(os.path.join(reference_models.REFERENCE_DIR,
                                              name + reference_models.WEIGHTS_SUFFIX))
    assert total < 20e6


def test_recorded_figures_are_measured_again(world, loaded):
    forwards = {n: features.keras_forward(m) for n, (m, _) in loaded.items()}
    peaks = peak_locations.peak_location_figure_for_models(
        forwards, world, os.path.join(world, "peaks.png"))
    for name, (_, doc) in loaded.items():
        recorded = doc["recorded"]
        measured = recognition_report.recogniser_figures(forwards[name], world)
        for column, metrics in recorded["figures"].items():
            for metric, value in metrics.items():
                assert measured[column][metric] == pytest.approx(
                    value, abs=FIGURE_TOLERANCE, nan_ok=True), (name, column, metric)
        for key in ("d_pos", "d_neg"):
            assert peaks[name][key] == pytest.approx(recorded[key],
                                                     abs=SPREADNESS_TOLERANCE), (name, key)
    # Far above raw pixels: these are recognisers, not noise.
    pixels = recognition_report.pixel_baseline_figures(world)
    full = loaded["full"][1]["recorded"]["figures"]
    assert full["all"]["rank1"] > pixels["all"]["rank1"] + 0.5
    assert np.isfinite(full["all"]["tar_at_far_0.01"])


def test_significance_of_the_reference_full_model_matches_the_truth(world, loaded):
    """The sensitivity ranking puts every identity attribute of the world above
    its nuisance attributes for the converged full model; an untrained network
    of the same shape separates them far less (its features are colour
    statistics, and colour is part of identity here, so not 0.5)."""
    import keras
    from attr_recovery.analysis import significance_truth as st
    from interp_fr.data import dat_files
    from interp_fr.model import InterpFRNet
    attrs = dict(np.load(os.path.join(world, "attributes", "ijba_attributes.npz")))
    test = dat_files.open_ijba_images(os.path.join(world, "DATA"))
    full = loaded["full"][0]
    z = features.extract_features(features.keras_forward(full), test).features
    auc = st.check_against_truth(z, attrs, attrs["subject"])["auc"]
    keras.utils.set_random_seed(0)
    cfg = full.get_config()
    untrained = InterpFRNet(**{k: cfg[k] for k in ("df_dim", "gfc_dim", "dfc_dim",
                                                   "n_subjects", "variant")})
    z0 = features.extract_features(features.keras_forward(untrained), test).features
    auc0 = st.check_against_truth(z0, attrs, attrs["subject"])["auc"]
    assert auc["sensitivity"] >= 0.9, auc
    assert auc0["sensitivity"] < 0.85 and auc["sensitivity"] - auc0["sensitivity"] > 0.1
