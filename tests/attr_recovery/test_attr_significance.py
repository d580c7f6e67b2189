"""Significance and counterfactuals on a world whose answers are known by construction.

Faces are tiny images that encode five attributes linearly (x = P a). The
recognition model reads them exactly and builds z = normalise(C + sum_j w_j a_j q_j)
with orthonormal q_j orthogonal to a large constant C: weights 4, 2, 1 for
three "shape" attributes, 0.05 for "tint" (present in z, but tiny) and 0 for
"colour" (ignored). The decoder inverts z exactly (colour, absent from z,
decodes to 0) and the estimator is pinv(P). So by construction:

- sensitivity ranks jaw > eye > nose > tint > colour, colour ~ 0;
- recoverability and decoder response are ~1 for the first four, 0 for colour;
- counterfactual flip distances scale as 1 / w: contributions in weight order,
  colour cannot flip anything.
"""
import json
import os

import numpy as np
import pytest

from attr_recovery.analysis import attribute_significance as sig
from attr_recovery.analysis import counterfactual as cf
from attr_recovery.analysis import significance_figures

NAMES = ("jaw", "eye", "nose", "tint", "colour")
WEIGHTS = np.array([4.0, 2.0, 1.0, 0.05, 0.0])
D = 24
NORM_C = 20.0


class ToyWorld:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.p = rng.normal(size=(4 * 4 * 3, len(NAMES)))
        basis, _ = np.linalg.qr(rng.normal(size=(D, len(NAMES) + 1)))
        self.c = basis[:, 0] * NORM_C
        self.q = basis[:, 1:].T                       # [5, D], orthonormal, _|_ C

    def images(self, a):
        return (np.asarray(a) @ self.p.T * 0.1).reshape(-1, 4, 4, 3).astype(np.float32)

    def reader(self, images):
        flat = np.asarray(images, np.float64).reshape(len(images), -1) / 0.1
        a = flat @ np.linalg.pinv(self.p).T
        return {n: a[:, j] for j, n in enumerate(NAMES)}

    def recognition(self, images):
        a = np.stack([self.reader(images)[n] for n in NAMES], axis=1)
        return sig.normalise(self.c + (a * WEIGHTS) @ self.q).astype(np.float32)

    def decoder(self, z):
        z = np.asarray(z, np.float64)
        y = z * NORM_C / (z @ (self.c / NORM_C))[:, None]   # = C + sum w_j a_j q_j
        coef = (y - self.c) @ self.q.T
        a = np.where(WEIGHTS > 0, coef / np.where(WEIGHTS > 0, WEIGHTS, 1.0), 0.0)
        return self.images(a)


@pytest.fixture(scope="module")
def toy():
    world = ToyWorld()
    a = np.random.default_rng(1).normal(size=(2000, len(NAMES)))
    images = world.images(a)
    subjects = np.arange(2000) // 4
    result = sig.compute_significance(world.recognition, world.decoder, world.reader,
                                      images, names=NAMES, subjects=subjects,
                                      truth={n: a[:, j] for j, n in enumerate(NAMES)})
    return world, a, images, result


def test_toy_world_is_what_it_claims(toy):
    world, a, images, _ = toy
    est = world.reader(images)
    np.testing.assert_allclose(np.stack([est[n] for n in NAMES], 1), a, atol=1e-6)
    dec = world.reader(world.decoder(world.recognition(images)))
    np.testing.assert_allclose(np.stack([dec[n] for n in NAMES[:4]], 1), a[:, :4],
                               atol=1e-4)
    np.testing.assert_allclose(dec["colour"], 0.0, atol=1e-6)


def test_sensitivity_ranking_is_the_known_order(toy):
    _, _, _, result = toy
    assert result["names"] == list(NAMES)
    s = {n: result["attributes"][n]["sensitivity"] for n in NAMES}
    assert s["jaw"] > 3 * s["eye"] > 9 * s["nose"] > 0
    assert s["nose"] > 100 * s["tint"]
    assert s["colour"] < 1e-4 * s["jaw"]
    m = result["attributes"]
    assert all(m[n]["above_noise"] for n in ("jaw", "eye", "nose"))
    assert not m["colour"]["above_noise"]
    # Small steps: 1 - cos ~ (w / |C + S|)^2 / 2, about (w / |C|)^2 / 2.
    assert s["jaw"] == pytest.approx(0.5 * (4 / NORM_C) ** 2, rel=0.35)


def test_recoverability_and_decoder_response(toy):
    _, _, _, result = toy
    m = result["attributes"]
    for name in ("jaw", "eye", "nose", "tint"):
        assert m[name]["recoverability"] > 0.999
        assert m[name]["relative_recoverability"] > 0.999
        assert m[name]["decoder_response"] == pytest.approx(1.0, abs=0.1)
        assert m[name]["probe_r2"] > 0.95
        assert m[name]["sensitivity_calibrated"] == pytest.approx(
            m[name]["sensitivity"], rel=0.25)
    assert m["colour"]["recoverability"] == 0.0
    assert abs(m["colour"]["decoder_response"]) < 1e-6
    assert np.isnan(m["colour"]["sensitivity_calibrated"])
    assert m["colour"]["probe_r2"] < 0.05
    # Recoverable but insignificant: the two measures disagree on purpose.
    assert m["tint"]["recoverability"] > 0.999 and m["tint"]["rank"] == 4


def test_flip_step_solves_the_threshold_equation():
    rng = np.random.default_rng(3)
    for _ in range(50):
        z1, z2, b = rng.normal(size=(3, 16))
        z1, z2 = sig.normalise(z1[None])[0], sig.normalise(z2[None])[0]
        thr = float(rng.uniform(-0.5, 0.9))
        t = cf.flip_step(z1, z2, 0.3 * b, thr)
        ts = np.linspace(-40, 40, 40001)
        cos = sig.normalise(z1[None] + ts[:, None] * 0.3 * b[None]) @ z2
        crossing = np.nonzero(np.diff(np.sign(cos - thr)))[0]
        if not len(crossing):
            assert np.isnan(t) or abs(t) > 40
            continue
        best = ts[crossing[np.argmin(np.abs(ts[crossing]))]]
        assert t == pytest.approx(best, abs=0.01)
        assert cf.moved(z1, 0.3 * b, t) @ z2 == pytest.approx(thr, abs=1e-6)


def _explain(toy, margin):
    world, _, _, result = toy
    a1 = np.zeros((1, len(NAMES)))
    a2 = np.array([[0.5, 0.5, 0.5, 0.5, 3.0]])
    x1, x2 = world.images(a1), world.images(a2)
    z1, z2 = world.recognition(x1)[0], world.recognition(x2)[0]
    thr = float(z1 @ z2) + margin
    exp = cf.explain_pair(z1, z2, result["directions"], result["names"], thr,
                          units=result["units"],
                          attributes1={k: v[0] for k, v in world.reader(x1).items()},
                          attributes2={k: v[0] for k, v in world.reader(x2).items()},
                          decoder=world.decoder, reader=world.reader)
    return x1, x2, thr, exp


def test_counterfactual_contributions_in_known_order(toy, tmp_path):
    x1, x2, thr, exp = _explain(toy, -0.002)            # R says "same"
    m = exp["attributes"]
    assert exp["decision"] == "same"
    assert exp["order"][:3] == ["jaw", "eye", "nose"]
    assert m["jaw"]["contribution"] > m["eye"]["contribution"] > m["nose"]["contribution"]
    assert not m["colour"]["flippable"] and m["colour"]["contribution"] == 0.0
    assert m["tint"]["contribution"] < 0.01
    # 1 - cos grows with t^2 w^2 (second order) and, because face 2 differs
    # from face 1 along the same axes by amounts proportional to w, with
    # t w^2 (first order): flip distances scale between 1 / w and 1 / w^2.
    ratio = abs(m["eye"]["flip_change"]) / abs(m["jaw"]["flip_change"])
    assert 1.8 < ratio < 4.2
    for name in ("jaw", "eye", "nose"):
        assert m[name]["counterfactual_similarity"] < thr        # the decision flips
        # The decoded counterfactual shows the attribute change that was made.
        assert m[name]["decoded_change"] == pytest.approx(
            1.05 * m[name]["flip_change"], rel=0.1)
        # ... and only it: every other attribute moves far less.
        assert abs(m[name]["decoded_largest_other_change"]) < \
            0.2 * abs(m[name]["decoded_change"])
    # Giving face 1 face 2's attribute values: gains in weight order, colour none.
    gains = [m[n]["alignment_gain"] for n in NAMES]
    # tint's direction is faint (w = 0.05) and so dominated by estimation
    # noise; colour's is noise only.
    assert gains[0] > gains[1] > gains[2] > 5 * max(abs(gains[3]), abs(gains[4]))
    assert sum(m[n]["dissimilarity_share"] for n in NAMES) == pytest.approx(1.0, abs=0.2)
    path = significance_figures.explanation_figure(x1[0], x2[0], exp, str(tmp_path / "e.png"))
    assert os.path.getsize(path) > 1000
    json.dumps(cf.pair_json(exp))


def test_counterfactual_of_a_reject_names_only_attributes_that_can_flip_it(toy):
    # cos(z1, z2) = |C| / |C + S2|. Matching jaw alone lifts it to 0.9985,
    # eye alone to 0.9947, nose alone only to 0.9938: with the threshold at
    # 0.9943 jaw and eye can turn "different" into "same", nose cannot.
    _, _, thr, exp = _explain(toy, 0.0008)
    m = exp["attributes"]
    assert exp["decision"] == "different"
    assert m["jaw"]["flippable"] and m["eye"]["flippable"]
    assert not m["nose"]["flippable"] and not m["colour"]["flippable"]
    assert m["jaw"]["contribution"] > m["eye"]["contribution"] > 0
    assert m["jaw"]["counterfactual_similarity"] >= thr
    assert m["jaw"]["flip_change"] > 0     # towards face 2's higher jaw value


def test_tables_and_chart(toy, tmp_path):
    _, _, _, result = toy
    text = sig.format_significance_table(result)
    assert text.splitlines()[2].split()[1] == "jaw"
    json.dumps(sig.significance_json(result))
    path = significance_figures.significance_chart(result, str(tmp_path / "s.png"))
    assert os.path.getsize(path) > 1000


def test_eer_threshold_and_pair_choice():
    rng = np.random.default_rng(0)
    centres = sig.normalise(rng.normal(size=(10, 8)))
    subjects = np.repeat(np.arange(10), 4)
    z = sig.normalise(centres[subjects] + 0.4 * rng.normal(size=(40, 8)))
    thr = cf.eer_threshold(z, subjects)
    sim = z @ z.T
    iu = np.triu_indices(40, 1)
    same = (subjects[:, None] == subjects[None])[iu]
    frr = np.mean(sim[iu][same] < thr)
    far = np.mean(sim[iu][~same] >= thr)
    assert abs(frr - far) < 0.05
    i, j, reason = cf.pick_pair(z, subjects, thr)
    assert i != j and reason


def test_stage1_decoder_is_wrapped_deterministically():
    decoder_lib = pytest.importorskip("attr_recovery.nets.decoder")
    from attr_recovery.nets.stylegan2 import Generator
    gen = Generator(size=8, style_dim=8, n_mlp=1, channels={4: 8, 8: 8})
    dec = decoder_lib.FeatureDecoder(
        decoder_lib.LatentTransformer(6, gen.n_latent, 5, 8), gen)
    wrapped = sig.as_decoder(dec)
    z = sig.normalise(np.random.default_rng(0).normal(size=(3, 6)))
    a = wrapped(z)
    b = wrapped(z[::-1])[::-1]            # other batch positions, same noise
    assert a.shape == (3, 8, 8, 3)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_heldout_probe_r2_reads_encoded_and_misses_absent_attributes():
    """A target linear in z (plus small noise) is read on new rows with R^2 near
    its noise-free share; a target independent of z gets R^2 <= about 0."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=16)
    z_fit, z_new = rng.normal(size=(400, 16)), rng.normal(size=(300, 16))
    noise = 0.3 * np.linalg.norm(w)
    t_fit = z_fit @ w + noise * rng.normal(size=400)
    t_new = z_new @ w + noise * rng.normal(size=300)
    r2 = sig.heldout_probe_r2(z_fit, t_fit, z_new, t_new)
    expected = 1.0 / (1.0 + 0.3 ** 2)          # signal / (signal + noise) variance
    assert abs(r2 - expected) < 0.03
    absent = sig.heldout_probe_r2(z_fit, rng.normal(size=400), z_new,
                                  rng.normal(size=300))
    assert -0.1 < absent < 0.02
    assert np.isnan(sig.heldout_probe_r2(z_fit, t_fit, z_new, np.ones(300)))


def test_default_names_prefer_the_first_alternative_the_reader_gives():
    wanted = ("yaw", ("jaw_width", "lm_jaw_width"), ("smile", "lm_smile"), "gender")
    assert sig.default_names({"yaw", "jaw_width", "lm_jaw_width", "lm_smile"},
                             wanted) == ["yaw", "jaw_width", "lm_smile"]
    # The shipped estimators' heads replace the pose-dependent landmark descriptors.
    names = sig.default_names(set(sig.default_names.__defaults__[0][3]) |
                              {"lm_jaw_width", "yaw"})
    assert names == ["yaw", "jaw_width"]


def test_an_attribute_the_estimator_cannot_read_is_not_measured(toy):
    """A reader whose "tint" is in truth the (unmeasured) eye attribute, as a
    smile estimator that reads mouth width, gives tint the eye's significance;
    with the exact values known, tint is left out and named instead."""
    world, a, images, _ = toy

    def confused(x):
        out = world.reader(x)
        out["tint"] = out["eye"] + 0.1 * out["tint"]
        return out

    names = ("jaw", "nose", "tint", "colour")
    truth = {n: a[:, j] for j, n in enumerate(NAMES)}
    plain = sig.compute_significance(world.recognition, None, confused, images,
                                     names=names, null_permutations=0)
    assert plain["names"][:2] == ["jaw", "tint"]      # wrongly second, for eye
    checked = sig.compute_significance(world.recognition, None, confused, images,
                                       names=names, truth=truth, null_permutations=0)
    assert checked["names"] == ["jaw", "nose", "colour"]
    r2 = checked["unreadable"]["tint"]
    assert r2 == pytest.approx(0.01 / 1.01, abs=0.01)     # var(0.1 t) / var(eye + 0.1 t)
    assert "tint 0.01" in sig.format_significance_table(checked)


def test_attributes_not_encoded_get_no_counterfactual(toy, tmp_path):
    world, _, _, result = toy
    above = [result["attributes"][n]["above_noise"] for n in result["names"]]
    assert above[:3] == [True] * 3 and not above[4]
    _, _, _, free = _explain(toy, -0.002)
    x1, x2, thr, _ = _explain(toy, -0.002)
    z1, z2 = world.recognition(x1)[0], world.recognition(x2)[0]
    encoded = [n != "jaw" for n in result["names"]]
    exp = cf.explain_pair(z1, z2, result["directions"], result["names"], thr,
                          units=result["units"], decoder=world.decoder,
                          reader=world.reader, encoded=encoded)
    m = exp["attributes"]
    assert not m["jaw"]["encoded"] and not m["jaw"]["flippable"]
    assert "jaw" not in exp["images"] and m["jaw"]["contribution"] == 0.0
    assert m["eye"]["flip_change"] == pytest.approx(free["attributes"]["eye"]["flip_change"])
    assert exp["order"][0] == "eye"
    # The flags travel with the saved directions.
    path = sig.save_directions(str(tmp_path / "d.npz"), result, thr)
    loaded = sig.load_directions(path)
    np.testing.assert_array_equal(loaded["above_noise"], above)


def test_noise_floor_is_corrected_for_the_number_of_attributes():
    """Twenty attributes unrelated to z: at a plain 95th-percentile floor about
    one passes by chance; at the family-wise floor none does."""
    rng = np.random.default_rng(11)
    subjects = np.repeat(np.arange(100), 4)
    z = sig.normalise(rng.normal(size=(100, 32))[subjects] + 0.5 * rng.normal(size=(400, 32)))
    a = rng.normal(size=(400, 20))
    names = [f"a{j}" for j in range(20)]
    images = np.zeros((400, 2, 2, 3), np.float32)

    def reader(_):
        return {n: a[:, j] for j, n in enumerate(names)}

    result = sig.compute_significance(lambda x: z, None, reader, images, names=names,
                                      subjects=subjects, features=z)
    assert not any(m["above_noise"] for m in result["attributes"].values())
    s = (a - a.mean(0)) / a.std(0)
    j = names.index(result["names"][0])
    assert result["attributes"][names[j]]["noise_floor"] == pytest.approx(
        sig.noise_floor(z, s, j, permutations=200, quantile=1 - 0.05 / 20,
                        subjects=subjects))
    plain = [sig.cosine_drop(z, d)[0] > sig.noise_floor(z, s, k, subjects=subjects)
             for k, d in enumerate(sig.partial_effect_directions(z, s))]
    assert sum(plain) >= 1


def test_side_effects_are_read_on_rendered_attributes_only(toy):
    world, _, _, result = toy
    x1, x2, thr, free = _explain(toy, -0.002)
    z1, z2 = world.recognition(x1)[0], world.recognition(x2)[0]
    # colour decodes to 0 (the decoder cannot render it): a side-effect check
    # on it would read nothing; restricted to jaw and eye, so is the answer.
    exp = cf.explain_pair(z1, z2, result["directions"], result["names"], thr,
                          units=result["units"], decoder=world.decoder,
                          reader=world.reader, rendered=["jaw", "eye"])
    m = exp["attributes"]
    assert m["jaw"]["decoded_largest_other"] == "eye"
    assert m["eye"]["decoded_largest_other"] == "jaw"
    assert m["nose"]["decoded_largest_other"] in ("jaw", "eye")
    assert m["jaw"]["decoded_change"] == free["attributes"]["jaw"]["decoded_change"]


def test_decoded_responses_move_only_the_stepped_attribute(toy):
    """In the toy world the decoder renders each attribute on its own: a step
    along one partial-effect direction shows about one unit of that attribute
    on the decoded faces and nothing of the others (measured 0.96-1.00 and at
    most 9e-4)."""
    world, _, images, result = toy
    z = world.recognition(images[:32])
    units = dict(zip(result["names"], result["units"]))
    for name, direction in zip(result["names"][:3], result["directions"][:3]):
        shown = sig.decoded_responses(world.reader, world.decoder, z, direction, units)
        assert shown[name] == pytest.approx(1.0, abs=0.1), (name, shown)
        others = [abs(v) for k, v in shown.items() if k != name]
        assert max(others) < 0.05, (name, shown)
