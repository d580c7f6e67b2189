"""Feature change under occlusion (the original's test_feat_diff_* methods of
model_pretrain_CASIA.py).

* Synthetic blocks: each of six 32 x 12 blocks (forehead, left eye, mouth,
  nose, right cheek, right eye) is set to -1 in every image (rows y..y+11,
  columns x..x+31 of the 96x96 face in [-1, 1]); the change of a feature
  dimension is the mean over images of |f - f_occluded| with both features
  divided by their L2 norm. The original also stores the variance (np.var).
* Natural (AR face): each occluded image (sunglasses: AR conditions 8-10 and
  21-23; scarf: 11-13 and 24-26) is paired with the neutral image (condition 1,
  or 14 in the second session) of the same person; the change is the mean of
  |f_neutral - f_occluded| over the pairs of a group.
* Block to filter: the dimensions a block changes most are compared with the
  filters' average peak locations (`eval.peak_locations`): where are the most
  changed dimensions' filters on the face, and do they fall in the block?
* Verification on occluded faces (the occluded subset and synthetically
  occluded copies): `interp_fr.eval.recognition_report`.

Design notes and deviations: BUILD_NOTES.md, "Interpretability analyses".
"""
import os
import re
import tempfile

import numpy as np
from PIL import Image

from interp_fr.common import plotting
from interp_fr.data.image_scaling import to_unit_range
from interp_fr.eval import interp_common

FACE_SIZE = interp_common.FACE_SIZE
BLOCK_WIDTH, BLOCK_HEIGHT = 32, 12
# (name, x = first column, y = first row), 0-based, as the original's loop
# ``face[0, y:y + 12, x:x + 32, :] = -1``.
BLOCKS = (("forehead", 10, 10), ("l_eye", 15, 35), ("mouth", 30, 68),
          ("nose", 30, 55), ("r_cheek", 55, 55), ("r_eye", 55, 35))
DEFAULT_TOP_K = 16

# AR face conditions (Martinez & Benavente): 1 neutral, 8 sunglasses, 9 / 10
# sunglasses with left / right light, 11 scarf, 12 / 13 scarf with left / right
# light; 14-26 repeat 1-13 in the second session.
AR_NEUTRAL = {1: 1, 2: 14}                      # session -> condition
AR_GROUPS = {"eyeglasses": (8, 9, 10, 21, 22, 23),
             "scarf": (11, 12, 13, 24, 25, 26)}
AR_NAME = re.compile(r"^([mw])-(\d+)-(\d+)\.(bmp|png)$", re.IGNORECASE)


# ------------------------------------------------------------------ features


def unit_normalize(features):
    """Rows divided by their L2 norm, as the original's ``f /= norm(f)``
    (an all-zero feature gives NaN there and here)."""
    f = np.asarray(features, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return f / np.linalg.norm(f, axis=1, keepdims=True)


def occlude_block(images, x, y, width=BLOCK_WIDTH, height=BLOCK_HEIGHT):
    """A copy of float images [N, 96, 96, 3] in [-1, 1] with the block set to -1."""
    out = np.array(images, np.float32, copy=True)
    out[:, y:y + height, x:x + width, :] = -1.0
    return out


def synthetic_block_change(forward, images, blocks=BLOCKS, batch_size=64):
    """Mean and variance over images of |f - f_occluded| per block.

    Args:
        forward: see `interp_common.make_forward`.
        images: uint8 or float [N, 96, 96, 3].
        blocks: (name, x, y) triples.

    Returns:
        dict name -> {"mean": [D], "var": [D], "block": (x, y, w, h)}.
    """
    imgs = np.asarray(images)
    if imgs.dtype == np.uint8:
        imgs = to_unit_range(imgs)
    clean = unit_normalize(interp_common.run_forward(forward, imgs, batch_size))
    out = {}
    for name, x, y in blocks:
        occl = unit_normalize(interp_common.run_forward(
            forward, occlude_block(imgs, x, y), batch_size))
        diff = np.abs(clean - occl)
        out[name] = {"mean": diff.mean(axis=0), "var": diff.var(axis=0),
                     "block": (x, y, BLOCK_WIDTH, BLOCK_HEIGHT)}
    return out


# ------------------------------------------------------------------- AR face


def parse_ar_name(name):
    """``m-001-8.bmp`` -> ("m", 1, 8); None for names not in the AR pattern."""
    m = AR_NAME.match(os.path.basename(name))
    if not m:
        return None
    return m.group(1).lower(), int(m.group(2)), int(m.group(3))


def ar_pairs(folder):
    """Neutral / occluded pairs of an AR-named folder.

    Returns:
        dict group -> list of (neutral path, occluded path), sorted by person
        and condition; plus key "unpaired" -> occluded paths without a neutral
        image of the same person.
    """
    people = {}
    for entry in sorted(os.listdir(folder)):
        parsed = parse_ar_name(entry)
        if parsed:
            sex, number, cond = parsed
            people.setdefault((sex, number), {})[cond] = os.path.join(folder, entry)
    out = {g: [] for g in AR_GROUPS}
    out["unpaired"] = []
    for person in sorted(people):
        conds = people[person]
        for group, members in AR_GROUPS.items():
            for cond in members:
                if cond not in conds:
                    continue
                session = 1 if cond <= 13 else 2
                neutral = conds.get(AR_NEUTRAL[session]) or conds.get(
                    AR_NEUTRAL[3 - session])
                if neutral is None:
                    out["unpaired"].append(conds[cond])
                else:
                    out[group].append((neutral, conds[cond]))
    return out


def load_face(path):
    """An aligned 96x96 face image file -> uint8 [96, 96, 3]."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    if arr.shape[:2] != (FACE_SIZE, FACE_SIZE):
        raise ValueError(f"{path}: {arr.shape[1]}x{arr.shape[0]} image; the analysis "
                         f"takes aligned {FACE_SIZE}x{FACE_SIZE} face crops (the "
                         "original reshapes each file to 96x96x3)")
    return arr


def natural_feature_change(forward, folder, batch_size=64):
    """Mean |f_neutral - f_occluded| of unit features per AR group.

    Returns:
        dict group -> {"mean": [D], "var": [D], "pairs": count}; "unpaired"
        -> count of occluded images without a neutral partner.
    """
    pairs = ar_pairs(folder)
    paths = sorted({p for g in AR_GROUPS for pair in pairs[g] for p in pair})
    if not paths:
        raise ValueError(f"{folder}: no AR-named neutral/occluded pairs "
                         "(e.g. m-001-1.bmp with m-001-8.bmp)")
    index = {p: i for i, p in enumerate(paths)}
    feats = unit_normalize(interp_common.run_forward(
        forward, np.stack([load_face(p) for p in paths]), batch_size))
    out = {"unpaired": len(pairs["unpaired"])}
    for group in AR_GROUPS:
        if not pairs[group]:
            continue
        a = feats[[index[n] for n, _ in pairs[group]]]
        b = feats[[index[o] for _, o in pairs[group]]]
        diff = np.abs(a - b)
        out[group] = {"mean": diff.mean(axis=0), "var": diff.var(axis=0),
                      "pairs": len(pairs[group])}
    return out


def write_synthetic_ar_folder(out_dir, num_people=6, seed=0, max_yaw=10.0):
    """Renders an AR-named folder with the synthetic face model (for tests and
    the main job): per person the neutral image (condition 1), sunglasses
    (8, 9, 10) and scarf (11, 12, 13), all with the same identity, pose,
    lighting and noise, so that only the occluder differs.

    Returns:
        the list of file names written.
    """
    from interp_fr.data import synthetic_faces as sf
    os.makedirs(out_dir, exist_ok=True)
    counters = {"m": 0, "w": 0}
    written = []
    occluders = {1: sf.OCCLUDER_NONE, 8: sf.OCCLUDER_SUNGLASSES,
                 9: sf.OCCLUDER_SUNGLASSES, 10: sf.OCCLUDER_SUNGLASSES,
                 11: sf.OCCLUDER_SCARF, 12: sf.OCCLUDER_SCARF, 13: sf.OCCLUDER_SCARF}
    for person in range(num_people):
        rng = np.random.default_rng((seed, person))
        identity = sf.sample_identity(rng)
        params = sf.sample_image_params(rng, max_yaw=max_yaw)
        sex = "m" if identity.gender == 1 else "w"
        counters[sex] += 1
        for cond, occluder in occluders.items():
            params.occluder = occluder
            # The same noise draw for every condition of a person.
            img, _ = sf.render_face(identity, params, FACE_SIZE, 0.0,
                                    np.random.default_rng((seed, person, 99)))
            name = f"{sex}-{counters[sex]:03d}-{cond}.bmp"
            Image.fromarray(img).save(os.path.join(out_dir, name))
            written.append(name)
    return written


# --------------------------------------------------------- blocks vs. filters


def block_filter_overlap(changes, locations, top_k=DEFAULT_TOP_K, margin=4.0):
    """Relates each block's most changed dimensions to the filters' locations.

    Args:
        changes: `synthetic_block_change` output.
        locations: float [D, 2] (y, x) average location of each dimension's
            filter (`peak_locations.filter_locations`), in the 1-based pixel
            coordinates of average_location.m; NaN rows are filters never
            located.
        top_k: how many of the most changed dimensions.
        margin: pixels added around the block when testing "inside" (one map
            cell is 4 px).

    Returns:
        dict name -> {"top_dims", "top_changes", "inside_top_fraction",
        "inside_all_fraction", "top_mean_distance", "all_mean_distance"}:
        fractions of located filters whose average location lies in the block
        (1-based pixels x+1..x+w, y+1..y+h, widened by ``margin``), for the top
        dimensions and for all; mean distances of those locations from the
        block centre.
    """
    loc = np.asarray(locations, np.float64)
    ok = np.isfinite(loc).all(axis=1)
    out = {}
    for name, res in changes.items():
        x, y, w, h = res["block"]
        mean = np.asarray(res["mean"], np.float64)
        order = np.argsort(-np.nan_to_num(mean, nan=-np.inf), kind="stable")
        top = order[:top_k]
        cy, cx = y + (h + 1) / 2.0, x + (w + 1) / 2.0
        with np.errstate(invalid="ignore"):
            inside = ((loc[:, 1] >= x + 1 - margin) & (loc[:, 1] <= x + w + margin)
                      & (loc[:, 0] >= y + 1 - margin) & (loc[:, 0] <= y + h + margin))
        dist = np.hypot(loc[:, 0] - cy, loc[:, 1] - cx)
        top_ok = top[ok[top]]
        out[name] = {
            "top_dims": top.tolist(), "top_changes": mean[top].tolist(),
            "inside_top_fraction": float(inside[top_ok].mean()) if len(top_ok) else
            float("nan"),
            "inside_all_fraction": float(inside[ok].mean()) if ok.any() else float("nan"),
            "top_mean_distance": float(dist[top_ok].mean()) if len(top_ok) else
            float("nan"),
            "all_mean_distance": float(dist[ok].mean()) if ok.any() else float("nan"),
        }
    return out


def plot_occlusion_changes(changes, out_png, background=None, locations=None,
                           natural=None, natural_examples=None, top_k=DEFAULT_TOP_K):
    """The block / group to dimension figure.

    One row per block (and per natural group): left, the frontal face with the
    block drawn (a natural group's example inset) and the average peak
    locations of the ``top_k`` most changed dimensions' filters (all located
    filters as small grey dots); right, the mean change of every dimension, the
    top ones in red.

    Args:
        changes: `synthetic_block_change` output.
        out_png: output path.
        background: uint8 [96, 96, 3] face for the block rows.
        locations: float [D, 2] (y, x) per dimension, or None.
        natural: `natural_feature_change` output, or None.
        natural_examples: dict group -> uint8 [96, 96, 3] example occluded face.

    Returns:
        out_png.
    """
    plt = plotting.pyplot()
    from matplotlib.patches import Rectangle
    rows = [(name, res, res.get("block")) for name, res in changes.items()]
    for group in AR_GROUPS:
        if natural and group in natural:
            rows.append((f"AR {group}", natural[group], None))
    fig, axes = plt.subplots(len(rows), 2, figsize=(9, 1.9 * len(rows) + 0.4),
                             squeeze=False, gridspec_kw={"width_ratios": [1, 3.2]})
    for r, (name, res, block) in enumerate(rows):
        mean = np.asarray(res["mean"], np.float64)
        order = np.argsort(-np.nan_to_num(mean, nan=-np.inf), kind="stable")
        top = order[:top_k]
        ax = axes[r, 0]
        # Every row shows the frontal face, on which the locations live; a
        # natural group's example occluded face is inset in its corner.
        if background is not None:
            ax.imshow(background)
        example = (natural_examples or {}).get(name.split(" ", 1)[-1]) \
            if block is None else None
        if example is not None:
            inset = ax.inset_axes([0.0, 0.64, 0.36, 0.36])
            inset.imshow(example)
            inset.set_xticks([])
            inset.set_yticks([])
        ax.set_xlim(-0.5, FACE_SIZE - 0.5)
        ax.set_ylim(FACE_SIZE - 0.5, -0.5)
        if block is not None:
            x, y, w, h = block
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="yellow",
                                   lw=1.2))
        if locations is not None:
            loc = np.asarray(locations, np.float64)
            ok = np.isfinite(loc).all(axis=1)
            ax.scatter(loc[ok, 1] - 1, loc[ok, 0] - 1, s=3, c="0.7", edgecolors="none")
            t = top[ok[top]]
            ax.scatter(loc[t, 1] - 1, loc[t, 0] - 1, s=12, c="red", edgecolors="white",
                       linewidths=0.3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, fontsize=8)
        ax = axes[r, 1]
        colours = np.full(len(mean), "0.55", dtype=object)
        colours[top] = "red"
        ax.bar(np.arange(len(mean)), mean, width=1.0, color=list(colours))
        ax.set_xlim(-0.5, len(mean) - 0.5)
        ax.tick_params(labelsize=6)
        if r == len(rows) - 1:
            ax.set_xlabel("feature dimension (= filter)", fontsize=8)
        ax.set_ylabel("mean |f - f_o|", fontsize=7)
    fig.suptitle(f"feature change under occlusion (top {top_k} dimensions red; "
                 "their filters' average peak locations on the left)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return plotting.save_figure(fig, out_png)


# ------------------------------------------------------------------ main job


def _clean_rows(paths, count):
    """Indices of up to ``count`` world test images without an occluder."""
    if os.path.isfile(paths.ijba_attributes):
        occl = np.load(paths.ijba_attributes)["occluder"]
        return np.nonzero(occl == 0)[0][:count]
    return None


def occlusion_figure_for_model(model, world_dir, out_png, num_images=64,
                               locations=None, top_k=DEFAULT_TOP_K, ar_people=6,
                               ar_folder=None, batch_size=64):
    """Main-job hook: synthetic blocks and natural (synthetic AR) occlusion for
    ``model`` on a synthetic world, with the block / filter-location overlap.

    Args:
        model: an `InterpFRNet` or forward callable.
        world_dir: a synthetic world.
        out_png: the figure.
        num_images: non-occluded IJB-A images used for the blocks.
        locations: [D, 2] (y, x) filter locations; computed with
            `peak_locations` on the world's IJB-A set when None.
        ar_folder: a folder of real aligned AR faces (AR names); None renders
            ``ar_people`` synthetic people into a temporary folder.

    Returns:
        dict: ``figures`` [out_png]; ``blocks`` (per block: top dimensions, the
        overlap figures of `block_filter_overlap`); ``natural`` (per group: top
        dimensions, pairs, mean y of the top dimensions' filter locations).
    """
    from interp_fr.data import dat_files
    from interp_fr.eval import peak_locations as pl
    paths = interp_common.WorldPaths(world_dir)
    forward = interp_common.make_forward(model)
    dat = dat_files.DatImages(paths.ijba_images, FACE_SIZE)
    rows = _clean_rows(paths, num_images)
    images = dat.read(rows) if rows is not None else dat.read_range(0, num_images)
    if locations is None:
        landmarks, triangles = pl.load_side_files(paths.ijba_landmarks,
                                                  paths.triangulation)
        res = pl.average_peak_locations(pl.peaks_from_model(forward, dat, batch_size=
                                                            batch_size),
                                        landmarks, triangles)
        locations = pl.filter_locations(res)
    changes = synthetic_block_change(forward, images, batch_size=batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = ar_folder
        if folder is None:
            folder = tmp
            write_synthetic_ar_folder(folder, ar_people)
        natural = natural_feature_change(forward, folder, batch_size)
        pairs = ar_pairs(folder)
        examples = {g: load_face(pairs[g][0][1]) for g in AR_GROUPS if pairs[g]}
    # Locations live on the frontal face (the 8th image), so the blocks are
    # drawn on that face too.
    front = pl.DEFAULT_FRONT_INDEX
    background = dat.read_range(front - 1, front)[0] if len(dat) >= front else images[0]
    plot_occlusion_changes(changes, out_png, background, locations, natural, examples,
                           top_k)
    overlap = block_filter_overlap(changes, locations, top_k)
    loc = np.asarray(locations, np.float64)
    nat = {}
    for group in AR_GROUPS:
        if group not in natural:
            continue
        mean = natural[group]["mean"]
        top = np.argsort(-np.nan_to_num(mean, nan=-np.inf), kind="stable")[:top_k]
        ys = loc[top, 0]
        nat[group] = {"top_dims": top.tolist(), "pairs": natural[group]["pairs"],
                      "top_mean_y": float(np.nanmean(ys)) if np.isfinite(ys).any()
                      else float("nan")}
    return {"figures": [out_png], "blocks": overlap, "natural": nat,
            "num_images": int(len(images))}


if __name__ == "__main__":
    # ``python -m`` on this module keeps working; the command is occlusion_analysis_cli.
    from interp_fr.eval.occlusion_analysis_cli import run
    run()
