"""Average location of peak responses (average_location.m, SPEC A8)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from interp_fr.data import mat_files
from interp_fr.eval import peak_locations as pl
from interp_fr.features import save_feature_text
from tests.conftest import REPO_ROOT
from tests.helpers.interp_helpers import tiny_world

SQUARE = np.array([[0.0, 100.0, 100.0, 0.0], [0.0, 0.0, 100.0, 100.0]])
SQUARE_TRIS = np.array([[0, 1, 2], [0, 2, 3]])


def affine(points, scale, shift):
    return points * scale + np.asarray(shift, np.float64)[:, None]


# --------------------------------------------------------------------- a literal port


def reference_average_location(rows, landmarks, tvm, front_index, channels, sign,
                               size=24):
    """average_location.m written out loop by loop (MATLAB reshape semantics on
    the file rows); a peak in no triangle is skipped where MATLAB would crash."""
    front = landmarks[front_index - 1]
    n = len(rows)
    avg = np.zeros((channels, 2))
    dev = np.zeros(channels)
    for j in range(channels):
        centers = np.zeros((n, 2))
        weights = np.zeros(n)
        for i in range(n):
            x = rows[i].reshape((channels, size * size), order="F")
            z = x[j].reshape((size, size), order="F").T
            if sign == "neg":
                if not z.min() < 0:
                    continue
                hits = np.flatnonzero(z.flatten(order="F") == z.min())
            else:
                if not z.max() > 0:
                    continue
                hits = np.flatnonzero(z.flatten(order="F") == z.max())
            row_p, col_p = hits[0] % size + 1, hits[0] // size + 1
            px, py = np.float64(col_p * 4), np.float64(row_p * 4)
            chosen = None
            with np.errstate(divide="ignore", invalid="ignore"):
                for k in range(len(tvm)):
                    tv = np.flatnonzero(tvm[k])
                    xl, yl = landmarks[i][0, tv], landmarks[i][1, tv]
                    a1 = (((px - xl[2]) * (yl[1] - yl[2]) - (py - yl[2]) * (xl[1] - xl[2]))
                          / ((xl[0] - xl[2]) * (yl[1] - yl[2])
                             - (yl[0] - yl[2]) * (xl[1] - xl[2])))
                    a2 = (((px - xl[2]) * (yl[0] - yl[2]) - (py - yl[2]) * (xl[0] - xl[2]))
                          / ((xl[1] - xl[2]) * (yl[0] - yl[2])
                             - (yl[1] - yl[2]) * (xl[0] - xl[2])))
                    if 0 <= a1 <= 1 and 0 <= a2 <= 1 and a1 + a2 <= 1:
                        chosen = (tv, a1, a2)
            if chosen is None:
                continue
            tv, a1, a2 = chosen
            a3 = 1 - a1 - a2
            x_new = front[0, tv[0]] * a1 + front[0, tv[1]] * a2 + front[0, tv[2]] * a3
            y_new = front[1, tv[0]] * a1 + front[1, tv[1]] * a2 + front[1, tv[2]] * a3
            if x_new < 96 and y_new < 96 and x_new > 0 and y_new > 0:
                centers[i] = [y_new, x_new]
                weights[i] = abs(z[row_p - 1, col_p - 1])
        with np.errstate(invalid="ignore"):
            weights = weights / weights.sum()
        avg[j] = weights @ centers
        w = weights[np.flatnonzero(weights)]
        c = centers[np.flatnonzero(centers.sum(axis=1))]
        dev[j] = w @ np.linalg.norm(c - avg[j], axis=1) if len(c) else np.nan
        if not len(c):
            avg[j] = np.nan
    return avg, dev


@pytest.fixture(scope="module")
def real_tvm(shared_dir):
    aux = os.path.join(shared_dir, "interp_fr_aux")
    tvm = scipy.io.loadmat(os.path.join(aux, "tVM.mat"))["tVM"]
    tmpl = mat_files.read_frontal_template(os.path.join(aux, "landmark68_7.mat"))
    return tvm, tmpl.astype(np.float64)


def random_landmarks(template, n, rng):
    """Template-shaped landmarks with random similarity transforms and noise; the
    last image shrunk so that border peaks fall outside its triangulation."""
    out = []
    for i in range(n):
        ang = np.deg2rad(rng.uniform(-6, 6))
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        s = 0.6 if i == n - 1 else rng.uniform(0.9, 1.1)
        pts = (rot @ (template - 48.0)) * s + 48.0 + rng.uniform(-4, 4, (2, 1))
        pts[:, :68] += rng.normal(0, 0.7, (2, 68))
        out.append(pts)
    return np.stack(out)


def test_matches_literal_port_on_real_triangulation(real_tvm):
    tvm, tmpl = real_tvm
    rng = np.random.default_rng(3)
    n, c = 10, 6
    # Small integers: ties at the peak are common; about a third of the cells zero.
    maps = rng.integers(-3, 4, (n, 24, 24, c)).astype(np.float64)
    maps[:, :, :, 2] = np.abs(maps[:, :, :, 2])      # a filter without negative peaks
    maps[3, :, :, 4] = 0.0                            # no peak of either sign
    maps[1, 23, 23, 1] = 9.0                          # peak on the face border
    maps[n - 1, 0, 0, 0] = 9.0                        # outside the shrunk image's hull
    landmarks = random_landmarks(tmpl, n, rng)
    triangles = np.nonzero(tvm)[1].reshape(-1, 3)     # as read_triangulation
    rows = maps.reshape(n, -1)                        # the file layout (C order)
    peaks = pl.peaks_from_chunks([maps])
    result = pl.average_peak_locations(peaks, landmarks, triangles)
    assert result.signs["pos"].n_outside_hull[0] >= 1
    for sign in pl.SIGNS:
        avg, dev = reference_average_location(rows, landmarks, tvm, 8, c, sign)
        got = result.signs[sign]
        np.testing.assert_allclose(got.centers, avg, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.deviations, dev, rtol=1e-12, atol=1e-12)
    assert np.isnan(result.signs["neg"].centers[2]).all()
    with pytest.raises(pl.PeakLocationError, match="no triangle"):
        pl.average_peak_locations(peaks, landmarks, triangles, outside_rule="error")


# ---------------------------------------------------------------- planted peaks


def planted():
    """8 images of 24x24x4 maps with peaks whose locations are worked out by hand.

    Image 8 (the frontal face) has the square landmarks; images 1 and 4-5 are
    affine copies, so the mapping back to the frontal face is the inverse affine.
    """
    maps = np.zeros((8, 24, 24, 4))
    lms = np.stack([SQUARE] * 8)
    lms[1] = affine(SQUARE, 2.0, (-8.0, -4.0))        # frontal = (p + (8, 4)) / 2
    lms[4] = lms[5] = affine(SQUARE, 0.5, (10.0, 20.0))   # frontal = (p - (10, 20)) * 2
    # Filter 0, positive: weights 2 and 1, plus a peak that maps to x = y = 96.
    maps[0, 5 - 1, 10 - 1, 0] = 2.0                   # (x, y) = (40, 20)
    maps[1, 6 - 1, 4 - 1, 0] = 1.0                    # (16, 24) -> (12, 14)
    maps[2, 24 - 1, 24 - 1, 0] = 5.0                  # (96, 96): not < 96, dropped
    # Filter 1: ties. Image 1 (index 0): equal maxima at (row 3, col 5) and
    # (row 2, col 7): column-major order takes column 5. Image 4 (index 3):
    # (row 6, col 4) and (row 2, col 4) in one column: row 2.
    maps[0, 3 - 1, 5 - 1, 1] = maps[0, 2 - 1, 7 - 1, 1] = 3.0
    maps[3, 6 - 1, 4 - 1, 1] = maps[3, 2 - 1, 4 - 1, 1] = 1.0
    # Negative tie in image 1: (row 10, col 10) before (row 9, col 11).
    maps[0, 10 - 1, 10 - 1, 1] = maps[0, 9 - 1, 11 - 1, 1] = -4.0
    # Filter 2: nothing. Filter 3: negative only; image 5's peak maps through
    # the half-size landmarks, image 6's lies outside its landmarks' hull.
    maps[4, 10 - 1, 10 - 1, 3] = -0.5                 # (40, 40) -> (60, 40)
    maps[5, 1 - 1, 1 - 1, 3] = -7.0                   # (4, 4): in no triangle
    return maps, lms


def test_planted_peaks_by_hand():
    maps, lms = planted()
    res = pl.average_peak_locations(pl.peaks_from_chunks([maps]), lms, SQUARE_TRIS)
    pos, neg = res.signs["pos"], res.signs["neg"]
    # Filter 0: centres [y, x] = [20, 40] (weight 2/3) and [14, 12] (1/3).
    np.testing.assert_allclose(pos.centers[0], [(2 * 20 + 14) / 3, (2 * 40 + 12) / 3])
    ay, ax = 18.0, 92.0 / 3
    dev0 = 2 / 3 * np.hypot(20 - ay, 40 - ax) + 1 / 3 * np.hypot(14 - ay, 12 - ax)
    np.testing.assert_allclose(pos.deviations[0], dev0)
    assert (pos.n_peaks[0], pos.n_kept[0]) == (3, 2)
    np.testing.assert_allclose(pos.total_weight[0], 3.0)
    # Filter 1: [y, x] = [12, 20] (weight 3/4) and [8, 16] (1/4).
    np.testing.assert_allclose(pos.centers[1], [(3 * 12 + 8) / 4, (3 * 20 + 16) / 4])
    np.testing.assert_allclose(neg.centers[1], [40.0, 40.0])
    assert neg.deviations[1] == 0.0
    # Filter 2: never located.
    assert np.isnan(pos.centers[2]).all() and np.isnan(neg.deviations[2])
    assert pos.n_peaks[2] == neg.n_peaks[2] == 0
    # Filter 3: one kept negative peak at [y, x] = [40, 60], one outside the hull.
    np.testing.assert_allclose(neg.centers[3], [40.0, 60.0])
    assert (neg.n_kept[3], neg.n_outside_hull[3]) == (1, 1)
    assert np.isnan(pos.centers[3]).all()
    # The frontal face is image 8's landmarks.
    np.testing.assert_array_equal(res.frontal, SQUARE)


def test_front_index_selects_the_frontal_face():
    maps, lms = planted()
    lms = lms.copy()
    lms[0] = affine(SQUARE, 1.0, (2.0, 3.0))
    res = pl.average_peak_locations(pl.peaks_from_chunks([maps[:1]]), lms,
                                    SQUARE_TRIS, front_index=1)
    # Image 1 mapped onto itself: the peak stays at its own position.
    np.testing.assert_allclose(res.signs["pos"].centers[0], [20.0, 40.0])
    res8 = pl.average_peak_locations(pl.peaks_from_chunks([maps[:1]]), lms, SQUARE_TRIS)
    np.testing.assert_allclose(res8.signs["pos"].centers[0], [17.0, 38.0])


def test_last_matching_triangle_wins():
    # Two overlapping triangles contain (x, y) = (40, 20); they map it differently.
    img = np.array([[0.0, 100.0, 0.0, 100.0], [0.0, 0.0, 100.0, 100.0]])
    front = img.copy()
    front[1, 3] = 50.0                                # squashes triangle [0, 1, 3]
    maps = np.zeros((1, 24, 24, 1))
    maps[0, 5 - 1, 10 - 1, 0] = 1.0                   # (x, y) = (40, 20)
    peaks = pl.peaks_from_chunks([maps])
    first, second = [0, 1, 2], [0, 1, 3]
    res = pl.average_peak_locations(peaks, img[None], np.array([first, second]),
                                    frontal=front)
    np.testing.assert_allclose(res.signs["pos"].centers[0], [10.0, 40.0])
    res = pl.average_peak_locations(peaks, img[None], np.array([second, first]),
                                    frontal=front)
    np.testing.assert_allclose(res.signs["pos"].centers[0], [20.0, 40.0])


def test_kept_range_is_open_at_both_ends():
    # Frontal face shifted so that cells map onto exactly 0 and just inside 96.
    maps = np.zeros((1, 24, 24, 3))
    maps[0, 0, 0, 0] = 1.0                            # (4, 4) -> (0, 0): dropped
    maps[0, 0, 1, 1] = 1.0                            # (8, 4) -> (4, 0): dropped
    maps[0, 1, 1, 2] = 1.0                            # (8, 8) -> (4, 4): kept
    res = pl.average_peak_locations(pl.peaks_from_chunks([maps]), SQUARE[None],
                                    SQUARE_TRIS, frontal=affine(SQUARE, 1.0, (-4, -4)))
    assert res.signs["pos"].n_kept.tolist() == [0, 0, 1]
    np.testing.assert_allclose(res.signs["pos"].centers[2], [4.0, 4.0])


def test_grid_positions_and_coarse_maps():
    pos = pl.grid_positions((24, 24))
    # Column-major cells, [row, col] * 4 with 1-based indices.
    np.testing.assert_array_equal(pos[:2], [[4, 4], [4, 8]])
    np.testing.assert_array_equal(pos[24], [8, 4])
    # The base CNN's 6x6 map: stride 16.
    np.testing.assert_array_equal(pl.grid_positions((6, 6))[-1], [96, 96])


def test_spreadness():
    centers = np.array([[10.0, 10.0], [10.0, 20.0], [20.0, 10.0], [20.0, 20.0],
                        [np.nan, np.nan]])
    assert pl.spreadness(centers) == pytest.approx(np.sqrt(50.0))
    assert np.isnan(pl.spreadness(np.full((3, 2), np.nan)))


def test_filter_locations_dominant_sign():
    maps, lms = planted()
    res = pl.average_peak_locations(pl.peaks_from_chunks([maps]), lms, SQUARE_TRIS)
    loc = pl.filter_locations(res)
    np.testing.assert_allclose(loc[0], res.signs["pos"].centers[0])
    # Filter 1: the negative side weighs 4 against 3 + 1 = 4: a tie keeps positive.
    np.testing.assert_allclose(loc[1], res.signs["pos"].centers[1])
    np.testing.assert_allclose(loc[3], [40.0, 60.0])


# ---------------------------------------------------------------- files and CLI


def test_text_and_npy_files_give_the_same_peaks(tmp_path):
    maps, _ = planted()
    txt, npy = tmp_path / "maps.txt", tmp_path / "maps.npy"
    save_feature_text(txt, maps.reshape(len(maps), -1))
    np.save(npy, maps.reshape(len(maps), -1))
    direct = pl.peaks_from_chunks([maps])
    for path in (txt, npy):
        got = pl.peaks_from_file(str(path), num_images=5)
        for s in pl.SIGNS:
            np.testing.assert_array_equal(got[s].row, direct[s].row[:5])
            np.testing.assert_array_equal(got[s].col, direct[s].col[:5])
            np.testing.assert_array_equal(got[s].value, direct[s].value[:5])
        assert got["pos"].map_shape == (24, 24, 4)


def test_cli_two_models(tmp_path, real_tvm):
    tvm, tmpl = real_tvm
    rng = np.random.default_rng(5)
    n = 9
    lms = random_landmarks(tmpl, n + 1, rng)[:n]
    mat_files.write_landmarks(str(tmp_path / "landmarks68_IJBA.mat"), lms)
    scipy.io.savemat(str(tmp_path / "tVM.mat"), {"tVM": tvm})
    for name, spread in (("narrow", 2), ("wide", 20)):
        maps = np.zeros((n, 24, 24, 5))
        for j in range(5):
            # Each filter peaks around its own cell; "wide" spreads the cells out.
            r, c = 12 + (j - 2) * spread // 4, 12 + (j - 2) * spread // 5
            maps[:, r, c, j] = 1.0 + j
            maps[:, r, c - 1, j] = -1.0
        save_feature_text(str(tmp_path / f"{name}.txt"), maps.reshape(n, -1))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "eval.peak_locations",
         "--maps", f"narrow={tmp_path / 'narrow.txt'}",
         "--peak_maps", f"wide={tmp_path / 'wide.txt'}",
         "--landmarks", str(tmp_path / "landmarks68_IJBA.mat"),
         "--tvm", str(tmp_path / "tVM.mat"), "--out_dir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "narrow" in proc.stdout and "d_pos" in proc.stdout
    data = json.loads((out / "peak_locations.json").read_text())
    assert data["wide"]["summary"]["d_pos"] > data["narrow"]["summary"]["d_pos"] > 0
    npz = np.load(out / "peak_locations.npz")
    assert npz["wide__pos__centers"].shape == (5, 2)
    assert (out / "peak_locations.png").stat().st_size > 5000


# ------------------------------------------------------------------- from a model


def test_model_hook_on_tiny_world(tmp_path_factory):
    from interp_fr.data import dat_files
    from interp_fr.eval import interp_common
    from interp_fr.model import InterpFRNet
    world = tiny_world(str(tmp_path_factory.mktemp("world")))
    model = InterpFRNet(df_dim=4, gfc_dim=8, dfc_dim=8, n_subjects=3)
    paths = interp_common.WorldPaths(world)
    dat = dat_files.DatImages(paths.ijba_images, 96)
    peaks = pl.peaks_from_model(model, dat, num_images=10, batch_size=4)
    _, maps = interp_common.run_forward(interp_common.make_forward(model),
                                        dat.read_range(0, 10), want_maps=True)
    direct = pl.peaks_from_chunks([maps])
    for s in pl.SIGNS:
        np.testing.assert_array_equal(peaks[s].row, direct[s].row)
        np.testing.assert_allclose(peaks[s].value, direct[s].value, rtol=1e-5)
    png = tmp_path_factory.mktemp("out") / "peaks.png"
    res = pl.peak_location_figure_for_model(model, world, str(png),
                                            out_dir=str(png.parent))
    assert png.stat().st_size > 5000
    assert np.isfinite(res["d_pos"]) and np.isfinite(res["d_neg"])
    assert res["num_images"] == len(dat)
    assert any(f.endswith(".npz") for f in res["figures"])


def test_base_cnn_maps_are_brought_to_the_24_grid(tmp_path_factory):
    from interp_fr.data import dat_files
    from interp_fr.eval import interp_common
    from interp_fr.model import InterpFRNet
    # The legacy resize samples the 6x6 map at out * 6 / 24: cell k at 4k.
    small = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype(np.float32)
    big = interp_common.resize_maps(small, 24)
    np.testing.assert_allclose(big[0, ::4, ::4], small[0], rtol=1e-6)
    world = tiny_world(str(tmp_path_factory.mktemp("world")))
    dat = dat_files.DatImages(interp_common.WorldPaths(world).ijba_images, 96)
    base = InterpFRNet(df_dim=4, gfc_dim=8, dfc_dim=8, n_subjects=3, variant="base")
    peaks = pl.peaks_from_model(base, dat, num_images=5, batch_size=4)
    assert peaks["pos"].map_shape == (24, 24, 8)
    own = pl.peaks_from_model(base, dat, num_images=5, batch_size=4, map_size=None)
    assert own["pos"].map_shape == (6, 6, 8)


def test_analysis_commands_load_through_the_one_loader(tmp_path):
    """`interp_common.load_model` (the analysis CLIs' --source) reads the widths
    off the weights, finds a run by name under a checkpoint folder, and checks
    the widths a user gives."""
    import tensorflow as tf
    from interp_fr import training, weights_files
    from interp_fr.eval import interp_common
    from interp_fr.model import InterpFRNet
    model = InterpFRNet(df_dim=4, gfc_dim=8, dfc_dim=6, n_subjects=3)
    model.build((None, 96, 96, 3))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    want = model(x)["feature"].numpy()
    weights = str(tmp_path / "m.weights.h5")
    weights_files.save_weights_with_config(model, weights)
    config = training.TrainConfig(checkpoint_dir=str(tmp_path / "ckpt"), dataset="SYN",
                                  batch_size=16, df_dim=4, gfc_dim=8, dfc_dim=6)
    tf.train.Checkpoint(variables=training.resume_variables(model)).save(
        os.path.join(config.model_dir, training.RESUME_SUBDIR, "ckpt"))
    os.makedirs(tmp_path / "ckpt" / "other_run")    # two runs: the name decides
    for loaded in (interp_common.load_model(weights),
                   interp_common.load_model(str(tmp_path / "ckpt"), df_dim=4, gfc_dim=8,
                                            dfc_dim=6, dataset="SYN", batch_size=16)):
        assert (loaded.df_dim, loaded.gfc_dim, loaded.dfc_dim, loaded.n_subjects) == (
            4, 8, 6, 3)
        np.testing.assert_allclose(loaded(x)["feature"].numpy(), want, atol=1e-6)
    with pytest.raises(ValueError, match="gfc_dim=16 was requested"):
        interp_common.load_model(weights, gfc_dim=16)
