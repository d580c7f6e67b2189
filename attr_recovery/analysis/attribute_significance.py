"""How much each facial attribute matters to a recognition model (not in the original code).

Inputs: a recognition model R (images -> unit features z [N, d]), a decoder D
(z -> images), an attribute reader E (images -> dict name -> [N], e.g.
`attribute_reader.AttributeReader`) and reference face images x (held out).
Let a = E(x) be the attributes of the real images and â = E(D(R(x))) those of
the decoded faces. One *calibrated unit* of attribute j is its standard
deviation u_j over the reference images (so units are comparable across
attributes; the natural-unit size is reported too).

Measures, per attribute:

1. **Recoverability** (decoder-based): Pearson r between â_j and a_j: how
   much of the attribute the decoded face of R's representation alone still
   shows, judged by the same estimator on both. With ground truth t_j, also
   r(â_j, t_j) / r(a_j, t_j): recoverability relative to the estimator on the
   real image (``relative_recoverability``).
2. **Linear probe** (decoder-free): cross-validated R^2 of a ridge regression
   of the standardised a_j on z (folds by subject when subjects are given):
   how linearly readable the attribute is from z.
3. **Sensitivity** (the ranking measure): the drop of R's cosine similarity
   when the attribute changes by one calibrated unit, all else fixed. The
   multiple ridge regression of z on all standardised attributes,
   z ~ c + sum_j s_j b_j, gives b_j = dz/da_j with the other attributes held
   fixed (partial effects). Moving a representation z to
   normalise(z +- b_j) is "the same face, attribute j one unit higher
   (lower)"; sensitivity_j = mean over reference faces and both signs of
   1 - cos(z, normalise(z +- b_j)) (both signs cancel the first-order term),
   also given as a mean angle in degrees. Attributes R does not encode get
   b_j ~ 0 and sensitivity ~ 0.
4. **Decoder response** (the calibration check): decode normalise(z +- b_j)
   for a subset of faces and measure the change of the estimated attribute:
   response_j = mean(â_j(+) - â_j(-)) / (2 u_j), ideally 1 (the decoder
   renders the direction as one unit of the attribute). Where the response is
   at least ``min_response``, ``sensitivity_calibrated`` rescales the step to
   b_j / response_j, i.e. moves z until the *decoded* attribute changes by
   one unit, as the paper's framing suggests; it is not the ranking measure
   because it divides by the decoder's weakness (and diverges for attributes
   the decoder cannot render), which would rank decoder failures as
   significance.
5. **Noise floor**: the 1 - 0.05 / k quantile (k attributes; of 200 draws)
   of the sensitivity obtained when attribute j's column is randomly
   permuted (its relation to z destroyed, the other attributes kept): a
   regression on finitely many faces gives every column some partial effect;
   ``above_noise`` says whether the measured one exceeds that floor. The
   quantile is corrected for the k attributes tested at once (Bonferroni):
   at the plain 95th percentile one of twenty unrelated attributes passes by
   chance, and on the reference model it was eye size, which its
   representation does not encode (held-out probe R^2 < 0) and which then
   "explained" a false reject on its own. With subject ids the permutation moves
   whole subjects (image k of subject s gets the value of image k of subject
   sigma(s)): identity-level attributes stay constant within a subject, and a
   regression over few subjects can fit identity with such a column by
   chance; permuting single images would hide that and set the floor too low.

Why regress z on the attributes and not an attribute on z: the partial
effect b_j is small for attributes R ignores, whereas the step that makes an
attribute move when regressed the other way grows without bound for exactly
those attributes.
"""
import io
import json
import os

import numpy as np

from attr_recovery.readers import face_geometry
from interp_fr.data.image_scaling import as_unit_images
from interp_fr.common.atomic_io import atomic_save_text, atomic_write
from interp_fr.common.json_safe import json_safe

# Pose, face shape, expression and appearance: one readout per concept,
# avoiding near-duplicates (e.g. skin_tone and skin_r/g/b, yaw and lm_yaw) that
# would split a partial effect between collinear columns. Where a concept has
# alternatives the first the reader gives is used: the estimators' own heads
# for shape and expression (trained on exact values, pose-invariant) before
# the descriptors of the estimated landmarks, which change with pose.
DEFAULT_ATTRIBUTES = (
    "yaw", "pitch", "roll",
    ("jaw_width", "lm_jaw_width"), ("face_length", "lm_face_length"),
    ("eye_spacing", "lm_eye_spacing"), ("eye_size", "lm_eye_size"),
    ("nose_length", "lm_nose_length"), ("mouth_width", "lm_mouth_width"),
    ("smile", "lm_smile"), ("mouth_open", "lm_mouth_open"),
    ("brow_raise", "lm_brow_raise"),
    "gender", "age", "skin_tone", "facial_hair", "hair_lightness",
    "occluder", "light_x", "light_y",
    # metadata heads
    "indoor", "eyes_visible", "nose_mouth_visible",
)

# An attribute whose estimate explains less of its exact value than this
# (squared Pearson r, when the exact values are known) is not measured: its
# estimate is some other attribute's (e.g. a smile estimator that reads mouth
# width) and would give that attribute's significance to the wrong name.
MIN_ESTIMATOR_R2 = 0.5


def default_names(available, wanted=DEFAULT_ATTRIBUTES):
    """The attribute names to measure: each entry of ``wanted`` that is in
    ``available``; for a tuple of alternatives, the first that is.

    Args:
      available: names the reader gives (any container).
      wanted: names and tuples of alternative names.
    Returns: list of names.
    """
    out = []
    for entry in wanted:
        options = entry if isinstance(entry, tuple) else (entry,)
        for name in options:
            if name in available:
                out.append(name)
                break
    return out


class CallableDecoder:
    """Any decoder as ``decode(z [N, d]) -> float32 numpy [N, S, S, 3]`` in [-1, 1].

    Accepts an object with ``decode_batched`` (e.g. ``decoder.FeatureDecoder``:
    called with a fixed noise seed and the same noise for every image, so a
    representation decodes identically wherever it appears), with ``decode``,
    or a plain callable.
    """

    def __init__(self, decoder, seed=0, batch_size=32):
        self.decoder = decoder
        self.seed = int(seed)
        self.batch_size = int(batch_size)

    def __call__(self, z):
        z = np.asarray(z, np.float32)
        d = self.decoder
        if hasattr(d, "decode_batched"):
            out = d.decode_batched(z, self.batch_size, seed=self.seed,
                                   image_ids=np.zeros(len(z), np.int64))
        elif hasattr(d, "decode"):
            out = np.concatenate([np.asarray(d.decode(z[i:i + self.batch_size]))
                                  for i in range(0, len(z), self.batch_size)]) \
                if len(z) else np.zeros((0, 1, 1, 3), np.float32)
        else:
            out = np.asarray(d(z))
        return np.asarray(out, np.float32)


def as_decoder(decoder, seed=0, batch_size=32):
    """Wraps ``decoder`` in a `CallableDecoder` (returned as is if it is one)."""
    if isinstance(decoder, CallableDecoder):
        return decoder
    return CallableDecoder(decoder, seed, batch_size)


def representations(recognition, images, batch_size=64):
    """R's unit representations of images: float64 [N, d].

    Args:
      recognition: an object with ``features(images, batch_size)`` (e.g.
        ``recognition.RecognitionModel``) or a callable images -> [N, d]
        (rows are normalised here).
      images: float [N, H, W, 3] in [-1, 1].
    """
    if hasattr(recognition, "features"):
        return normalise(recognition.features(images, batch_size))
    out = [np.asarray(recognition(images[i:i + batch_size]))
           for i in range(0, len(images), batch_size)]
    return normalise(np.concatenate(out)) if out else np.zeros((0, 0))


def normalise(z):
    """Rows scaled to unit length [N, d]."""
    z = np.asarray(z, np.float64)
    return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def pearson(x, y):
    """Pearson r of two vectors; 0 when either is (numerically) constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]

    def flat(v):
        # float32 models give "constant" outputs that wobble at 1e-7.
        return v.std() <= 1e-6 * (1.0 + np.abs(v).mean())

    if len(x) < 3 or flat(x) or flat(y):
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def describe(name, reader=None):
    """(group, unit) of an attribute name: from the reader's heads or the geometry."""
    for spec in getattr(reader, "heads", ()) or ():
        if spec.name == name:
            return spec.group, spec.unit
    if name in face_geometry.DESCRIPTOR_GROUP:
        return face_geometry.DESCRIPTOR_GROUP[name], face_geometry.DESCRIPTOR_UNIT[name]
    return "", ""


def partial_effect_directions(z, attributes, ridge=1e-3):
    """Multiple ridge regression of z on standardised attributes.

    Args:
      z: [N, d] representations.
      attributes: [N, k] standardised attributes (zero mean, unit std).
      ridge: penalty relative to N (standardised predictors).
    Returns: [k, d]: row j = dz per unit of attribute j, the others fixed.
    """
    s = np.asarray(attributes, np.float64)
    s = s - s.mean(0)
    zc = np.asarray(z, np.float64) - np.mean(z, axis=0)
    gram = s.T @ s + ridge * len(s) * np.eye(s.shape[1])
    return np.linalg.solve(gram, s.T @ zc)


def cosine_drop(z, step):
    """(mean over rows and both signs of 1 - cos(z, normalise(z +- step)),
    the mean angle in degrees)."""
    z = normalise(z)
    drops, angles = [], []
    for sign in (1.0, -1.0):
        c = np.sum(z * normalise(z + sign * step[None]), axis=1)
        drops.append(1.0 - c)
        angles.append(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
    return float(np.mean(drops)), float(np.mean(angles))


RIDGE_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _ridge_gcv(x, y, grid=RIDGE_GRID):
    """Ridge weights for centred x [n, p], y [n] with the penalty chosen by
    generalised cross-validation on these rows; penalties are relative to the
    mean eigenvalue of x^T x, so the grid does not depend on the scale of x."""
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    n = len(y)
    scale = max(np.sum(sv ** 2) / x.shape[1], 1e-300)
    best = None
    for rel in grid:
        lam = rel * scale
        shrink = sv ** 2 / (sv ** 2 + lam)
        rss = np.sum((y - u @ (shrink * uty)) ** 2)
        gcv = n * rss / max(n - shrink.sum(), 1e-9) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, lam)
    lam = best[1]
    return vt.T @ (sv / (sv ** 2 + lam) * uty)


def probe_r2(z, target, groups=None, folds=5, seed=0):
    """Cross-validated R^2 of a ridge regression target ~ z (folds by group).

    The penalty is chosen per fold by generalised cross-validation over a
    wide grid: tiny penalties let an attribute carried by a faint but clean
    direction of z be read, strong ones keep few faces in many dimensions
    from over-fitting.

    Args:
      z: [N, d]; target: [N]; groups: [N] fold groups (e.g. subjects) or None.
    Returns: 1 - SSE / SST over the held-out predictions (can be < 0).
    """
    z = np.asarray(z, np.float64)
    t = np.asarray(target, np.float64)
    n = len(t)
    if n < 2 * folds or t.std() < 1e-12:
        return float("nan")
    rng = np.random.default_rng((int(seed), 0xF01D))
    if groups is not None and len(np.unique(groups)) >= folds:
        uniq = rng.permutation(np.unique(groups))
        fold_of = {g: i % folds for i, g in enumerate(uniq)}
        fold = np.array([fold_of[g] for g in groups])
    else:
        fold = rng.permutation(n) % folds
    pred = np.empty(n)
    for f in range(folds):
        tr, te = fold != f, fold == f
        if not te.any() or tr.sum() < 2:
            pred[te] = t[tr].mean() if tr.any() else 0.0
            continue
        mz, mt = z[tr].mean(0), t[tr].mean()
        w = _ridge_gcv(z[tr] - mz, t[tr] - mt)
        pred[te] = (z[te] - mz) @ w + mt
    sst = np.sum((t - t.mean()) ** 2)
    return float(1.0 - np.sum((pred - t) ** 2) / sst)


def heldout_probe_r2(z_train, target_train, z_test, target_test):
    """R^2 on a held-out set of a ridge regression target ~ z fitted on another.

    The penalty is chosen by generalised cross-validation on the fitting set
    (`_ridge_gcv`). With disjoint identities in the two sets this says whether
    an attribute is linearly encoded in z in a way that carries over to new
    people, the question `probe_r2` answers with folds.

    Args:
      z_train: [N, d]; target_train: [N]; z_test: [M, d]; target_test: [M].
    Returns: 1 - SSE / SST over the held-out rows (can be < 0), NaN when the
      held-out target is constant.
    """
    zt, t = np.asarray(z_train, np.float64), np.asarray(target_train, np.float64)
    zh, th = np.asarray(z_test, np.float64), np.asarray(target_test, np.float64)
    if th.std() < 1e-12:
        return float("nan")
    mz, mt = zt.mean(0), t.mean()
    pred = (zh - mz) @ _ridge_gcv(zt - mz, t - mt) + mt
    return float(1.0 - np.sum((pred - th) ** 2) / np.sum((th - th.mean()) ** 2))


def _subject_permutation(subjects, rng):
    """Image order that gives each image the value of an image of another subject.

    Subjects are permuted as blocks: image number k of subject s takes the
    value of image number k (mod count) of subject sigma(s). Attributes that
    are constant within a subject stay constant within it, so the null keeps
    the structure that lets a regression on few subjects fit identity by
    chance.
    """
    subjects = np.asarray(subjects)
    uniq = np.unique(subjects)
    members = {u: np.nonzero(subjects == u)[0] for u in uniq}
    sigma = dict(zip(uniq, rng.permutation(uniq)))
    order = np.empty(len(subjects), np.int64)
    for u, idx in members.items():
        src = members[sigma[u]]
        order[idx] = src[np.arange(len(idx)) % len(src)]
    return order


def noise_floor(z, standardised, j, ridge=1e-3, permutations=20, quantile=0.95, seed=0,
                subjects=None):
    """Sensitivity of attribute j with its column permuted: the `quantile` of
    `permutations` draws (see module docstring, measure 5). With subjects,
    subjects are permuted as blocks (`_subject_permutation`); otherwise images."""
    rng = np.random.default_rng((int(seed), int(j), 0x0F100))
    s = np.array(standardised, np.float64, copy=True)
    drops = []
    use_subjects = subjects is not None and len(np.unique(subjects)) > 2
    for _ in range(int(permutations)):
        order = (_subject_permutation(subjects, rng) if use_subjects
                 else rng.permutation(len(s)))
        s[:, j] = standardised[order, j]
        drops.append(cosine_drop(z, partial_effect_directions(z, s, ridge)[j])[0])
    return float(np.quantile(drops, quantile))


def _matrix(values, names):
    return np.stack([np.asarray(values[n], np.float64) for n in names], axis=1)


def decoded_responses(reader, decode, z, direction, unit_sizes):
    """What a counterfactual step shows on the decoded faces.

    Decodes ``z`` moved by +- ``direction`` (rows renormalised) and reads the
    faces: the mean change of each attribute, per unit of it (1 = the face
    changes as much as the step in R's representation says).

    Args:
      reader: images -> dict name -> [N].
      decode: z [N, d] -> images (see `as_decoder`).
      z: [n, d] unit representations.
      direction: [d] the step (e.g. one row of `partial_effect_directions`).
      unit_sizes: dict name -> size of one unit of that attribute.
    Returns: dict name -> float.
    """
    n = len(z)
    est = reader(decode(np.concatenate([normalise(z + direction),
                                        normalise(z - direction)])))
    out = {}
    for name, unit in unit_sizes.items():
        v = np.asarray(est[name], np.float64)
        out[name] = float(np.mean(v[:n] - v[n:]) / (2.0 * unit))
    return out


def compute_significance(recognition, decoder, reader, images, names=None, truth=None,
                         subjects=None, calibration_images=32, ridge=1e-3,
                         min_response=0.25, batch_size=64, features=None,
                         null_permutations=200, family_error=0.05,
                         min_estimator_r2=MIN_ESTIMATOR_R2):
    """All measures of the module docstring on reference images.

    Args:
      recognition: see `representations` (wrap Keras models with
        ``recognition.as_recognition_model`` first).
      decoder: anything `as_decoder` takes (None: recoverability and decoder
        response are skipped).
      reader: images -> dict name -> [N] (an `AttributeReader` or any callable).
      images: [N, H, W, 3] uint8 or float in [-1, 1] (held-out faces).
      names: attribute names (default: `default_names` of what the reader
        gives); names whose estimates do not vary over the images are dropped.
      truth: optional dict name -> [N] exact values (relative recoverability);
        attributes whose estimate has r^2 < ``min_estimator_r2`` with them are
        not measured (listed in ``unreadable``).
      subjects: optional [N] subject ids (probe folds).
      calibration_images: faces used for the decoder response.
      ridge: penalty of the partial-effect regression (relative to N).
      min_response: smallest decoder response that is rescaled.
      batch_size: batch of R.
      features: optional precomputed R(images) [N, d] (unit rows).
      null_permutations: permutations for the noise floor (0: none).
      family_error: chance that any of the k attributes passes its noise
        floor by chance (the floor is the 1 - family_error / k quantile).
      min_estimator_r2: see ``truth``.
    Returns: dict with ``names`` (ranked by sensitivity), ``attributes``
      (name -> measures), ``directions`` [k, d] (rows in ``names`` order, per
      calibrated unit), ``units`` [k], ``means`` [k] (natural units),
      ``reference_images``, ``feature_dim``, ``ranking`` (text of the measure),
      ``unreadable`` (name -> r^2 of the estimate with the exact value, for
      the attributes left out).
    """
    x = as_unit_images(images)
    z = normalise(representations(recognition, x, batch_size) if features is None
                  else features)
    a_real = reader(x)
    names = (default_names(a_real) if names is None
             else [n for n in names if n in a_real])
    kept, unreadable = [], {}
    for n in names:
        v = np.asarray(a_real[n], np.float64)
        if not (np.all(np.isfinite(v)) and v.std() > 1e-9):
            continue
        if truth is not None and n in truth:
            r2 = pearson(v, truth[n]) ** 2
            if r2 < min_estimator_r2:
                unreadable[n] = r2
                continue
        kept.append(n)
    if not kept:
        raise ValueError("no attribute varies over the reference images")
    names = kept
    a = _matrix(a_real, names)
    means, units = a.mean(0), a.std(0)
    s = (a - means) / units
    directions = partial_effect_directions(z, s, ridge)

    decode = None if decoder is None else as_decoder(decoder)
    a_dec = None
    if decode is not None:
        a_dec = _matrix(reader(decode(z)), names)
    n_cal = min(int(calibration_images), len(z))
    cal = np.linspace(0, len(z) - 1, n_cal).round().astype(int) if n_cal else []

    out = {}
    for j, name in enumerate(names):
        group, unit = describe(name, reader)
        drop, angle = cosine_drop(z, directions[j])
        m = {"group": group, "unit": unit, "unit_size": float(units[j]),
             "mean": float(means[j]), "sensitivity": drop,
             "sensitivity_angle_deg": angle,
             "direction_norm": float(np.linalg.norm(directions[j])),
             "probe_r2": probe_r2(z, s[:, j], subjects)}
        if null_permutations:
            m["noise_floor"] = noise_floor(z, s, j, ridge, null_permutations,
                                           1.0 - family_error / len(names),
                                           subjects=subjects)
            m["above_noise"] = bool(drop > m["noise_floor"])
        if a_dec is not None:
            m["recoverability"] = pearson(a_dec[:, j], a[:, j])
            if n_cal:
                r = m["decoder_response"] = decoded_responses(
                    reader, decode, z[cal], directions[j], {name: units[j]})[name]
                m["sensitivity_calibrated"] = (cosine_drop(z, directions[j] / r)[0]
                                               if r >= min_response else float("nan"))
        if truth is not None and name in truth:
            t = np.asarray(truth[name], np.float64)
            m["estimator_vs_truth_r"] = pearson(a[:, j], t)
            if a_dec is not None:
                m["decoded_vs_truth_r"] = pearson(a_dec[:, j], t)
                m["relative_recoverability"] = (
                    m["decoded_vs_truth_r"] / m["estimator_vs_truth_r"]
                    if m["estimator_vs_truth_r"] > 0.1 else float("nan"))
        out[name] = m
    order = sorted(range(len(names)), key=lambda j: -out[names[j]]["sensitivity"])
    for rank, j in enumerate(order, start=1):
        out[names[j]]["rank"] = rank
    ranked = [names[j] for j in order]
    return {"names": ranked, "attributes": {n: out[n] for n in ranked},
            "directions": directions[order], "units": units[order],
            "means": means[order], "reference_images": int(len(z)),
            "feature_dim": int(z.shape[1]), "unreadable": unreadable,
            "ranking": "sensitivity: mean 1 - cos(z, normalise(z +- b_j)), b_j = "
                       "partial effect of one calibrated unit (1 std) of attribute j"}


def format_significance_table(result):
    """Ranked text table of `compute_significance` output."""
    head = (f"{'rank':>4} {'attribute':<18} {'group':<11} {'sensitivity':>11} "
            f"{'floor':>9} {'angle':>7} {'recover':>8} {'rel.rec':>8} {'probe R2':>8} "
            f"{'response':>8} {'1 unit':>10}")
    lines = [f"attribute significance ({result['reference_images']} reference faces, "
             f"d = {result['feature_dim']}); ranked by {result['ranking']}; "
             "* = not above the noise floor (permuted attribute; quantile corrected for "
             "the number of attributes, 5 % family-wise)", head]

    def f(v, fmt):
        return format(v, fmt) if v is not None and np.isfinite(v) else "-"

    for name in result["names"]:
        m = result["attributes"][name]
        lines.append(
            f"{m['rank']:>4} {name:<18} {m['group']:<11} {f(m['sensitivity'], '.3e'):>11}"
            f"{' ' if m.get('above_noise', True) else '*'} "
            f"{f(m.get('noise_floor'), '.2e'):>9} "
            f"{f(m['sensitivity_angle_deg'], '.2f'):>7} "
            f"{f(m.get('recoverability'), '.3f'):>8} "
            f"{f(m.get('relative_recoverability'), '.3f'):>8} "
            f"{f(m['probe_r2'], '.3f'):>8} {f(m.get('decoder_response'), '.3f'):>8} "
            f"{f(m['unit_size'], '.3g'):>6} {m['unit']}")
    if result.get("unreadable"):
        lines.append("not measured (the estimate explains too little of the exact value, "
                     "r^2): " + ", ".join(f"{n} {r2:.2f}"
                                          for n, r2 in result["unreadable"].items()))
    return "\n".join(lines)


def significance_json(result):
    """JSON-able form of `compute_significance` output (directions left out)."""
    return json_safe({"names": list(result["names"]), "attributes": result["attributes"],
                      "units": result["units"], "means": result["means"],
                      "reference_images": result["reference_images"],
                      "feature_dim": result["feature_dim"], "ranking": result["ranking"],
                      "unreadable": result.get("unreadable", {})})


DIRECTIONS_FILE = "significance_directions.npz"
TABLE_FILE = "significance.txt"
JSON_FILE = "significance.json"
CHART_FILE = "significance.png"


def save_directions(path, result, threshold=None):
    """Writes names, directions, units, means and whether each effect is above
    its noise floor (``.npz``, atomic) for `explain_pair`."""
    buf = io.BytesIO()
    above = [bool(result["attributes"][n].get("above_noise", True))
             for n in result["names"]]
    np.savez(buf, names=np.asarray(result["names"]), directions=result["directions"],
             units=result["units"], means=result["means"], above_noise=np.asarray(above),
             threshold=np.nan if threshold is None else float(threshold))
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def load_directions(path):
    """dict with ``names`` (list), ``directions`` [k, d], ``units``, ``means``,
    ``above_noise`` (bool [k]; all True in files written before it was stored),
    ``threshold`` (float or None) from a `save_directions` file."""
    with np.load(path) as f:
        thr = float(f["threshold"])
        names = [str(n) for n in f["names"]]
        above = (f["above_noise"].astype(bool) if "above_noise" in f.files
                 else np.ones(len(names), bool))
        return {"names": names, "directions": f["directions"], "above_noise": above,
                "units": f["units"], "means": f["means"],
                "threshold": None if np.isnan(thr) else thr}


def write_significance(result, out_dir, threshold=None, extra=None):
    """Ranked table, JSON, bar chart and directions into ``out_dir``.

    Returns: dict kind -> path (``table``, ``json``, ``chart``, ``directions``).
    """
    from attr_recovery.analysis import significance_figures  # pylint: disable=import-outside-toplevel
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f) for k, f in (
        ("table", TABLE_FILE), ("json", JSON_FILE), ("chart", CHART_FILE),
        ("directions", DIRECTIONS_FILE))}
    atomic_save_text(paths["table"], format_significance_table(result) + "\n")
    doc = significance_json(result)
    if threshold is not None:
        doc["threshold"] = float(threshold)
    doc.update(json_safe(extra or {}))
    atomic_save_text(paths["json"], json.dumps(doc, indent=2, allow_nan=False))
    significance_figures.significance_chart(result, paths["chart"])
    save_directions(paths["directions"], result, threshold)
    return paths

