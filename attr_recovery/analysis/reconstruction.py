"""The original's ``lfw_recon.py`` workflow as library functions.

Sub-tasks (run in this order by `run_lfw_recon`, each also callable alone):

1. ``recon_dir``: decode every image of a folder tree (identity sub-folders in
   LFW) into a mirrored tree: image -> R -> transformer -> decoder -> image.
2. ``features``: the representations of all images of the tree, a d x N matrix
   (the original's orientation, 512 x 13233 for LFW), saved with the image
   paths in column order.
3. ``eigen``: mean feature, scatter matrix of the centred features, its
   eigenvectors sorted by eigenvalue, descending (the original leaves
   ``torch.eig``'s order); the top K decoded alone (``<i>.jpg``) and added to
   the mean (``plus_<i>.jpg``).
4. ``noise``: decode random unit vectors (standard normal / norm, uniform on
   the sphere), ``<i>/<i>.jpg`` as the original.

Images are read as RGB and scaled to [-1, 1] (x / 127.5 - 1, the original's
ToTensor + Normalize(0.5, 0.5)); outputs are 8-bit RGB (x + 1) / 2 * 255,
clipped. Files are visited in sorted order (the original uses ``os.listdir``
order, which is arbitrary), so column i of the feature matrix is stable.
"""
import collections
import os

import numpy as np
from PIL import Image

from attr_recovery.conversion.convert_checkpoint import load_converted
from attr_recovery.nets.decoder import FeatureDecoder, load_trained_decoder, to_uint8
from attr_recovery.readers.recognition import as_recognition_model, load_recognition_model
from interp_fr.common.atomic_io import atomic_write
from interp_fr.data.image_scaling import to_unit_range

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TASKS = ("recon_dir", "features", "eigen", "noise")
JPEG_QUALITY = 95

EigenFeatures = collections.namedtuple("EigenFeatures", ["mean", "values", "vectors"])
EigenFeatures.__doc__ = """mean [d]; values [d] descending; vectors [d, d], column i
belongs to values[i] (unit length, largest-magnitude entry positive)."""


def list_images(root, extensions=IMAGE_EXTENSIONS):
    """Relative paths of the image files under ``root`` (any depth), sorted.

    The original takes ``*.jpg`` files one level below ``root``; any depth and
    the listed extensions (case-insensitive) are accepted here.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    exts = tuple(e.lower() for e in extensions)
    out = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            if name.lower().endswith(exts):
                out.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(out)


def load_image(path):
    """An image file as float32 [H, W, 3] in [-1, 1] (RGB)."""
    with Image.open(path) as img:
        return to_unit_range(np.asarray(img.convert("RGB")))


def save_image(path, image):
    """Writes float [H, W, 3] (about [-1, 1]) or uint8 as an 8-bit RGB file, atomically.

    The format follows the extension (JPEG quality 95, PNG lossless).
    """
    arr = np.asarray(image)
    arr = arr if arr.dtype == np.uint8 else to_uint8(arr[None])[0]
    ext = os.path.splitext(path)[1].lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(ext)
    if fmt is None:
        raise ValueError(f"{path}: unsupported output extension {ext!r}")
    kwargs = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    with atomic_write(path, "wb") as f:
        Image.fromarray(arr, "RGB").save(f, format=fmt, **kwargs)


def image_batches(root, rel_paths, batch_size):
    """Yields (first position, relative paths, float images [b, H, W, 3]).

    Consecutive images of equal size share a batch (a size change starts a new
    one), so trees of mixed sizes work and the usual single-size tree is batched.
    """
    batch, paths, start = [], [], 0
    for pos, rel in enumerate(rel_paths):
        img = load_image(os.path.join(root, rel))
        if batch and (len(batch) == batch_size or img.shape != batch[0].shape):
            yield start, paths, np.stack(batch)
            batch, paths = [], []
        if not batch:
            start = pos
        batch.append(img)
        paths.append(rel)
    if batch:
        yield start, paths, np.stack(batch)


def _check_dims(decoder, recognition):
    if decoder.feature_dim != recognition.feature_dim:
        raise ValueError(f"the decoder takes {decoder.feature_dim}-d representations but "
                         f"the recognition model gives {recognition.feature_dim}-d")


def decode_folder_tree(decoder, recognition, read_folder, write_folder, batch_size=16,
                       seed=0, noise_mode="random", progress=None):
    """Sub-task 1: every image of ``read_folder`` decoded to the same path in ``write_folder``.

    Args:
      decoder: `FeatureDecoder`; recognition: anything ``as_recognition_model`` takes.
      seed: per-image noise seed (image id = position in the sorted list);
        None: fresh random noise as the original.
      progress: optional callable(done, total).
    Returns: number of images written. Output size: the decoder's resolution.
    """
    rec = as_recognition_model(recognition)
    _check_dims(decoder, rec)
    paths = list_images(read_folder)
    done = 0
    for start, rels, images in image_batches(read_folder, paths, batch_size):
        z = rec.features(images, batch_size)
        out = to_uint8(decoder.decode(z, seed=seed, noise_mode=noise_mode,
                                      image_ids=np.arange(start, start + len(rels))))
        for rel, img in zip(rels, out):
            save_image(os.path.join(write_folder, rel), img)
        done += len(rels)
        if progress:
            progress(done, len(paths))
    return done


def extract_features(recognition, read_folder, batch_size=16, progress=None):
    """Sub-task 2: (features float32 [d, N], relative paths [N]) of every image, sorted order."""
    rec = as_recognition_model(recognition)
    paths = list_images(read_folder)
    cols = []
    for _, rels, images in image_batches(read_folder, paths, batch_size):
        cols.append(rec.features(images, batch_size))
        if progress:
            progress(sum(len(c) for c in cols), len(paths))
    feats = (np.concatenate(cols) if cols else np.zeros((0, rec.feature_dim), np.float32))
    return np.ascontiguousarray(feats.T), paths


def save_features(path, features, paths):
    """Writes ``features`` [d, N] and ``paths`` [N] to an ``.npz`` file, atomically."""
    with atomic_write(path, "wb") as f:
        np.savez(f, features=np.asarray(features, np.float32),
                 paths=np.asarray(paths, dtype=str))


def load_features(path):
    """(features [d, N], paths list) from `save_features`."""
    with np.load(path) as data:
        return data["features"], [str(p) for p in data["paths"]]


def eigen_features(features):
    """Sub-task 3, the analysis: eigen-decomposition of the feature scatter matrix.

    Args:
      features: [d, N] (one representation per column).
    Returns: `EigenFeatures`; scatter = (F - mean)(F - mean)^T (not divided by
      N, as the original), computed in float64. Each eigenvector's sign is
      fixed (largest-magnitude entry positive) so results are reproducible.
    """
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[1] < 1:
        raise ValueError(f"features must be [d, N] with N >= 1, got {f.shape}")
    mean = f.mean(axis=1)
    centred = f - mean[:, None]
    scatter = centred @ centred.T
    values, vectors = np.linalg.eigh(scatter)
    order = np.argsort(values, kind="stable")[::-1]
    values, vectors = values[order], vectors[:, order]
    lead = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])]
    vectors = vectors * np.where(lead < 0, -1.0, 1.0)[None]
    return EigenFeatures(mean.astype(np.float32), values, vectors.astype(np.float32))


def decode_eigen_features(decoder, eig, num, folder, seed=0, ext="jpg",
                          noise_mode="random", batch_size=16):
    """Sub-task 3, the images: ``<i>.<ext>`` = decode(v_i), ``plus_<i>.<ext>`` = decode(v_i + mean).

    The vectors are decoded as they are (not renormalised), like the original.
    Returns the list of files written.
    """
    num = min(int(num), eig.vectors.shape[1])
    vecs = eig.vectors[:, :num].T
    written = []
    for name, z in (("{}", vecs), ("plus_{}", vecs + eig.mean[None])):
        images = to_uint8(decoder.decode_batched(z, batch_size, seed=seed,
                                                 noise_mode=noise_mode))
        for i, img in enumerate(images):
            path = os.path.join(folder, f"{name.format(i)}.{ext}")
            save_image(path, img)
            written.append(path)
    return written


def random_unit_vectors(num, dim, seed=0):
    """[num, dim] float32 standard normal samples divided by their norms."""
    v = np.random.default_rng((int(seed), 0x5A3)).standard_normal((int(num), int(dim)))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def decode_random_unit_vectors(decoder, num, folder, seed=0, ext="jpg",
                               noise_mode="random", batch_size=16, progress=None):
    """Sub-task 4: ``<i>/<i>.<ext>`` for ``num`` random unit representations.

    Returns the number of images written.
    """
    z = random_unit_vectors(num, decoder.feature_dim, seed)
    for start in range(0, len(z), batch_size):
        chunk = z[start:start + batch_size]
        images = to_uint8(decoder.decode(chunk, seed=seed, noise_mode=noise_mode,
                                         image_ids=np.arange(start, start + len(chunk))))
        for i, img in enumerate(images, start=start):
            save_image(os.path.join(folder, str(i), f"{i}.{ext}"), img)
        if progress:
            progress(start + len(chunk), len(z))
    return len(z)


def load_models(decoder_dir=None, generator_weights=None, encoder_weights=None,
                mean_latent=None, recognition=None, recognition_variant="full"):
    """The decoder and recognition model for the workflow.

    Either ``decoder_dir`` (a folder of ``attr-recovery-train``; its recorded
    recognition spec is used unless ``recognition`` is given), or converted
    released weights: ``generator_weights`` + ``encoder_weights`` (+
    ``mean_latent`` .npy unless stored in the encoder) and ``recognition``.

    Returns: (`FeatureDecoder`, ``RecognitionModel``).
    """
    if decoder_dir:
        decoder, desc, _ = load_trained_decoder(decoder_dir)
        spec = recognition or desc.get("recognition")
        variant = recognition_variant if recognition else desc.get(
            "recognition_variant", recognition_variant)
        if not spec:
            raise ValueError(f"{decoder_dir} was trained with a recognition model given "
                             "in code; name one (e.g. interp_fr:DIR)")
    else:
        if not (generator_weights and encoder_weights):
            raise ValueError("give a trained decoder folder, or converted generator "
                             "and IDD encoder weights")
        kind_g, generator = load_converted(generator_weights)
        kind_e, encoder = load_converted(encoder_weights)
        if (kind_g, kind_e) != ("generator", "idd_encoder"):
            raise ValueError(f"expected a converted generator and idd_encoder, got "
                             f"{kind_g!r} and {kind_e!r}")
        decoder = FeatureDecoder.from_converted(
            generator, encoder, None if mean_latent is None else np.load(mean_latent))
        spec, variant = recognition, recognition_variant
        if not spec:
            raise ValueError("converted weights need a recognition model spec")
    rec = load_recognition_model(spec, variant) if isinstance(spec, str) else \
        as_recognition_model(spec)
    _check_dims(decoder, rec)
    return decoder, rec


def run_lfw_recon(decoder, recognition, tasks=TASKS, read_folder=None, write_folder=None,
                  feat_path=None, num_eigen=50, eigen_folder=None, noise_folder=None,
                  num_noise=13233, batch_size=16, seed=0, noise_mode="random",
                  ext="jpg", log=print):
    """Runs the chosen sub-tasks in the original's order; returns a summary dict.

    ``eigen`` uses the features of this run's ``features`` task, or reads
    ``feat_path`` when that task is not chosen.
    """
    tasks = list(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {TASKS}")
    summary = {}
    features = None
    if "recon_dir" in tasks:
        log(f"reconstruct from dir {read_folder} -> {write_folder}")
        summary["recon_dir"] = decode_folder_tree(decoder, recognition, read_folder,
                                                  write_folder, batch_size, seed,
                                                  noise_mode)
    if "features" in tasks:
        log(f"features extraction -> {feat_path}")
        features, paths = extract_features(recognition, read_folder, batch_size)
        save_features(feat_path, features, paths)
        summary["features"] = list(features.shape)
    if "eigen" in tasks:
        if features is None:
            features, _ = load_features(feat_path)
        log(f"eigen features -> {eigen_folder}")
        eig = eigen_features(features)
        summary["eigen"] = len(decode_eigen_features(decoder, eig, num_eigen, eigen_folder,
                                                     seed, ext, noise_mode, batch_size))
        summary["eigenvalues"] = [float(v) for v in eig.values[:num_eigen]]
    if "noise" in tasks:
        log(f"sample from noise -> {noise_folder}")
        summary["noise"] = decode_random_unit_vectors(decoder, num_noise, noise_folder,
                                                      seed, ext, noise_mode, batch_size)
    return summary
