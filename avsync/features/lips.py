"""The lip contour in a face-centred frame: pose- and scale-normalised lip geometry.

The face mesh gives 468 points in 3-D (x, y in frame pixels, z depth on the x scale).
The rigid upper face (eye corners, nose ridge, forehead, temples) barely moves when a
person speaks, so a similarity transform (rotation in 3-D, scale, translation) that
carries those points onto a reference face takes out head pose, distance to the
camera and where the face is in the picture; the same transform applied to the 40
lip-contour points (outer and inner lip) leaves how the mouth is shaped, in units of
the reference's eye distance. That is the geometry stream of the sync model: unlike
the mouth crop's pixels it carries nothing of skin, beard, lighting or teeth, so it
cannot learn a face instead of a mouth.

The reference is the generalised-Procrustes mean of the stable points over real
talking heads (tools/lip_reference.py prints it); it is a constant here so the
normalisation never depends on the clip.
"""

from __future__ import annotations

import numpy as np

# MediaPipe face-mesh lip contours, each ring left corner -> upper lip -> right corner
# -> lower lip, so a mirror image is an index permutation (MIRROR)
OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
             375, 321, 405, 314, 17, 84, 181, 91, 146)
INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
             324, 318, 402, 317, 14, 87, 178, 88, 95)
LIP_POINTS = OUTER_LIP + INNER_LIP
N_LIP = len(LIP_POINTS)


def _mirror(ring: tuple[int, ...]) -> list[int]:
    """Positions of a ring's mirror image: corner <-> corner, upper i <-> upper -i."""
    n = len(ring)  # 20: 0 and 10 are the corners, 1-9 upper, 11-19 lower
    return [(10 - i) % n if i <= 10 else (30 - i) % n for i in range(n)]


MIRROR = np.array(_mirror(OUTER_LIP) + [N_LIP // 2 + i for i in _mirror(INNER_LIP)])

# points of the upper face that do not move with speech (no jaw, cheeks or lips)
STABLE_POINTS = (33, 133, 362, 263,  # eye corners, outer and inner
                 168, 6, 197, 195, 5, 4, 1,  # nose ridge to tip
                 10, 151, 9, 8,  # forehead to between the brows
                 127, 356, 234, 454, 93, 323)  # temples, ear-side face edge
_EYE_CORNERS = (0, 3)  # positions in STABLE_POINTS of the outer eye corners

# the mean upper face (generalised Procrustes over real talking heads, eye distance 1,
# centred, x right, y down, z away from the camera): tools/lip_reference.py
REFERENCE = np.array([
    [-0.5000, -0.0591, -0.0057],
    [-0.1939, -0.0266, -0.0591],
    [+0.1939, -0.0266, -0.0591],
    [+0.5000, -0.0591, -0.0057],
    [+0.0000, -0.0282, -0.2494],
    [+0.0000, +0.0697, -0.2675],
    [+0.0000, +0.1611, -0.2955],
    [+0.0000, +0.2489, -0.3301],
    [+0.0000, +0.3412, -0.3645],
    [+0.0000, +0.4372, -0.3613],
    [+0.0000, +0.4969, -0.3169],
    [+0.0000, -0.5349, -0.3627],
    [+0.0000, -0.3627, -0.3487],
    [+0.0000, -0.1918, -0.3228],
    [+0.0000, -0.1067, -0.2805],
    [-0.7797, -0.1964, +0.5240],
    [+0.7797, -0.1964, +0.5240],
    [-0.7698, -0.0657, +0.6188],
    [+0.7698, -0.0657, +0.6188],
    [-0.7599, +0.0824, +0.6719],
    [+0.7599, +0.0824, +0.6719],
], np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, rotation, translation) minimising |scale R src + t - dst| (Umeyama 1991),
    points in rows."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    u, sing, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(len(sing))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a pose
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    var = (a**2).sum() / len(src)
    scale = float((sing * d).sum() / var) if var > 0 else 1.0
    return scale, rotation, mu_d - scale * rotation @ mu_s


def normalise(points: np.ndarray, reference: np.ndarray = REFERENCE) -> np.ndarray:
    """(468, 3) face-mesh points -> (N_LIP, 3) float32 lip contour in the reference frame."""
    scale, rotation, shift = similarity(points[list(STABLE_POINTS)], reference)
    return (scale * points[list(LIP_POINTS)] @ rotation.T + shift).astype(np.float32)


def mirror(lips: np.ndarray) -> np.ndarray:
    """(..., N_LIP, 3) lip contours -> their mirror images (x negated, sides swapped)."""
    out = lips[..., MIRROR, :].copy()
    out[..., 0] = -out[..., 0]
    return out
