"""A folder of the user's photos in the original formats (issue 17, part 3; not in the original).

The original code reads faces that its authors aligned beforehand: 110 x 110
CASIA-WebFace crops (``CASIA_all_images_110_110.dat`` + file list), 96 x 96
IJB-A crops, and per-image landmark files (``landmarks68.mat``,
``landmarks68_IJBA.mat``: 68 iBUG points plus 8 frame points, 2 x 76 each).
`import_photos` makes the same files from ordinary photos:

1. detection: dlib's HOG face detector (upsampling once); of several faces
   the one with the highest detector score;
2. landmarks: dlib's 68-point iBUG shape predictor (the model file that the
   ``face_recognition_models`` package ships; the iBUG 68 layout is the one
   the original's landmark files use);
3. alignment: the similarity transform (rotation, uniform scale, shift; least
   squares over the 68 points, Umeyama) that maps the landmarks onto the
   frontal template (``landmark68_7`` layout, 96 px face frame; +7 px in the
   110 px CASIA layout), bilinear resampling;
4. files: both layouts for every photo, the landmark files with the template's
   8 frame points appended, the template and its Delaunay triangulation
   (``landmark68_7.mat``, ``tVM.mat``), so that training with synthetic
   occlusion, extraction, peak locations and the occlusion analysis run on
   them. The file list's yaw column is estimated from the landmarks
   (`estimate_yaw`).

Folder layout: one sub-folder per identity (the sub-folder names, sorted, are
subjects 0, 1, ...), or a flat folder (each photo its own subject). Photos
without a face, or unreadable, are skipped and listed with the reason.

dlib and the model file come with the optional extra ``photos``
(``pip install "interp-fr[photos]"``: ``dlib-bin`` wheels and
``face_recognition_models``); nothing is downloaded at run time.
"""
import dataclasses
import importlib.util
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from interp_fr.common.atomic_io import atomic_save_text
from interp_fr.common.errors import DataFileError, InputError
from interp_fr.data import dat_files, mat_files, synthetic_faces, synthetic_world

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
CASIA_OFFSET = mat_files.FRONTAL_TEMPLATE_SHIFT_110
EXTRA_HINT = 'reading photos needs the "photos" extra: pip install "interp-fr[photos]"'


class MissingExtraError(ImportError, InputError):
    """dlib or the landmark model file is not installed."""


def landmark_model_path():
    """Path of the 68-point model file of the installed ``face_recognition_models``.

    Found without importing the package (its ``__init__`` needs the removed
    ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"{EXTRA_HINT} (no face_recognition_models)")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "models", LANDMARK_MODEL)
        if os.path.isfile(path):
            return path
    raise MissingExtraError(f"{EXTRA_HINT} (face_recognition_models has no {LANDMARK_MODEL})")


class FaceFinder:
    """dlib's face detector and 68-point landmark model.

    Call: image uint8 [H, W, 3] -> (landmarks float64 [68, 2] (x, y), detector
    score), or None when no face is found.
    """

    def __init__(self, upsample=1):
        try:
            import dlib
        except ImportError:
            raise MissingExtraError(f"{EXTRA_HINT} (no dlib)") from None
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(landmark_model_path())
        self.upsample = int(upsample)

    def __call__(self, image):
        image = np.ascontiguousarray(image, np.uint8)
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        if not rects:
            return None
        best = int(np.argmax(scores))
        shape = self._predictor(image, rects[best])
        points = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        return points, float(scores[best])


def similarity_transform(src, dst):
    """The 2 x 3 matrix A of the least-squares similarity with dst ~ A [src; 1].

    Umeyama's closed form (rotation without reflection, one scale, a shift).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / (s ** 2).sum(1).mean()
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def align_face(image, landmarks, template, image_size, offset):
    """Warps a photo so its landmarks land on the template.

    Args:
      image: uint8 [H, W, 3].
      landmarks: [68, 2] in the photo.
      template: [2, 76] or [2, 68] frontal template (96 px face frame).
      image_size: 110 (CASIA layout) or 96 (IJB-A layout).
      offset: where the 96 px face frame sits (7 or 0).
    Returns: (uint8 [S, S, 3], the landmarks in it [68, 2]).
    """
    dst = np.asarray(template, np.float64)[:, :68].T + offset
    a = similarity_transform(landmarks, dst)
    # PIL maps output pixel centres to input positions: the inverse transform.
    inv = np.linalg.inv(np.vstack([a, [0.0, 0.0, 1.0]]))[:2]
    out = Image.fromarray(np.asarray(image, np.uint8)).transform(
        (image_size, image_size), Image.Transform.AFFINE, data=tuple(inv.reshape(-1)),
        resample=Image.Resampling.BILINEAR)
    moved = np.asarray(landmarks, np.float64) @ a[:, :2].T + a[:, 2]
    return np.asarray(out, np.uint8), moved


def estimate_yaw(landmarks):
    """Yaw in degrees from 68 landmarks (positive: the face turned to the image's right).

    The nose tip's horizontal offset from the midpoint of the two jaw ends,
    relative to half the jaw width, read as the sine of the yaw: a rough
    estimate for the file list's yaw column, not a pose estimator.
    """
    lm = np.asarray(landmarks, np.float64)
    left, right, nose = lm[0], lm[16], lm[30]
    half = max(np.linalg.norm(right - left) / 2.0, 1e-6)
    return float(np.degrees(np.arcsin(np.clip((nose[0] - (left[0] + right[0]) / 2.0)
                                               / half, -1.0, 1.0))))


def read_photo(path):
    """uint8 RGB [H, W, 3] of an image file; `DataFileError` naming it otherwise."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataFileError(path, f"not a readable image ({type(e).__name__})") from None


def list_photos(folder):
    """[(path, identity name)] of a photo folder, sorted (see the module docstring)."""
    if not os.path.isdir(folder):
        raise DataFileError(folder, "no such folder")
    entries = sorted(os.listdir(folder))
    subdirs = [e for e in entries if os.path.isdir(os.path.join(folder, e))]
    photos = []
    if subdirs:
        for sub in subdirs:
            for name in sorted(os.listdir(os.path.join(folder, sub))):
                if name.lower().endswith(PHOTO_SUFFIXES):
                    photos.append((os.path.join(folder, sub, name), sub))
    else:
        for name in entries:
            if name.lower().endswith(PHOTO_SUFFIXES):
                photos.append((os.path.join(folder, name), os.path.splitext(name)[0]))
    if not photos:
        raise DataFileError(folder, f"no photos ({', '.join(PHOTO_SUFFIXES)})")
    return photos


@dataclasses.dataclass
class ImportSummary:
    """What `import_photos` wrote and skipped."""
    out_dir: str
    imported: list      # [(photo path, subject id)]
    skipped: list       # [(photo path, reason)]
    subjects: list      # identity names, index = subject id


def import_photos(folder, out_dir, template=None, finder=None):
    """Writes the photos of ``folder`` in the original formats under ``out_dir``.

    Layout: ``DATA/`` (CASIA 110 px ``.dat`` + file list, IJB-A 96 px ``.dat``),
    ``aux/`` (``landmarks68.mat``, ``landmarks68_IJBA.mat``, ``landmark68_7.mat``,
    ``tVM.mat``), ``photos.txt`` (row -> photo, subject, detector score).

    Args:
      folder: photo folder (see the module docstring).
      out_dir: output folder (created).
      template: [2, 76] frontal template (e.g. the original's
        ``landmark68_7.mat`` via ``mat_files.read_frontal_template``); None:
        the project's (`synthetic_faces.frontal_template`, the layout of the
        synthetic world and the shipped reference models).
      finder: a `FaceFinder` (built here if None).
    Returns: `ImportSummary`. Raises `DataFileError` when no photo has a face.
    """
    template = synthetic_faces.frontal_template() if template is None else np.asarray(
        template, np.float64)
    finder = finder or FaceFinder()
    names, subjects = [], {}
    casia, ijba, lm110, lm96, yaws, imported, skipped, rows = ([] for _ in range(8))
    for path, identity in list_photos(folder):
        try:
            image = read_photo(path)
        except DataFileError as e:
            skipped.append((path, e.problem))
            continue
        found = finder(image)
        if found is None:
            skipped.append((path, "no face found"))
            continue
        points, score = found
        sid = subjects.setdefault(identity, len(subjects))
        big, big_lm = align_face(image, points, template, dat_files.CASIA_IMAGE_SIZE,
                                 CASIA_OFFSET)
        small, small_lm = align_face(image, points, template, dat_files.IJBA_IMAGE_SIZE,
                                     0.0)
        casia.append(big)
        ijba.append(small)
        lm110.append(np.concatenate([big_lm, synthetic_faces.frame_points(110)]).T)
        lm96.append(np.concatenate([small_lm, synthetic_faces.frame_points(96)]).T)
        yaws.append(estimate_yaw(points))
        names.append(f"{identity}/{os.path.basename(path)}")
        imported.append((path, sid))
        rows.append(f"{len(rows)}\t{path}\t{sid}\t{score:.3f}")
    if not imported:
        raise DataFileError(folder, "no face found in any photo ("
                            + "; ".join(f"{os.path.basename(p)}: {r}" for p, r in skipped[:5])
                            + ")")
    data = os.path.join(out_dir, synthetic_world.DATA_DIR)
    aux = os.path.join(out_dir, synthetic_world.AUX_DIR)
    os.makedirs(data, exist_ok=True)
    os.makedirs(aux, exist_ok=True)
    dat_files.write_dat_images(os.path.join(data, dat_files.CASIA_IMAGES_FILE),
                               np.stack(casia))
    dat_files.write_file_list(os.path.join(data, dat_files.CASIA_FILE_LIST),
                              dat_files.FileList(names, np.array([s for _, s in imported]),
                                                 np.array(yaws)))
    dat_files.write_dat_images(os.path.join(data, dat_files.IJBA_IMAGES_FILE),
                               np.stack(ijba))
    mat_files.write_landmarks(os.path.join(aux, synthetic_world.CASIA_LANDMARKS_FILE),
                              np.stack(lm110))
    mat_files.write_landmarks(os.path.join(aux, synthetic_world.IJBA_LANDMARKS_FILE),
                              np.stack(lm96))
    mat_files.write_frontal_template(
        os.path.join(aux, synthetic_world.FRONTAL_TEMPLATE_FILE), template)
    mat_files.write_triangulation(os.path.join(aux, synthetic_world.TRIANGULATION_FILE),
                                  synthetic_world.triangulate(template))
    atomic_save_text(os.path.join(out_dir, "photos.txt"),
                     "row\tphoto\tsubject\tdetector score\n" + "\n".join(rows) + "\n")
    order = sorted(subjects, key=subjects.get)
    return ImportSummary(out_dir, imported, skipped, order)
