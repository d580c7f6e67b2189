"""Average location of peak filter responses (the original's average_location.m).

For every filter of a feature map and for each sign, the peak of the filter's
response is found in each image, mapped through the image's landmark
triangulation onto one frontal face, and the mapped peaks are averaged with
weights |peak value|; the deviation is the weighted mean distance to that
average. The semantics follow average_location.m exactly (SPEC A8; details and
the few deliberate deviations in BUILD_NOTES.md, "Interpretability analyses"):

  * a sign has a peak in an image when max > 0 (positive) / min < 0 (negative);
    on ties the first position in MATLAB column-major order of the [row, col]
    map wins (smallest column, then smallest row);
  * the peak position is (x, y) = (col * 4, row * 4) with 1-based row/col;
  * the triangle is the LAST of ``tVM``'s rows whose barycentric weights pass
    the inclusive test; the point is mapped with those weights onto the frontal
    face, which is the landmark set of the 8th image (1-based);
  * a mapped point is kept only if 0 < x < 96 and 0 < y < 96; weights are
    normalised over all images (non-kept ones weigh 0); centres are [y, x];
  * the deviation sums only over kept images.

Spreadness d (ours; the paper quotes d without a formula): the mean Euclidean
distance, in pixels of the 96x96 face, of the filters' average locations from
their centroid, per sign.

    python -m eval.peak_locations --maps ours=IJBA_feature_maps_ours.txt \
        --landmarks landmarks68_IJBA.mat --tvm tVM.mat --images IJBA....dat
"""
import dataclasses
import json
import os

import numpy as np

from interp_fr.common import plotting
from interp_fr.common.atomic_io import atomic_write, atomic_save_text
from interp_fr.common.errors import DataFileError, InputError, check_finite

SIGNS = ("pos", "neg")
FACE_SIZE = 96
MAP_SIZE = 24
DEFAULT_NUM_IMAGES = 1000
DEFAULT_FRONT_INDEX = 8          # 1-based, as average_location.m
OUTSIDE_RULES = ("skip", "error")
# Elements of one [images, positions, triangles] block of the barycentric table;
# about 10 float64 temporaries of this size are alive at once.
_TABLE_BLOCK = 1 << 21


class PeakLocationError(ValueError, InputError):
    """A peak lies in no triangle and ``outside_rule="error"`` was asked for."""


# --------------------------------------------------------------------------- peaks


@dataclasses.dataclass
class Peaks:
    """The peak of one sign for every (image, filter).

    Attributes:
        row, col: int32 [N, C], 1-based map row / column (0 where absent).
        value: float64 [N, C], the peak value (0 where absent).
        present: bool [N, C], max > 0 (pos) or min < 0 (neg).
        map_shape: (H, W, C) of the maps.
    """
    row: np.ndarray
    col: np.ndarray
    value: np.ndarray
    present: np.ndarray
    map_shape: tuple

    @classmethod
    def concatenate(cls, parts):
        return cls(*(np.concatenate([getattr(p, k) for p in parts])
                     for k in ("row", "col", "value", "present")),
                   map_shape=parts[0].map_shape)


def find_peaks(maps, sign):
    """Peak of one sign per image and filter, with MATLAB's tie rule.

    Args:
        maps: float [N, H, W, C] (the [24, 24, C] masked k5 maps).
        sign: "pos" (maximum, kept if > 0) or "neg" (minimum, kept if < 0).

    Returns:
        `Peaks`.
    """
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    m = np.asarray(maps)
    if m.ndim != 4:
        raise ValueError(f"maps must be [N, H, W, C], got shape {m.shape}")
    n, h, w, c = m.shape
    if not np.all(np.isfinite(m)):
        raise ValueError("feature maps hold NaN or inf values")
    # average_location.m builds z(row, col) = map[row-1, col-1] and takes the
    # first hit of find(), which scans column by column: flatten as [W, H].
    colmajor = m.transpose(0, 2, 1, 3).reshape(n, w * h, c)
    idx = (np.argmax if sign == "pos" else np.argmin)(colmajor, axis=1)
    value = np.take_along_axis(colmajor, idx[:, None, :], axis=1)[:, 0, :]
    value = value.astype(np.float64)
    present = value > 0 if sign == "pos" else value < 0
    row = np.where(present, idx % h + 1, 0).astype(np.int32)
    col = np.where(present, idx // h + 1, 0).astype(np.int32)
    return Peaks(row, col, np.where(present, value, 0.0), present, (h, w, c))


def peaks_from_chunks(chunks):
    """Both signs' `Peaks` from an iterable of map chunks [b, H, W, C]."""
    parts = {s: [] for s in SIGNS}
    for chunk in chunks:
        for s in SIGNS:
            parts[s].append(find_peaks(chunk, s))
    if not parts["pos"]:
        raise ValueError("no feature maps were given")
    return {s: Peaks.concatenate(parts[s]) for s in SIGNS}


def map_shape_from_row_length(length, map_size=MAP_SIZE):
    """(H, W, C) of a flattened map row of ``length`` values (square maps)."""
    if length % (map_size * map_size):
        raise ValueError(f"a row of {length} values is not a [{map_size}, {map_size},"
                         " C] map; pass map_size")
    return (map_size, map_size, length // (map_size * map_size))


def iter_map_file(path, num_images=DEFAULT_NUM_IMAGES, map_size=MAP_SIZE, chunk=32):
    """Reads a feature-map file in chunks of maps [b, H, W, C] (float64).

    The file is the extraction format (SPEC A6): one text line per image (numpy
    savetxt), the [H, W, C] map flattened in C order; or a ``.npy`` of
    [N, H*W*C] or [N, H, W, C]. Only the first ``num_images`` rows are read, one
    line at a time, so the 4.6 GB text file of the original never sits in memory.

    Raises:
        DataFileError: unreadable file, rows of the wrong length, NaN or
            infinite values (the first rows holding them are named: 1-based
            lines of a text file, 0-based rows of a ``.npy``).
    """
    if str(path).lower().endswith(".npy"):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataFileError(path, f"not a readable .npy file ({e})") from None
        shape = arr.shape[1:] if arr.ndim == 4 else \
            map_shape_from_row_length(arr.shape[1], map_size)
        total = min(len(arr), num_images)
        for start in range(0, total, chunk):
            block = np.asarray(arr[start:min(total, start + chunk)], np.float64)
            check_finite(path, block, "map values", unit="0-based row",
                         numbers=lambda rows, start=start: rows + start, stream=True)
            yield block.reshape(-1, *shape)
        return
    if not os.path.isfile(path):
        raise DataFileError(path, "feature-map file not found")
    shape, rows, linenos = None, [], []

    def block():
        values = np.stack(rows)
        check_finite(path, values, "map values", unit="line",
                     numbers=lambda bad: np.asarray(linenos)[bad], stream=True)
        return values.reshape(-1, *shape)

    with open(path, "r", encoding="ascii") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno > num_images:
                break
            if not line.strip():
                continue
            values = np.fromstring(line, dtype=np.float64, sep=" ")
            if shape is None:
                try:
                    shape = map_shape_from_row_length(values.size, map_size)
                except ValueError as e:
                    raise DataFileError(path, str(e)) from None
            if values.size != np.prod(shape):
                raise DataFileError(path, f"line {lineno} has {values.size} values, "
                                    f"the first had {int(np.prod(shape))}")
            rows.append(values)
            linenos.append(lineno)
            if len(rows) == chunk:
                yield block()
                rows, linenos = [], []
    if rows:
        yield block()


# --------------------------------------------------------------------- mapping


def grid_positions(map_size_hw, face_size=FACE_SIZE):
    """(x, y) of every map cell as average_location.m places it.

    Returns:
        float64 [H*W, 2] in column-major cell order (cell k = (row k % H,
        col k // H)), x = col * stride, y = row * stride with 1-based row/col
        and stride = face_size / H (4 for the 24x24 maps of the original).
    """
    h, w = map_size_hw
    stride_y, stride_x = face_size / h, face_size / w
    k = np.arange(h * w)
    rows, cols = k % h + 1, k // h + 1
    return np.stack([cols * stride_x, rows * stride_y], axis=1).astype(np.float64)


def _barycentric_table(points, landmarks, triangles):
    """The last containing triangle and its weights for every (image, point).

    Args:
        points: float64 [P, 2] (x, y).
        landmarks: float64 [n, 2, V].
        triangles: int [T, 3].

    Returns:
        tri int64 [n, P] (-1 where no triangle contains the point),
        a1, a2 float64 [n, P] (the original's alpha(1), alpha(2)).
    """
    xl = landmarks[:, 0][:, triangles]              # [n, T, 3]
    yl = landmarks[:, 1][:, triangles]
    x1, x2, x3 = (xl[:, None, :, k] for k in range(3))   # [n, 1, T]
    y1, y2, y3 = (yl[:, None, :, k] for k in range(3))
    x = points[None, :, 0, None]                    # [1, P, 1]
    y = points[None, :, 1, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Written term by term as average_location.m (two separate
        # denominators, not the usual shared one) so that points on edges are
        # decided by the same floating-point numbers.
        a1 = (((x - x3) * (y2 - y3) - (y - y3) * (x2 - x3))
              / ((x1 - x3) * (y2 - y3) - (y1 - y3) * (x2 - x3)))
        a2 = (((x - x3) * (y1 - y3) - (y - y3) * (x1 - x3))
              / ((x2 - x3) * (y1 - y3) - (y2 - y3) * (x1 - x3)))
        inside = (0 <= a1) & (a1 <= 1) & (0 <= a2) & (a2 <= 1) & (a1 + a2 <= 1)
    t = inside.shape[-1]
    # The original overwrites its choice for every containing triangle.
    last = t - 1 - np.argmax(inside[..., ::-1], axis=-1)
    found = inside.any(axis=-1)
    a1 = np.take_along_axis(a1, last[..., None], axis=-1)[..., 0]
    a2 = np.take_along_axis(a2, last[..., None], axis=-1)[..., 0]
    return np.where(found, last, -1), a1, a2


def map_to_frontal(points, landmarks, triangles, frontal, face_size=FACE_SIZE):
    """Maps points of every image onto the frontal face, as average_location.m.

    Args:
        points: float [P, 2] (x, y) in image pixels (the same for all images).
        landmarks: float [N, 2, V] per-image landmarks (x row, y row).
        triangles: int [T, 3] vertex triples in ``tVM`` row order.
        frontal: float [2, V] the frontal face's landmarks.
        face_size: mapped points are kept if 0 < x, y < face_size.

    Returns:
        mapped float64 [N, P, 2] as (y, x) (NaN where no triangle), kept bool
        [N, P], found bool [N, P] (some triangle contains the point).
    """
    points = np.asarray(points, np.float64)
    landmarks = np.asarray(landmarks, np.float64)
    triangles = np.asarray(triangles, np.int64)
    frontal = np.asarray(frontal, np.float64)
    n, p, t = len(landmarks), len(points), len(triangles)
    step = max(1, _TABLE_BLOCK // max(1, p * t))
    mapped = np.full((n, p, 2), np.nan)
    found = np.zeros((n, p), bool)
    fx, fy = frontal[0][triangles], frontal[1][triangles]   # [T, 3]
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        tri, a1, a2 = _barycentric_table(points, landmarks[sl], triangles)
        ok = tri >= 0
        tri_c = np.where(ok, tri, 0)
        a3 = 1.0 - a1 - a2
        # x_new = xl_tar * alpha: a 1x3 by 3x1 product, summed in order.
        x_new = fx[tri_c, 0] * a1 + fx[tri_c, 1] * a2 + fx[tri_c, 2] * a3
        y_new = fy[tri_c, 0] * a1 + fy[tri_c, 1] * a2 + fy[tri_c, 2] * a3
        mapped[sl, :, 0] = np.where(ok, y_new, np.nan)
        mapped[sl, :, 1] = np.where(ok, x_new, np.nan)
        found[sl] = ok
    with np.errstate(invalid="ignore"):
        kept = ((mapped[..., 1] < face_size) & (mapped[..., 0] < face_size)
                & (mapped[..., 1] > 0) & (mapped[..., 0] > 0))
    return mapped, kept, found


# ------------------------------------------------------------------ statistics


@dataclasses.dataclass
class SignLocations:
    """Average peak locations of every filter for one sign.

    Attributes:
        centers: float64 [C, 2] weighted average location as (y, x) on the
            frontal face (NaN for a filter without any kept image).
        deviations: float64 [C] weighted mean distance of the kept peaks to it.
        n_peaks: int [C] images where the sign has a peak.
        n_kept: int [C] images whose mapped peak is inside the face.
        n_outside_hull: int [C] images whose peak lies in no triangle (the
            original crashes on these; we skip them).
        total_weight: float64 [C] sum of the kept |peak values| before
            normalisation (how strongly the sign speaks for the filter).
        spreadness: our d (module docstring), pixels.
    """
    centers: np.ndarray
    deviations: np.ndarray
    n_peaks: np.ndarray
    n_kept: np.ndarray
    n_outside_hull: np.ndarray
    total_weight: np.ndarray
    spreadness: float


@dataclasses.dataclass
class PeakLocations:
    """Both signs of one model, with the frontal face used."""
    signs: dict                 # "pos" / "neg" -> SignLocations
    frontal: np.ndarray         # [2, V]
    num_images: int
    map_shape: tuple

    def summary(self):
        """Scalars for reports: d per sign, their mean, filter counts."""
        out = {"num_images": self.num_images, "map_shape": list(self.map_shape)}
        for s in SIGNS:
            loc = self.signs[s]
            out[f"d_{s}"] = loc.spreadness
            out[f"filters_located_{s}"] = int(np.isfinite(loc.centers[:, 0]).sum())
            out[f"mean_deviation_{s}"] = float(np.nanmean(loc.deviations)) \
                if np.isfinite(loc.deviations).any() else float("nan")
            out[f"peaks_outside_hull_{s}"] = int(loc.n_outside_hull.sum())
        out["d"] = float(np.mean([out["d_pos"], out["d_neg"]]))
        return out


def filter_locations(result, mode="dominant"):
    """One location per filter, [C, 2] as (y, x).

    Args:
        result: `PeakLocations`.
        mode: "pos", "neg", or "dominant": the sign whose kept peaks carry more
            total |response| (a feature value is the mean of both signs' cells).
    """
    if mode in SIGNS:
        return result.signs[mode].centers
    if mode != "dominant":
        raise ValueError(f"mode must be pos, neg or dominant, got {mode!r}")
    pos, neg = result.signs["pos"], result.signs["neg"]
    use_pos = (pos.total_weight >= neg.total_weight) | ~np.isfinite(neg.centers[:, 0])
    use_pos &= np.isfinite(pos.centers[:, 0])
    return np.where(use_pos[:, None], pos.centers, neg.centers)


def spreadness(centers):
    """Our spreadness d: mean distance (px) of the located filters' average
    locations [C, 2] from their centroid; NaN rows are ignored."""
    c = np.asarray(centers, np.float64)
    c = c[np.isfinite(c).all(axis=1)]
    if len(c) == 0:
        return float("nan")
    return float(np.mean(np.linalg.norm(c - c.mean(axis=0), axis=1)))


def sign_locations(peaks, mapped, kept, found, outside_rule="skip"):
    """Weighted average location and deviation per filter (one sign).

    Args:
        peaks: `Peaks` [N, C].
        mapped, kept, found: `map_to_frontal` of the grid points, [N, H*W, ...]
            in column-major cell order (`grid_positions`).
        outside_rule: "skip" a peak in no triangle, or "error".

    Returns:
        `SignLocations`.
    """
    h, _, _ = peaks.map_shape
    cell = (peaks.col.astype(np.int64) - 1) * h + (peaks.row.astype(np.int64) - 1)
    cell = np.where(peaks.present, cell, 0)
    rows = np.arange(len(cell))[:, None]
    hull = found[rows, cell] & peaks.present
    outside = peaks.present & ~hull
    if outside.any() and outside_rule == "error":
        i, j = np.argwhere(outside)[0]
        raise PeakLocationError(
            f"the peak of filter {j} in image {i} (0-based) at row {peaks.row[i, j]},"
            f" col {peaks.col[i, j]} lies in no triangle (average_location.m "
            "crashes here)")
    keep = kept[rows, cell] & hull
    centers = np.where(keep[..., None], mapped[rows, cell], 0.0)   # [N, C, 2]
    weights = np.where(keep, np.abs(peaks.value), 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = weights / total                                   # 0/0 -> NaN
        avg = np.einsum("nc,ncd->cd", weights, centers)
        dist = np.sqrt(((centers - avg[None]) ** 2).sum(axis=-1))
        dev = np.where(keep, weights * dist, 0.0).sum(axis=0)
    none = keep.sum(axis=0) == 0
    avg[none] = np.nan
    dev[none] = np.nan
    return SignLocations(avg, dev, peaks.present.sum(axis=0), keep.sum(axis=0),
                         outside.sum(axis=0), total, spreadness(avg))


def average_peak_locations(peaks, landmarks, triangles, front_index=DEFAULT_FRONT_INDEX,
                           frontal=None, face_size=FACE_SIZE, outside_rule="skip"):
    """average_location.m for one model.

    Args:
        peaks: dict sign -> `Peaks` over the first N images (`peaks_from_chunks`).
        landmarks: float [M, 2, V] per-image landmarks, M >= N (the whole
            ``landmarks68_IJBA.mat``).
        triangles: int [T, 3] (`mat_files.read_triangulation`).
        front_index: 1-based image whose landmarks are the frontal face (8).
        frontal: explicit frontal landmarks [2, V] instead (e.g. the template).
        outside_rule: see `sign_locations`.

    Returns:
        `PeakLocations`.
    """
    if outside_rule not in OUTSIDE_RULES:
        raise ValueError(f"outside_rule must be one of {OUTSIDE_RULES}")
    landmarks = np.asarray(landmarks, np.float64)
    n = len(peaks["pos"].row)
    if len(landmarks) < n:
        raise ValueError(f"{n} feature maps but landmarks for only {len(landmarks)} "
                         "images")
    if frontal is None:
        if not 1 <= front_index <= len(landmarks):
            raise ValueError(f"front_index {front_index} is outside 1..{len(landmarks)}")
        frontal = landmarks[front_index - 1]
    frontal = np.asarray(frontal, np.float64)
    h, w, _ = peaks["pos"].map_shape
    mapped, kept, found = map_to_frontal(grid_positions((h, w), face_size),
                                         landmarks[:n], triangles, frontal, face_size)
    signs = {s: sign_locations(peaks[s], mapped, kept, found, outside_rule)
             for s in SIGNS}
    return PeakLocations(signs, frontal, n, peaks["pos"].map_shape)


# ------------------------------------------------------------ model / file input


def peaks_from_model(model, dat_images, num_images=DEFAULT_NUM_IMAGES, batch_size=64,
                     map_size=MAP_SIZE):
    """Both signs' peaks of a model's feature maps on the first images of a .dat.

    Maps of another size than ``map_size`` (the base CNN's 6x6 k4_2) are first
    brought to ``map_size`` with the legacy bilinear resize the hypercolumn
    applies to k4_2, so every model is analysed on the 24x24 grid of
    average_location.m; ``map_size=None`` keeps the model's own grid (the
    position rule then scales by 96 / H).
    """
    from interp_fr.eval import interp_common
    forward = interp_common.make_forward(model)
    return peaks_from_chunks(interp_common.iter_dat_maps(forward, dat_images,
                                                         num_images, batch_size,
                                                         map_size))


def peaks_from_file(path, num_images=DEFAULT_NUM_IMAGES, map_size=MAP_SIZE):
    """Both signs' peaks from a feature-map file (text or .npy)."""
    return peaks_from_chunks(iter_map_file(path, num_images, map_size))


# ---------------------------------------------------------------------- outputs


def results_dict(results):
    """JSON-ready dict {model: {summary, per-sign arrays}}."""
    from interp_fr.common.json_safe import json_safe
    out = {}
    for name, res in results.items():
        entry = {"summary": res.summary()}
        for s in SIGNS:
            loc = res.signs[s]
            entry[s] = {"centers_yx": loc.centers, "deviations": loc.deviations,
                        "n_peaks": loc.n_peaks, "n_kept": loc.n_kept,
                        "n_outside_hull": loc.n_outside_hull,
                        "total_weight": loc.total_weight}
        out[name] = entry
    return json_safe(out)


def save_results(results, out_dir, stem="peak_locations"):
    """Writes ``<stem>.npz`` (arrays, keys ``<model>__<sign>__<field>``) and
    ``<stem>.json``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    arrays = {}
    for name, res in results.items():
        arrays[f"{name}__frontal"] = res.frontal
        for s in SIGNS:
            loc = res.signs[s]
            for field in ("centers", "deviations", "n_peaks", "n_kept", "n_outside_hull",
                          "total_weight"):
                arrays[f"{name}__{s}__{field}"] = getattr(loc, field)
    npz = os.path.join(out_dir, stem + ".npz")
    with atomic_write(npz, "wb") as f:
        np.savez(f, **arrays)
    js = os.path.join(out_dir, stem + ".json")
    atomic_save_text(js, json.dumps(results_dict(results), indent=1) + "\n")
    return [npz, js]


def plot_peak_locations(results, out_png, background=None, frontal=None,
                        marker_size=10):
    """The paper-style figure: one row per model, positive and negative side by side.

    Each filter is a dot at its average location on the frontal face, coloured
    by its deviation (jet, one colour range over every model and sign, as the
    original's figure, with a colour bar).

    Args:
        results: dict name -> `PeakLocations` (row order = dict order).
        out_png: output path.
        background: optional uint8 [96, 96, 3] face (the frontal image).
        frontal: landmarks [2, V] drawn faintly when there is no background
            (default: the first model's frontal face).

    Returns:
        out_png.
    """
    plt = plotting.pyplot()
    names = list(results)
    devs = np.concatenate([results[n].signs[s].deviations for n in names for s in SIGNS])
    devs = devs[np.isfinite(devs)]
    vmin, vmax = (float(devs.min()), float(devs.max())) if devs.size else (0.0, 1.0)
    if vmax <= vmin:
        vmax = vmin + 1e-6
    fig, axes = plt.subplots(len(names), 2, figsize=(6.4, 3.1 * len(names) + 0.3),
                             squeeze=False)
    if frontal is None and names:
        frontal = results[names[0]].frontal
    scatter = None
    for r, name in enumerate(names):
        for c, s in enumerate(SIGNS):
            ax = axes[r, c]
            if background is not None:
                ax.imshow(background, extent=(-0.5, FACE_SIZE - 0.5, FACE_SIZE - 0.5, -0.5))
            else:
                ax.set_facecolor("white")
                ax.plot(frontal[0, :68] - 1, frontal[1, :68] - 1, ".", color="0.75", ms=3)
            loc = results[name].signs[s]
            ok = np.isfinite(loc.centers[:, 0])
            # Locations are MATLAB 1-based pixel coordinates; imshow puts pixel
            # k (0-based) at k, so shift by one as the original's im_c indexing.
            scatter = ax.scatter(loc.centers[ok, 1] - 1, loc.centers[ok, 0] - 1,
                                 c=loc.deviations[ok], cmap="jet", vmin=vmin, vmax=vmax,
                                 s=marker_size, edgecolors="none")
            ax.set_xlim(-0.5, FACE_SIZE - 0.5)
            ax.set_ylim(FACE_SIZE - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            label = "positive" if s == "pos" else "negative"
            ax.set_title(f"{name}: {label} (d = {loc.spreadness:.1f})", fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.82, top=0.94, bottom=0.03, wspace=0.05,
                        hspace=0.15)
    if scatter is not None:
        cax = fig.add_axes([0.85, 0.1, 0.03, 0.8])
        fig.colorbar(scatter, cax=cax, label="deviation (px)")
    return plotting.save_figure(fig, out_png)


def spreadness_table(results):
    """Printable lines: model, d positive, d negative, their mean."""
    lines = [f"{'model':<16} {'d_pos':>8} {'d_neg':>8} {'d':>8}"]
    for name, res in results.items():
        s = res.summary()
        lines.append(f"{name:<16} {s['d_pos']:8.2f} {s['d_neg']:8.2f} {s['d']:8.2f}")
    return "\n".join(lines)


def load_side_files(landmarks_path, tvm_path):
    """Landmarks [N, 2, 76] and triangles [T, 3] through our .mat readers."""
    from interp_fr.data import mat_files
    return (mat_files.read_landmarks(landmarks_path),
            mat_files.read_triangulation(tvm_path))


def peak_location_figure_for_model(model, world_dir, out_png, num_images=DEFAULT_NUM_IMAGES,
                                   name="model", batch_size=64, out_dir=None):
    """Main-job hook: peak locations of ``model`` on a synthetic world's IJB-A set.

    Args:
        model: an `InterpFRNet` (or a forward callable, see
            `interp_common.make_forward`).
        world_dir: a folder written by `synthetic_world.build_world`.
        out_png: the figure.
        out_dir: if given, also the ``.npz`` / ``.json`` results there.

    Returns:
        dict: ``figures`` [out_png (+ npz, json)], ``d_pos``, ``d_neg``, ``d``,
        filter counts, ``num_images``.
    """
    return peak_location_figure_for_models({name: model}, world_dir, out_png,
                                           num_images, batch_size, out_dir)[name]


def peak_location_figure_for_models(models, world_dir, out_png,
                                    num_images=DEFAULT_NUM_IMAGES, batch_size=64,
                                    out_dir=None):
    """Several models (dict name -> model) in one figure; returns name -> summary
    dict as `peak_location_figure_for_model` (each with the shared ``figures``)."""
    from interp_fr.data import dat_files
    from interp_fr.eval.interp_common import WorldPaths
    paths = WorldPaths(world_dir)
    images = dat_files.DatImages(paths.ijba_images, FACE_SIZE)
    landmarks, triangles = load_side_files(paths.ijba_landmarks, paths.triangulation)
    results = {name: average_peak_locations(
                   peaks_from_model(m, images, num_images, batch_size), landmarks,
                   triangles)
               for name, m in models.items()}
    background = images.read_range(DEFAULT_FRONT_INDEX - 1, DEFAULT_FRONT_INDEX)[0] \
        if len(images) >= DEFAULT_FRONT_INDEX else None
    figures = [plot_peak_locations(results, out_png, background)]
    if out_dir is not None:
        figures += save_results(results, out_dir)
    return {name: dict(res.summary(), figures=list(figures))
            for name, res in results.items()}


if __name__ == "__main__":
    # ``python -m`` on this module keeps working; the command is peak_locations_cli.
    from interp_fr.eval.peak_locations_cli import run
    run()
