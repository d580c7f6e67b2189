"""Feature change under occlusion: synthetic blocks, AR-style natural occlusion,
block / filter-location overlap (the verification columns under occlusion:
tests/eval/test_recognition_report.py)."""
import os

import numpy as np
import pytest
from PIL import Image

from interp_fr.eval import occlusion_analysis as oa
from interp_fr.eval import peak_locations as pl
from tests.helpers.interp_helpers import region_cells, region_model, tiny_world

FAR_REGIONS = [(20, 24, 20, 24), (0, 3, 16, 24)]   # touch no block


@pytest.fixture(scope="module")
def forward():
    """Channel j (< 6) sees only block j's cells; channels 6 and 7 see no block."""
    regions = [region_cells(x, y, 32, 12) for _, x, y in oa.BLOCKS] + FAR_REGIONS
    return region_model(regions)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(str(tmp_path_factory.mktemp("world")))


def test_blocks_are_the_originals():
    assert [b[0] for b in oa.BLOCKS] == ["forehead", "l_eye", "mouth", "nose",
                                         "r_cheek", "r_eye"]
    img = np.zeros((1, 96, 96, 3), np.float32)
    out = oa.occlude_block(img, 30, 68)
    rows, cols = np.nonzero(out[0, :, :, 0] == -1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (68, 79, 30, 61)
    assert (out[0, :, :, 1] == -1).sum() == 32 * 12
    assert (img == 0).all()                         # the input is not touched


def test_unit_normalize():
    f = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = oa.unit_normalize(f)
    np.testing.assert_allclose(out[0], [0.6, 0.8])
    assert np.isnan(out[1]).all()                   # as the original's f / norm(f)


def test_each_block_changes_its_own_dimension_most(forward):
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 1.0, (5, 96, 96, 3)).astype(np.float32)
    changes = oa.synthetic_block_change(forward, images)
    assert list(changes) == [b[0] for b in oa.BLOCKS]
    for j, (name, x, y) in enumerate(oa.BLOCKS):
        mean = changes[name]["mean"]
        assert mean.shape == (8,)
        assert int(np.argmax(mean)) == j
        assert mean[j] > 4 * np.delete(mean, j).max()
        assert changes[name]["block"] == (x, y, 32, 12)
        assert (changes[name]["var"] >= 0).all()
    # By hand for the mouth block: every channel is (cell brightness + 1.5)
    # summed over its cells / 576; unit-normalise, difference, mean.
    regions = [region_cells(x, y, 32, 12) for _, x, y in oa.BLOCKS] + FAR_REGIONS

    def features(imgs):
        cells = imgs.astype(np.float64).reshape(-1, 24, 4, 24, 4, 3).mean(axis=(2, 4, 5))
        out = np.zeros((len(imgs), len(regions)))
        for j, (r0, r1, c0, c1) in enumerate(regions):
            out[:, j] = (cells[:, r0:r1, c0:c1] + 1.5).sum(axis=(1, 2)) / 576
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    occluded = images.copy()
    occluded[:, 68:80, 30:62, :] = -1.0
    expected = np.abs(features(images) - features(occluded)).mean(axis=0)
    np.testing.assert_allclose(changes["mouth"]["mean"], expected, rtol=1e-4)


def test_block_overlap_with_peak_locations(tmp_path, forward):
    """With identity landmarks, each channel's average peak lies in its block."""
    rng = np.random.default_rng(1)
    images = rng.uniform(0.2, 1.0, (8, 96, 96, 3)).astype(np.float32)
    maps = forward(images)["feature_map"].numpy()
    frame = np.array([[0.0, 96.0, 96.0, 0.0], [0.0, 0.0, 96.0, 96.0]])
    res = pl.average_peak_locations(pl.peaks_from_chunks([maps]),
                                    np.stack([frame] * 8), np.array([[0, 1, 2], [0, 2, 3]]))
    loc = pl.filter_locations(res)
    changes = oa.synthetic_block_change(forward, images)
    overlap = oa.block_filter_overlap(changes, loc, top_k=1, margin=0.0)
    for j, (name, _, _) in enumerate(oa.BLOCKS):
        assert overlap[name]["top_dims"] == [j]
        assert overlap[name]["inside_top_fraction"] == 1.0
        assert overlap[name]["top_mean_distance"] < overlap[name]["all_mean_distance"]
        assert 0 < overlap[name]["inside_all_fraction"] < 1
    path = oa.plot_occlusion_changes(changes, str(tmp_path / "blocks.png"),
                                     (images[0] * 127.5 + 127.5).astype(np.uint8), loc,
                                     top_k=1)
    assert os.path.getsize(path) > 10000


def test_ar_names_and_pairs(tmp_path, shared_dir):
    assert oa.parse_ar_name("m-001-8.bmp") == ("m", 1, 8)
    assert oa.parse_ar_name("/x/W-059-13.BMP") == ("w", 59, 13)
    assert oa.parse_ar_name("m-001-8.jpg") is None
    with open(os.path.join(shared_dir, "interp_fr_aux", "ar_occl_list.txt")) as f:
        listed = [line.strip() for line in f if line.strip()]
    conds = {oa.parse_ar_name(n)[2] for n in listed}
    assert conds == set(oa.AR_GROUPS["eyeglasses"][:3] + oa.AR_GROUPS["scarf"][:3])
    for name in ["m-001-1.bmp", "m-001-8.bmp", "m-001-11.bmp", "m-001-14.bmp",
                 "m-001-21.bmp", "w-001-9.bmp", "w-001-1.bmp", "m-002-12.bmp",
                 "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    pairs = oa.ar_pairs(str(tmp_path))
    names = {g: [(os.path.basename(a), os.path.basename(b)) for a, b in pairs[g]]
             for g in oa.AR_GROUPS}
    assert names["eyeglasses"] == [("m-001-1.bmp", "m-001-8.bmp"),
                                   ("m-001-14.bmp", "m-001-21.bmp"),
                                   ("w-001-1.bmp", "w-001-9.bmp")]
    assert names["scarf"] == [("m-001-1.bmp", "m-001-11.bmp")]
    assert [os.path.basename(p) for p in pairs["unpaired"]] == ["m-002-12.bmp"]


def test_load_face_checks_size(tmp_path):
    Image.new("RGB", (100, 96)).save(tmp_path / "m-001-1.bmp")
    with pytest.raises(ValueError, match="96x96"):
        oa.load_face(str(tmp_path / "m-001-1.bmp"))
    Image.new("L", (96, 96), 7).save(tmp_path / "m-001-8.bmp")
    assert oa.load_face(str(tmp_path / "m-001-8.bmp")).shape == (96, 96, 3)


def test_natural_occlusion_on_rendered_ar_folder(tmp_path, forward):
    # Six people: with fewer, one long nose under the scarf can outweigh the
    # mouth in the mean (the channels are unit-normalised together).
    written = oa.write_synthetic_ar_folder(str(tmp_path), num_people=6)
    assert len(written) == 42 and all(oa.parse_ar_name(n) for n in written)
    # Same identity, pose and noise: only the occluder differs.
    neutral = oa.load_face(str(tmp_path / written[0])).astype(int)
    glasses = oa.load_face(str(tmp_path / written[1])).astype(int)
    changed = np.nonzero(np.abs(neutral - glasses).sum(axis=-1))
    assert 25 <= changed[0].min() and changed[0].max() <= 60
    res = oa.natural_feature_change(forward, str(tmp_path))
    assert res["eyeglasses"]["pairs"] == res["scarf"]["pairs"] == 18
    assert res["unpaired"] == 0
    # Sunglasses move the two eye channels most, the scarf the mouth channel.
    assert set(np.argsort(-res["eyeglasses"]["mean"])[:2]) == {1, 5}
    assert int(np.argmax(res["scarf"]["mean"])) == 2


def test_occlusion_hook_on_tiny_world(tmp_path, world, forward):
    png = tmp_path / "occl.png"
    res = oa.occlusion_figure_for_model(forward, world, str(png), num_images=8,
                                        ar_people=2)
    assert png.stat().st_size > 20000
    assert set(res["blocks"]) == {b[0] for b in oa.BLOCKS}
    assert res["natural"]["eyeglasses"]["pairs"] == 6
    assert res["num_images"] == 8
    for name, _, _ in oa.BLOCKS:
        assert len(res["blocks"][name]["top_dims"]) == 8   # all 8 dimensions


