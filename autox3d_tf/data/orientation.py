"""Display orientation of decoded frames: the container's display matrix (phone videos shot in
portrait, mirrored front-camera clips) applied the way the ``ffmpeg`` command applies it.

    orient = display_transform(frame)        # from the first decoded av.VideoFrame
    rgb = orient(frame.to_ndarray(format="rgb24"))

The rules follow FFmpeg's ``fftools`` autorotation: a rotation of 90, 180 or 270 degrees (with
its flips) becomes a transpose / flip of the pixel array; other angles are rounded to the nearest
multiple of 90 degrees (FFmpeg would rotate and pad; no real camera writes them).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["Orientation", "display_matrix", "display_transform", "identity"]

Orientation = Callable[[np.ndarray], np.ndarray]


def identity(array: np.ndarray) -> np.ndarray:
    """The orientation of a frame without a display matrix."""
    return array


def display_matrix(frame) -> np.ndarray | None:
    """The frame's 3x3 display matrix (int32, 16.16 fixed point, FFmpeg's row order), or None."""
    try:
        from av.sidedata.sidedata import Type

        side = frame.side_data.get(Type.DISPLAYMATRIX)
    except (ImportError, AttributeError, KeyError):
        return None
    if side is None:
        return None
    values = np.frombuffer(bytes(side), dtype="<i4")
    return values.copy() if values.size == 9 else None


def _rotate(k: int, flip_rows: bool = False, flip_cols: bool = False) -> Orientation:
    def apply(array: np.ndarray) -> np.ndarray:
        out = np.rot90(array, k, axes=(0, 1)) if k else array
        if flip_rows:
            out = out[::-1]
        if flip_cols:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    return apply


def _transpose(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(array, 0, 1))


def display_transform(frame) -> Orientation:
    """The function that turns ``frame``'s ``[H, W, C]`` pixels into what a player displays."""
    m = display_matrix(frame)
    if m is None:
        return identity
    a, b, c, d = (float(v) for v in (m[0], m[1], m[3], m[4]))
    s0, s1 = np.hypot(a, c), np.hypot(b, d)
    if s0 == 0 or s1 == 0:
        return identity
    # FFmpeg's get_rotation: -av_display_rotation_get(m), the clockwise angle, in [0, 360).
    theta = int(round(float(np.degrees(np.arctan2(b / s1, a / s0))) / 90.0)) % 4 * 90
    if theta == 90:
        return _transpose if c > 0 else _rotate(-1)  # "cclock_flip" / "clock"
    if theta == 180:
        return _rotate(0, flip_rows=d < 0, flip_cols=a < 0)
    if theta == 270:
        return _rotate(-1, flip_rows=True) if c < 0 else _rotate(1)  # "clock_flip" / "cclock"
    return _rotate(0, flip_rows=True) if d < 0 else identity
