"""The built-in synthetic motion dataset: classes that can only be told apart over time.

Each clip shows a random polygon (random shape, colour, size, orientation) moving over a cluttered
background (a random colour gradient with random static shapes). Classes come in pairs that are exact
time reversals of each other:

    0 moving right / 1 moving left, 2 growing / 3 shrinking, 4 moving down / 5 moving up,
    6 rotating clockwise / 7 rotating anticlockwise

A clip of class ``2k + 1`` is the frames of a clip of class ``2k`` played backwards (same random
draw), so every single frame, and any order-free summary of the frames (their mean, their set), has
exactly the same distribution in both classes of a pair: a model that ignores temporal order scores at
chance within each pair, and at chance overall with two classes.

    from autox3d_tf.data.synthetic import write_synthetic_dataset
    info = write_synthetic_dataset("synthetic/")   # MP4 files + annotations.csv (Kinetics style)

The default (4 classes x 100 clips, 64 x 64 px, 16 frames at 12 fps) writes in a few seconds and is
deterministic under ``seed``.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "SyntheticDataset",
    "class_names",
    "render_clip",
    "write_video",
    "write_synthetic_dataset",
]

CLASS_NAMES = (
    "moving right",
    "moving left",
    "growing",
    "shrinking",
    "moving down",
    "moving up",
    "rotating clockwise",
    "rotating anticlockwise",
)

_POLYGONS = ("triangle", "square", "pentagon", "cross", "arrow")


def class_names(num_classes: int) -> list[str]:
    """The first ``num_classes`` class names (2 to 8)."""
    if not 2 <= num_classes <= len(CLASS_NAMES):
        raise ValueError(f"num_classes must be between 2 and {len(CLASS_NAMES)}, got {num_classes}")
    return list(CLASS_NAMES[:num_classes])


def _outline(kind: str) -> list[np.ndarray]:
    """Convex pieces (unit radius, counter-clockwise vertices) whose union is the shape."""
    def regular(n, phase=0.0):
        a = phase + np.arange(n) * 2 * np.pi / n
        return np.stack([np.cos(a), np.sin(a)], 1)

    if kind == "triangle":
        return [regular(3, -np.pi / 2)]
    if kind == "square":
        return [regular(4, np.pi / 4)]
    if kind == "pentagon":
        return [regular(5, -np.pi / 2)]
    if kind == "cross":
        bar = np.array([[-1, -0.35], [1, -0.35], [1, 0.35], [-1, 0.35]])
        return [bar, bar[:, ::-1] * np.array([1, 1])[None]]
    if kind == "arrow":  # asymmetric, so rotation is unambiguous
        return [np.array([[-1, -0.3], [0.2, -0.3], [0.2, 0.3], [-1, 0.3]]),
                np.array([[0.2, -0.8], [1.0, 0.0], [0.2, 0.8]])]
    raise ValueError(kind)


def _mask(pieces: list[np.ndarray], cx: float, cy: float, radius: float, angle: float, size: int,
          grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Boolean ``[size, size]`` mask of the shape at centre (cx, cy), radius, rotation (radians,
    clockwise on screen since y points down)."""
    gx, gy = grid
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((size, size), bool)
    for piece in pieces:
        pts = piece * radius
        x = cx + c * pts[:, 0] - s * pts[:, 1]
        y = cy + s * pts[:, 0] + c * pts[:, 1]
        inside = np.ones((size, size), bool)
        n = len(x)
        # vertices are counter-clockwise in maths orientation; with y down they turn clockwise: use the
        # sign of the polygon's area so the test is orientation-free.
        area = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
        sign = 1.0 if area >= 0 else -1.0
        for i in range(n):
            x0, y0, x1, y1 = x[i], y[i], x[(i + 1) % n], y[(i + 1) % n]
            inside &= sign * ((x1 - x0) * (gy - y0) - (y1 - y0) * (gx - x0)) >= 0
        out |= inside
    return out


def _colour(rng: np.random.Generator, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    return rng.uniform(lo, hi, 3) * 255


def _background(rng: np.random.Generator, size: int, grid) -> np.ndarray:
    gx, gy = grid
    a, b = _colour(rng, 0.1, 0.9), _colour(rng, 0.1, 0.9)
    theta = rng.uniform(0, 2 * np.pi)
    t = ((gx * np.cos(theta) + gy * np.sin(theta)) / size + 1) / 2
    img = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    for _ in range(int(rng.integers(4, 9))):  # static clutter
        kind = _POLYGONS[int(rng.integers(len(_POLYGONS)))]
        m = _mask(_outline(kind), rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.05, 0.14) * size,
                  rng.uniform(0, 2 * np.pi), size, grid)
        img[m] = _colour(rng)
    return img


def render_clip(label: int, seed: int | np.random.Generator, size: int = 64, frames: int = 16) -> np.ndarray:
    """One clip of class ``label`` as uint8 ``[frames, size, size, 3]``.

    The random draw does not depend on the direction (``label % 2``): ``render_clip(2k + 1, s)`` is
    ``render_clip(2k, s)[::-1]``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    family, backwards = divmod(int(label), 2)
    if not 0 <= family < 4:
        raise ValueError(f"label must be in 0..7, got {label}")
    grid = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    bg = _background(rng, size, grid)
    pieces = _outline(_POLYGONS[int(rng.integers(len(_POLYGONS)))])
    colour = _colour(rng)
    angle0 = rng.uniform(0, 2 * np.pi)
    t = np.linspace(0.0, 1.0, frames)
    if family in (0, 2):  # translation, along x (right) or y (down)
        r = rng.uniform(0.10, 0.16) * size
        dist = rng.uniform(0.35, 0.55) * size
        a0 = rng.uniform(r, size - r - dist)
        b = rng.uniform(r, size - r)
        along = a0 + dist * t
        cx, cy = (along, np.full(frames, b)) if family == 0 else (np.full(frames, b), along)
        radius, angle = np.full(frames, r), np.full(frames, angle0)
    elif family == 1:  # growing
        r0, r1 = rng.uniform(0.05, 0.09) * size, rng.uniform(0.20, 0.27) * size
        cx = np.full(frames, rng.uniform(r1, size - r1))
        cy = np.full(frames, rng.uniform(r1, size - r1))
        radius, angle = r0 + (r1 - r0) * t, np.full(frames, angle0)
    else:  # clockwise rotation
        r = rng.uniform(0.16, 0.24) * size
        cx, cy = np.full(frames, rng.uniform(r, size - r)), np.full(frames, rng.uniform(r, size - r))
        radius = np.full(frames, r)
        angle = angle0 + np.deg2rad(rng.uniform(90, 150)) * t
    clip = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        img = bg.copy()
        img[_mask(pieces, cx[i], cy[i], radius[i], angle[i], size, grid)] = colour
        clip[i] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return clip[::-1].copy() if backwards else clip


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 12, codec: str = "h264") -> None:
    """Writes uint8 ``[T, H, W, 3]`` frames as an MP4 (H.264 through libx264, or ``"mpeg4"``)."""
    import av

    path = os.fspath(path)
    tmp = path + ".tmp.mp4"
    with av.open(tmp, mode="w") as container:
        if codec in ("h264", "libx264"):
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.options = {"crf": "16", "preset": "veryfast", "threads": "1"}
        else:
            stream = container.add_stream(codec, rate=Fraction(fps))
            stream.options = {"qscale": "2"}
            stream.codec_context.thread_count = 1
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(tmp, path)


@dataclass
class SyntheticDataset:
    """Where :func:`write_synthetic_dataset` wrote what."""

    root: str
    annotations: str
    split_files: dict[str, str]
    classes: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def write_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_classes: int = 4,
    clips_per_class: int = 100,
    size: int = 64,
    frames: int = 16,
    fps: int = 12,
    seed: int = 0,
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15),
    codec: str = "h264",
    progress: bool = True,
) -> SyntheticDataset:
    """Writes the synthetic dataset: ``videos/*.mp4``, ``annotations.csv`` (Kinetics columns
    ``label,youtube_id,time_start,time_end,split``), ``train.csv`` / ``val.csv`` / ``test.csv`` and
    ``classes.json`` (class index order). Deterministic under ``seed``; clip ``i`` depends only on
    ``(seed, i)``."""
    from autox3d_tf.data.annotations import ClassMap

    t0 = time.time()
    names = class_names(num_classes)
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and >= 16, got {size}")
    if frames < 2 or clips_per_class < 1:
        raise ValueError("need frames >= 2 and clips_per_class >= 1")
    out_dir = os.fspath(out_dir)
    video_dir = os.path.join(out_dir, "videos")
    os.makedirs(video_dir, exist_ok=True)
    fractions = np.asarray(splits, float) / np.sum(splits)
    n_train = int(round(clips_per_class * fractions[0]))
    n_val = int(round(clips_per_class * fractions[1]))
    rows = []
    total = num_classes * clips_per_class
    duration = frames / fps
    for j in range(clips_per_class):  # interleave classes so any prefix is balanced
        split = "train" if j < n_train else ("val" if j < n_train + n_val else "test")
        for c in range(num_classes):
            i = j * num_classes + c
            vid = f"synth_{i:05d}"
            clip = render_clip(c, np.random.default_rng([seed, i]), size, frames)
            write_video(os.path.join(video_dir, vid + ".mp4"), clip, fps, codec)
            rows.append({"label": names[c], "youtube_id": vid, "time_start": 0,
                         "time_end": int(np.ceil(duration)), "split": split})
            if progress and ((i + 1) % 25 == 0 or i + 1 == total):
                print(f"\r[make-synthetic] {i + 1}/{total} clips", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    fieldnames = ["label", "youtube_id", "time_start", "time_end", "split"]

    def write_csv(path, subset):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fieldnames)
            w.writeheader()
            w.writerows(subset)

    annotations = os.path.join(out_dir, "annotations.csv")
    write_csv(annotations, rows)
    split_files, counts = {}, {}
    for split in ("train", "val", "test"):
        subset = [r for r in rows if r["split"] == split]
        counts[split] = len(subset)
        if subset:
            split_files[split] = os.path.join(out_dir, f"{split}.csv")
            write_csv(split_files[split], subset)
    ClassMap(names).save(os.path.join(out_dir, "classes.json"))
    return SyntheticDataset(root=out_dir, annotations=annotations, split_files=split_files, classes=names,
                            counts=counts, seconds=time.time() - t0)
