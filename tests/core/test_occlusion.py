"""Synthetic occlusion (SPEC A5) against a literal per-corner, per-triangle loop."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from interp_fr import occlusion
from interp_fr.data import dat_files, mat_files
from tests.conftest import REPO_ROOT, SHARED_DIR


def reference_polygon(corners, tvm, template, landmarks, row_off, col_off):
    """A straight loop over corners and tVM rows, as SPEC A5 describes it."""
    pts = []
    for x, y in corners:
        for i in range(len(tvm)):
            tv = np.where(tvm[i])[0]
            xl, yl = template[0, tv] + 7, template[1, tv] + 7
            den_a = (xl[0] - xl[2]) * (yl[1] - yl[2]) - (yl[0] - yl[2]) * (xl[1] - xl[2])
            den_b = (xl[1] - xl[2]) * (yl[0] - yl[2]) - (yl[1] - yl[2]) * (xl[0] - xl[2])
            a = ((x - xl[2]) * (yl[1] - yl[2]) - (y - yl[2]) * (xl[1] - xl[2])) / den_a
            b = ((x - xl[2]) * (yl[0] - yl[2]) - (y - yl[2]) * (xl[0] - xl[2])) / den_b
            g = 1 - a - b
            if 0 <= a <= 1 and 0 <= b <= 1 and a + b <= 1:
                px = np.sum(landmarks[0, tv] * [a, b, g]) - col_off
                py = np.sum(landmarks[1, tv] * [a, b, g]) - row_off
                pts.append((px, py))
    img = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(img).polygon(pts[:4], outline=1, fill=1)
    return np.asarray(pts[:4]), np.asarray(img, bool)


@pytest.fixture(scope="module")
def real_aux(shared_dir):
    aux = os.path.join(shared_dir, "interp_fr_aux")
    tvm = scipy_load(os.path.join(aux, "tVM.mat"), "tVM")
    tmpl = mat_files.read_frontal_template(os.path.join(aux, "landmark68_7.mat"))
    synth = occlusion.OcclusionSynthesizer.from_files(
        os.path.join(aux, "tVM.mat"), os.path.join(aux, "landmark68_7.mat"))
    return tvm, tmpl, synth


def scipy_load(path, name):
    import scipy.io
    return scipy.io.loadmat(path)[name]


def test_matches_reference_loop_on_real_template(real_aux):
    tvm, tmpl, synth = real_aux
    rng = np.random.default_rng(0)
    # Landmarks: the template in 110 px space, moved and distorted per image.
    base = tmpl.astype(np.float64) + 7
    lms = base[None] + rng.normal(0, 2.0, (6, 2, 76))
    lms[:, :, :] += rng.uniform(-3, 3, (6, 2, 1))
    offsets = rng.integers(0, 15, (6, 2))
    for trial in range(8):
        top_left = occlusion.sample_rectangle(rng)
        corners = occlusion.rectangle_corners(*top_left)
        polys = synth.polygons(corners, lms, offsets)
        masks = synth.masks(polys)
        for b in range(6):
            ref_pts, ref_mask = reference_polygon(corners, tvm, tmpl, lms[b],
                                                  offsets[b, 0], offsets[b, 1])
            np.testing.assert_allclose(polys[b], ref_pts, atol=1e-9)
            np.testing.assert_array_equal(masks[b], ref_mask)
            assert ref_mask.sum() > 100  # a real rectangle, roughly 32 x 12


def test_identity_landmarks_give_the_axis_aligned_rectangle(real_aux):
    _, tmpl, synth = real_aux
    lm = (tmpl.astype(np.float64) + 7)[None]
    img = np.zeros((1, 96, 96, 3), np.float32)
    out, mask = synth.occlude(img, lm, np.array([[7, 7]]), top_left=(30, 40))
    # Mapping through the identity lands the corners on (23..55, 33..45) after
    # the 7 px crop, up to float32 rounding of the template (which can move an
    # edge onto the neighbouring pixel row); PIL fills the outline too.
    rows, cols = np.nonzero(mask[0])
    assert rows.min() in (32, 33) and rows.max() in (45, 46)
    assert cols.min() in (22, 23) and cols.max() in (55, 56)
    assert 30 * 11 <= mask.sum() <= 34 * 14
    assert np.all(out[0][mask[0]] == -1) and np.all(out[0][~mask[0]] == 0)


def test_rectangle_distribution_matches_original():
    rng = np.random.default_rng(1)
    xs, ys = zip(*[occlusion.sample_rectangle(rng) for _ in range(20000)])
    # x from range(10, 69) with 10 -> 11 and 68 -> 67; y from range(10, 89).
    assert min(xs) == 11 and max(xs) == 67 and min(ys) == 11 and max(ys) == 87
    counts = np.bincount(xs)
    assert counts[11] > 1.6 * counts[30] and counts[67] > 1.6 * counts[30]


def _square_triangulation():
    """Two triangles splitting the square (0,0)-(10,10) along its diagonal."""
    template = np.zeros((2, 76))
    template[:, 0], template[:, 1], template[:, 2], template[:, 3] = \
        (0, 0), (10, 0), (0, 10), (10, 10)
    return np.array([[0, 1, 2], [1, 2, 3]]), template


def test_corner_on_shared_edge_rules():
    tri, tmpl = _square_triangulation()
    corners = np.array([[5.0, 5.0], [2, 3], [3, 2], [8, 9]])  # (5,5) on the diagonal
    orig = occlusion.OcclusionSynthesizer(tri, tmpl, template_shift=0)
    ci, ti, _ = orig.corner_assignments(corners)
    # The original appends (5,5) twice and drops the last corner.
    np.testing.assert_array_equal(ci, [0, 0, 1, 2])
    np.testing.assert_array_equal(ti, [0, 1, 0, 0])
    once = occlusion.OcclusionSynthesizer(tri, tmpl, template_shift=0,
                                          corner_rule="one_per_corner")
    ci, ti, _ = once.corner_assignments(corners)
    np.testing.assert_array_equal(ci, [0, 1, 2, 3])
    np.testing.assert_array_equal(ti, [0, 0, 0, 1])


def test_corner_outside_every_triangle():
    tri, tmpl = _square_triangulation()
    corners = np.array([[12.0, 5.0], [2, 3], [3, 2], [8, 9]])
    strict = occlusion.OcclusionSynthesizer(tri, tmpl, template_shift=0,
                                            outside_rule="error")
    with pytest.raises(occlusion.OcclusionError, match=r"\[\[12.0, 5.0\]\]"):
        strict.corner_assignments(corners)
    near = occlusion.OcclusionSynthesizer(tri, tmpl, template_shift=0)
    # Landmarks = template scaled by 2: the affine extrapolation maps (12,5) to (24,10).
    lm = (tmpl * 2)[None]
    polys = near.polygons(corners, lm, np.zeros((1, 2)))
    np.testing.assert_allclose(polys[0, 0], [24, 10], atol=1e-12)


def test_gen_syn_occl_command(tmp_path, real_aux):
    _, tmpl, _ = real_aux
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (3, 96, 96, 3), np.uint8)
    dat = tmp_path / dat_files.IJBA_IMAGES_FILE
    dat_files.write_dat_images(dat, imgs)
    aux = tmp_path / "aux"
    aux.mkdir()
    import shutil
    for name in ("tVM.mat", "landmark68_7.mat"):
        shutil.copy(os.path.join(SHARED_DIR, "interp_fr_aux", name), aux / name)
    mat_files.write_landmarks(aux / "landmarks68_IJBA.mat",
                              np.repeat(tmpl[None].astype(np.float64) + 7, 3, 0))
    out = tmp_path / "occl"
    proc = subprocess.run([sys.executable, "-m", "interp_fr.gen_syn_occl", "--images",
                           str(dat), "--aux_dir", str(aux), "--out_dir", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    occl = dat_files.read_dat_images(out / "IJBA_recrop_images_96_96_test_occl.dat", 96)
    assert occl.shape == (3, 96, 96, 3)
    for i in range(3):
        changed = np.any(occl[i] != imgs[i], axis=-1)
        # Only pixels of the filled quadrilateral (at most 34 x 14 with the
        # outline and rounding) changed, and they are black (-1 -> 0).
        assert 150 < changed.sum() <= 34 * 14 and np.all(occl[i][changed] == 0)
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{i}.png")), occl[i])
