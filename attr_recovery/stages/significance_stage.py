"""The attribute stage of the main job: estimators, significance and one explained pair.

``run_significance_stage(world_dir, recognition_model, decoder, out_dir,
seconds_budget)`` (not in the original code):

1. trains the attribute estimators on the world's training images (exact
   attributes and landmarks, plus a few rendered occluded faces) for about
   half the budget, at the decoder-sized working resolution;
2. reports their accuracy per attribute on the held-out IJB-A-format test
   images (disjoint identities): ``estimators/accuracy.{json,txt}``;
3. measures attribute significance for the recognition model and decoder on
   those held-out images: ``significance.{txt,json,png}`` and
   ``significance_directions.npz``;
4. explains one verification decision at the equal-error-rate threshold of
   the held-out images (the false reject nearest the threshold when there is
   one): ``explanation.{png,json}``.

Returns a dict of figures for the report. Everything is seeded.
"""
import json
import os
import time

import keras
import numpy as np

from attr_recovery.analysis import attribute_significance as sig
from attr_recovery.trainers import attribute_data, estimator_training
from attr_recovery.analysis import counterfactual, significance_truth
from attr_recovery.readers import face_geometry
from attr_recovery.analysis import significance_figures
from attr_recovery.analysis import spec_inputs
from interp_fr.data.image_scaling import to_unit_range
from attr_recovery.nets.baseline_decoder import RidgeDecoder
from interp_fr.common.atomic_io import atomic_save_text

ESTIMATOR_SUBDIR = "estimators"
EXPLANATION_PNG = "explanation.png"
# Decoded-vs-real r from which the decoder counts as rendering an attribute
# (the counterfactual side-effect check looks at those).
MIN_RECOVERABILITY = 0.5
EXPLANATION_JSON = "explanation.json"


def _exact_truth(held_out):
    """Exact values of the held-out images: targets + descriptors of the exact landmarks."""
    truth = dict(held_out.targets)
    if held_out.landmarks is not None and np.isfinite(held_out.landmarks).all():
        truth.update(face_geometry.landmark_attributes(held_out.landmarks))
    return truth


def _accuracy_summary(metrics):
    out = {}
    for name, m in metrics.get("attributes", {}).items():
        if "accuracy" in m:
            out[name] = f"acc {m['accuracy']:.2f} (chance {m['chance']:.2f})"
        elif "mae" in m:
            out[name] = f"MAE {m['mae']:.3g} {m['unit']}, R2 {m['r2']:.2f}"
    if "landmarks" in metrics:
        out["landmarks"] = (f"{metrics['landmarks']['mean_error_px']:.2f} px, NME "
                            f"{metrics['landmarks']['nme_interocular']:.3f}")
    return out


def _contribution_text(m):
    """One attribute's line: contribution, flip distance and, when decoded and
    read, what the counterfactual face shows (that attribute and the largest
    other change, in units)."""
    text = f"{m['contribution']:.2f} (flip at {m['flip_change']:+.2f} u"
    if "decoded_change" in m:
        text += f"; decoded face shows {m['decoded_change']:+.2f} u"
        if "decoded_largest_other" in m:
            text += (f", largest other {m['decoded_largest_other']} "
                     f"{m['decoded_largest_other_change']:+.2f} u")
    return text + ")"


def _recognition(obj):
    """Plain callables and objects with ``features`` are used as they are;
    models go through ``recognition.as_recognition_model`` (input resizing,
    dict outputs, inference mode)."""
    if hasattr(obj, "features") or (callable(obj) and not isinstance(obj, keras.Model)):
        return obj
    from attr_recovery.readers.recognition import as_recognition_model
    return as_recognition_model(obj)


def run_significance_stage(world_dir, recognition_model, decoder, out_dir,
                           seconds_budget=90.0, seed=0, estimator_fraction=0.5,
                           extra_rendered=160, working_size=32, calibration_images=16,
                           max_reference_images=400, estimators=None, log=None):
    """Trains the estimators, measures significance and explains one pair.

    Args:
      world_dir: a synthetic world (``build_world`` output).
      recognition_model: anything ``recognition.as_recognition_model`` takes
        (our InterpFRNet, a Keras model), or a callable images [N, 96, 96, 3]
        in [-1, 1] -> features [N, d].
      decoder: z -> images (a stage-1 ``FeatureDecoder``, anything with
        ``decode``, or a callable), or a path: a stage-1 trainer folder or
        ``ridge:FILE.npz``; None: a `RidgeDecoder` is fitted on the training
        images' representations.
      out_dir: output folder (created).
      seconds_budget: wall-clock target for the whole stage; the estimators
        train for ``estimator_fraction`` of it (minus set-up time).
      seed: seed of the estimator training.
      extra_rendered: rendered occluded faces added to the estimator training
        set (the default world's training images have no occluders).
      working_size: the estimators' input resolution (decoded faces are small).
      calibration_images: faces decoded per attribute for the decoder response.
      max_reference_images: cap on the held-out images used.
      estimators: a folder of trained estimators (``estimator_training``
        output, e.g. the shipped ``reference_estimators``): read instead of
        training (``extra_rendered``, ``working_size`` and ``estimator_fraction``
        then do nothing).
      log: callable(str) or None.
    Returns: dict of figures (accuracy summary, ranking, the explained pair,
      file paths, seconds).
    """
    t_start = time.perf_counter()
    say = log or (lambda _: None)
    os.makedirs(out_dir, exist_ok=True)
    rec = _recognition(recognition_model)
    figures = {}
    if isinstance(decoder, (str, os.PathLike)):
        decoder = spec_inputs.load_decoder(os.fspath(decoder))

    # 1. Estimators: trained here, or read from a trainer folder.
    if estimators is None:
        config = estimator_training.EstimatorTrainConfig(
            world_dir=world_dir, out_dir=os.path.join(out_dir, ESTIMATOR_SUBDIR),
            heads="synthetic", extra_rendered=extra_rendered, input_size=working_size,
            landmark_input_size=working_size, max_steps=100000, seed=seed,
            save_every_steps=0, log_every=50)
        trainer = estimator_training.EstimatorTrainer(config, log=say)
        config.max_seconds = max(5.0, estimator_fraction * seconds_budget
                                 - (time.perf_counter() - t_start))
        trainer.fit()
        figures["estimator training steps"] = int(trainer.step.numpy())
        reader, held = trainer.reader(), trainer.held_out
    else:
        reader = estimator_training.load_reader(os.fspath(estimators))
        figures["estimators"] = os.fspath(estimators)
        held = attribute_data.world_split(world_dir, "test")
    held = held.evenly_spaced(max_reference_images)
    metrics = estimator_training.evaluate_estimators(reader, held)
    est_dir = os.path.join(out_dir, ESTIMATOR_SUBDIR)
    os.makedirs(est_dir, exist_ok=True)
    atomic_save_text(os.path.join(est_dir, estimator_training.METRICS_FILE),
                     json.dumps(sig.json_safe(metrics), indent=2))
    atomic_save_text(os.path.join(est_dir, "accuracy.txt"),
                     estimator_training.format_accuracy_table(metrics) + "\n")
    figures["estimator accuracy (held-out identities)"] = _accuracy_summary(metrics)
    figures["estimator seconds"] = time.perf_counter() - t_start

    # 2. Significance on the held-out faces.
    t0 = time.perf_counter()
    images = to_unit_range(held.read(np.arange(len(held))))
    z = sig.representations(rec, images)
    if decoder is None:
        train = (trainer.train_set if estimators is None
                 else attribute_data.world_split(world_dir, "train"))
        rows = np.linspace(0, len(train) - 1, min(len(train), 1500)).round().astype(int)
        train_images = to_unit_range(train.read(rows))
        decoder = RidgeDecoder.fit(sig.representations(rec, train_images), train_images,
                                   size=working_size)
        figures["decoder"] = "ridge baseline (no decoder given)"
    result = sig.compute_significance(rec, decoder, reader, images,
                                      truth=_exact_truth(held), subjects=held.subjects,
                                      calibration_images=calibration_images,
                                      features=z)
    threshold = counterfactual.eer_threshold(z, held.subjects)
    paths = sig.write_significance(result, out_dir, threshold)
    figures["significance ranking (sensitivity; * = not above the noise floor)"] = [
        f"{n}: {m['sensitivity']:.2e}{'' if m.get('above_noise', True) else ' *'}"
        for n, m in list(result["attributes"].items())[:8]]
    if result.get("unreadable"):
        figures["not measured (estimate vs exact value r^2 below "
                f"{sig.MIN_ESTIMATOR_R2})"] = {n: round(v, 3) for n, v in
                                               result["unreadable"].items()}
    # The world knows which attributes make an identity (significance_truth).
    figures["sensitivity ranking AUC, identity over nuisance attributes"] = round(
        significance_truth.readout_auc(result), 3)
    figures["recoverability r (decoded vs real, top 5)"] = {
        n: round(m["recoverability"], 3) for n, m in sorted(
            result["attributes"].items(),
            key=lambda kv: -kv[1].get("recoverability", -1))[:5]
        if "recoverability" in m}
    figures["significance seconds"] = time.perf_counter() - t0

    # 3. Explained pairs: the picked one (median false reject, else ...) and,
    # when the set has one besides, the median false accept.
    t0 = time.perf_counter()
    pairs = [counterfactual.pick_pair(z, held.subjects, threshold)]
    pairs += [p for p in counterfactual.error_pairs(z, held.subjects, threshold)
              if p[2] != pairs[0][2]]
    for n, (i, j, reason) in enumerate(pairs):
        a = reader(images[[i, j]])
        exp = counterfactual.explain_pair(
            z[i], z[j], result["directions"], result["names"], threshold,
            units=result["units"], attributes1={k: v[0] for k, v in a.items()},
            attributes2={k: v[1] for k, v in a.items()}, decoder=decoder, reader=reader,
            encoded=[result["attributes"][n].get("above_noise", True)
                     for n in result["names"]],
            rendered=[n for n, m in result["attributes"].items()
                      if m.get("recoverability", 0.0) >= MIN_RECOVERABILITY])
        doc = counterfactual.pair_json(exp)
        doc.update(pair_rows=[int(held.rows[i]), int(held.rows[j])], reason=reason,
                   subjects=[int(held.subjects[i]), int(held.subjects[j])])
        suffix = "" if n == 0 else "_" + reason.split()[-1]      # _accept
        exp_json = os.path.join(out_dir, EXPLANATION_JSON.replace(".json", suffix + ".json"))
        atomic_save_text(exp_json, json.dumps(doc, indent=2, allow_nan=False))
        exp_png = significance_figures.explanation_figure(
            images[i], images[j], exp,
            os.path.join(out_dir, EXPLANATION_PNG.replace(".png", suffix + ".png")))
        label = "" if n == 0 else f" ({reason})"
        figures["explained pair" + label] = (
            f"test rows {held.rows[i]} / {held.rows[j]} ({reason}): cos "
            f"{exp['similarity']:.3f} vs threshold {threshold:.3f} -> {exp['decision']}")
        figures["top contributions" + label] = {
            name: _contribution_text(exp["attributes"][name])
            for name in exp["order"][:3] if exp["attributes"][name]["flippable"]} or (
            f"none: no attribute R encodes above the noise floor ("
            f"{', '.join(n for n in exp['order'] if exp['attributes'][n]['encoded'])}) "
            f"flips it within {counterfactual.MAX_UNITS:g} units")
        figures["explanation figure" + label] = exp_png
        figures["explanation json" + label] = exp_json
    figures["explanation seconds"] = time.perf_counter() - t0
    figures.update({"significance table": paths["table"],
                    "significance chart": paths["chart"],
                    "significance json": paths["json"],
                    "estimator accuracy table": os.path.join(est_dir, "accuracy.txt")})
    figures["stage seconds"] = time.perf_counter() - t_start
    return figures
