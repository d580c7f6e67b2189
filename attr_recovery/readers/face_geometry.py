"""Head pose, frontalisation and shape / expression descriptors from 68 landmarks.

Not in the original code. All functions are vectorised numpy over N faces and
take iBUG-68 landmarks [N, 68, 2] in pixels of the 96 px face frame (image y
grows downwards), the frame of the IJB-A-format crops and of the centre 96 px
crop of the CASIA-format 110 px images.

Pose (scaled orthographic camera). The landmarks are fitted by a mean 3-D face
M [68, 3] (our synthetic generator's mean face with its depths, the same
coordinate convention): x_i ~ s * P R (M_i - mean(M)) + t, P = [I2 0]. The
2 x 3 least-squares map is projected onto scaled orthonormal rows (SVD), the
third row is their cross product, and R = Rz(roll) Rx(pitch) Ry(yaw) is
decomposed in the generator's convention (yaw > 0 turns the face to the
image's right).

Frontalisation. What the rigid fit leaves over, e_i = x_i - (s P R M_i + t),
is identity and expression. Assuming those deformations lie in the face plane
(no depth change), e_i = s (P R)[:, :2] d_i, so the frontal landmark is
F_i = M_i[:2] + d_i with d_i = (s (P R)[:, :2])^-1 e_i: landmarks in the mean
face's frame (pose, scale and position removed), units of its 96 px frame.

Descriptors (`DESCRIPTOR_NAMES`, all on F; "eye centre" = mean of an eye's 6
points; y grows downwards):

- ``lm_jaw_width``: mean horizontal distance of the jaw pairs (0, 16), (2, 14),
  (4, 12);
- ``lm_face_length``: chin (8) below the line of the eye centres (it includes
  the jaw drop of an open mouth);
- ``lm_eye_spacing``: horizontal distance of the eye centres;
- ``lm_eye_size``: mean eye width |36 - 39|, |42 - 45|;
- ``lm_nose_length``: nose bridge top (27) to nose bottom (33), vertical;
- ``lm_mouth_width``: mouth corners |48 - 54| (a smile widens it);
- ``lm_smile``: height of the mouth corners (48, 54) above the upper inner lip
  centre (62), positive when the corners rise;
- ``lm_mouth_open``: mean inner-lip gap (61-67, 62-66, 63-65);
- ``lm_brow_raise``: mean height of the brows (17..26) above the upper eyelids
  (37, 38, 43, 44).

Together with ``lm_yaw``, ``lm_pitch``, ``lm_roll`` (degrees) they form the
landmark-based attributes of `landmark_attributes`.
"""
import numpy as np

from interp_fr.data import synthetic_faces

NUM_LANDMARKS = 68
SHAPE_DESCRIPTORS = ("lm_jaw_width", "lm_face_length", "lm_eye_spacing",
                     "lm_eye_size", "lm_nose_length", "lm_mouth_width")
EXPRESSION_DESCRIPTORS = ("lm_smile", "lm_mouth_open", "lm_brow_raise")
POSE_NAMES = ("lm_yaw", "lm_pitch", "lm_roll")
DESCRIPTOR_NAMES = SHAPE_DESCRIPTORS + EXPRESSION_DESCRIPTORS
LANDMARK_ATTRIBUTES = POSE_NAMES + DESCRIPTOR_NAMES
# All 68: every part of the face changes with some identity coefficient, and a
# fit on the nose and eyes alone (tried) lets eye spacing leak into the scale
# more than the full fit lets the jaw.
FIT_POINTS = tuple(range(NUM_LANDMARKS))
DESCRIPTOR_GROUP = dict([(n, "pose") for n in POSE_NAMES]
                        + [(n, "shape") for n in SHAPE_DESCRIPTORS]
                        + [(n, "expression") for n in EXPRESSION_DESCRIPTORS])
DESCRIPTOR_UNIT = dict([(n, "deg") for n in POSE_NAMES]
                       + [(n, "px") for n in DESCRIPTOR_NAMES])


def mean_face_3d():
    """The mean 3-D face [68, 3] (x, y, depth towards the viewer), 96 px frame."""
    pts = synthetic_faces.frontal_landmarks_2d()
    return np.concatenate([pts, synthetic_faces.frontal_depth(pts)[:, None]], axis=1)


def _check(landmarks):
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected landmarks [N, 68, 2], got {np.shape(landmarks)}")
    return lm


def fit_pose(landmarks, mean_shape=None, points=FIT_POINTS):
    """Scaled orthographic pose of each face.

    Args:
      landmarks: [N, 68, 2] pixels.
      mean_shape: [68, 3] (default `mean_face_3d`).
      points: the landmark indices the fit uses (default `FIT_POINTS`).
    Returns: dict with ``rotation`` [N, 3, 3], ``scale`` [N], ``translation``
      [N, 2] (image position of the mean shape's centroid), ``yaw``, ``pitch``,
      ``roll`` [N] degrees.
    """
    lm = _check(landmarks)
    m = mean_face_3d() if mean_shape is None else np.asarray(mean_shape, np.float64)
    points = np.asarray(points)
    mc = m[points] - m[points].mean(0)
    t = lm[:, points].mean(1)                          # [N, 2]
    xc = lm[:, points] - t[:, None]
    # Least squares x_c = mc @ A^T, A [2, 3]: A^T = pinv(mc) @ x_c.
    a = np.einsum("kp,npj->njk", np.linalg.pinv(mc), xc)   # [N, 2, 3]
    u, s, vt = np.linalg.svd(a, full_matrices=False)     # u [N,2,2] s [N,2] vt [N,2,3]
    rows = u @ vt                                        # closest orthonormal rows
    scale = s.mean(1)
    r3 = np.cross(rows[:, 0], rows[:, 1])
    rot = np.concatenate([rows, r3[:, None]], axis=1)
    # R = Rz(roll) Rx(pitch) Ry(yaw): row 3 = [-cos p sin y, sin p, cos p cos y].
    # Report the translation of the whole mean shape's centroid.
    t = t + scale[:, None] * (rows @ (m.mean(0) - m[points].mean(0)))
    pitch = np.degrees(np.arcsin(np.clip(rot[:, 2, 1], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(-rot[:, 2, 0], rot[:, 2, 2]))
    roll = np.degrees(np.arctan2(-rot[:, 0, 1], rot[:, 1, 1]))
    return {"rotation": rot, "scale": scale, "translation": t,
            "yaw": yaw, "pitch": pitch, "roll": roll}


def frontalise(landmarks, pose=None, mean_shape=None):
    """Frontal landmarks [N, 68, 2] in the mean face's frame (see module docstring)."""
    lm = _check(landmarks)
    m = mean_face_3d() if mean_shape is None else np.asarray(mean_shape, np.float64)
    pose = pose or fit_pose(lm, m)
    mc = m - m.mean(0)
    proj = pose["rotation"][:, :2]                        # [N, 2, 3]
    fitted = (pose["scale"][:, None, None]
              * np.einsum("nij,kj->nki", proj, mc)) + pose["translation"][:, None]
    resid = lm - fitted
    inplane = pose["scale"][:, None, None] * proj[:, :, :2]   # [N, 2, 2]
    d = np.einsum("nij,nkj->nki", np.linalg.inv(inplane), resid)
    return m[None, :, :2] + d


def shape_descriptors(frontal):
    """Descriptors of frontal landmarks [N, 68, 2] -> dict name -> [N] (`DESCRIPTOR_NAMES`)."""
    f = _check(frontal)
    x, y = f[..., 0], f[..., 1]
    eye_l = f[:, 36:42].mean(1)
    eye_r = f[:, 42:48].mean(1)
    eye_line = 0.5 * (eye_l[:, 1] + eye_r[:, 1])
    return {
        "lm_jaw_width": np.mean([np.abs(x[:, 16 - i] - x[:, i]) for i in (0, 2, 4)], 0),
        "lm_face_length": y[:, 8] - eye_line,
        "lm_eye_spacing": np.abs(eye_r[:, 0] - eye_l[:, 0]),
        "lm_eye_size": 0.5 * (np.linalg.norm(f[:, 39] - f[:, 36], axis=-1)
                              + np.linalg.norm(f[:, 45] - f[:, 42], axis=-1)),
        "lm_nose_length": y[:, 33] - y[:, 27],
        "lm_mouth_width": np.linalg.norm(f[:, 54] - f[:, 48], axis=-1),
        "lm_smile": y[:, 62] - 0.5 * (y[:, 48] + y[:, 54]),
        "lm_mouth_open": np.mean([y[:, 67] - y[:, 61], y[:, 66] - y[:, 62],
                                  y[:, 65] - y[:, 63]], 0),
        "lm_brow_raise": (f[:, [37, 38, 43, 44], 1].mean(1)
                          - f[:, 17:27, 1].mean(1)),
    }


def landmark_attributes(landmarks, mean_shape=None):
    """Pose and descriptors of landmarks [N, 68, 2] -> dict name -> float64 [N].

    Keys: `LANDMARK_ATTRIBUTES` (``lm_yaw``, ``lm_pitch``, ``lm_roll`` in
    degrees, the descriptors in pixels of the mean face's 96 px frame).
    """
    lm = _check(landmarks)
    pose = fit_pose(lm, mean_shape)
    out = {"lm_yaw": pose["yaw"], "lm_pitch": pose["pitch"], "lm_roll": pose["roll"]}
    out.update(shape_descriptors(frontalise(lm, pose, mean_shape)))
    return out


def interocular(landmarks):
    """Outer eye-corner distance |36 - 45| [N], the WFLW / 300-W error normaliser."""
    lm = _check(landmarks)
    return np.linalg.norm(lm[:, 45] - lm[:, 36], axis=-1)
