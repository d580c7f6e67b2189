"""Counterfactual explanations of one verification decision (not in the original code).

R decides "same" when cos(z1, z2) >= threshold. For each attribute j with
partial-effect direction b_j (`attribute_significance`: the change of z per
calibrated unit of the attribute, the others fixed), the counterfactual
representation of the first face is z1(t) = normalise(z1 + t b_j): the same
face with attribute j changed by t units. Along that path

    cos(z1(t), z2) = (c + t beta) / sqrt(1 + 2 t alpha + t^2 q),
    c = z1.z2, beta = b.z2, alpha = z1.b, q = b.b,

so the smallest |t| at which the decision flips solves
(c + t beta)^2 = thr^2 (1 + 2 t alpha + t^2 q) (a quadratic; roots where the
unsquared equation holds).

Only attributes R measurably encodes are moved: a partial effect no larger
than its permutation noise floor (``attribute_significance``, measure 5) is a
direction fitted to chance, and a decision "flipped" along it says nothing
about the attribute (its decoded face shows no change in it either). Such
attributes are reported as not encoded and get no counterfactual. Per
attribute we report:

- ``flip_change``: that signed t in calibrated units (and in natural units),
  or none when no change within ``max_units`` flips the decision;
- ``contribution``: (1 / |t_j|) / sum_k (1 / |t_k|) over flippable
  attributes: the normalised ease with which the attribute decides the pair;
- ``alignment_gain``: cos(normalise(z1 + d_j b_j), z2) - cos(z1, z2) with d_j
  the estimated attribute difference of the two real faces (units): what
  giving face 1 the attribute value of face 2 does to the similarity, and
  ``dissimilarity_share`` = gain / (1 - cos(z1, z2)): the share of the pair's
  dissimilarity that the attribute's difference explains;
- the decoded counterfactual face (slightly past the flip) and, with a
  reader, the estimated attribute change it shows (``decoded_change``) and
  the largest change it shows in any other attribute
  (``decoded_largest_other`` / ``decoded_largest_other_change``): whether
  the counterfactual changes the face along that attribute only. With
  ``rendered`` given, "any other attribute" means any other the decoder
  renders (its estimate on decoded faces follows the one on real faces,
  ``attribute_significance`` recoverability): on the others the estimator's
  reading of a decoded face does not measure that attribute (a decoder of a
  recogniser that carries no gender draws faces the gender head reads
  erratically), so a change in it is no evidence of a side effect.
"""
import numpy as np

from attr_recovery.analysis.attribute_significance import as_decoder, json_safe, normalise


def flip_step(z1, z2, direction, threshold, max_step=np.inf):
    """Smallest signed t with cos(normalise(z1 + t b), z2) = threshold, or NaN.

    Args:
      z1, z2: [d] representations (normalised here).
      direction: b [d].
      threshold: cosine threshold.
      max_step: |t| bound.
    """
    z1, z2 = normalise(z1[None])[0], normalise(z2[None])[0]
    b = np.asarray(direction, np.float64)
    c, beta, alpha, q = z1 @ z2, b @ z2, z1 @ b, b @ b
    thr = float(threshold)
    qa = beta ** 2 - thr ** 2 * q
    qb = 2.0 * (c * beta - thr ** 2 * alpha)
    qc = c ** 2 - thr ** 2
    if abs(qa) < 1e-15:
        roots = [-qc / qb] if abs(qb) > 1e-15 else []
    else:
        disc = qb ** 2 - 4 * qa * qc
        if disc < 0:
            return float("nan")
        sq = np.sqrt(disc)
        roots = [(-qb - sq) / (2 * qa), (-qb + sq) / (2 * qa)]
    good = []
    for t in roots:
        norm = np.sqrt(max(1.0 + 2 * t * alpha + t * t * q, 1e-300))
        if abs((c + t * beta) / norm - thr) < 1e-6 and abs(t) <= max_step:
            good.append(t)
    if not good:
        return float("nan")
    return float(min(good, key=abs))


def moved(z, direction, t):
    """normalise(z + t b) for one z [d] -> [d]."""
    return normalise((np.asarray(z, np.float64) + t * np.asarray(direction))[None])[0]


# Attribute changes (calibrated units) beyond which a flip counts as impossible.
MAX_UNITS = 6.0


def explain_pair(z1, z2, directions, names, threshold, units=None, attributes1=None,
                 attributes2=None, decoder=None, reader=None, max_units=MAX_UNITS,
                 overshoot=1.05, encoded=None, rendered=None):
    """Per-attribute counterfactual explanation of the decision on (z1, z2).

    Args:
      z1, z2: [d] representations of the two faces (face 1 is changed).
      directions: [k, d] partial-effect directions per calibrated unit.
      names: k attribute names.
      threshold: cosine threshold of the decision.
      units: [k] natural-unit size of one calibrated unit (for reporting).
      attributes1, attributes2: optional dicts name -> value (natural units)
        of the two real faces (alignment gains).
      decoder: optional, anything `attribute_significance.as_decoder` takes.
      reader: optional attribute reader (decoded attribute changes).
      max_units: flips further than this many units count as impossible.
      overshoot: the counterfactual face is decoded at overshoot * t.
      encoded: optional [k] bools, whether R encodes attribute j above the
        noise floor (``above_noise``); False ones are not moved (reported
        with ``encoded`` False). None: all are.
      rendered: optional names of the attributes the decoder renders (the
        side-effect check looks at these); None: all.
    Returns: dict: ``similarity``, ``threshold``, ``decision``, ``attributes``
      (name -> measures, in input order), ``order`` (names by contribution),
      and when a decoder is given ``images`` {"decoded_1", "decoded_2",
      name: counterfactual face} (float [-1, 1], not JSON).
    """
    z1, z2 = normalise(np.asarray(z1)[None])[0], normalise(np.asarray(z2)[None])[0]
    directions = np.asarray(directions, np.float64)
    units = np.ones(len(names)) if units is None else np.asarray(units, np.float64)
    sim = float(z1 @ z2)
    same = sim >= threshold
    result = {"similarity": sim, "threshold": float(threshold),
              "decision": "same" if same else "different", "attributes": {}}
    inv = {}
    encoded = np.ones(len(names), bool) if encoded is None else np.asarray(encoded, bool)
    for j, name in enumerate(names):
        t = (flip_step(z1, z2, directions[j], threshold, max_units) if encoded[j]
             else float("nan"))
        m = {"encoded": bool(encoded[j]), "flippable": bool(np.isfinite(t)),
             "flip_change": t if np.isfinite(t) else None,
             "flip_change_natural": float(t * units[j]) if np.isfinite(t) else None,
             "unit_size": float(units[j])}
        inv[name] = 1.0 / max(abs(t), 1e-12) if np.isfinite(t) else 0.0
        if encoded[j] and attributes1 is not None and attributes2 is not None and \
                name in attributes1 and name in attributes2:
            d = (float(attributes2[name]) - float(attributes1[name])) / units[j]
            gain = float(moved(z1, directions[j], d) @ z2 - sim)
            m.update(difference_units=d, alignment_gain=gain,
                     dissimilarity_share=gain / max(1.0 - sim, 1e-12))
        result["attributes"][name] = m
    total = sum(inv.values())
    for name in names:
        result["attributes"][name]["contribution"] = (inv[name] / total if total > 0
                                                      else 0.0)
    result["order"] = sorted(names, key=lambda n: -result["attributes"][n]["contribution"])
    if decoder is not None:
        decode = as_decoder(decoder)
        flippable = [n for n in names if result["attributes"][n]["flippable"]]
        zs = [z1, z2] + [moved(z1, directions[names.index(n)],
                               overshoot * result["attributes"][n]["flip_change"])
                         for n in flippable]
        imgs = decode(np.stack(zs).astype(np.float32))
        result["images"] = {"decoded_1": imgs[0], "decoded_2": imgs[1]}
        result["images"].update({n: imgs[2 + i] for i, n in enumerate(flippable)})
        if reader is not None and flippable:
            est = reader(imgs)
            for i, n in enumerate(flippable):
                # Every attribute's change from decoded face 1 to this
                # counterfactual, in units: the changed one should move, and
                # only it.
                changes = {k: float((est[k][2 + i] - est[k][0]) / units[names.index(k)])
                           for k in names if k in est}
                if n in changes:
                    m = result["attributes"][n]
                    m["decoded_change"] = changes[n]
                    others = {k: v for k, v in changes.items() if k != n and
                              (rendered is None or k in rendered)}
                    if others:
                        worst = max(others, key=lambda k: abs(others[k]))
                        m["decoded_largest_other"] = worst
                        m["decoded_largest_other_change"] = others[worst]
        for n in flippable:
            z_cf = moved(z1, directions[names.index(n)],
                         overshoot * result["attributes"][n]["flip_change"])
            result["attributes"][n]["counterfactual_similarity"] = float(z_cf @ z2)
    return result


def pair_json(result):
    """JSON-able form of `explain_pair` output (images dropped, NaN -> None)."""
    return json_safe({k: v for k, v in result.items() if k != "images"})


def _pair_similarities(z, subjects):
    """Cosine similarity and same-subject flag of every unordered pair i < j.

    Returns (s [P], same bool [P], (i [P], j [P])) with P = N (N - 1) / 2.
    """
    z = normalise(z)
    subjects = np.asarray(subjects)
    iu = np.triu_indices(len(z), 1)
    return (z @ z.T)[iu], (subjects[:, None] == subjects[None])[iu], iu


def eer_threshold(z, subjects):
    """Cosine threshold at the equal error rate of all image pairs of a set.

    Args:
      z: [N, d] unit representations; subjects: [N] ids.
    Returns: threshold (float), or the median similarity when there are no
      genuine or no impostor pairs.
    """
    s, same, _ = _pair_similarities(z, subjects)
    if not same.any() or same.all():
        return float(np.median(s))
    cands = np.unique(s)
    gen, imp = np.sort(s[same]), np.sort(s[~same])
    frr = np.searchsorted(gen, cands, side="left") / len(gen)
    far = 1.0 - np.searchsorted(imp, cands, side="left") / len(imp)
    k = int(np.argmin(np.abs(frr - far)))
    return float(cands[k])


def error_pairs(z, subjects, threshold):
    """The median false reject and the median false accept of a set, those it has.

    Returns: list of (i, j, reason), false reject first.
    """
    s, same, iu = _pair_similarities(z, subjects)
    out = []
    for mask, reason in ((same & (s < threshold), "median false reject"),
                         (~same & (s >= threshold), "median false accept")):
        cand = np.nonzero(mask)[0]
        if len(cand):
            k = cand[np.argsort(s[cand], kind="stable")[len(cand) // 2]]
            out.append((int(iu[0][k]), int(iu[1][k]), reason))
    return out


def pick_pair(z, subjects, threshold):
    """An informative pair (i, j) of a set and why it was picked.

    Preference: the median false reject (a genuine pair R calls different,
    the one in the middle of those by similarity: neither a hair from the
    threshold, where every flip distance is ~0, nor the most extreme), else
    the median false accept, else the genuine pair with the smallest margin.
    Returns (i, j, reason).
    """
    errors = error_pairs(z, subjects, threshold)
    if errors:
        return errors[0]
    s, same, iu = _pair_similarities(z, subjects)
    gen = np.nonzero(same)[0]
    if len(gen):
        k = gen[np.argmin(s[gen] - threshold)]
        return int(iu[0][k]), int(iu[1][k]), "genuine pair with the smallest margin"
    return 0, 1, "first two images"
