"""A recogniser's figures on a synthetic world: the columns of the paper's table.

For one feature extractor (or the raw-pixel baseline) on a world written by
`interp_fr.data.synthetic_world`:

  (a) ``all``: the IJB-A-style protocol on every test image;
  (b) ``occluded``: the protocol's occluded subset (images whose visibility
      flags mark sunglasses or a scarf, CNN_single_*_subset.m);
  (c) ``synthetic_occlusion``: the protocol on synthetically occluded copies of
      every test image, made as the original gen_syn_occl.py makes them
      (`interp_fr.occlusion.occlude_dataset`, one rectangle per image mapped
      through the landmark triangulation) and written once into the world as
      ``DATA/IJBA_recrop_images_96_96_test_occl.dat``.

Each column gives TAR at FAR 0.01 and 0.001 (the original's operating point,
mean over splits) and rank-1 / rank-5 (mean over splits).
"""
import os

import numpy as np

from interp_fr import features as features_lib
from interp_fr import occlusion
from interp_fr.common.atomic_io import atomic_write
from interp_fr.data import dat_files, mat_files, synthetic_world
from interp_fr.eval import ijba, interp_common, pixel_baseline

COLUMNS = ("all", "occluded", "synthetic_occlusion")
METRICS = ("tar_at_far_0.01", "tar_at_far_0.001", "rank1", "rank5")
SYNTHETIC_OCCLUSION_FILE = "IJBA_recrop_images_96_96_test_occl.dat"
SYNTHETIC_OCCLUSION_SEED = 0


def synthetic_occlusion_images(world_dir, seed=SYNTHETIC_OCCLUSION_SEED,
                               landmark_offset=0.0):
    """The world's test images with one synthetic occlusion each (written once).

    Args:
        world_dir: a synthetic world, or real files in the same layout.
        seed: seed of the rectangles.
        landmark_offset: subtracted from the mapped points: 0 for the synthetic
            world's 96 px landmarks, 7 for the original's IJB-A landmarks
            (110 px space), as gen_syn_occl.py.

    Returns:
        `DatImages` of ``DATA/IJBA_recrop_images_96_96_test_occl.dat`` (other
        seeds and offsets get their own file name).
    """
    data = os.path.join(world_dir, synthetic_world.DATA_DIR)
    name = SYNTHETIC_OCCLUSION_FILE
    if (seed, landmark_offset) != (SYNTHETIC_OCCLUSION_SEED, 0.0):
        name = name.replace(".dat", f"_seed{seed}_offset{landmark_offset:g}.dat")
    path = os.path.join(data, name)
    if not os.path.isfile(path):
        test = dat_files.open_ijba_images(data)
        aux = os.path.join(world_dir, synthetic_world.AUX_DIR)
        landmarks = mat_files.read_landmarks(
            os.path.join(aux, synthetic_world.IJBA_LANDMARKS_FILE),
            expected_count=len(test))
        synth = occlusion.OcclusionSynthesizer.from_files(
            os.path.join(aux, synthetic_world.TRIANGULATION_FILE),
            os.path.join(aux, synthetic_world.FRONTAL_TEMPLATE_FILE))
        with atomic_write(path, "wb") as f:
            for _, batch in occlusion.occlude_dataset(test, landmarks, synth,
                                                      landmark_offset, seed):
                f.write(batch.tobytes())
    return dat_files.DatImages(path, dat_files.IJBA_IMAGE_SIZE)


def _splits(ijba_dir):
    """The split numbers present under ``verify/`` (a small world has fewer than 10)."""
    verify = os.path.join(ijba_dir, "verify")
    found = sorted(int(name[5:]) for name in os.listdir(verify)
                   if name.startswith("split") and name[5:].isdigit())
    return found or None


def _protocol_figures(feats, world_dir, subset):
    ijba_dir = os.path.join(world_dir, synthetic_world.IJBA_DIR)
    res = ijba.evaluate_ijba(feats, os.path.join(ijba_dir, "dataset.mat"), ijba_dir,
                             task="both", subset=subset, open_set=False,
                             splits=_splits(ijba_dir))
    v, s = res["verify"]["mean"], res["search"]["mean"]
    return {"tar_at_far_0.01": v["tar_at_far_0.01"], "tar_at_far_0.001": v["tar_at_far_0.001"],
            "rank1": s["rank1"], "rank5": s["rank5"]}


def figures_from_features(clean, occluded_copies, world_dir):
    """The three columns from per-image features.

    Args:
        clean: float [N, D] features of the world's test images.
        occluded_copies: float [N, D] features of their synthetic-occlusion copies.
        world_dir: the synthetic world.

    Returns:
        dict column -> dict metric -> float (``COLUMNS`` x ``METRICS``).
    """
    return {"all": _protocol_figures(clean, world_dir, "all"),
            "occluded": _protocol_figures(clean, world_dir, "occluded"),
            "synthetic_occlusion": _protocol_figures(occluded_copies, world_dir, "all")}


def recogniser_figures(forward, world_dir, batch_size=64, landmark_offset=0.0):
    """The three columns for a model.

    Args:
        forward: inference callable as `interp_fr.features.extract_features` takes
            (e.g. `interp_fr.features.keras_forward(model)`), or an `InterpFRNet`.
        world_dir: the synthetic world (or real files in its layout).
        landmark_offset: see `synthetic_occlusion_images`.

    Returns:
        dict column -> dict metric -> float.
    """
    forward = interp_common.make_forward(forward)
    test = dat_files.open_ijba_images(os.path.join(world_dir, synthetic_world.DATA_DIR))
    clean = features_lib.extract_features(forward, test, batch_size).features
    occl = features_lib.extract_features(
        forward, synthetic_occlusion_images(world_dir, landmark_offset=landmark_offset),
        batch_size).features
    return figures_from_features(clean, occl, world_dir)


def pixel_baseline_figures(world_dir, dims=pixel_baseline.DEFAULT_DIMS):
    """The three columns for the raw-pixel baseline (PCA fitted on the world's
    training images, their centre 96 px crops)."""
    data = os.path.join(world_dir, synthetic_world.DATA_DIR)
    train = dat_files.load_casia(data).images
    centre = mat_files.FRONTAL_TEMPLATE_SHIFT_110
    c = int(round(centre))
    crops = train.read_range(0, len(train))[:, c:c + 96, c:c + 96]
    test = dat_files.open_ijba_images(data)
    clean_px = test.read_range(0, len(test))
    occl = synthetic_occlusion_images(world_dir)
    occl_px = occl.read_range(0, len(occl))
    mean, axes = pixel_baseline.fit_pca(pixel_baseline.downsampled_pixels(crops), dims)

    def project(images):
        return (pixel_baseline.downsampled_pixels(images) - mean) @ axes
    return figures_from_features(project(clean_px), project(occl_px), world_dir)


def table_markdown(rows, digits=3):
    """A Markdown table: one row per model, COLUMNS x METRICS.

    Args:
        rows: list of (name, figures) where figures maps column -> metric -> a
            float or a (mean, std) pair.

    Returns:
        str.
    """
    heads = {"tar_at_far_0.01": "TAR@1e-2", "tar_at_far_0.001": "TAR@1e-3",
             "rank1": "rank-1", "rank5": "rank-5"}
    header = ["model"] + [f"{col} {heads[m]}" for col in COLUMNS for m in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(v):
        if isinstance(v, (tuple, list)):
            return f"{v[0]:.{digits}f} +- {v[1]:.{digits}f}"
        return f"{v:.{digits}f}"
    for name, figs in rows:
        lines.append("| " + " | ".join([name] + [cell(figs[c][m]) for c in COLUMNS
                                                 for m in METRICS]) + " |")
    return "\n".join(lines) + "\n"


def mean_std(figures_list):
    """Mean and std over runs: list of column -> metric -> float, to
    column -> metric -> (mean, std)."""
    return {c: {m: (float(np.mean([f[c][m] for f in figures_list])),
                    float(np.std([f[c][m] for f in figures_list])))
                for m in METRICS} for c in COLUMNS}
