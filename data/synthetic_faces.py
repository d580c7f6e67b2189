"""A small generative model of face-like images with exact landmarks and attributes.

Each identity has a stable face: a 3-D landmark shape (jaw width, face length,
eye spacing and size, nose, mouth), colours (skin, hair, eyes, lips, brows), a
hair line, facial hair, a mole and age lines on the forehead. Each image of it varies in pose (yaw, pitch,
roll), scale and position, expression (smile, open mouth, raised brows),
lighting, background, blur and noise, and may carry an occluder (sunglasses or a
scarf). The 68 landmarks follow the usual iBUG-68 order and are returned exactly
as drawn, together with 8 frame points, so the files built from them have the
layout of the original ``landmarks68.mat``.

The model is ours (not from the original code); it exists so that every stage of
the pipeline can run, and be checked, on data with known structure.
"""
import dataclasses

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

NUM_LANDMARKS = 68
SUPERSAMPLE = 3  # rasterise at 3x and box-filter down: cheap anti-aliasing

# Attribute codes exported with the images (see `render_faces`).
OCCLUDER_NONE, OCCLUDER_SUNGLASSES, OCCLUDER_SCARF = 0, 1, 2
OCCLUDER_NAMES = ("none", "sunglasses", "scarf")


def _ellipse_arc(cx, cy, rx, ry, t0, t1, n):
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def frontal_landmarks_2d():
    """Our mean frontal face: float64 [68, 2] (x, y) in 96x96 face coordinates.

    The point order is iBUG-68: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
    mouth 48-67. Image y grows downwards.
    """
    pts = np.zeros((NUM_LANDMARKS, 2))
    pts[0:17] = _ellipse_arc(48, 47, 35, 45, np.pi + 0.18, -0.18, 17)
    pts[17:22] = _ellipse_arc(32, 34, 11, 4, np.pi, 2 * np.pi, 5)
    pts[22:27] = _ellipse_arc(64, 34, 11, 4, np.pi, 2 * np.pi, 5)
    pts[27:31] = np.stack([np.full(4, 48.0), np.linspace(40, 58, 4)], 1)
    pts[31:36] = np.stack([np.linspace(41, 55, 5), [61, 62.5, 63, 62.5, 61]], 1)
    for start, cx in ((36, 33.0), (42, 63.0)):
        w, h = 7.0, 3.0
        pts[start:start + 6] = [(cx - w, 42), (cx - w / 3, 42 - h), (cx + w / 3, 42 - h),
                                (cx + w, 42), (cx + w / 3, 42 + h), (cx - w / 3, 42 + h)]
    outer = _ellipse_arc(48, 75, 14, 6, np.pi, -np.pi, 13)[:12]
    pts[48:60] = outer
    pts[60:68] = _ellipse_arc(48, 75, 9, 2.0, np.pi, -np.pi, 9)[:8]
    return pts


def frontal_depth(pts2d):
    """A plausible depth (towards the viewer) for each frontal landmark, [68]."""
    x = (pts2d[:, 0] - 48.0) / 42.0
    z = 28.0 * np.sqrt(np.clip(1.0 - x ** 2, 0.05, None))
    z[27:31] += np.linspace(4, 14, 4)   # nose bridge rises to the tip
    z[31:36] += [6, 9, 11, 9, 6]
    z[48:68] += 3.0
    return z


# Frame points of the original template: corners and edge midpoints of a 110 px
# frame at 1 / 55 / 110, in the same order as the real landmark68_7.mat.
_FRAME_X = np.array([1, 1, 1, 55, 110, 110, 110, 55], np.float64)
_FRAME_Y = np.array([1, 55, 110, 110, 110, 55, 1, 1], np.float64)


def frame_points(image_size):
    """The 8 frame points [8, 2] for an image of ``image_size`` pixels."""
    s = (image_size - 1) / 109.0
    return np.stack([1 + (_FRAME_X - 1) * s, 1 + (_FRAME_Y - 1) * s], axis=1)


def frontal_template():
    """Our frontal template in the layout of ``landmark68_7.mat``: float32 [2, 76]."""
    pts = np.concatenate([frontal_landmarks_2d(), frame_points(110)], axis=0)
    return pts.T.astype(np.float32)


@dataclasses.dataclass
class Identity:
    """Identity-level generative attributes (all stable across a subject's images)."""
    shape: np.ndarray        # [68, 3] 3-D landmarks (x, y, z), face coordinates
    skin: np.ndarray         # [3] RGB in [0, 1]
    hair: np.ndarray         # [3]
    iris: np.ndarray         # [3]
    lips: np.ndarray         # [3]
    brow: np.ndarray         # [3]
    hairline: float          # forehead height above the brows, px
    brow_thickness: float    # px
    gender: int              # 0 / 1, shapes jaw width and hair length
    skin_tone: int           # 1..6, the bin of the skin lightness
    facial_hair: int         # 0 / 1
    age: int                 # age group 1..5 (darkens / greys the hair)
    mole: np.ndarray         # [3] barycentric weights inside triangle (jaw 4, 31, 48)
    shape_params: np.ndarray  # [6] the shape coefficients the shape came from


SHAPE_PARAM_NAMES = ("jaw_width", "face_length", "eye_spacing", "eye_size",
                     "nose_length", "mouth_width")


HAIR_PALETTE = np.array([[0.08, 0.06, 0.05], [0.35, 0.22, 0.1], [0.6, 0.22, 0.08],
                         [0.85, 0.7, 0.4], [0.55, 0.5, 0.45]])
IRIS_PALETTE = np.array([[0.15, 0.1, 0.05], [0.35, 0.25, 0.12], [0.3, 0.55, 0.3],
                         [0.25, 0.45, 0.75]])


def _palette(colours, t):
    """The colour at ``t`` in [0, 1] along a piecewise-linear palette [K, 3]."""
    x = t * (len(colours) - 1)
    i = min(int(x), len(colours) - 2)
    return colours[i] + (x - i) * (colours[i + 1] - colours[i])


def sample_identity(rng):
    """Draws one identity from ``rng`` (a numpy Generator)."""
    pts = frontal_landmarks_2d()
    gender = int(rng.integers(0, 2))
    # Clipped so that no face leaves the drawable range at +-2.5 sigma; the
    # effect sizes are chosen to be visible at 96 px (a few pixels a sigma).
    p = np.clip(rng.normal(0.0, 1.0, size=6), -2.5, 2.5)
    jaw, length, spacing, eye, nose, mouth = p
    jaw = jaw + 0.6 * (gender - 0.5)
    shape = pts.copy()
    cx = 48.0
    shape[0:17, 0] = cx + (shape[0:17, 0] - cx) * (1 + 0.09 * jaw)
    shape[0:17, 1] = 47 + (shape[0:17, 1] - 47) * (1 + 0.07 * length)
    shape[48:68, 1] += 2.5 * length
    for start, sign in ((36, -1), (42, 1)):
        sl = slice(start, start + 6)
        c = shape[sl].mean(0)
        shape[sl] = c + (shape[sl] - c) * (1 + 0.18 * eye)
        shape[sl, 0] += sign * 2.6 * spacing
    shape[17:22, 0] -= 1.8 * spacing
    shape[22:27, 0] += 1.8 * spacing
    shape[28:36, 1] += 2.8 * nose * np.linspace(0.3, 1, 8)
    shape[31:36, 0] = cx + (shape[31:36, 0] - cx) * (1 + 0.12 * nose)
    shape[48:68, 0] = cx + (shape[48:68, 0] - cx) * (1 + 0.16 * mouth)
    shape3d = np.concatenate([shape, frontal_depth(shape)[:, None]], axis=1)

    lightness = rng.uniform(0.25, 0.95)
    skin_tone = int(np.clip(6 - int(lightness * 6.4), 1, 6))
    skin = np.clip(np.array([0.95, 0.72, 0.58]) * lightness
                   + rng.normal(0, 0.06, 3) + 0.05, 0, 1)
    age = int(rng.integers(1, 6))
    # Hair and iris colours are drawn along a palette (continuous, so that no
    # two subjects need share one), then greyed with age.
    hair = np.clip(_palette(HAIR_PALETTE, rng.random()) + rng.normal(0, 0.06, 3), 0, 1)
    hair = hair + (age - 1) / 4.0 * 0.5 * (0.8 - hair)  # greying
    iris = np.clip(_palette(IRIS_PALETTE, rng.random()) + rng.normal(0, 0.06, 3), 0, 1)
    lips = np.clip(skin * np.array([1.0, 0.6, 0.6]) + rng.normal(0, 0.05, 3), 0, 1)
    brow = np.clip(hair * 0.7 + rng.normal(0, 0.03, 3), 0, 1)
    facial_hair = int(gender == 1 and rng.random() < 0.5)
    mole = rng.dirichlet([1.0, 1.0, 1.0])
    return Identity(shape=shape3d, skin=skin, hair=hair, iris=iris, lips=lips,
                    brow=brow, hairline=float(rng.uniform(8, 16)),
                    brow_thickness=float(rng.uniform(1.2, 3.0)), gender=gender,
                    skin_tone=skin_tone, facial_hair=facial_hair, age=age,
                    mole=mole, shape_params=p)


@dataclasses.dataclass
class ImageParams:
    """Image-level generative attributes."""
    yaw: float         # degrees, positive turns the face to the image's right
    pitch: float       # degrees
    roll: float        # degrees
    scale: float
    shift: np.ndarray  # [2] px
    smile: float       # 0..1
    mouth_open: float  # 0..1
    brow_raise: float  # 0..1
    light_angle: float  # radians, direction the light comes from
    light_strength: float
    background: np.ndarray  # [2, 3] gradient end colours
    blur: float
    noise: float
    occluder: int      # OCCLUDER_*


def sample_image_params(rng, max_yaw=35.0, occlusion_rate=0.0):
    """Draws pose, expression, lighting and nuisance for one image."""
    occluder = OCCLUDER_NONE
    if rng.random() < occlusion_rate:
        occluder = int(rng.integers(1, 3))
    return ImageParams(
        yaw=float(rng.uniform(-max_yaw, max_yaw)),
        pitch=float(rng.uniform(-12, 12)), roll=float(rng.uniform(-10, 10)),
        scale=float(rng.uniform(0.9, 1.08)), shift=rng.uniform(-3, 3, 2),
        smile=float(rng.beta(1.2, 2.0)), mouth_open=float(rng.beta(1.0, 3.0)),
        brow_raise=float(rng.beta(1.0, 3.0)),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.0, 0.35)),
        background=rng.uniform(0.2, 0.8, (2, 3)), blur=float(rng.uniform(0, 0.8)),
        noise=float(rng.uniform(0.005, 0.03)), occluder=occluder)


# The identity as a decoder should show it: what a representation that is
# invariant to pose, expression, light and occluders can determine.
CANONICAL_BACKGROUND = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])


def canonical_params():
    """Frontal, neutral, evenly lit, unoccluded, on a plain mid-grey background,
    no blur or noise: the image-level attributes of a canonical portrait."""
    return ImageParams(yaw=0.0, pitch=0.0, roll=0.0, scale=1.0, shift=np.zeros(2),
                       smile=0.0, mouth_open=0.0, brow_raise=0.0, light_angle=0.0,
                       light_strength=0.0, background=CANONICAL_BACKGROUND.copy(),
                       blur=0.0, noise=0.0, occluder=OCCLUDER_NONE)


def render_canonical(identities, image_size, face_offset):
    """Canonical portraits (`canonical_params`) of ``identities``: uint8 [N, S, S, 3]."""
    rng = np.random.default_rng(0)  # unused: the canonical portrait has no noise
    return np.stack([render_face(identity, canonical_params(), image_size, face_offset,
                                 rng)[0] for identity in identities])


def _rotation(yaw, pitch, roll):
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _expressed_shape(identity, params):
    """The identity's 3-D landmarks with the image's expression applied."""
    s = identity.shape.copy()
    # Smile: mouth corners out and up; open mouth: lower lip and jaw tip down.
    s[[48, 60], 0] -= 2.5 * params.smile
    s[[54, 64], 0] += 2.5 * params.smile
    s[[48, 54, 60, 64], 1] -= 2.0 * params.smile
    lower = [55, 56, 57, 58, 59, 65, 66, 67]
    s[lower, 1] += 6.0 * params.mouth_open
    s[6:11, 1] += 2.5 * params.mouth_open
    s[17:27, 1] -= 3.0 * params.brow_raise
    return s


def project_landmarks(identity, params, image_size, face_offset):
    """Image-space landmarks [68, 2] and the head's visible-side weight.

    Args:
        face_offset: where the 96x96 face frame sits in the image (7 for 110 px
            CASIA images, 0 for 96 px IJB-A crops).
    """
    s = _expressed_shape(identity, params)
    centre = np.array([48.0, 55.0, 0.0])
    rotated = (s - centre) @ _rotation(params.yaw, params.pitch, params.roll).T
    xy = rotated[:, :2] * params.scale + centre[:2] + params.shift + face_offset
    return xy


def keep_inside(identity, params, image_size, face_offset, margin=1.0):
    """``params`` with the shift (and, if need be, the scale) changed just enough
    that every landmark lies at least ``margin`` px inside the image.

    A long face pitched down with an open mouth at the largest scale can
    otherwise put the chin outside the frame, where no landmark file can
    hold it.
    """
    lm = project_landmarks(identity, params, image_size, face_offset)
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    room = (image_size - 1 - margin) - margin
    extent = (hi - lo).max()
    if extent > room:
        params = dataclasses.replace(params, scale=params.scale * room / extent)
        lm = project_landmarks(identity, params, image_size, face_offset)
        lo, hi = lm.min(axis=0), lm.max(axis=0)
    move = (np.maximum(0.0, margin - lo)
            - np.maximum(0.0, hi - (image_size - 1 - margin)))
    if move.any():
        params = dataclasses.replace(params, shift=params.shift + move)
    return params


def _poly(draw, pts, fill, k):
    draw.polygon([(float(x) * k, float(y) * k) for x, y in pts], fill=fill)


def _colour(c):
    return tuple(int(v) for v in np.clip(np.asarray(c) * 255, 0, 255))


def _offset_curve(pts, normal_shift):
    """Shifts a polyline along its upward normal (for brows, hair line)."""
    return pts + np.array([0.0, -normal_shift])


def render_face(identity, params, image_size, face_offset, rng):
    """Renders one face.

    Returns:
        (image uint8 [S, S, 3], landmarks float64 [68, 2] in image pixels).
    """
    k = SUPERSAMPLE
    big = image_size * k
    lm = project_landmarks(identity, params, image_size, face_offset)
    # Background: a linear gradient between two colours.
    t = np.linspace(0, 1, big)[None, :, None]
    bg = params.background[0] * (1 - t) + params.background[1] * t
    canvas = np.broadcast_to(bg, (big, big, 3))
    img = Image.fromarray((canvas * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)

    jaw = lm[0:17]
    brows = lm[17:27]
    # Forehead arc: the brows lifted by the forehead height, widened to the jaw.
    top = np.concatenate([[jaw[-1]], brows[::-1], [jaw[0]]])
    up = identity.hairline + 6.0
    forehead = top + np.array([0.0, -up]) * params.scale
    head = np.concatenate([jaw, forehead])
    # Hair: the head outline enlarged, drawn first so the face covers it.
    centre = head.mean(0)
    hair_grow = 1.16 + 0.12 * (1 - identity.gender)
    _poly(draw, centre + (head - centre) * np.array([hair_grow, 1.1]),
          _colour(identity.hair), k)
    _poly(draw, head, _colour(identity.skin), k)
    # Age lines: one forehead wrinkle per age group above 2 (drawn before the
    # hair line, which covers any that reach it).
    for j in range(max(0, identity.age - 2)):
        line = brows[2:8] + np.array([0.0, -(identity.brow_thickness + 3.0 + 2.5 * j)]) \
            * params.scale
        draw.line([(float(x) * k, float(y) * k) for x, y in line],
                  fill=_colour(identity.skin * 0.72), width=max(1, int(0.8 * k)))
    # Hair line over the top of the forehead.
    fringe_low = top + np.array([0.0, -identity.hairline]) * params.scale
    _poly(draw, np.concatenate([forehead, fringe_low[::-1]]), _colour(identity.hair), k)
    if identity.facial_hair:
        beard = np.concatenate([lm[4:13], lm[[54, 55, 56, 57, 58, 59, 48]]])
        _poly(draw, beard, _colour(identity.hair * 0.8), k)
    # Mole at fixed barycentric weights of a cheek triangle.
    mole = identity.mole @ lm[[4, 31, 48]]
    r = 0.9 * k
    draw.ellipse([mole[0] * k - r, mole[1] * k - r, mole[0] * k + r, mole[1] * k + r],
                 fill=_colour(identity.skin * 0.45))
    # Brows: the brow line thickened upwards.
    for sl in (slice(0, 5), slice(5, 10)):
        b = brows[sl]
        _poly(draw, np.concatenate([b, _offset_curve(b, identity.brow_thickness)[::-1]]),
              _colour(identity.brow), k)
    # Eyes: sclera, iris, pupil. The iris follows the yaw a little.
    for sl in (slice(36, 42), slice(42, 48)):
        eye = lm[sl]
        _poly(draw, eye, _colour([0.93, 0.93, 0.9]), k)
        c = eye.mean(0) + np.array([params.yaw / 35.0 * 1.2, 0.0])
        rr = 0.42 * np.linalg.norm(eye[3] - eye[0]) / 2 * k
        draw.ellipse([c[0] * k - rr, c[1] * k - rr, c[0] * k + rr, c[1] * k + rr],
                     fill=_colour(identity.iris))
        rp = rr * 0.45
        draw.ellipse([c[0] * k - rp, c[1] * k - rp, c[0] * k + rp, c[1] * k + rp],
                     fill=(15, 10, 10))
    # Nose: bridge shadow and nostrils.
    nose_shade = _colour(identity.skin * 0.7)
    draw.line([(float(x) * k, float(y) * k) for x, y in lm[27:31]], fill=nose_shade,
              width=max(1, int(1.2 * k)))
    for i in (32, 34):
        n = lm[i]
        rn = 1.2 * k
        draw.ellipse([n[0] * k - rn, n[1] * k - rn * 0.7, n[0] * k + rn,
                      n[1] * k + rn * 0.7], fill=_colour(identity.skin * 0.35))
    # Mouth: lips, then the dark opening.
    _poly(draw, lm[48:60], _colour(identity.lips), k)
    if params.mouth_open > 0.15:
        _poly(draw, lm[60:68], (40, 15, 15), k)
    # Occluders.
    if params.occluder == OCCLUDER_SUNGLASSES:
        for sl in (slice(36, 42), slice(42, 48)):
            eye = lm[sl]
            c, w = eye.mean(0), np.linalg.norm(eye[3] - eye[0]) * 0.8 + 2
            draw.ellipse([(c[0] - w) * k, (c[1] - w * 0.6) * k, (c[0] + w) * k,
                          (c[1] + w * 0.6) * k], fill=(20, 20, 25))
        draw.line([tuple(lm[39] * k), tuple(lm[42] * k)], fill=(20, 20, 25),
                  width=int(1.5 * k))
    elif params.occluder == OCCLUDER_SCARF:
        scarf = np.concatenate([lm[1:16], lm[[30]] + np.array([0, 2.0])])
        _poly(draw, scarf, _colour(1 - identity.skin * 0.6), k)

    img = img.resize((image_size, image_size), Image.BOX)
    # Blurred after the box filter: the same radius in output pixels costs a
    # ninth of blurring the supersampled canvas.
    if params.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(params.blur))
    out = np.asarray(img, np.float64) / 255.0
    # Directional light: a linear brightness ramp across the image.
    yy, xx = np.mgrid[0:image_size, 0:image_size] / image_size - 0.5
    ramp = np.cos(params.light_angle) * xx + np.sin(params.light_angle) * yy
    out = out * (1.0 + params.light_strength * ramp[..., None] * 2)
    out = out + rng.normal(0, params.noise, out.shape)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), lm


def image_attributes(identity, params):
    """Flat dict of the exact generative attributes of one image."""
    return {
        "yaw": params.yaw, "pitch": params.pitch, "roll": params.roll,
        "smile": params.smile, "mouth_open": params.mouth_open,
        "brow_raise": params.brow_raise, "light_angle": params.light_angle,
        "light_strength": params.light_strength, "occluder": params.occluder,
        "gender": identity.gender, "skin_tone": identity.skin_tone,
        "facial_hair": identity.facial_hair, "age": identity.age,
        "skin_r": identity.skin[0], "skin_g": identity.skin[1],
        "skin_b": identity.skin[2], "hair_r": identity.hair[0],
        "hair_g": identity.hair[1], "hair_b": identity.hair[2],
        **{name: identity.shape_params[i] for i, name in enumerate(SHAPE_PARAM_NAMES)},
    }


def render_faces(identities, subject_of_image, image_size, face_offset, seed,
                 max_yaw=35.0, occlusion_rate=0.0):
    """Renders a set of images.

    Args:
        identities: list of `Identity`.
        subject_of_image: int [N] index into ``identities`` per image.
        image_size: 110 (CASIA layout) or 96 (IJB-A layout).
        face_offset: position of the 96 px face frame (7 or 0).
        seed: the set's seed; image i depends only on (seed, i).
        occlusion_rate: fraction of images with a sunglasses or scarf occluder.

    Returns:
        images uint8 [N, S, S, 3]; landmarks float64 [N, 2, 76] (68 facial points
        then 8 frame points, original layout); attributes dict name -> [N] array.
    """
    n = len(subject_of_image)
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    landmarks = np.empty((n, 2, 76), np.float64)
    frame = frame_points(image_size)
    attrs = {}
    for i, sid in enumerate(subject_of_image):
        rng = np.random.default_rng((seed, i))
        params = keep_inside(identities[sid],
                             sample_image_params(rng, max_yaw, occlusion_rate),
                             image_size, face_offset)
        images[i], lm = render_face(identities[sid], params, image_size,
                                    face_offset, rng)
        landmarks[i] = np.concatenate([lm, frame]).T
        for key, value in image_attributes(identities[sid], params).items():
            attrs.setdefault(key, np.empty(n, np.float64))[i] = value
    return images, landmarks, attrs
