"""Loading the inputs of the stage-2 command lines from text specs (not in the original code).

- decoders: a folder written by ``attr-recovery-train`` (stage 1's
  ``decoder.load_trained_decoder``) or ``ridge:FILE.npz`` (`RidgeDecoder`);
- images: ``FILE.dat:ROW`` (a row of an IJB-A-format 96 px ``.dat``; a
  CASIA-format 110 px file gives its centre 96 px frame) or an image file
  (PNG / JPEG, resized to 96 px; it should show the face frame as the
  IJB-A crops do);
- reference sets: a synthetic world's held-out test images (with exact
  attributes and subjects) or every image of a ``.dat`` file.
"""
import os

import numpy as np
from PIL import Image

from attr_recovery.trainers import attribute_data
from attr_recovery.readers import face_geometry
from attr_recovery.nets.baseline_decoder import RidgeDecoder
from interp_fr.data import dat_files


def load_decoder(spec):
    """A decoder from ``ridge:FILE.npz`` or a stage-1 trainer folder."""
    spec = str(spec)
    if spec.startswith("ridge:"):
        return RidgeDecoder.load(spec[len("ridge:"):])
    if os.path.isdir(spec):
        from attr_recovery.nets.decoder import load_trained_decoder
        return load_trained_decoder(spec)[0]
    raise ValueError(f"decoder spec must be a trainer folder or ridge:FILE.npz, got {spec!r}")


def _dat_images(path):
    size = None
    nbytes = os.path.getsize(path)
    for s in (dat_files.IJBA_IMAGE_SIZE, dat_files.CASIA_IMAGE_SIZE):
        if nbytes % (s * s * 3) == 0:
            size = s
            break
    if size is None:
        raise ValueError(f"{path}: size is not a whole number of 96 or 110 px images")
    return dat_files.DatImages(path, size)


def _frame(images):
    if images.shape[1] == attribute_data.FRAME_SIZE:
        return images
    o = (images.shape[1] - attribute_data.FRAME_SIZE) // 2
    return images[:, o:o + attribute_data.FRAME_SIZE, o:o + attribute_data.FRAME_SIZE]


def load_image(spec):
    """uint8 [96, 96, 3] from ``FILE.dat:ROW`` or an image file."""
    spec = str(spec)
    path, sep, row = spec.rpartition(":")
    if sep and path.lower().endswith(".dat") and row.isdigit():
        return _frame(_dat_images(path).read([int(row)]))[0]
    with Image.open(spec) as im:
        im = im.convert("RGB")
        if im.size != (attribute_data.FRAME_SIZE, attribute_data.FRAME_SIZE):
            im = im.resize((attribute_data.FRAME_SIZE, attribute_data.FRAME_SIZE),
                           Image.BILINEAR)
        return np.asarray(im, np.uint8)


def load_reference(world_dir=None, images=None, max_images=None):
    """Reference faces for the significance measures.

    Returns: (uint8 [N, 96, 96, 3], subjects [N] or None, truth dict or None).
    A world gives its held-out test images, subjects and exact attributes
    (plus the descriptors of the exact landmarks).
    """
    if world_dir:
        held = attribute_data.world_split(world_dir, "test")
        if max_images:
            held = held.evenly_spaced(max_images)
        truth = dict(held.targets)
        truth.update(face_geometry.landmark_attributes(held.landmarks))
        return held.read(np.arange(len(held))), held.subjects, truth
    if not images:
        raise ValueError("give a world folder or an images .dat file")
    dat = _dat_images(images)
    rows = np.arange(len(dat))
    if max_images and len(rows) > max_images:
        rows = np.linspace(0, len(dat) - 1, max_images).round().astype(int)
    return _frame(dat.read(rows)), None, None


def define_model_flags(flags):
    """The flags naming R, its decoder and the estimators (shared by the stage-2 commands)."""
    flags.DEFINE_string("recognition", None, "Recognition model spec: interp_fr:DIR, "
                        "arcface:FILE.weights.h5 or keras:FILE.keras.")
    flags.DEFINE_string("recognition_variant", "full", "InterpFRNet variant (interp_fr:).")
    flags.DEFINE_string("decoder", None, "Decoder: an attr-recovery-train folder or "
                        "ridge:FILE.npz.")
    flags.DEFINE_string("estimators", None,
                        "Folder written by attr-recovery-train-estimators.")


def load_models(flag_values):
    """(recognition model, decoder, attribute reader) named by `define_model_flags`."""
    # Imported here: only the command lines need the model loaders.
    from attr_recovery.trainers.estimator_training import load_reader
    from attr_recovery.readers.recognition import load_recognition_model
    rec = load_recognition_model(flag_values.recognition, flag_values.recognition_variant)
    return rec, load_decoder(flag_values.decoder), load_reader(flag_values.estimators)
