"""Writes a complete small synthetic world in the original file formats and layout.

Layout under the output folder (the same names and formats as the originals, so
every command runs on it unchanged):

  DATA/CASIA_all_images_110_110.dat     training images, N x 110 x 110 x 3 uint8
  DATA/CASIA_recrop_fileList.dat        name, 0, subject id, yaw
  DATA/IJBA_recrop_images_96_96_test.dat  test images, M x 96 x 96 x 3 uint8
  aux/landmarks68.mat                   per-training-image 2 x 76 landmarks
  aux/landmarks68_IJBA.mat              per-test-image 2 x 76 landmarks
  aux/tVM.mat, aux/landmark68_7.mat     our triangulation and frontal template
  IJB-A/dataset.mat                     sightingID2idx, badImage, poorIndex
  IJB-A/IJBA_crop.mat                   croppedImages (one name per test image)
  IJB-A/verify/splitN/{verify_comparisons_N, verify_metadata_N, train_N}.mat
  IJB-A/search/splitN/{search_gallery_N, search_probe_N, train_N}.mat
  attributes/{casia,ijba}_attributes.npz  exact generative attributes per image
  world.json                            the configuration and counts

Training and test subjects are disjoint, as CASIA-WebFace and IJB-A are.
"""
import dataclasses
import json
import os

import numpy as np
import scipy.spatial

from interp_fr.common.atomic_io import atomic_save_text, atomic_write
from interp_fr.data import (dat_files, ijba_protocol, mat_files, synthetic_faces,
                            synthetic_protocol)

DATA_DIR, AUX_DIR, IJBA_DIR, ATTR_DIR = "DATA", "aux", "IJB-A", "attributes"
CASIA_LANDMARKS_FILE = "landmarks68.mat"
IJBA_LANDMARKS_FILE = "landmarks68_IJBA.mat"
TRIANGULATION_FILE = "tVM.mat"
FRONTAL_TEMPLATE_FILE = "landmark68_7.mat"


@dataclasses.dataclass
class WorldConfig:
    """Size and randomness of the synthetic world (defaults: the main job's;
    BUILD_NOTES.md, "Synthetic world" says why)."""
    # Hundreds of training identities, as generalising to unseen ones needs;
    # sunglasses and scarves on some training images, as CASIA-WebFace has.
    train_subjects: int = 300
    train_images_per_subject: int = 16
    test_subjects: int = 100
    test_images_min: int = 6
    test_images_max: int = 12
    num_splits: int = 10
    train_occlusion_rate: float = 0.1
    test_occlusion_rate: float = 0.25
    max_yaw: float = 35.0
    # Impostor template pairs per genuine pair in each verification split.
    # The original's TAR@FAR=t takes the first ROC point nearest FAR=t, so a
    # split needs well over 1/t impostor pairs for FAR=0.001 to mean anything
    # (about 5,000 here).
    impostor_ratio: int = 20
    seed: int = 0


def triangulate(template):
    """Delaunay triangulation of a [2, 76] template: int [T, 3] ascending triples."""
    tri = scipy.spatial.Delaunay(np.asarray(template, np.float64).T).simplices
    return np.sort(tri, axis=1)


def _identities(rng_key, count):
    return [synthetic_faces.sample_identity(np.random.default_rng((*rng_key, i)))
            for i in range(count)]


def world_identities(world_dir, split):
    """The `Identity` objects of a written world's ``"train"`` or ``"test"``
    subjects, in subject order (redrawn from the seed its ``world.json`` records)."""
    with open(os.path.join(world_dir, "world.json"), encoding="utf-8") as f:
        config = json.load(f)["config"]
    if split == "train":
        return _identities((config["seed"], 1), config["train_subjects"])
    if split == "test":
        return _identities((config["seed"], 4), config["test_subjects"])
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _save_attributes(path, attrs, subjects):
    with atomic_write(path, "wb") as f:
        np.savez(f, subject=subjects, **attrs)


def build_world(out_dir, config=WorldConfig(), progress=None):
    """Generates the world into ``out_dir``; returns a summary dict.

    Args:
        out_dir: output folder (created).
        config: `WorldConfig`.
        progress: optional callable(str) for status lines.
    """
    say = progress or (lambda _: None)
    c = config
    for sub in (DATA_DIR, AUX_DIR, IJBA_DIR, ATTR_DIR):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    aux = os.path.join(out_dir, AUX_DIR)

    template = synthetic_faces.frontal_template()
    mat_files.write_frontal_template(os.path.join(aux, FRONTAL_TEMPLATE_FILE), template)
    mat_files.write_triangulation(os.path.join(aux, TRIANGULATION_FILE),
                                  triangulate(template))

    # Training set (CASIA layout, 110 px, face frame at +7 like the original).
    say(f"rendering {c.train_subjects * c.train_images_per_subject} training images")
    train_ids = _identities((c.seed, 1), c.train_subjects)
    train_subject = np.repeat(np.arange(c.train_subjects), c.train_images_per_subject)
    images, landmarks, attrs = synthetic_faces.render_faces(
        train_ids, train_subject, dat_files.CASIA_IMAGE_SIZE,
        mat_files.FRONTAL_TEMPLATE_SHIFT_110, seed=(c.seed, 2),
        max_yaw=c.max_yaw, occlusion_rate=c.train_occlusion_rate)
    data = os.path.join(out_dir, DATA_DIR)
    dat_files.write_dat_images(os.path.join(data, dat_files.CASIA_IMAGES_FILE), images)
    names = [f"{s:07d}/{i:03d}.jpg" for i, s in
             zip(np.arange(len(train_subject)) % c.train_images_per_subject,
                 train_subject)]
    dat_files.write_file_list(os.path.join(data, dat_files.CASIA_FILE_LIST),
                              dat_files.FileList(names, train_subject, attrs["yaw"]))
    mat_files.write_landmarks(os.path.join(aux, CASIA_LANDMARKS_FILE), landmarks)
    _save_attributes(os.path.join(out_dir, ATTR_DIR, "casia_attributes.npz"), attrs,
                     train_subject)

    # Test set (IJB-A layout, 96 px face crops).
    rng = np.random.default_rng((c.seed, 3))
    counts = rng.integers(c.test_images_min, c.test_images_max + 1, c.test_subjects)
    test_subject = np.repeat(np.arange(c.test_subjects), counts)
    say(f"rendering {len(test_subject)} test images")
    test_ids = _identities((c.seed, 4), c.test_subjects)
    t_images, t_landmarks, t_attrs = synthetic_faces.render_faces(
        test_ids, test_subject, dat_files.IJBA_IMAGE_SIZE, 0.0, seed=(c.seed, 5),
        max_yaw=c.max_yaw, occlusion_rate=c.test_occlusion_rate)
    dat_files.write_dat_images(os.path.join(data, dat_files.IJBA_IMAGES_FILE), t_images)
    mat_files.write_landmarks(os.path.join(aux, IJBA_LANDMARKS_FILE), t_landmarks)
    _save_attributes(os.path.join(out_dir, ATTR_DIR, "ijba_attributes.npz"), t_attrs,
                     test_subject)

    summary = _write_ijba_protocol(os.path.join(out_dir, IJBA_DIR), c, test_subject,
                                   t_landmarks, t_attrs, rng)
    summary.update(train_images=len(train_subject), test_images=len(test_subject),
                   config=dataclasses.asdict(c))
    atomic_save_text(os.path.join(out_dir, "world.json"),
                     json.dumps(summary, indent=2, sort_keys=True))
    say("synthetic world written to " + out_dir)
    return summary


def _write_ijba_protocol(ijba_dir, c, test_subject, landmarks, attrs, rng):
    n = len(test_subject)
    # Sighting ids are sparse and shuffled, as in IJB-A, so that an evaluation
    # that confuses sighting ids with rows fails loudly.
    sighting = rng.choice(np.arange(2, 8 * n + 2), size=n, replace=False)
    occl = attrs["occluder"].astype(int)
    visibility = np.ones((n, 3))
    visibility[occl == synthetic_faces.OCCLUDER_SUNGLASSES, 1] = 0
    visibility[occl == synthetic_faces.OCCLUDER_SCARF, 2] = 0
    info = synthetic_protocol.TestImageInfo(
        subject=test_subject + 1000, sighting=sighting,
        media=np.arange(n) // 2 + 10000, landmarks=landmarks, yaw=attrs["yaw"],
        visibility=visibility, indoor=rng.integers(0, 2, n),
        gender=attrs["gender"], skin_tone=attrs["skin_tone"], age=attrs["age"],
        facial_hair=attrs["facial_hair"])
    sighting2idx = np.zeros(sighting.max(), np.int64)
    sighting2idx[sighting - 1] = np.arange(1, n + 1)
    ijba_protocol.write_dataset_mat(os.path.join(ijba_dir, "dataset.mat"), sighting2idx,
                                    badImage=np.zeros(n), poorIndex=np.zeros(n))
    cropped = np.empty((n, 1), dtype=object)
    for i in range(n):
        cropped[i, 0] = f"img/{sighting[i]}.jpg"
    mat_files.save_mat(os.path.join(ijba_dir, "IJBA_crop.mat"),
                       {"croppedImages": cropped})

    splits = synthetic_protocol.build_splits(info, c.num_splits, seed=c.seed,
                                            impostor_ratio=c.impostor_ratio)
    num_pairs = []
    for k, split in enumerate(splits, start=1):
        ijba_protocol.write_split(ijba_dir, k, **split)
        num_pairs.append(len(split["comparison"]))
    return {"verify_comparisons_per_split": num_pairs}
