"""Filter response heat maps (the paper's figure 2; not in the original code).

For a few chosen filters, the positive and negative parts of each filter's
masked k5 map are up-sampled to the 96x96 face and drawn over the image in two
colours (positive red, negative blue). Rows: one image each of several subjects,
then several images of one subject; columns: the face, then one per filter. A
consistent model fires on the same face part in every row.

    python -m eval.filter_heatmaps --world_dir world --source m.weights.h5 \
        --out heatmaps.png
"""
import os

import numpy as np
import scipy.ndimage

from interp_fr.common import plotting
from interp_fr.eval import interp_common

FACE_SIZE = interp_common.FACE_SIZE
POSITIVE_RGB = np.array([1.0, 0.1, 0.05])
NEGATIVE_RGB = np.array([0.05, 0.35, 1.0])
# Largest opacity of a response over the face: the face stays visible beneath.
MAX_ALPHA = 0.85


def upsample(maps, size=FACE_SIZE):
    """Bilinear up-sampling of maps [..., H, W] to [..., size, size].

    Half-pixel geometry: map cell (h, w) covers face pixels h*s..h*s+s-1 with
    s = size / H, so a response is drawn where its cell is.
    """
    m = np.asarray(maps, np.float64)
    lead = m.shape[:-2]
    h, w = m.shape[-2:]
    flat = m.reshape(-1, h, w)
    out = np.stack([scipy.ndimage.zoom(x, (size / h, size / w), order=1,
                                       grid_mode=True, mode="nearest")
                    for x in flat]) if len(flat) else np.zeros((0, size, size))
    return out.reshape(*lead, size, size)


def choose_filters(maps, count=10):
    """Filters that fire, spread over the face.

    Greedy farthest-point selection on each filter's mean positive-peak cell over
    the given images, starting from the filter with the largest mean |response|;
    filters that never respond are skipped.

    Args:
        maps: float [N, H, W, C].
        count: how many.

    Returns:
        int list of filter indices (at most ``count``).
    """
    m = np.asarray(maps, np.float64)
    n, h, w, c = m.shape
    strength = np.abs(m).reshape(n, h * w, c).max(axis=1).mean(axis=0)   # [C]
    live = np.nonzero(strength > 0)[0]
    if len(live) == 0:
        return []
    flat = m.reshape(n, h * w, c)
    peak = flat.argmax(axis=1)                                          # [N, C]
    pos = np.stack([peak // w, peak % w], axis=-1).mean(axis=0)         # [C, 2]
    chosen = [int(live[np.argmax(strength[live])])]
    while len(chosen) < min(count, len(live)):
        rest = np.setdiff1d(live, chosen)
        d = np.linalg.norm(pos[rest, None] - pos[None, chosen], axis=-1).min(axis=1)
        # Ties (filters at the same place) go to the stronger filter.
        order = np.lexsort((-strength[rest], -d))
        chosen.append(int(rest[order[0]]))
    return chosen


def overlay(images, maps, filters):
    """Faces with the chosen filters' responses drawn on them.

    Args:
        images: uint8 [N, 96, 96, 3].
        maps: float [N, H, W, C] masked k5 maps of those images.
        filters: list of F filter indices.

    Returns:
        float [N, F, 96, 96, 3] in [0, 1]. Each filter's positive and negative
        parts are scaled by their largest value over the N images, so that the
        rows of one filter can be compared.
    """
    imgs = np.asarray(images, np.float64) / 255.0
    grey = imgs.mean(axis=-1, keepdims=True)
    base = 0.25 + 0.6 * np.repeat(grey, 3, axis=-1)           # [N, 96, 96, 3]
    sel = np.asarray(maps, np.float64)[..., list(filters)]    # [N, H, W, F]
    sel = np.moveaxis(sel, -1, 1)                             # [N, F, H, W]
    parts = []
    for part in (np.maximum(sel, 0.0), np.maximum(-sel, 0.0)):
        up = upsample(part, FACE_SIZE)
        scale = up.max(axis=(0, 2, 3), keepdims=True)
        parts.append(np.divide(up, scale, out=np.zeros_like(up), where=scale > 0))
    a_pos = np.clip(parts[0], 0, 1)[..., None] * MAX_ALPHA
    a_neg = np.clip(parts[1], 0, 1)[..., None] * MAX_ALPHA
    total = np.maximum(a_pos + a_neg, 1.0)   # both parts at one pixel: share it
    a_pos, a_neg = a_pos / total, a_neg / total
    out = (base[:, None] * (1 - a_pos - a_neg) + a_pos * POSITIVE_RGB
           + a_neg * NEGATIVE_RGB)
    return np.clip(out, 0.0, 1.0)


def select_images(subjects, yaw=None, n_subjects=4, n_same=4):
    """Rows of the figure: one image of each of several subjects, then several
    images of one subject.

    Args:
        subjects: int [N] subject of each image.
        yaw: optional float [N]; the most frontal image represents a subject,
            and the same-subject images are spread over yaw.
        n_subjects, n_same: row counts.

    Returns:
        (indices of the different-subject rows, indices of the same-subject
        rows, that subject).
    """
    subjects = np.asarray(subjects)
    yaw = np.zeros(len(subjects)) if yaw is None else np.abs(np.asarray(yaw))
    ids, counts = np.unique(subjects, return_counts=True)
    per = [int(np.nonzero(subjects == s)[0][np.argmin(yaw[subjects == s])])
           for s in ids[:n_subjects]]
    same_id = ids[np.argmax(counts)]
    rows = np.nonzero(subjects == same_id)[0]
    rows = rows[np.argsort(np.asarray(yaw)[rows], kind="stable")]
    pick = np.unique(np.linspace(0, len(rows) - 1, min(n_same, len(rows))).round()
                     .astype(int))
    return per, [int(i) for i in rows[pick]], int(same_id)


def plot_heatmap_grid(images, maps, filters, out_png, row_labels=None,
                      title=None):
    """Writes the grid PNG.

    Args:
        images: uint8 [N, 96, 96, 3], one per row.
        maps: float [N, H, W, C].
        filters: filter indices, one per column after the face column.
        row_labels: optional N strings.

    Returns:
        out_png.
    """
    plt = plotting.pyplot()
    pics = overlay(images, maps, filters)
    n, f = pics.shape[:2]
    fig, axes = plt.subplots(n, f + 1, figsize=(1.05 * (f + 1) + 0.6, 1.1 * n + 0.5),
                             squeeze=False)
    for r in range(n):
        axes[r, 0].imshow(images[r])
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=6, rotation=0, ha="right",
                                  va="center")
        for c in range(f):
            axes[r, c + 1].imshow(pics[r, c])
            if r == 0:
                axes[r, c + 1].set_title(f"filter {filters[c]}", fontsize=7)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.1, right=0.99, top=0.9 if title else 0.95,
                        bottom=0.01, wspace=0.04, hspace=0.06)
    return plotting.save_figure(fig, out_png)


def heatmap_grid_for_model(model, world_dir, out_png, filters=None, num_filters=10,
                           n_subjects=4, n_same=4, batch_size=64):
    """Main-job hook: the figure-2 grid of ``model`` on a synthetic world's IJB-A set.

    Subjects and yaw come from the world's ``attributes/ijba_attributes.npz``;
    without it the first images are used.

    Returns:
        dict: ``figures`` [out_png], ``filters``, ``images`` (row indices),
        ``same_subject``.
    """
    from interp_fr.data import dat_files
    paths = interp_common.WorldPaths(world_dir)
    dat = dat_files.DatImages(paths.ijba_images, FACE_SIZE)
    if os.path.isfile(paths.ijba_attributes):
        attrs = np.load(paths.ijba_attributes)
        per, same, same_id = select_images(attrs["subject"], attrs["yaw"],
                                           n_subjects, n_same)
        labels = ([f"subject {attrs['subject'][i]}" for i in per]
                  + [f"subject {same_id}, image {i}" for i in same])
    else:
        per, same, same_id = list(range(min(n_subjects, len(dat)))), [], -1
        labels = [f"image {i}" for i in per]
    rows = per + same
    images = dat.read(np.asarray(rows))
    forward = interp_common.make_forward(model)
    _, maps = interp_common.run_forward(forward, images, batch_size, want_maps=True)
    if filters is None:
        filters = choose_filters(maps, num_filters)
    plot_heatmap_grid(images, maps, filters, out_png, labels,
                      title="filter responses: positive red, negative blue")
    return {"figures": [out_png], "filters": [int(f) for f in filters],
            "images": rows, "same_subject": same_id}


if __name__ == "__main__":
    # ``python -m`` on this module keeps working; the command is filter_heatmaps_cli.
    from interp_fr.eval.filter_heatmaps_cli import run
    run()
