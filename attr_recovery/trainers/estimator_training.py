"""Training and evaluating the attribute estimators (not in the original code).

``EstimatorTrainer(config).fit()`` trains the multi-head `AttributeEstimator`
and the `LandmarkEstimator` together (disjoint variables, one Adam, loss =
mean head loss + landmark L1 in pixels), then `evaluate_estimators` reports
per-attribute accuracy on held-out images.

Data (`build_data`):

- ``heads='synthetic'`` with a world: train on the world's CASIA-format
  training set (exact attributes and landmarks; optionally plus
  ``extra_rendered`` in-memory faces with occluders), evaluate on its
  IJB-A-format test set, whose identities are disjoint;
- ``heads='metadata'``: the labels real users have: the CASIA file list's yaw
  (``data_dir``, landmarks when ``aux_dir`` holds ``landmarks68.mat``) and the
  IJB-A protocol metadata (``protocol_dir``) of a subject-disjoint part of the
  IJB-A images; the other part is held out.

Augmentation: with probability ``lowres_prob`` a batch is shown at a random
lower resolution (area down to r in [lowres_min, input_size], bilinear back
up), because the estimators also read decoded faces, which are small and
smooth. Nothing else: flips would change yaw and landmarks, colour jitter
would change the colour attributes.

Checkpoints: ``tf.train.CheckpointManager`` in ``<out_dir>/checkpoints``
(every model variable keyed by position and path, the optimizer, the step),
``estimators.json`` describes the models (written atomically). The batch
order (``BatchSchedule``) and the augmentation are functions of (seed, step),
so a resumed run continues as an uninterrupted one would.
"""
import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from attr_recovery.trainers import attribute_data
from attr_recovery.readers import face_geometry
from attr_recovery.readers.attribute_reader import AttributeReader
from attr_recovery.nets.decoder import CHECKPOINT_SUBDIR, read_folder_json
from attr_recovery.nets.attributes import CLASSIFICATION, REGRESSION, head_set, spec_from_json
from attr_recovery.nets.estimators import (AttributeEstimator, LandmarkEstimator, head_losses)
from interp_fr.common import tf_logging
from interp_fr.common.atomic_io import atomic_save_text
from interp_fr.data import pipeline, synthetic_world
from interp_fr.data.image_scaling import to_unit_range_tf

CONFIG_FILE = "estimators.json"
LOG_FILE = "log.jsonl"
METRICS_FILE = "accuracy.json"


@dataclasses.dataclass
class EstimatorTrainConfig:
    """Everything an estimator training run needs (defaults: CPU-sized models)."""
    world_dir: str = None            # synthetic world (sets the three dirs below)
    data_dir: str = None             # CASIA-format and/or IJB-A-format .dat folder
    aux_dir: str = None              # landmarks68.mat / landmarks68_IJBA.mat
    protocol_dir: str = None         # IJB-A folder (metadata labels)
    heads: str = "synthetic"         # 'synthetic' or 'metadata'
    out_dir: str = "attr_estimators"
    train_attributes: bool = True
    train_landmarks: bool = True
    extra_rendered: int = 0          # in-memory rendered faces (synthetic heads)
    extra_occlusion_rate: float = 0.5
    held_out_fraction: float = 0.3   # metadata heads: IJB-A subjects held out
    input_size: int = 48
    width: int = 24
    dense_units: int = 128
    dropout: float = 0.0
    landmark_input_size: int = 48
    landmark_width: int = 16
    landmark_dilations: tuple = (1, 2, 4)
    batch_size: int = 32
    max_steps: int = 3000
    max_seconds: float = None        # also stop (and save) after this long
    learning_rate: float = 0.002
    lowres_prob: float = 0.5
    lowres_min: int = 16
    seed: int = 0
    save_every_steps: int = 500
    keep_checkpoints: int = 2
    log_every: int = 100

    def model_description(self):
        """The parts of the config that define the models (checked on resume)."""
        return {k: getattr(self, k) for k in (
            "heads", "train_attributes", "train_landmarks", "input_size", "width",
            "dense_units", "dropout", "landmark_input_size", "landmark_width")} | {
                "landmark_dilations": list(self.landmark_dilations)}


def _resolve_dirs(c):
    data, aux, proto = c.data_dir, c.aux_dir, c.protocol_dir
    if c.world_dir:
        data = data or os.path.join(c.world_dir, synthetic_world.DATA_DIR)
        aux = aux or os.path.join(c.world_dir, synthetic_world.AUX_DIR)
        proto = proto or os.path.join(c.world_dir, synthetic_world.IJBA_DIR)
    return data, aux, proto


def build_data(config):
    """(training set, held-out set) for a config (see module docstring)."""
    c = config
    if c.heads == "synthetic":
        if not c.world_dir:
            raise ValueError("heads='synthetic' needs world_dir (exact attributes)")
        train = attribute_data.world_split(c.world_dir, "train")
        held = attribute_data.world_split(c.world_dir, "test")
        if c.extra_rendered > 0:
            train = attribute_data.CombinedImages(
                [train, attribute_data.rendered_set(c.extra_rendered, c.seed,
                                                    c.extra_occlusion_rate)],
                name="world train + rendered")
        return train, held
    if c.heads != "metadata":
        raise ValueError(f"heads must be 'synthetic' or 'metadata', got {c.heads!r}")
    data, aux, proto = _resolve_dirs(c)
    if not data or not proto:
        raise ValueError("heads='metadata' needs data_dir and protocol_dir (or world_dir)")
    lm_ijba = os.path.join(aux, synthetic_world.IJBA_LANDMARKS_FILE) if aux else None
    meta = attribute_data.ijba_metadata_set(
        data, proto, landmarks_path=lm_ijba if lm_ijba and os.path.exists(lm_ijba)
        else None)
    meta_train, held = attribute_data.split_by_subject(meta, c.held_out_fraction, c.seed)
    sets = [meta_train]
    try:
        lm_casia = os.path.join(aux, synthetic_world.CASIA_LANDMARKS_FILE) if aux else None
        sets.insert(0, attribute_data.casia_file_list_set(
            data, lm_casia if lm_casia and os.path.exists(lm_casia) else None))
    except (OSError, ValueError):
        pass  # no CASIA-format training set: metadata labels only
    return attribute_data.CombinedImages(sets, name="file list + metadata"), held


def build_models(c, heads=None):
    """(AttributeEstimator or None, LandmarkEstimator or None) for a config."""
    heads = head_set(c.heads) if heads is None else heads
    attr = (AttributeEstimator(heads, c.input_size, c.width, c.dense_units, c.dropout,
                               name="attributes") if c.train_attributes else None)
    lm = (LandmarkEstimator(68, c.landmark_input_size, c.landmark_width,
                            c.landmark_dilations, name="landmarks")
          if c.train_landmarks else None)
    return attr, lm


def named_variables(model, prefix):
    """Checkpoint keys -> variables, by position in ``model.variables`` (+ path).

    Keras 3 layers held in lists are not followed by tf.train.Checkpoint, so
    the keys are explicit; the position is fixed by the constructor arguments.
    """
    if model is None:
        return {}
    return {f"{prefix}__{i:04d}__{v.path.replace('/', '__')}": v
            for i, v in enumerate(model.variables)}


def _finite_mean_std(values):
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return 0.0, 1.0
    return float(v.mean()), float(max(v.std(), 1e-6))


class EstimatorTrainer:
    """Trains the estimators of one config; resumes from ``out_dir`` when it can.

    Attributes: ``attribute_model``, ``landmark_model``, ``step`` (tf.Variable),
    ``train_set``, ``held_out``, ``restored_from`` (checkpoint path or None).
    """

    def __init__(self, config, log=print, data=None):
        c = self.config = config
        self.log = log or (lambda _: None)
        if not (c.train_attributes or c.train_landmarks):
            raise ValueError("nothing to train: train_attributes and train_landmarks "
                             "are both off")
        keras.utils.set_random_seed(c.seed)
        self.train_set, self.held_out = data or build_data(c)
        self.heads = tuple(h for h in head_set(c.heads)
                           if h.name in self.train_set.targets)
        missing = [h.name for h in head_set(c.heads) if h.name not in self.train_set.targets]
        if missing:
            self.log(f"no labels for heads {missing}: left out")
        if c.train_landmarks and not np.isfinite(self.train_set.landmarks).any():
            raise ValueError(f"{self.train_set.name}: no landmarks to train the "
                             "landmark estimator on")
        os.makedirs(c.out_dir, exist_ok=True)
        # Before building anything: a folder of other models fails fast.
        self._check_or_write_description()
        self.attribute_model, self.landmark_model = build_models(c, self.heads)
        if self.attribute_model is not None:
            stats = [_finite_mean_std(self.train_set.targets[name])
                     for name in self.attribute_model.regression_names]
            if stats:
                self.attribute_model.set_target_normalisation(*zip(*stats))
        self.schedule = pipeline.BatchSchedule(len(self.train_set), c.batch_size, c.seed,
                                               reshuffle_each_epoch=True)
        if self.schedule.batches_per_epoch == 0:
            raise ValueError(f"{len(self.train_set)} training images are fewer than "
                             f"one batch of {c.batch_size}")
        self.variables = ((self.attribute_model.trainable_variables
                           if self.attribute_model is not None else [])
                          + (self.landmark_model.trainable_variables
                             if self.landmark_model is not None else []))
        self.optimizer = keras.optimizers.Adam(c.learning_rate)
        self.optimizer.build(self.variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(
            attributes=named_variables(self.attribute_model, "attributes"),
            landmarks=named_variables(self.landmark_model, "landmarks"),
            optimizer=self.optimizer, step=self.step)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(c.out_dir, CHECKPOINT_SUBDIR),
            max_to_keep=c.keep_checkpoints)
        self.restored_from = None
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint
                                    ).assert_existing_objects_matched()
            self.restored_from = self.manager.latest_checkpoint
            self.log(f"resumed from {self.restored_from} at step {int(self.step.numpy())}")
        self._step_fn = self._make_step()

    # -- description / checkpoints -----------------------------------------
    def description(self):
        """The JSON written to ``estimators.json``."""
        c = self.config
        return {"models": c.model_description(),
                "heads": [h.to_json() for h in self.heads],
                "attribute_model": ({"heads": [h.to_json() for h in self.heads],
                                     "input_size": c.input_size, "width": c.width,
                                     "dense_units": c.dense_units, "dropout": c.dropout}
                                    if c.train_attributes else None),
                "landmark_model": ({"num_landmarks": 68,
                                    "input_size": c.landmark_input_size,
                                    "width": c.landmark_width,
                                    "dilations": list(c.landmark_dilations)}
                                   if c.train_landmarks else None),
                "training_set": {"name": self.train_set.name,
                                 "images": len(self.train_set)},
                "held_out_set": {"name": self.held_out.name, "images": len(self.held_out)},
                "config": {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in dataclasses.asdict(c).items()}}

    def _check_or_write_description(self):
        path = os.path.join(self.config.out_dir, CONFIG_FILE)
        # Through JSON so that tuples and lists compare equal.
        mine = json.loads(json.dumps(self.description()))
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
            if (old.get("models") != mine["models"] or old.get("heads") != mine["heads"]):
                raise ValueError(f"{path} describes different models (or heads) than "
                                 "this run; use another out_dir or the same settings")
        atomic_save_text(path, json.dumps(mine, indent=2, sort_keys=True))

    def save(self):
        """Writes a checkpoint (the index file is replaced last, atomically)."""
        with tf_logging.quiet():
            return self.manager.save(checkpoint_number=int(self.step.numpy()))

    # -- training ----------------------------------------------------------
    def _make_step(self):
        attr, lm, opt, variables = (self.attribute_model, self.landmark_model,
                                    self.optimizer, self.variables)

        def degrade(x, res, size):
            low = tf.image.resize(x, tf.stack([res, res]), method="area")
            return tf.image.resize(low, (size, size), method="bilinear")

        @tf.function(reduce_retracing=True)
        def step_fn(images, targets, landmarks, res):
            x = to_unit_range_tf(images)
            with tf.GradientTape() as tape:
                losses = {}
                total = 0.0
                if attr is not None:
                    xa = degrade(x, tf.minimum(res, attr.input_size), attr.input_size)
                    per_head = head_losses(attr, attr(xa, training=True), targets)
                    losses.update(per_head)
                    total += tf.add_n(list(per_head.values())) / len(per_head)
                if lm is not None:
                    xl = degrade(x, tf.minimum(res, lm.input_size), lm.input_size)
                    pred = lm(xl, training=True)["landmarks"]
                    valid = tf.reduce_all(tf.math.is_finite(landmarks), axis=[1, 2])
                    w = tf.cast(valid, tf.float32)
                    err = tf.reduce_mean(tf.abs(pred - tf.where(
                        tf.math.is_finite(landmarks), landmarks, 0.0)), axis=[1, 2])
                    losses["landmarks_px"] = (tf.reduce_sum(err * w)
                                              / tf.maximum(tf.reduce_sum(w), 1.0))
                    total += losses["landmarks_px"]
                losses["total"] = total
            grads = tape.gradient(total, variables)
            opt.apply_gradients(zip(grads, variables))
            return losses
        return step_fn

    def batch(self, step):
        """(uint8 images [B, 96, 96, 3], targets dict, landmarks [B, 68, 2], res) of a step."""
        c = self.config
        idx = self.schedule.batch_indices(step)
        rng = np.random.default_rng((c.seed, int(step), 0x10E5))
        res = attribute_data.FRAME_SIZE
        if rng.random() < c.lowres_prob:
            res = int(rng.integers(c.lowres_min, max(c.lowres_min, c.input_size) + 1))
        targets = {h.name: self.train_set.targets[h.name][idx].astype(np.float32)
                   for h in self.heads}
        return (self.train_set.read(idx), targets,
                self.train_set.landmarks[idx].astype(np.float32), res)

    def fit(self):
        """Trains until ``max_steps`` or ``max_seconds``; saves; returns the last losses."""
        c = self.config
        start = time.perf_counter()
        last = {}
        log_path = os.path.join(c.out_dir, LOG_FILE)
        while int(self.step.numpy()) < c.max_steps:
            s = int(self.step.numpy())
            images, targets, landmarks, res = self.batch(s)
            out = self._step_fn(tf.constant(images), {k: tf.constant(v) for k, v in
                                                      targets.items()},
                                tf.constant(landmarks), tf.constant(res, tf.int32))
            self.step.assign_add(1)
            last = {k: float(v) for k, v in out.items()}
            if not np.isfinite(last["total"]):
                raise FloatingPointError(f"non-finite loss at step {s}: {last}")
            done = int(self.step.numpy())
            if c.log_every and (done % c.log_every == 0 or done == 1):
                line = {"step": done, "seconds": time.perf_counter() - start, **last}
                with open(log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
                self.log(f"step {done}: total {last['total']:.4f}"
                         + (f", landmarks {last['landmarks_px']:.2f} px"
                            if "landmarks_px" in last else ""))
            if c.save_every_steps and done % c.save_every_steps == 0:
                self.save()
            if c.max_seconds is not None and time.perf_counter() - start >= c.max_seconds:
                self.log(f"time budget reached after {done} steps")
                break
        self.save()
        return last

    def reader(self, batch_size=128):
        """An `AttributeReader` over the models being trained."""
        return AttributeReader(self.attribute_model, self.landmark_model, batch_size)


def read_description(folder):
    """``estimators.json`` of a trainer folder (dict)."""
    return read_folder_json(folder, CONFIG_FILE, "attr-recovery-train-estimators")


def load_reader(folder, batch_size=128):
    """The `AttributeReader` of the latest checkpoint in a trainer folder.

    Raises: FileNotFoundError (no description or checkpoint), ValueError (the
      checkpoint lacks a variable of the described models).
    """
    desc = read_description(folder)
    heads = tuple(spec_from_json(h) for h in desc["heads"])
    attr = lm = None
    if desc.get("attribute_model"):
        a = desc["attribute_model"]
        attr = AttributeEstimator(heads, a["input_size"], a["width"], a["dense_units"],
                                  a["dropout"], name="attributes")
    if desc.get("landmark_model"):
        m = desc["landmark_model"]
        lm = LandmarkEstimator(m["num_landmarks"], m["input_size"], m["width"],
                               m["dilations"], name="landmarks")
    latest = tf.train.latest_checkpoint(os.path.join(folder, CHECKPOINT_SUBDIR))
    if not latest:
        raise FileNotFoundError(f"{folder}: no checkpoint in {CHECKPOINT_SUBDIR}/")
    status = tf.train.Checkpoint(attributes=named_variables(attr, "attributes"),
                                 landmarks=named_variables(lm, "landmarks")
                                 ).restore(latest)
    status.expect_partial()   # the optimizer and step are not needed to read
    try:
        status.assert_existing_objects_matched()
    except AssertionError as err:
        raise ValueError(f"{latest}: does not hold every estimator variable: {err}") from None
    return AttributeReader(attr, lm, batch_size)


# --------------------------------------------------------------------------- metrics


def regression_metrics(pred, truth, baseline=None):
    """MAE, RMSE, R^2 (about the evaluation mean), Pearson r, and the MAE of
    predicting ``baseline`` (default: the evaluation mean) for every image."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    ok = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[ok], truth[ok]
    if len(t) < 2:
        return {"n": int(len(t))}
    err = p - t
    sst = np.sum((t - t.mean()) ** 2)
    r = (float(np.corrcoef(p, t)[0, 1]) if p.std() > 0 and t.std() > 0 else 0.0)
    base = t.mean() if baseline is None else baseline
    return {"n": int(len(t)), "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err ** 2))),
            "r2": float(1.0 - np.sum(err ** 2) / sst) if sst > 0 else float("nan"),
            "pearson_r": r, "baseline_mae": float(np.mean(np.abs(t - base)))}


def classification_metrics(probs, labels, spec):
    """Accuracy, majority-class rate of the evaluation labels (chance), n."""
    idx = spec.class_index(labels)
    ok = idx >= 0
    if not ok.any():
        return {"n": 0}
    pred = np.argmax(np.asarray(probs)[ok], axis=1)
    counts = np.bincount(idx[ok], minlength=spec.num_classes)
    return {"n": int(ok.sum()), "accuracy": float(np.mean(pred == idx[ok])),
            "chance": float(counts.max() / ok.sum()),
            "classes_present": int(np.sum(counts > 0))}


def evaluate_estimators(reader, labelled, batch_size=128):
    """Per-attribute accuracy of a reader on labelled images.

    Returns: dict with ``attributes`` (head name -> metrics: regression
      MAE / RMSE / R^2 / r / baseline MAE, classification accuracy / chance),
      ``landmarks`` (mean error in px of the 96 px frame, NME = error /
      outer-eye-corner distance) and ``descriptors`` (``lm_*`` from the
      estimated landmarks against the same function of the exact landmarks;
      ``lm_yaw`` etc. also against the labelled pose when present).
    """
    preds, lms = {}, []
    for i in range(0, len(labelled), batch_size):
        x = labelled.read(np.arange(i, min(i + batch_size, len(labelled))))
        out = reader(x, probabilities=True)
        for k, v in out.items():
            preds.setdefault(k, []).append(v)
        if reader.landmark_model is not None:
            lms.append(reader.landmarks(x))
    preds = {k: np.concatenate(v) for k, v in preds.items()}
    result = {"images": len(labelled), "set": labelled.name, "attributes": {}}
    for spec in reader.heads:
        if spec.name not in labelled.targets:
            continue
        truth = labelled.targets[spec.name]
        if spec.kind == REGRESSION:
            m = regression_metrics(preds[spec.name], truth)
        else:
            m = classification_metrics(preds[spec.name + "/probs"], truth, spec)
        m.update(kind=spec.kind, group=spec.group, unit=spec.unit)
        result["attributes"][spec.name] = m
    if lms and labelled.landmarks is not None and np.isfinite(labelled.landmarks).all():
        est = np.concatenate(lms)
        true = labelled.landmarks
        err = np.linalg.norm(est - true, axis=-1).mean(1)
        result["landmarks"] = {"mean_error_px": float(err.mean()),
                               "nme_interocular": float(np.mean(
                                   err / face_geometry.interocular(true)))}
        exact = face_geometry.landmark_attributes(true)
        desc = {}
        for name in face_geometry.LANDMARK_ATTRIBUTES:
            m = regression_metrics(preds[name], exact[name])
            pose = name[3:] if name in face_geometry.POSE_NAMES else None
            if pose and pose in labelled.targets:
                m["vs_label"] = regression_metrics(preds[name], labelled.targets[pose])
            m.update(group=face_geometry.DESCRIPTOR_GROUP[name],
                     unit=face_geometry.DESCRIPTOR_UNIT[name])
            desc[name] = m
        result["descriptors"] = desc
    return result


def format_accuracy_table(metrics):
    """A text table of `evaluate_estimators` output."""
    lines = [f"held-out set: {metrics.get('set')} ({metrics.get('images')} images)",
             f"{'attribute':<20} {'kind':<6} {'metric':<28} {'baseline':<16}"]
    for name, m in metrics.get("attributes", {}).items():
        if m.get("n", 0) == 0:
            lines.append(f"{name:<20} no labels")
        elif m["kind"] == CLASSIFICATION:
            lines.append(f"{name:<20} {'class':<6} accuracy {m['accuracy']:.3f}"
                         f"{'':<13} chance {m['chance']:.3f}")
        elif "mae" in m:
            lines.append(f"{name:<20} {'regr':<6} MAE {m['mae']:.3g} R2 {m['r2']:.3f}"
                         f"{'':<5} mean-MAE {m['baseline_mae']:.3g}")
    if "landmarks" in metrics:
        lm = metrics["landmarks"]
        lines.append(f"{'landmarks':<20} {'heat':<6} mean error {lm['mean_error_px']:.2f} "
                     f"px, NME {lm['nme_interocular']:.4f}")
    for name, m in metrics.get("descriptors", {}).items():
        if "mae" in m:
            extra = (f" (vs label: MAE {m['vs_label']['mae']:.3g})"
                     if "vs_label" in m and "mae" in m["vs_label"] else "")
            lines.append(f"{name:<20} {'lmk':<6} MAE {m['mae']:.3g} R2 {m['r2']:.3f}"
                         f"{'':<5} mean-MAE {m['baseline_mae']:.3g}{extra}")
    return "\n".join(lines)
