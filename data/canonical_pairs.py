"""Image / canonical-portrait pairs of fresh synthetic identities (not in the original code).

A decoder that reads a face representation can only show what the
representation determines: the identity, not the pose, expression, light or
occluder of the image it came from (a recogniser is trained to ignore those).
Trained to reproduce the input image itself, it averages over them and paints
blurred blobs. These pairs give it a target that the representation does
determine: each training image (the world's nuisance distribution) comes with
the canonical portrait of its identity (`synthetic_faces.canonical_params`).
BUILD_NOTES.md, "Legible decoding" says why and what it changes.

The identities are drawn from their own random stream ((world seed, 10)), so
they are neither the world's training subjects nor its test subjects.
"""
import os

import numpy as np

from interp_fr.data import dat_files, mat_files, synthetic_faces

INPUT_DIR, TARGET_DIR = "inputs", "targets"
IDENTITY_STREAM = 10


def build_canonical_pairs(out_dir, num_identities, images_per_identity=2, seed=0,
                          max_yaw=35.0, occlusion_rate=0.1):
    """Writes ``<out_dir>/inputs`` and ``<out_dir>/targets``, two CASIA-format folders.

    Row i of both holds one image of identity ``i // images_per_identity``:
    in ``inputs`` with pose, expression, light, background and occluders drawn
    as in the world's training set, in ``targets`` its canonical portrait.

    Args:
      out_dir: output folder (created).
      num_identities: fresh identities.
      images_per_identity: input images per identity.
      seed: the world seed whose identity distribution is used.
      max_yaw, occlusion_rate: as ``WorldConfig``'s training set.
    Returns: (inputs folder, targets folder).
    """
    identities = [synthetic_faces.sample_identity(
        np.random.default_rng((seed, IDENTITY_STREAM, i))) for i in range(num_identities)]
    subject = np.repeat(np.arange(num_identities), images_per_identity)
    size, offset = dat_files.CASIA_IMAGE_SIZE, mat_files.FRONTAL_TEMPLATE_SHIFT_110
    images, _, attrs = synthetic_faces.render_faces(
        identities, subject, size, offset, seed=(seed, IDENTITY_STREAM + 1),
        max_yaw=max_yaw, occlusion_rate=occlusion_rate)
    portraits = synthetic_faces.render_canonical(identities, size, offset)
    names = [f"{s:07d}/{i % images_per_identity:03d}.jpg" for i, s in enumerate(subject)]
    folders = []
    for sub, pictures, yaws in ((INPUT_DIR, images, attrs["yaw"]),
                                (TARGET_DIR, portraits[subject], np.zeros(len(subject)))):
        folder = os.path.join(out_dir, sub)
        os.makedirs(folder, exist_ok=True)
        dat_files.write_dat_images(os.path.join(folder, dat_files.CASIA_IMAGES_FILE),
                                   pictures)
        dat_files.write_file_list(os.path.join(folder, dat_files.CASIA_FILE_LIST),
                                  dat_files.FileList(names, subject, yaws))
        folders.append(folder)
    return tuple(folders)
