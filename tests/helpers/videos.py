"""Fixture videos the tests write themselves (PyAV), for tests where a real clip is not the point.

    from tests.helpers.videos import write_video, write_clips
    path = write_video(tmp_path / "a.mp4", frames=48, size=(128, 96), fps=30)
    paths = write_clips(tmp_path, ["demo", "video2"])   # stand-ins for ../shared/data/videos

The content is deterministic (a function of the frame index and ``seed``): a colour gradient that is
different left to right and top to bottom (so flips and crops change a clip), two shapes moving at
different speeds (so frames and clips differ in time), and a bar code of the frame index along the
top edge (so no two frames are alike).
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["render_frame", "write_video", "write_raw_h264", "CLIPS", "write_clips"]

# Codec per container (the first one this PyAV build can encode is used).
_CODECS = {
    ".mp4": ("libx264", "h264", "mpeg4"),
    ".mkv": ("libx264", "h264", "mpeg4"),
    ".mov": ("libx264", "h264", "mpeg4"),
    ".avi": ("mpeg4", "mjpeg"),
    ".webm": ("libvpx-vp9", "libvpx"),
}

# Stand-ins for the real clips in ../shared/data/videos: their names, frame counts and frame rates
# (so durations match: test.mp4 is 10 s at 30 fps, video2.mp4 12 s), smaller frames except the
# portrait video2 (144 x 256, as the real one).
CLIPS: dict[str, dict] = {
    "demo": dict(frames=280, fps=28, size=(136, 104)),
    "test": dict(frames=300, fps=30, size=(136, 104)),
    "video1": dict(frames=247, fps=30, size=(180, 104)),
    "video2": dict(frames=360, fps=30, size=(256, 144), portrait=True),
    "video3": dict(frames=300, fps=25, size=(136, 104)),
}


@functools.lru_cache(maxsize=16)
def _scene(width: int, height: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(background [H, W, 3] uint8, shape colour, disc stencil [2r+1, 2r+1] bool)`` of a seed."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, size=(4, 3)).astype(np.float32)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    background = colours[0] * (1 - x) * (1 - y) + colours[1] * x * x + colours[2] * y * (1 - x)
    radius = max(3, min(width, height) // 6)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return np.clip(background, 0, 255).astype(np.uint8), colours[3].astype(np.uint8), yy**2 + xx**2 <= radius**2


def render_frame(index: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Frame ``index`` of the fixture content: uint8 ``[height, width, 3]``."""
    background, colour, disc = _scene(width, height, seed)
    frame = background.copy()
    # A square sliding left to right (and wrapping), a disc bouncing diagonally.
    side = max(4, min(width, height) // 3)
    left = (index * max(1, width // 40) + seed * 7) % (width + side) - side
    top = height // 5
    frame[top : top + side, max(left, 0) : max(left + side, 0)] = colour
    radius = disc.shape[0] // 2
    span_x, span_y = max(1, width - 2 * radius - 1), max(1, height - 2 * radius - 1)
    cx = abs((index * 2 + seed * 3) % (2 * span_x) - span_x)
    cy = abs((index * 3 + seed * 5) % (2 * span_y) - span_y)
    patch = frame[cy : cy + disc.shape[0], cx : cx + disc.shape[1]]
    patch[disc] = 255 - colour
    # The frame index in binary, one block per bit along the top edge (white = 1).
    block = max(2, width // 12)
    for b in range(min(12, width // block)):
        frame[: max(2, height // 16), b * block : (b + 1) * block] = 250 if (index >> b) & 1 else 5
    return frame


def _encoder(suffix: str, codec: str | None) -> str:
    import av

    names = (codec,) if codec else _CODECS.get(suffix.lower(), ("mpeg4",))
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # not in this FFmpeg build
            continue
    raise RuntimeError(f"no encoder for {suffix} among {names} in this PyAV build")


def write_video(
    path: str | os.PathLike,
    frames: int = 48,
    size: tuple[int, int] = (128, 96),
    fps: int | float | Fraction = 30,
    *,
    portrait: bool = False,
    seed: int = 0,
    codec: str | None = None,
) -> str:
    """Writes a fixture video of ``frames`` frames of ``size`` (width, height; even numbers) at ``fps``
    to ``path`` (container from its suffix: .mp4, .mkv, .mov, .avi, .webm) and returns the path.

    ``portrait`` puts the longer side of ``size`` vertically. ``seed`` changes colours and motion."""
    import av

    width, height = (min(size), max(size)) if portrait else size
    if width % 2 or height % 2:
        raise ValueError(f"size must be even for yuv420p, got {width} x {height}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_encoder(path.suffix, codec), rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if stream.codec_context.name == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(render_frame(i, width, height, seed), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def write_clips(folder: str | os.PathLike, names: Iterable[str] = tuple(CLIPS), suffix: str = ".mp4") -> dict[str, str]:
    """Writes the :data:`CLIPS` stand-ins named ``names`` into ``folder`` (one seed each, so they
    differ); returns ``{name: path}``."""
    folder = Path(folder)
    order = list(CLIPS)
    return {n: write_video(folder / f"{n}{suffix}", seed=order.index(n), **CLIPS[n]) for n in names}


def write_raw_h264(path: str | os.PathLike, frames: int = 40, size: tuple[int, int] = (64, 48), fps: int = 12) -> str:
    """Writes the fixture content as a raw H.264 elementary stream (no container: no frame count, no
    timestamps) and returns the path."""
    import av

    width, height = size
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream(_encoder(".mp4", None), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(render_frame(i, width, height), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)
