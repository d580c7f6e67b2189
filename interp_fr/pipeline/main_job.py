"""The main job: the whole pipeline on the synthetic world, into one folder.

Each stage is a function ``stage(ctx) -> dict`` that reads what earlier stages
left in ``ctx`` and returns the figures it wants in the report. The report
(``report.md`` and ``report.json``) is rewritten after every stage, so an
interrupted run still leaves an accurate account of what finished.
"""
import dataclasses
import json
import os
import sys
import time

from interp_fr import features, recipes, reference_models
from interp_fr.common.atomic_io import atomic_save_text
from interp_fr.common.errors import DataFileError, InputError
from interp_fr.data import dat_files, mat_files, synthetic_world
from interp_fr.eval import (filter_heatmaps, ijba, occlusion_analysis, peak_locations,
                            recognition_report, training_curves)
from interp_fr.data.image_scaling import to_unit_range


# The main job's recipe: the `recipes.Recipe` defaults (BUILD_NOTES.md,
# "Training recipe of the synthetic world").
DemoModelConfig = recipes.Recipe
ATTRIBUTE_MODEL_CHOICES = ("reference", "train")


class JobChoiceError(ValueError, InputError):
    """The job's options do not go together (command lines: one line, exit 2)."""


@dataclasses.dataclass
class JobContext:
    """State shared by the stages."""
    out_dir: str
    world_config: synthetic_world.WorldConfig
    quick: bool = False
    model_config: DemoModelConfig = dataclasses.field(default_factory=DemoModelConfig)
    values: dict = dataclasses.field(default_factory=dict)
    # Attribute recovery's decoder and estimators: "reference": the shipped
    # ones (attr_recovery.shipped.reference_decoder / reference_estimators) when the
    # recogniser is the reference full model they were made for; "train":
    # small ones trained in this run (BUILD_NOTES.md, "Legible decoding").
    attribute_models: str = "reference"
    # The recogniser the attribute-recovery stages explain: "auto" (the first of
    # `ATTRIBUTE_RECOGNISERS` shipped with its decoder) or one of them by spec.
    attribute_recogniser: str = "auto"

    def path(self, *parts):
        return os.path.join(self.out_dir, *parts)


def stage_world(ctx):
    """Builds the synthetic world and reads every file back through our readers."""
    world = ctx.path("world")
    summary = synthetic_world.build_world(world, ctx.world_config)
    data = os.path.join(world, synthetic_world.DATA_DIR)
    aux = os.path.join(world, synthetic_world.AUX_DIR)
    casia = dat_files.load_casia(data)
    test = dat_files.open_ijba_images(data)
    mat_files.read_landmarks(os.path.join(aux, synthetic_world.CASIA_LANDMARKS_FILE),
                             expected_count=len(casia.images))
    mat_files.read_landmarks(os.path.join(aux, synthetic_world.IJBA_LANDMARKS_FILE),
                             expected_count=len(test))
    tri = mat_files.read_triangulation(os.path.join(aux, synthetic_world.TRIANGULATION_FILE))
    mat_files.read_frontal_template(os.path.join(aux, synthetic_world.FRONTAL_TEMPLATE_FILE))
    ctx.values.update(world_dir=world, data_dir=data, aux_dir=aux,
                      ijba_dir=os.path.join(world, synthetic_world.IJBA_DIR))
    return {"training images": len(casia.images),
            "training subjects": casia.num_subjects,
            "test images": len(test), "triangles": len(tri),
            "verify comparisons per split": summary["verify_comparisons_per_split"]}


def _reference_base(ctx, training_subjects):
    """(model, description) of the shipped reference base CNN when the recipe
    asks for it and its widths and subject count fit; else None."""
    r = ctx.model_config
    if r.pretrained_base != "reference" or "base" not in reference_models.available():
        return None
    wanted = {"df_dim": r.df_dim, "gfc_dim": r.gfc_dim, "dfc_dim": r.dfc_dim,
              "n_subjects": training_subjects}
    described = reference_models.reference_description("base")["model"]
    if any(described.get(k) != v for k, v in wanted.items()):
        return None
    return reference_models.load_reference_model("base")


def stage_pretrain(ctx):
    """The base CNN (identity loss only) the full model starts from, as in the
    original procedure: the shipped reference base when the recipe asks for it
    (its pretraining costs more than the whole job's budget), else trained here."""
    subjects = dat_files.load_casia(ctx.values["data_dir"]).num_subjects
    reference = _reference_base(ctx, subjects)
    if reference is not None:
        model, description = reference
        ctx.values["base"] = model
        ctx.values["base_label"] = "base CNN (reference weights)"
        recorded = description["recorded"]
        return {"source": "reference weights "
                f"({os.path.join(reference_models.REFERENCE_DIR, 'base')}), trained "
                f"for {recorded['steps']} steps on the training identities of the "
                "world of seed 0 by experiments/reproduce_paper.py; "
                "--pretrained_base=train trains it here instead",
                "steps": int(recorded["steps"])}
    base = recipes.train_paper_model(ctx.model_config, "base", ctx.values["world_dir"],
                                     ctx.path("checkpoints"),
                                     progress=sys.stdout.isatty())
    atomic_save_text(ctx.path("pretrain_log.txt"), "\n".join(base.log) + "\n")
    ctx.values["base"] = base
    ctx.values["base_label"] = "base CNN (this run)"
    return {"source": "trained here",
            "steps": int(base.trainer.step.numpy()),
            "seconds": round(base.seconds, 1),
            "final identity loss (2 x CE)": round(base.last.get("d_loss_real_id",
                                                                float("nan")), 4),
            "final batch accuracy": round(base.last.get("d_acc", float("nan")), 3),
            "checkpoint folder": base.trainer.config.model_dir}


def stage_train(ctx):
    """Trains the full model (all losses, synthetic occlusion) from the base."""
    full = recipes.train_paper_model(ctx.model_config, "full", ctx.values["world_dir"],
                                     ctx.path("checkpoints"), base=ctx.values["base"],
                                     progress=sys.stdout.isatty())
    atomic_save_text(ctx.path("training_log.txt"), "\n".join(full.log) + "\n")
    trainer, config = full.trainer, full.trainer.config
    ctx.values.update(model=trainer.model, train_config=config)
    base = ctx.values["base"]
    if isinstance(base, recipes.TrainedModel):
        curves = training_curves.plot_learning_curves(
            {"base CNN": base.trainer.history,
             "full model (from the base)": trainer.history},
            ctx.path("learning_curves.png"),
            step_offsets={"full model (from the base)": int(base.trainer.step.numpy())})
    else:
        curves = training_curves.plot_learning_curves(
            {"full model (from the reference base)": trainer.history},
            ctx.path("learning_curves.png"))
    first = next((line for line in full.log if line.startswith("Epoch:")), "")
    return {"restored": trainer.restored_from, "steps": int(trainer.step.numpy()),
            "seconds": round(full.seconds, 1), "batch size": config.batch_size,
            "model": f"df_dim={config.df_dim}, gfc_dim={config.gfc_dim}, "
                     f"dfc_dim={config.dfc_dim}, {trainer.model.n_subjects} subjects",
            "first log line": first, "final losses": {
                k: round(v, 4) for k, v in full.last.items() if not k.startswith("zero")},
            "checkpoint folder": config.model_dir,
            "learning curves": curves}


def stage_extract(ctx):
    """IJB-A-format features and feature maps of the synthetic test images."""
    test = dat_files.open_ijba_images(ctx.values["data_dir"])
    # One traced forward for this stage and the analyses (a new tf.function per
    # analysis would retrace the same model each time).
    forward = ctx.values["forward"] = features.keras_forward(ctx.values["model"])
    result = features.extract_features(forward, test, batch_size=64, num_maps=200)
    path = ctx.path("IJBA_features_iter_0.txt")
    features.save_feature_text(path, result.features)
    features.save_feature_text(ctx.path("IJBA_feature_maps_ours.txt"),
                               result.feature_maps)
    ctx.values.update(features=result.features, feature_maps_path=ctx.path(
        "IJBA_feature_maps_ours.txt"), features_path=path)
    return {"images": len(result.features), "feature dim": result.features.shape[1],
            "feature file": path}


def stage_freeze(ctx):
    """Frozen GraphDef with the original's tensor names, re-run through the .pb."""
    from interp_fr import model_loading
    from interp_fr.export import api as freeze_api
    model_dir = ctx.values["train_config"].model_dir
    result = freeze_api.freeze_checkpoint(model_dir,
                                          output=ctx.path("pretrained_model.pb"))
    frozen = model_loading.load_forward(result.output)
    test = dat_files.open_ijba_images(ctx.values["data_dir"])
    images = to_unit_range(test.read_range(0, 16))
    feats = frozen.forward(images)["feature"]
    diff = float(abs(feats - ctx.values["features"][:16]).max())
    return {"frozen graph": result.output, "nodes": result.num_nodes,
            "max |feature(.pb) - feature(Keras)| over 16 images": f"{diff:.2e}"}


def stage_evaluate(ctx):
    """The IJB-A protocol of the synthetic world, as CNN_single_verify/search.m,
    and the paper's table for the models of this run beside raw pixels."""
    ijba_dir = ctx.values["ijba_dir"]
    results = ijba.evaluate_ijba(ctx.values["features"],
                                 os.path.join(ijba_dir, "dataset.mat"), ijba_dir,
                                 task="both")
    out = ctx.path("ijba")
    ijba.write_outputs(results, out)
    occluded = ijba.evaluate_ijba(ctx.values["features"],
                                  os.path.join(ijba_dir, "dataset.mat"), ijba_dir,
                                  task="both", subset="occluded")
    ijba.write_outputs(occluded, ctx.path("ijba_occluded"))
    world = ctx.values["world_dir"]
    base = ctx.values["base"]
    base_forward = ctx.values["base_forward"] = features.keras_forward(
        base.model if isinstance(base, recipes.TrainedModel) else base)
    rows = [("raw pixels (PCA 64 of 24x24)", recognition_report.pixel_baseline_figures(world)),
            (ctx.values["base_label"], recognition_report.recogniser_figures(
                base_forward, world)),
            ("full model (this run)", recognition_report.recogniser_figures(
                ctx.values["forward"], world))]
    references = {}
    for name in reference_models.available():
        if name == "base" and "reference" in ctx.values["base_label"]:
            continue  # already the base row
        model, description = reference_models.load_reference_model(name)
        references[name] = features.keras_forward(model)
        rows.append((f"{name} (reference weights)", recognition_report.recogniser_figures(
            references[name], world)))
        if name == "full":
            ctx.values["reference_full"] = model
    ctx.values["reference_forwards"] = references
    table = recognition_report.table_markdown(rows)
    atomic_save_text(ctx.path("paper_table.md"), table)
    ctx.values["paper_rows"] = rows
    v, s = results["verify"], results["search"]
    return {"TAR@FAR=0.01 (mean +- std over splits)":
            f"{v['mean']['tar_at_far_0.01']:.3f} +- {v['std']['tar_at_far_0.01']:.3f}",
            "TAR@FAR=0.001": f"{v['mean']['tar_at_far_0.001']:.3f} +- "
                             f"{v['std']['tar_at_far_0.001']:.3f}",
            "rank-1": f"{s['mean']['rank1']:.3f} +- {s['std']['rank1']:.3f}",
            "rank-5": f"{s['mean']['rank5']:.3f}",
            "occluded subset TAR@FAR=0.01":
                f"{occluded['verify']['mean']['tar_at_far_0.01']:.3f}",
            "outputs": out,
            "reference weights": (
                f"{sorted(references)} from {reference_models.REFERENCE_DIR}, trained by "
                "experiments/reproduce_paper.py on the world of seed 0 (their rows "
                "are theirs; every other figure is this run's)" if references else
                "none shipped"),
            "paper table (TAR at FAR, rank; means over the 10 splits)": table}


def stage_interpretability(ctx):
    """Peak locations and spreadness, filter heat maps, feature change under occlusion."""
    model, world = ctx.values["forward"], ctx.values["world_dir"]
    out = ctx.path("interpretability")
    os.makedirs(out, exist_ok=True)
    # The paper's figure: base and full side by side, one row each.
    base_key = ("base (reference)" if "reference" in ctx.values["base_label"]
                else "base (this run)")
    models = {base_key: ctx.values["base_forward"], "full (this run)": model}
    models.update({f"{n} (reference)": f
                   for n, f in ctx.values.get("reference_forwards", {}).items()})
    both = peak_locations.peak_location_figure_for_models(
        models, world, os.path.join(out, "peak_locations.png"), out_dir=out)
    peaks, base_peaks = both["full (this run)"], both[base_key]
    heat = filter_heatmaps.heatmap_grid_for_model(
        model, world, os.path.join(out, "filter_heatmaps.png"))
    occl = occlusion_analysis.occlusion_figure_for_model(
        model, world, os.path.join(out, "occlusion_feature_change.png"))
    forehead = occl["blocks"].get("forehead", {})
    return {"spreadness d, full model (positive / negative / mean, px)":
            f"{peaks['d_pos']:.2f} / {peaks['d_neg']:.2f} / {peaks['d']:.2f}",
            f"spreadness d, {base_key} (positive / negative / mean, px)":
            f"{base_peaks['d_pos']:.2f} / {base_peaks['d_neg']:.2f} / "
            f"{base_peaks['d']:.2f}",
            **{f"spreadness d, {n} (positive / negative / mean, px)":
               f"{r['d_pos']:.2f} / {r['d_neg']:.2f} / {r['d']:.2f}"
               for n, r in both.items() if "reference" in n and n != base_key},
            "heat-map filters": heat["filters"],
            "occlusion blocks analysed": sorted(occl["blocks"]),
            "forehead block": {k: v for k, v in forehead.items()
                               if not isinstance(v, (list, dict))},
            "peak locations (one row per model)":
                os.path.join(out, "peak_locations.png"),
            "filter heat maps": os.path.join(out, "filter_heatmaps.png"),
            "feature change under occlusion":
                os.path.join(out, "occlusion_feature_change.png")}


# The shipped recognisers the attribute-recovery stages explain, best first, with
# their report labels: the full model trained with colour jitter carries face
# shape, the paper's full model only colour (BUILD_NOTES.md, "What the
# recognisers encode"). One is taken only with the decoder shipped for it.
ATTRIBUTE_RECOGNISERS = {
    "reference:colour_jitter/full": "full model trained with colour jitter (reference weights)",
    "reference:full": "full model (reference weights)"}
# Recognisers that are explained only when asked for (`--attribute_recogniser`):
# the MobileFaceNet trained with grey-scale augmentation, which carries colour
# and shape (BUILD_NOTES.md, "The shipped MobileFaceNet"). The default stays the
# InterpFRNet, the model of the paper this job reproduces.
OTHER_ATTRIBUTE_RECOGNISERS = {
    "reference:mobilefacenet": "MobileFaceNet trained with grey-scale augmentation "
                               "(reference weights)"}
ATTRIBUTE_RECOGNISER_CHOICES = (("auto",) + tuple(ATTRIBUTE_RECOGNISERS)
                                + tuple(OTHER_ATTRIBUTE_RECOGNISERS))


def _recogniser_for_attributes(ctx):
    """(model, label, spec or None) of the face model the attribute-recovery
    stages explain: the first of `ATTRIBUTE_RECOGNISERS` shipped with its
    decoder, else the reference full model, else this run's."""
    from attr_recovery.shipped import reference_decoder
    if "attribute_recogniser" in ctx.values:
        return ctx.values["attribute_recogniser"]
    if ctx.attribute_recogniser != "auto":
        ctx.values["attribute_recogniser"] = _asked_recogniser(ctx.attribute_recogniser)
        return ctx.values["attribute_recogniser"]
    shipped = reference_models.shipped()
    found = next((spec for spec in ATTRIBUTE_RECOGNISERS
                  if spec.partition(":")[2] in shipped
                  and reference_decoder.available(recognition=spec)), None)
    if found is None and "reference_full" in ctx.values:
        found = "reference:full"
    if found is None:
        chosen = (ctx.values["model"], "full model (this run)", None)
    elif found == "reference:full" and "reference_full" in ctx.values:
        # Already loaded by the evaluation stage.
        chosen = (ctx.values["reference_full"], ATTRIBUTE_RECOGNISERS[found], found)
    else:
        model = reference_models.load_shipped(found.partition(":")[2])[0]
        chosen = (model, ATTRIBUTE_RECOGNISERS[found], found)
    ctx.values["attribute_recogniser"] = chosen
    return chosen


def check_attribute_recogniser(spec):
    """The report label of ``spec``, "auto" or a key of `ATTRIBUTE_RECOGNISERS`
    / `OTHER_ATTRIBUTE_RECOGNISERS` (None for "auto"); refused when a named one's
    decoder is not shipped (a decoder inverts one model)."""
    from attr_recovery.shipped import reference_decoder
    labels = dict(ATTRIBUTE_RECOGNISERS, **OTHER_ATTRIBUTE_RECOGNISERS)
    if spec != "auto" and spec not in labels:
        raise JobChoiceError(f"attribute_recogniser must be one of "
                             f"{ATTRIBUTE_RECOGNISER_CHOICES}, got {spec!r}")
    if spec != "auto" and not reference_decoder.available(recognition=spec):
        raise DataFileError(reference_decoder.reference_decoder_dir(recognition=spec),
                            f"the decoder shipped for {spec} is missing")
    return labels.get(spec)


def _asked_recogniser(spec):
    """(model, label, spec) of the shipped recogniser ``spec`` (`check_attribute_recogniser`)."""
    from attr_recovery.readers import recognition
    label = check_attribute_recogniser(spec)
    return recognition.load_recognition_model(spec), label, spec


def _shipped_attribute_models(ctx):
    """(decoder folder, estimators folder) shipped for the recogniser, or (None, None):
    a decoder is made for one recogniser, so only for a shipped one; the
    estimators read images and serve any."""
    from attr_recovery.shipped import reference_decoder, reference_estimators
    spec = _recogniser_for_attributes(ctx)[2]
    if ctx.attribute_models != "reference" or spec is None:
        return None, None
    return (reference_decoder.reference_decoder_dir(recognition=spec)
            if reference_decoder.available(recognition=spec) else None,
            reference_estimators.reference_estimators_dir()
            if reference_estimators.available() else None)


def stage_decoding(ctx):
    """Attribute recovery, stage 1: decode a face model's features into faces."""
    from attr_recovery.stages import decoding_stage
    model, which, _ = _recogniser_for_attributes(ctx)
    figures = {"recogniser": which}
    shipped, _ = _shipped_attribute_models(ctx)
    if shipped:
        figures["decoder"] = ("shipped reference decoder (64 px, trained by "
                              "experiments/train_reference_decoder.py); "
                              "--attribute_models=train trains a small one here")
        figures.update(decoding_stage.run_trained_decoder_stage(
            ctx.values["world_dir"], model, shipped, ctx.path("decoding"),
            eval_images=16 if ctx.quick else 64, attack_images=16 if ctx.quick else 256,
            unseen_images=32 if ctx.quick else None))
        ctx.values["decoder_dir"] = shipped
        return figures
    figures.update(decoding_stage.run_decoding_stage(
        ctx.values["world_dir"], model, ctx.path("decoding"),
        seconds_budget=8.0 if ctx.quick else 120.0, max_steps=10 if ctx.quick else 5000))
    ctx.values["decoder_dir"] = ctx.path("decoding", "decoder")
    return figures


def stage_significance(ctx):
    """Attribute recovery, stage 2: attribute significance and one explained pair."""
    from attr_recovery.stages import significance_stage
    model, which, _ = _recogniser_for_attributes(ctx)
    figures = {"recogniser": which}
    _, estimators = _shipped_attribute_models(ctx)
    if estimators:
        figures["estimators"] = ("shipped reference estimators (64 px, trained by "
                                 "experiments/train_reference_estimators.py)")
    figures.update(significance_stage.run_significance_stage(
        ctx.values["world_dir"], model, ctx.values["decoder_dir"],
        ctx.path("significance"), seconds_budget=10.0 if ctx.quick else 90.0,
        estimators=estimators, max_reference_images=64 if ctx.quick else 400))
    return figures


STAGES = [
    ("synthetic world", stage_world),
    ("base CNN pretraining", stage_pretrain),
    ("training", stage_train),
    ("feature extraction", stage_extract),
    ("frozen graph", stage_freeze),
    ("IJB-A evaluation", stage_evaluate),
    ("interpretability", stage_interpretability),
    ("decoding (attribute recovery)", stage_decoding),
    ("attribute significance and counterfactuals", stage_significance),
]


def _write_report(ctx, results):
    lines = ["# interp-fr main job report", ""]
    for name, res in results:
        lines.append(f"## {name} ({res['seconds']:.1f} s)")
        blocks = []
        for key, value in res["figures"].items():
            if isinstance(value, str) and "\n" in value.strip():
                # Multi-line values (tables) follow the list as blocks.
                blocks += ["", f"{key}:", "", value.strip()]
            elif isinstance(value, str) and value.endswith(".png"):
                rel = os.path.relpath(value, ctx.out_dir)
                lines.append(f"- {key}: [{rel}]({rel})")
                blocks += ["", f"![{key}]({rel})"]
            else:
                lines.append(f"- {key}: {value}")
        lines += blocks + [""]
    atomic_save_text(ctx.path("report.md"), "\n".join(lines))
    atomic_save_text(ctx.path("report.json"), json.dumps(
        {name: res for name, res in results}, indent=2, default=str))


def run_job(out_dir, world_config=None, model_config=None, quick=False,
            progress=print, attribute_models="reference", attribute_recogniser="auto"):
    """Runs every stage in order; returns [(stage name, {seconds, figures})]."""
    if attribute_models not in ATTRIBUTE_MODEL_CHOICES:
        raise JobChoiceError(f"attribute_models must be one of {ATTRIBUTE_MODEL_CHOICES}, "
                             f"got {attribute_models!r}")
    # Before the training stage: a wrong choice should not cost its minutes.
    check_attribute_recogniser(attribute_recogniser)
    if attribute_recogniser != "auto" and attribute_models != "reference":
        raise JobChoiceError("attribute_recogniser names a shipped recogniser, whose "
                             "decoder is shipped: it needs attribute_models=reference")
    os.makedirs(out_dir, exist_ok=True)
    ctx = JobContext(out_dir, world_config or synthetic_world.WorldConfig(), quick,
                     model_config or DemoModelConfig(), attribute_models=attribute_models,
                     attribute_recogniser=attribute_recogniser)
    results = []
    start = time.perf_counter()
    for i, (name, stage) in enumerate(STAGES, start=1):
        progress(f"[{i}/{len(STAGES)}] {name} ...")
        t0 = time.perf_counter()
        figures = stage(ctx)
        results.append((name, {"seconds": time.perf_counter() - t0, "figures": figures}))
        _write_report(ctx, results)
        progress(f"[{i}/{len(STAGES)}] {name} done in {time.perf_counter() - t0:.1f} s"
                 f" (total {time.perf_counter() - start:.1f} s)")
    progress(f"report: {ctx.path('report.md')}")
    return results
