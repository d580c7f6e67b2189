"""Filter response heat maps (the paper's figure 2)."""
import numpy as np
from PIL import Image

from interp_fr.eval import filter_heatmaps as fh
from tests.helpers.interp_helpers import tiny_world


def test_upsample_puts_a_cell_on_its_pixels():
    maps = np.zeros((2, 24, 24))
    maps[0, 5, 7] = 1.0
    maps[1, 0, 23] = 2.0
    up = fh.upsample(maps)
    assert up.shape == (2, 96, 96)
    r, c = np.unravel_index(up[0].argmax(), (96, 96))
    assert 20 <= r <= 23 and 28 <= c <= 31
    # The cell's own 4x4 pixels hold the largest values.
    outside = up[0].copy()
    outside[20:24, 28:32] = 0
    assert up[0, 20:24, 28:32].min() > outside.max()
    assert up[1, 0:4, 92:96].max() == up[1].max()


def test_overlay_colours_and_scaling():
    images = np.full((2, 96, 96, 3), 128, np.uint8)
    maps = np.zeros((2, 24, 24, 3))
    maps[0, 2, 2, 1] = 1.0        # filter 1 positive in image 0
    maps[1, 20, 20, 1] = -3.0     # filter 1 negative in image 1
    maps[1, 10, 10, 1] = 0.5      # a weaker positive in image 1
    out = fh.overlay(images, maps, [1, 2])
    assert out.shape == (2, 2, 96, 96, 3)
    red = out[0, 0, 8:12, 8:12]
    assert (red[..., 0] > red[..., 2] + 0.3).all()
    blue = out[1, 0, 80:84, 80:84]
    assert (blue[..., 2] > blue[..., 0] + 0.3).all()
    # Scaled by the filter's largest positive over both images: the weaker
    # response is drawn fainter than the strongest one.
    weak = out[1, 0, 40:44, 40:44, 0] - out[1, 0, 40:44, 40:44, 2]
    assert 0.05 < weak.max() < (red[..., 0] - red[..., 2]).max()
    # No response: the grey face, untouched.
    np.testing.assert_allclose(out[:, 1], out[:, 1, :, :, :1].repeat(3, axis=-1))
    assert np.ptp(out[:, 1]) < 1e-12


def test_choose_filters_spreads_and_skips_dead():
    maps = np.zeros((3, 24, 24, 6))
    maps[:, 2, 2, 0] = 5.0          # strongest: chosen first
    maps[:, 3, 2, 1] = 1.0          # next to filter 0
    maps[:, 20, 20, 2] = 1.0        # far away
    maps[:, 2, 21, 3] = 1.0         # far from both
    maps[:, 12, 12, 5] = 0.5        # the middle
    chosen = fh.choose_filters(maps, 4)
    assert chosen[0] == 0
    assert set(chosen[1:3]) == {2, 3}
    assert 4 not in fh.choose_filters(maps, 10)      # never responds
    assert fh.choose_filters(np.zeros((1, 24, 24, 2)), 3) == []


def test_select_images():
    subjects = np.array([0, 0, 1, 1, 1, 1, 1, 2, 3, 3])
    yaw = np.array([20, -5, 30, 2, -15, 8, -40, 0, 9, -1])
    per, same, sid = fh.select_images(subjects, yaw, n_subjects=3, n_same=3)
    assert per == [1, 3, 7]
    assert sid == 1
    # Spread over |yaw| from the most frontal to the most turned.
    assert same[0] == 3 and same[-1] == 6 and len(same) == 3


def test_grid_png(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 96, 96, 3), dtype=np.uint8)
    maps = rng.normal(size=(3, 24, 24, 5)) * (rng.random((3, 24, 24, 5)) > 0.95)
    path = fh.plot_heatmap_grid(images, maps, [0, 3, 4], str(tmp_path / "g.png"),
                                ["a", "b", "c"], title="t")
    with Image.open(path) as img:
        w, h = img.size
    assert w > h > 200


def test_hook_on_tiny_world(tmp_path_factory):
    from interp_fr.model import InterpFRNet
    world = tiny_world(str(tmp_path_factory.mktemp("world")))
    model = InterpFRNet(df_dim=4, gfc_dim=8, dfc_dim=8, n_subjects=3)
    out = tmp_path_factory.mktemp("out") / "heat.png"
    res = fh.heatmap_grid_for_model(model, world, str(out), num_filters=4,
                                    n_subjects=3, n_same=3)
    assert out.stat().st_size > 10000
    assert 1 <= len(res["filters"]) <= 4
    assert len(res["images"]) == 6
    res = fh.heatmap_grid_for_model(model, world, str(out), filters=[0, 7])
    assert res["filters"] == [0, 7]
