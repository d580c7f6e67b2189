"""The main job runs end to end on a small world and writes its report."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def test_demo_quick_writes_report(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "interp_fr.pipeline.demo", "--out", str(out),
                           "--quick"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out / "report.json"))
    world = report["synthetic world"]["figures"]
    assert world["training images"] == 64 and world["training subjects"] == 8
    assert world["triangles"] == 142
    assert os.path.isfile(out / "report.md")
    assert "[1/" in proc.stdout  # progress display
    assert report["base CNN pretraining"]["figures"]["steps"] == 4
    assert report["training"]["figures"]["steps"] == 8
    # The full model started from the pretrained base, as the original does.
    assert report["training"]["figures"]["restored"].endswith("DCGAN.model-0")
    assert report["feature extraction"]["figures"]["images"] == world["test images"]
    tar = float(report["IJB-A evaluation"]["figures"][
        "TAR@FAR=0.01 (mean +- std over splits)"].split()[0])
    assert 0.0 <= tar <= 1.0
    results = json.load(open(out / "ijba" / "ijba_results.json"))
    assert len(results["verify"]["splits"]) == 10
    for name in ("ijba_roc.png", "ijba_cmc.png", "ijba_results.txt"):
        assert os.path.isfile(out / "ijba" / name), name
    assert report["frozen graph"]["figures"]["nodes"] > 100
    assert float(report["frozen graph"]["figures"][
        "max |feature(.pb) - feature(Keras)| over 16 images"]) <= 1e-5
    for rel in ("interpretability/peak_locations.png", "interpretability/filter_heatmaps.png",
                "interpretability/occlusion_feature_change.png",
                "decoding/decoding_grid.png", "decoding/eigen_features.png",
                "significance/significance.png", "significance/explanation.png"):
        assert os.path.isfile(out / rel), rel


def test_full_model_starts_from_the_reference_base_only_when_it_fits(tmp_path):
    from interp_fr import recipes, reference_models
    from interp_fr.pipeline import main_job
    from interp_fr.data import synthetic_world
    assert "base" in reference_models.available()
    subjects = reference_models.load_reference_model("base")[1]["model"]["n_subjects"]

    def ctx(**recipe):
        return main_job.JobContext(str(tmp_path), synthetic_world.WorldConfig(),
                                   model_config=recipes.Recipe(**recipe))
    model, description = main_job._reference_base(ctx(), subjects)
    assert description["name"] == "base" and model.n_subjects == subjects
    assert main_job._reference_base(ctx(), subjects - 1) is None
    assert main_job._reference_base(ctx(df_dim=4), subjects) is None
    assert main_job._reference_base(ctx(pretrained_base="train"), subjects) is None


def test_attribute_stages_explain_the_best_shipped_recogniser_with_a_decoder(
        tmp_path, monkeypatch):
    """The colour-jitter full model is explained when its decoder is shipped,
    with that decoder; else the reference full model with its own; else, with
    no shipped decoder at all, the reference full model and no shipped decoder."""
    from attr_recovery.shipped import reference_decoder
    from interp_fr import recipes, reference_models
    from interp_fr.pipeline import main_job
    from interp_fr.data import synthetic_world
    full = reference_models.shipped()["full"]
    decoders = set()
    monkeypatch.setattr(reference_models, "shipped", lambda: {
        "full": full, "colour_jitter/full": full})
    monkeypatch.setattr(reference_decoder, "available",
                        lambda folder=None, recognition="reference:full":
                        recognition in decoders)

    def choice():
        ctx = main_job.JobContext(str(tmp_path), synthetic_world.WorldConfig(),
                                  model_config=recipes.Recipe())
        ctx.values.update(reference_full="reference full", model="this run")
        _, label, spec = main_job._recogniser_for_attributes(ctx)
        decoder, _ = main_job._shipped_attribute_models(ctx)
        return label, spec, decoder and os.path.basename(decoder)
    decoders.update({"reference:full", "reference:colour_jitter/full"})
    assert choice() == ("full model trained with colour jitter (reference weights)",
                        "reference:colour_jitter/full", "decoder_colour_jitter_full64")
    decoders.discard("reference:colour_jitter/full")
    assert choice() == ("full model (reference weights)", "reference:full",
                        "decoder_full64")
    decoders.clear()
    assert choice() == ("full model (reference weights)", "reference:full", None)


def test_attribute_stages_explain_the_recogniser_asked_for(tmp_path, monkeypatch):
    """--attribute_recogniser names a shipped recogniser: it is loaded with the
    decoder made for it; one without its decoder, or a name not offered, is refused."""
    from attr_recovery.shipped import reference_decoder
    from interp_fr import recipes
    from interp_fr.common.errors import DataFileError
    from interp_fr.pipeline import main_job
    from interp_fr.data import synthetic_world

    def context(spec):
        return main_job.JobContext(str(tmp_path), synthetic_world.WorldConfig(),
                                   model_config=recipes.Recipe(), attribute_recogniser=spec)
    ctx = context("reference:mobilefacenet")
    model, label, spec = main_job._recogniser_for_attributes(ctx)
    decoder, _ = main_job._shipped_attribute_models(ctx)
    assert (label, spec, os.path.basename(decoder)) == (
        main_job.OTHER_ATTRIBUTE_RECOGNISERS["reference:mobilefacenet"],
        "reference:mobilefacenet", "decoder_mobilefacenet64")
    assert model.feature_dim == 512
    with pytest.raises(main_job.JobChoiceError, match="attribute_recogniser must be one of"):
        main_job.run_job(str(tmp_path), attribute_recogniser="reference:base")
    with pytest.raises(main_job.JobChoiceError, match="needs attribute_models=reference"):
        main_job.run_job(str(tmp_path), attribute_models="train",
                         attribute_recogniser="reference:mobilefacenet")
    monkeypatch.setattr(reference_decoder, "available", lambda **_: False)
    with pytest.raises(DataFileError, match="decoder_mobilefacenet64: the decoder"):
        main_job._recogniser_for_attributes(context("reference:mobilefacenet"))
    # Refused before any stage runs (nothing written).
    with pytest.raises(DataFileError, match="decoder_mobilefacenet64: the decoder"):
        main_job.run_job(str(tmp_path / "job"), attribute_recogniser="reference:mobilefacenet")
    assert not os.path.exists(tmp_path / "job")
