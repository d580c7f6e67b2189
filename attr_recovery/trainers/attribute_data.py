"""Labelled face images for training and evaluating the attribute estimators.

Not in the original code. A `LabelledImages` is a view of rows of a raw
``.dat`` image file (read lazily with positioned reads, never whole), cropped
to the 96 px face frame, with per-image targets (NaN = missing label),
optional 68-point landmarks and subject ids. Builders:

- `world_split`: a synthetic world's CASIA-format training set or IJB-A-format
  test set with its exact generative attributes (``attributes/*.npz``) and
  exact landmarks (``aux/landmarks68*.mat``);
- `casia_file_list_set`: a CASIA-format folder whose only label is the file
  list's yaw column (+ landmarks when ``landmarks68.mat`` is given);
- `ijba_metadata_set`: IJB-A-format test images labelled from the protocol
  metadata (faceYaw, gender, skinTone, age, facialHair, indoor, visibility),
  rows found through ``dataset.mat``'s ``sightingID2idx``;
- `rendered_set`: extra faces drawn in memory by the synthetic world's
  renderer with new identities (e.g. occluded faces, which the default
  world's training set lacks).

`CombinedImages` concatenates sets for training (labels a set lacks are NaN).

The 96 px frame: IJB-A-format crops are that frame; the CASIA-format 110 px
images hold it at offset 7 (``mat_files.FRONTAL_TEMPLATE_SHIFT_110``), the
centre crop the rest of the project uses. Landmarks are returned in pixels of
the frame.
"""
import dataclasses
import glob
import os

import numpy as np

from attr_recovery.nets.attributes import derived_synthetic_targets
from interp_fr.data import (dat_files, ijba_protocol, mat_files, synthetic_faces,
                            synthetic_world)

FRAME_SIZE = 96
CASIA_FRAME_OFFSET = 7
TEST_SUBJECT_OFFSET = 1000


@dataclasses.dataclass
class LabelledImages:
    """Rows of an image file with their labels.

    Attributes:
      images: a ``dat_files.DatImages`` (anything with ``read(indices)`` ->
        uint8 [K, S, S, 3] and ``image_size``).
      rows: int64 [N] rows of ``images`` in this set.
      offset: top-left corner of the 96 px face frame in the stored images.
      targets: dict name -> float64 [N], NaN where a label is missing.
      landmarks: float64 [N, 68, 2] pixels of the frame, or None.
      subjects: int64 [N] subject ids (-1 unknown).
      name: shown in reports.
    """
    images: object
    rows: np.ndarray
    offset: int
    targets: dict
    landmarks: np.ndarray = None
    subjects: np.ndarray = None
    name: str = "images"

    def __post_init__(self):
        self.rows = np.asarray(self.rows, np.int64)
        n = len(self.rows)
        if self.subjects is None:
            self.subjects = np.full(n, -1, np.int64)
        self.subjects = np.asarray(self.subjects, np.int64)
        self.targets = {k: np.asarray(v, np.float64) for k, v in self.targets.items()}
        for key, value in self.targets.items():
            if value.shape != (n,):
                raise ValueError(f"{self.name}: target {key!r} has shape {value.shape}; "
                                 f"expected ({n},)")
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, np.float64)
            if self.landmarks.shape != (n, 68, 2):
                raise ValueError(f"{self.name}: landmarks {self.landmarks.shape}, "
                                 f"expected ({n}, 68, 2)")
        if self.offset + FRAME_SIZE > self.images.image_size:
            raise ValueError(f"{self.name}: a 96 px frame at offset {self.offset} does "
                             f"not fit {self.images.image_size} px images")

    def __len__(self):
        return len(self.rows)

    def read(self, positions):
        """uint8 [K, 96, 96, 3]: the face frames of set positions ``positions``."""
        positions = np.asarray(positions, np.int64).reshape(-1)
        o = self.offset
        return self.images.read(self.rows[positions])[:, o:o + FRAME_SIZE,
                                                      o:o + FRAME_SIZE]

    def evenly_spaced(self, count):
        """At most ``count`` of the images, evenly spaced over the set (the set
        itself when it holds no more)."""
        if len(self) <= count:
            return self
        return self.subset(np.linspace(0, len(self) - 1, count).round().astype(int))

    def subset(self, positions, name=None):
        """A new set holding the given positions (in that order)."""
        positions = np.asarray(positions, np.int64).reshape(-1)
        return LabelledImages(
            self.images, self.rows[positions], self.offset,
            {k: v[positions] for k, v in self.targets.items()},
            None if self.landmarks is None else self.landmarks[positions],
            self.subjects[positions], name or self.name)


def _landmarks_in_frame(path, count, offset):
    lm = mat_files.read_landmarks(path, expected_count=count)   # [N, 2, 76]
    return lm[:, :, :68].transpose(0, 2, 1) - float(offset)


def world_split(world_dir, split):
    """A synthetic world's ``'train'`` (CASIA-format) or ``'test'`` (IJB-A) images.

    Targets are the exact generative attributes plus the derived ones of
    `attributes.derived_synthetic_targets`; landmarks are the exact drawn ones.
    """
    data = os.path.join(world_dir, synthetic_world.DATA_DIR)
    aux = os.path.join(world_dir, synthetic_world.AUX_DIR)
    if split == "train":
        images = dat_files.load_casia(data).images
        offset, attr_file = CASIA_FRAME_OFFSET, "casia_attributes.npz"
        lm_file = synthetic_world.CASIA_LANDMARKS_FILE
    elif split == "test":
        images = dat_files.open_ijba_images(data)
        offset, attr_file = 0, "ijba_attributes.npz"
        lm_file = synthetic_world.IJBA_LANDMARKS_FILE
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    with np.load(os.path.join(world_dir, synthetic_world.ATTR_DIR, attr_file)) as f:
        attrs = {k: f[k] for k in f.files}
    # Test subjects get the protocol's ids (+1000, as the synthetic IJB-A
    # metadata writes them), so training and test ids never coincide.
    subjects = attrs.pop("subject") + (TEST_SUBJECT_OFFSET if split == "test" else 0)
    if len(subjects) != len(images):
        raise ValueError(f"{attr_file}: {len(subjects)} rows for {len(images)} images")
    return LabelledImages(images, np.arange(len(images)), offset,
                          derived_synthetic_targets(attrs),
                          _landmarks_in_frame(os.path.join(aux, lm_file), len(images),
                                              offset),
                          subjects, name=f"world {split}")


def casia_file_list_set(data_dir, landmarks_path=None):
    """CASIA-format images labelled with the file list's yaw (and landmarks if given)."""
    casia = dat_files.load_casia(data_dir)
    n = len(casia.images)
    lm = (None if landmarks_path is None else
          _landmarks_in_frame(landmarks_path, n, CASIA_FRAME_OFFSET))
    return LabelledImages(casia.images, np.arange(n), CASIA_FRAME_OFFSET,
                          {"yaw": casia.file_list.yaws}, lm,
                          casia.file_list.subject_ids, name="CASIA file list")


def _metadata_files(protocol_dir):
    pattern = os.path.join(protocol_dir, "*", "split*", "*.mat")
    return sorted(p for p in glob.glob(pattern)
                  if "comparisons" not in os.path.basename(p))


def ijba_metadata_set(data_dir, protocol_dir, dataset_mat=None, landmarks_path=None):
    """IJB-A-format test images labelled from the protocol metadata.

    Every metadata file of every split (``verify_metadata``, ``train``,
    ``search_gallery``, ``search_probe``) is read; a sighting's labels are the
    same wherever it appears, and the first finite value wins. Images no file
    mentions keep NaN labels.

    Args:
      data_dir: folder (or file) of ``IJBA_recrop_images_96_96_test.dat``.
      protocol_dir: the ``IJB-A`` folder holding ``verify/`` and ``search/``.
      dataset_mat: ``dataset.mat`` (default: ``protocol_dir/dataset.mat``).
      landmarks_path: optional ``landmarks68_IJBA.mat``.
    Returns: `LabelledImages` with targets yaw, gender, skin_tone, age,
      facial_hair, indoor, forehead_visible, eyes_visible, nose_mouth_visible.
    """
    images = dat_files.open_ijba_images(data_dir)
    n = len(images)
    dataset = ijba_protocol.read_dataset_mat(
        dataset_mat or os.path.join(protocol_dir, "dataset.mat"))
    columns = {"yaw": ("faceYaw", None), "gender": ("gender", None),
               "skin_tone": ("skinTone", None), "age": ("age", None),
               "facial_hair": ("facialHair", None), "indoor": ("indoor", None),
               "forehead_visible": ("visibility", 0),
               "eyes_visible": ("visibility", 1),
               "nose_mouth_visible": ("visibility", 2)}
    targets = {k: np.full(n, np.nan) for k in columns}
    subjects = np.full(n, -1, np.int64)
    files = _metadata_files(protocol_dir)
    if not files:
        raise FileNotFoundError(f"{protocol_dir}: no IJB-A metadata files "
                                "(*/splitN/*.mat)")
    for path in files:
        table = ijba_protocol.read_metadata(path, filenames=False)
        rows = dataset.image_rows(table.sightingID, source=path, n_images=n)
        subjects[rows] = table.subjectID
        for key, (var, col) in columns.items():
            values = getattr(table, var)
            values = values if col is None else values[:, col]
            fill = np.isnan(targets[key][rows]) & np.isfinite(values)
            targets[key][rows[fill]] = values[fill]
    lm = None if landmarks_path is None else _landmarks_in_frame(landmarks_path, n, 0)
    return LabelledImages(images, np.arange(n), 0, targets, lm, subjects,
                          name="IJB-A metadata")


class ArrayImages:
    """In-memory uint8 images [N, S, S, 3] with the ``DatImages`` read interface."""

    def __init__(self, images):
        self.array = np.asarray(images, np.uint8)
        self.image_size = int(self.array.shape[1])

    def __len__(self):
        return len(self.array)

    def read(self, indices):
        """uint8 [K, S, S, 3] copies of the given rows."""
        return self.array[np.asarray(indices, np.int64).reshape(-1)]


def rendered_set(count, seed=0, occlusion_rate=0.5, max_yaw=35.0, images_per_subject=4):
    """``count`` faces rendered in memory at 96 px with their exact labels.

    Identities are drawn from seeds that the world builder does not use, so
    they are new subjects (ids from 1,000,000 on). Useful to teach heads whose
    classes the training set lacks (the default world's training images carry
    no occluders).
    """
    per = max(1, int(images_per_subject))
    n_subjects = -(-int(count) // per)
    ids = [synthetic_faces.sample_identity(np.random.default_rng((int(seed), 0xEE, i)))
           for i in range(n_subjects)]
    subject = np.repeat(np.arange(n_subjects), per)[:int(count)]
    images, landmarks, attrs = synthetic_faces.render_faces(
        ids, subject, FRAME_SIZE, 0.0, seed=(int(seed), 0xEF), max_yaw=max_yaw,
        occlusion_rate=occlusion_rate)
    return LabelledImages(ArrayImages(images), np.arange(len(images)), 0,
                          derived_synthetic_targets(attrs),
                          landmarks[:, :, :68].transpose(0, 2, 1),
                          subject + 1_000_000, name="rendered")


class CombinedImages:
    """Several `LabelledImages` seen as one (same interface for training).

    Targets are the union of the sets' targets (NaN where a set lacks one);
    landmarks are NaN for sets without them.
    """

    def __init__(self, sets, name="combined"):
        self.sets = list(sets)
        if not self.sets:
            raise ValueError("no image sets to combine")
        self.name = name
        self.starts = np.cumsum([0] + [len(s) for s in self.sets])
        keys = sorted({k for s in self.sets for k in s.targets})
        self.targets = {k: np.concatenate([s.targets.get(k, np.full(len(s), np.nan))
                                           for s in self.sets]) for k in keys}
        self.landmarks = np.concatenate([
            s.landmarks if s.landmarks is not None else np.full((len(s), 68, 2), np.nan)
            for s in self.sets])
        self.subjects = np.concatenate([s.subjects for s in self.sets])

    def __len__(self):
        return int(self.starts[-1])

    def read(self, positions):
        """uint8 [K, 96, 96, 3] for combined positions, in the given order."""
        positions = np.asarray(positions, np.int64).reshape(-1)
        which = np.searchsorted(self.starts, positions, side="right") - 1
        out = np.empty((len(positions), FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
        for k in np.unique(which):
            sel = np.nonzero(which == k)[0]
            out[sel] = self.sets[k].read(positions[sel] - self.starts[k])
        return out


def split_by_subject(labelled, held_out_fraction=0.3, seed=0):
    """(train, held_out): disjoint subjects; images of unknown subject go to train."""
    subjects = np.unique(labelled.subjects[labelled.subjects >= 0])
    rng = np.random.default_rng((int(seed), 0x5B1))
    held = rng.permutation(subjects)[:max(1, int(round(held_out_fraction *
                                                       len(subjects))))]
    mask = np.isin(labelled.subjects, held)
    return (labelled.subset(np.nonzero(~mask)[0], labelled.name + " (train)"),
            labelled.subset(np.nonzero(mask)[0], labelled.name + " (held out)"))
