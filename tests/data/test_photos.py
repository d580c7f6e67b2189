"""Photos to the original formats: dlib finds the landmarks of a real photograph
where a person measured them, the aligned files load through our readers, and
photos without a face or unreadable are skipped with the reason."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from interp_fr.data import dat_files, mat_files, photos, synthetic_faces
from tests.conftest import REPO_ROOT

# Measured by hand on skimage's astronaut.png (512 x 512, Eileen Collins, public
# domain) on a 16 px grid: centres of the eyes, the nose tip, the mouth.
HAND = {"left eye": (204, 101), "right eye": (246, 103), "nose tip": (224, 126),
        "mouth": (224, 146)}
HAND_TOLERANCE = 6.0   # px in a 512 px photo where the eyes are 42 px apart


@pytest.fixture(scope="module")
def astronaut():
    import skimage.data
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def finder():
    return photos.FaceFinder()


def _parts(lm):
    return {"left eye": lm[36:42].mean(0), "right eye": lm[42:48].mean(0),
            "nose tip": lm[30], "mouth": lm[48:68].mean(0)}


def test_landmarks_land_where_a_person_put_them(astronaut, finder):
    lm, score = finder(astronaut)
    assert lm.shape == (68, 2) and score > 0.5
    for name, where in _parts(lm).items():
        assert np.linalg.norm(where - np.array(HAND[name])) < HAND_TOLERANCE, name
    # A frontal portrait: the yaw estimate is small.
    assert abs(photos.estimate_yaw(lm)) < 10


def test_similarity_transform_closed_form():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (68, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a = photos.similarity_transform(src, src @ (scale * rot).T + shift)
    np.testing.assert_allclose(a, np.hstack([scale * rot, shift[:, None]]), atol=1e-9)


def test_import_writes_readable_files_and_skips_bad_photos(astronaut, finder, tmp_path):
    folder = tmp_path / "photos"
    (folder / "collins").mkdir(parents=True)
    (folder / "nobody").mkdir()
    Image.fromarray(astronaut).save(folder / "collins" / "a.png")
    Image.fromarray(astronaut[:, ::-1]).save(folder / "collins" / "b_mirrored.jpg")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(folder / "nobody" / "grey.png")
    (folder / "nobody" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    out = tmp_path / "out"
    summary = photos.import_photos(str(folder), str(out), finder=finder)
    assert [s for _, s in summary.imported] == [0, 0] and summary.subjects == ["collins"]
    reasons = {p.split("/")[-1]: r for p, r in summary.skipped}
    assert reasons == {"grey.png": "no face found",
                       "broken.jpg": "not a readable image (UnidentifiedImageError)"}
    casia = dat_files.load_casia(str(out / "DATA"))
    assert len(casia.images) == 2 and list(casia.file_list.subject_ids) == [0, 0]
    assert casia.file_list.names[0] == "collins/a.png"
    test = dat_files.open_ijba_images(str(out / "DATA"))
    assert len(test) == 2
    lm110 = mat_files.read_landmarks(str(out / "aux" / "landmarks68.mat"), expected_count=2)
    lm96 = mat_files.read_landmarks(str(out / "aux" / "landmarks68_IJBA.mat"),
                                    expected_count=2)
    template = synthetic_faces.frontal_template()
    for lm, offset in ((lm110, 7.0), (lm96, 0.0)):
        lm = np.asarray(lm)
        assert lm.shape == (2, 2, 76)
        # Aligned: the eye centres sit on the template's (least squares over 68
        # points, so within a few pixels), and the frame points are the layout's.
        for i in range(2):
            eyes = lm[i][:, 36:48].T.reshape(2, 6, 2).mean(1)
            want = template[:, 36:48].T.reshape(2, 6, 2).mean(1) + offset
            assert np.abs(eyes - want).max() < 4.0
    assert mat_files.read_triangulation(str(out / "aux" / "tVM.mat")).shape[1] == 3


def test_command_fails_cleanly_without_faces(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "black.png")
    proc = subprocess.run([sys.executable, "-m", "data.import_photos", "--photos",
                           str(folder), "--out", str(tmp_path / "o")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "no face found in any photo (black.png: no face found)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_imported_photos_train_with_synthetic_occlusion_and_extract(astronaut, finder,
                                                                     tmp_path):
    """The written folder is what the trainer (full model: synthetic occlusion from
    the landmark, template and triangulation files) and extraction read."""
    import os

    from interp_fr import features, training
    folder = tmp_path / "photos"
    for person, image in (("a", astronaut), ("b", astronaut[:, ::-1])):
        (folder / person).mkdir(parents=True)
        for k, shift in enumerate((0, 6)):
            Image.fromarray(np.roll(image, shift, axis=1)).save(folder / person / f"{k}.png")
    out = tmp_path / "out"
    photos.import_photos(str(folder), str(out), finder=finder)
    config = training.TrainConfig(
        data_dir=str(out / "DATA"), aux_dir=str(out / "aux"),
        checkpoint_dir=str(tmp_path / "ckpt"), dataset="PHOTOS", batch_size=2,
        df_dim=4, gfc_dim=16, dfc_dim=16, max_steps=2, progress=False,
        tensorboard=False, variant="full")
    logs = []
    trainer = training.Trainer(config, log=logs.append)
    trainer.fit()
    assert trainer.casia.file_list.subject_ids.tolist() == [0, 0, 1, 1]
    line = [x for x in logs if x.startswith("Epoch:")][-1]
    assert np.isfinite(float(line.split("d_loss: ")[1].split()[0]))
    assert "o_loss" in line           # the occlusion branch ran
    test = dat_files.open_ijba_images(str(out / "DATA"))
    extracted = features.extract_features(features.keras_forward(trainer.model), test)
    assert extracted.features.shape == (4, 16) and np.isfinite(extracted.features).all()
    assert os.path.isfile(out / "aux" / "landmark68_7.mat")
