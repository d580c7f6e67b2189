"""Landmark-guided synthetic occlusion (SPEC A5).

One 32x12 rectangle per batch is drawn in the frontal template's 110x110 space.
Its four corners are mapped, per image, through the template triangle that
contains them (barycentric coordinates) onto the image's own landmarks, shifted
by the image's crop offset, and the resulting quadrilateral is filled (PIL
polygon semantics, outline included) with -1 in all three channels.

The barycentric mapping is vectorised over corners x triangles x images in
numpy; only the polygon fill calls PIL per image (tens of microseconds each),
because equality with PIL's rasterisation is the requirement.

Two corner cases of the original are handled deliberately (BUILD_NOTES.md):
  * a corner on an edge shared by two triangles is appended once per containing
    triangle and the first four points are used ("original" rule, the default,
    which reproduces the original's polygon exactly), or once ("one_per_corner");
  * a corner in no triangle crashes the original; we either raise a clear
    `OcclusionError` ("error") or map it through the nearest triangle by affine
    extrapolation ("nearest", the default).
"""
import numpy as np
from PIL import Image, ImageDraw

from interp_fr.data import mat_files
from interp_fr.common.errors import InputError
from interp_fr.data.image_scaling import to_unit_range

RECT_WIDTH, RECT_HEIGHT = 32, 12
TEMPLATE_SPACE = 110
CORNER_RULES = ("original", "one_per_corner")
OUTSIDE_RULES = ("nearest", "error")


class OcclusionError(ValueError, InputError):
    """A rectangle corner lies in no triangle of the frontal template."""


def sample_rectangle(rng, width=RECT_WIDTH, height=RECT_HEIGHT, size=TEMPLATE_SPACE):
    """Top-left (x, y) of the batch's rectangle, distributed as the original.

    The original draws x from range(10, size - width - 9) and then nudges the two
    end values one pixel inwards (so 10 -> 11 and size - width - 10 -> one less),
    which makes those inner values twice as likely. Same for y with ``height``.
    """
    def draw(extent):
        v = int(rng.choice(np.arange(10, size - extent - 9)))
        if v == 10:
            v += 1
        if v == size - extent - 10:
            v -= 1
        return v
    return draw(width), draw(height)


def rectangle_corners(x, y, width=RECT_WIDTH, height=RECT_HEIGHT):
    """The corners in the original order: float64 [4, 2] (x, y)."""
    return np.array([[x, y], [x, y + height], [x + width, y + height], [x + width, y]],
                    np.float64)


def barycentric(points, triangles_xy):
    """The original's barycentric coordinates of points in triangles.

    Args:
        points: [P, 2] (x, y).
        triangles_xy: [T, 3, 2] vertex coordinates, vertices in ascending landmark
            index order (the order ``np.where`` gives on a ``tVM`` row).

    Returns:
        [P, T, 3] weights (alpha, beta, gamma) of vertices 0, 1, 2.
    """
    x, y = points[:, None, 0], points[:, None, 1]
    xl, yl = triangles_xy[None, :, :, 0], triangles_xy[None, :, :, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = ((x - xl[..., 2]) * (yl[..., 1] - yl[..., 2])
                 - (y - yl[..., 2]) * (xl[..., 1] - xl[..., 2])) / (
            (xl[..., 0] - xl[..., 2]) * (yl[..., 1] - yl[..., 2])
            - (yl[..., 0] - yl[..., 2]) * (xl[..., 1] - xl[..., 2]))
        beta = ((x - xl[..., 2]) * (yl[..., 0] - yl[..., 2])
                - (y - yl[..., 2]) * (xl[..., 0] - xl[..., 2])) / (
            (xl[..., 1] - xl[..., 2]) * (yl[..., 0] - yl[..., 2])
            - (yl[..., 1] - yl[..., 2]) * (xl[..., 0] - xl[..., 2]))
    return np.stack([alpha, beta, 1.0 - alpha - beta], axis=-1)


def containing(weights):
    """The original's inclusive containment test on [..., 3] weights."""
    a, b = weights[..., 0], weights[..., 1]
    return (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1) & (a + b <= 1)


class OcclusionSynthesizer:
    """Maps template rectangles onto images and fills them.

    Args:
        triangles: int [T, 3] vertex triples (`mat_files.read_triangulation`).
        frontal_template: [2, 76] template in 96x96 face space (``landmark68_7``).
        template_shift: added to the template (7: the original works in the
            110x110 CASIA space).
        corner_rule: "original" or "one_per_corner" (module docstring).
        outside_rule: "nearest" or "error".
    """

    def __init__(self, triangles, frontal_template, template_shift=7.0,
                 corner_rule="original", outside_rule="nearest"):
        if corner_rule not in CORNER_RULES:
            raise ValueError(f"corner_rule must be one of {CORNER_RULES}")
        if outside_rule not in OUTSIDE_RULES:
            raise ValueError(f"outside_rule must be one of {OUTSIDE_RULES}")
        self.triangles = np.asarray(triangles, np.int64)
        # The template keeps its own dtype (float32 in landmark68_7.mat): in the
        # original, differences of template coordinates are float32 while terms
        # with the corner coordinates are float64 (numpy-1 scalar promotion of a
        # Python int). Pixel coverage depends on this at the 1e-6 level.
        tmpl = np.asarray(frontal_template)
        if tmpl.dtype.kind != "f":
            tmpl = tmpl.astype(np.float64)
        tmpl = tmpl + tmpl.dtype.type(template_shift)
        self.template_xy = tmpl.T[self.triangles]  # [T, 3, 2]
        self.corner_rule = corner_rule
        self.outside_rule = outside_rule

    @classmethod
    def from_files(cls, tvm_path, template_path, **kwargs):
        return cls(mat_files.read_triangulation(tvm_path),
                   mat_files.read_frontal_template(template_path), **kwargs)

    def corner_assignments(self, corners):
        """Which (corner, triangle, weights) the polygon is built from.

        Returns:
            corner_idx int [4], triangle_idx int [4], weights [4, 3]: the four
            points of the polygon, each the mapping of ``corners[corner_idx]``
            through triangle ``triangle_idx``.
        """
        w = barycentric(np.asarray(corners, np.float64), self.template_xy)
        inside = containing(w)
        missing = np.nonzero(~inside.any(axis=1))[0]
        if len(missing):
            if self.outside_rule == "error":
                raise OcclusionError(
                    f"rectangle corners {corners[missing].tolist()} lie in no triangle "
                    "of the frontal template (the original crashes here)")
            for j in missing:
                # The least-outside triangle: largest smallest weight.
                t = int(np.nanargmax(np.nanmin(w[j], axis=1)))
                inside[j, t] = True
        if self.corner_rule == "original":
            # Corner-major, triangle order within a corner: the original's loop.
            pairs = np.argwhere(inside)[:4]
        else:
            pairs = np.stack([np.arange(4), inside.argmax(axis=1)], axis=1)
        return pairs[:, 0], pairs[:, 1], w[pairs[:, 0], pairs[:, 1]]

    def polygons(self, corners, landmarks, offsets):
        """The mapped polygons of a batch.

        Args:
            corners: [4, 2] rectangle corners in template space.
            landmarks: [B, 2, 76] per-image landmarks.
            offsets: [B, 2] (row, col) crop offsets subtracted from (y, x).

        Returns:
            [B, 4, 2] polygon vertices (x, y) in crop pixel coordinates.
        """
        _, tri, weights = self.corner_assignments(corners)
        lm = np.asarray(landmarks, np.float64)
        verts = lm[:, :, self.triangles[tri]]          # [B, 2, 4, 3]
        # Summed vertex by vertex in float64, in the original's order.
        w64 = weights.astype(np.float64)
        pts = (verts[..., 0] * w64[:, 0] + verts[..., 1] * w64[:, 1]
               + verts[..., 2] * w64[:, 2]).transpose(0, 2, 1)  # [B, 4, 2]
        off = np.asarray(offsets, np.float64)
        return pts - off[:, None, ::-1]

    def masks(self, polygons, size=96):
        """Fills polygons like ``ImageDraw.polygon(outline=1, fill=1)``: bool [B, S, S]."""
        out = np.zeros((len(polygons), size, size), bool)
        for i, poly in enumerate(polygons):
            img = Image.new("L", (size, size), 0)
            ImageDraw.Draw(img).polygon([tuple(p) for p in poly], outline=1, fill=1)
            out[i] = np.asarray(img, bool)
        return out

    def occlude(self, images, landmarks, offsets, rng=None, top_left=None):
        """Occludes a batch with one rectangle.

        Args:
            images: float [B, 96, 96, 3] in [-1, 1].
            landmarks: [B, 2, 76] landmarks of the uncropped images.
            offsets: int [B, 2] (row, col) crop offsets.
            rng: numpy Generator for the rectangle (ignored if ``top_left`` given).
            top_left: (x, y) of the rectangle.

        Returns:
            (occluded images float32 [B, 96, 96, 3], masks bool [B, 96, 96]).
        """
        if top_left is None:
            top_left = sample_rectangle(rng if rng is not None
                                        else np.random.default_rng())
        corners = rectangle_corners(*top_left)
        masks = self.masks(self.polygons(corners, landmarks, offsets), images.shape[1])
        out = np.array(images, np.float32, copy=True)
        out[masks] = -1.0
        return out, masks


def occlude_dataset(dat_images, landmarks, synthesizer, landmark_offset, seed,
                    batch_size=256):
    """Occludes every image of a ``.dat`` file with its own rectangle (gen_syn_occl).

    Args:
        dat_images: a `DatImages` of 96x96 images.
        landmarks: [N, 2, 76] per-image landmarks.
        synthesizer: an `OcclusionSynthesizer`.
        landmark_offset: subtracted from the mapped points; the original's
            gen_syn_occl.py subtracts 7 (its landmarks live in 110 px space).
        seed: seed of the rectangles.

    Yields:
        (start index, uint8 occluded images [b, 96, 96, 3]) in file order.
    """
    rng = np.random.default_rng(seed)
    n = len(dat_images)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        imgs = to_unit_range(dat_images.read_range(start, stop))
        offsets = np.full((stop - start, 2), landmark_offset, np.float64)
        polys = np.stack([
            synthesizer.polygons(rectangle_corners(*sample_rectangle(rng)),
                                 landmarks[i:i + 1], offsets[:1])[0]
            for i in range(start, stop)])
        masks = synthesizer.masks(polys, imgs.shape[1])
        imgs[masks] = -1.0
        yield start, np.clip(np.round((imgs + 1.0) * 127.5), 0, 255).astype(np.uint8)
