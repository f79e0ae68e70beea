"""The built-in synthetic motion dataset: classes that can only be told apart over time.

Each clip shows ``moving`` random shapes (random polygon, colour, size, orientation; 8 by default)
travelling vertically over a cluttered background (a random colour gradient with random static shapes),
each drifting sideways, turning and changing size by random, class-independent amounts. The classes
are the *order* in which the same frames are shown:

    0 rising                      the shapes travel up
    1 falling                     the frames of 0 played backwards
    2 up fast, down slowly        up through every third frame, then down through the others
    3 up slowly, down fast        the frames of 2 played backwards
    4 up and down                 up through the even frames, down through the odd ones
    5 down and up                 the frames of 4 played backwards

One random draw gives the *base* frames (the shapes rising); the class only picks a permutation of
them (:func:`frame_order`). So every clip of every class is made of the same distribution of frames,
and any order-free summary of a clip (one frame, the set of frames, their mean) carries no
information about its class: a model that ignores temporal order scores at chance, ``1 / classes``.
The motion is vertical, so horizontal-flip augmentation keeps every label.

    from autox3d_tf.data.synthetic import write_synthetic_dataset
    info = write_synthetic_dataset("synthetic/")   # MP4 files + annotations.csv (Kinetics style)

The default (4 classes x 200 clips, 48 x 48 px, 16 frames at 12 fps, 8 moving shapes) writes in
about 15 seconds and is deterministic under ``seed``; the demo trains a searched network to over 90%
test top-1 on it in a few minutes of CPU, while the same network trained on time-shuffled clips stays at
chance (see README).
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
    "frame_order",
    "render_clip",
    "write_video",
    "write_synthetic_dataset",
]

CLASS_NAMES = (
    "rising",
    "falling",
    "up fast, down slowly",
    "up slowly, down fast",
    "up and down",
    "down and up",
)

_POLYGONS = ("triangle", "square", "pentagon", "cross", "arrow")


def class_names(num_classes: int) -> list[str]:
    """The first ``num_classes`` class names (2 to 6)."""
    if not 2 <= num_classes <= len(CLASS_NAMES):
        raise ValueError(f"num_classes must be between 2 and {len(CLASS_NAMES)}, got {num_classes}")
    return list(CLASS_NAMES[:num_classes])


def frame_order(label: int, frames: int) -> np.ndarray:
    """The permutation of the base frames (index 0: the shape at the bottom, ``frames - 1``: at the
    top) that class ``label`` shows: frame ``i`` of the clip is base frame ``frame_order(label)[i]``."""
    if not 0 <= int(label) < len(CLASS_NAMES):
        raise ValueError(f"label must be in 0..{len(CLASS_NAMES) - 1}, got {label}")
    family, backwards = divmod(int(label), 2)
    base = np.arange(frames)
    if family == 0:  # one pass up
        order = base
    elif family == 1:  # up through every third base frame, then down through the others
        fast = base[0::3]
        order = np.concatenate([fast, np.setdiff1d(base, fast)[::-1]])
    else:  # up through the even base frames, down through the odd ones: same speed both ways
        order = np.concatenate([base[0::2], base[1::2][::-1]])
    return order[::-1].copy() if backwards else order


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


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray, min_distance: float = 150.0) -> np.ndarray:
    """A random colour at least ``min_distance`` (L1 over RGB, 0-765) from the background's mean."""
    mean = background.reshape(-1, 3).mean(0)
    for _ in range(32):
        colour = _colour(rng)
        if np.abs(colour - mean).sum() >= min_distance:
            return colour
    return 255.0 - mean  # the mean's complement is always far enough


def render_clip(label: int, seed: int | np.random.Generator, size: int = 64, frames: int = 16,
                moving: int = 8) -> np.ndarray:
    """One clip of class ``label`` as uint8 ``[frames, size, size, 3]``.

    ``moving`` random shapes travel vertically (each with its own distance, sideways drift, turn and
    change of size) over a background of static clutter. The random draw does not depend on
    ``label``: ``render_clip(c, s)`` is the same base frames for every class ``c``, in the order
    ``frame_order(c, frames)``.
    """
    order = frame_order(label, frames)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    grid = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    bg = _background(rng, size, grid)
    u = np.linspace(0.0, 1.0, frames)  # base frame i shows every shape a fraction u[i] of its way up
    shapes = []
    for _ in range(max(1, int(moving))):
        pieces = _outline(_POLYGONS[int(rng.integers(len(_POLYGONS)))])
        colour = _contrasting_colour(rng, bg)
        radius0 = rng.uniform(0.08, 0.14) * size
        growth = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))  # final / first radius
        travel = rng.uniform(0.35, 0.7) * size
        y_bottom = rng.uniform(travel, size)
        drift = rng.uniform(-0.15, 0.15) * size
        x0 = rng.uniform(0.0, size)
        angle0, turn = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(-90, 90))
        shapes.append((pieces, colour, x0 + drift * u, y_bottom - travel * u, radius0 * growth**u, angle0 + turn * u))
    clip = np.empty((frames, size, size, 3), np.uint8)
    for i, b in enumerate(order):
        img = bg.copy()
        for pieces, colour, cx, cy, radius, angle in shapes:
            img[_mask(pieces, cx[b], cy[b], radius[b], angle[b], size, grid)] = colour
        clip[i] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return clip


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
    clips_per_class: int = 200,
    size: int = 48,
    frames: int = 16,
    moving: int = 8,
    fps: int = 12,
    seed: int = 0,
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15),
    codec: str = "h264",
    progress: bool = True,
) -> SyntheticDataset:
    """Writes the synthetic dataset: ``videos/*.mp4``, ``annotations.csv`` (Kinetics columns
    ``label,youtube_id,time_start,time_end,split``), ``train.csv`` / ``val.csv`` / ``test.csv`` and
    ``classes.json`` (class index order). Deterministic under ``seed``; clip ``i`` depends only on
    ``(seed, i)``. ``moving`` is the number of travelling shapes per clip (see :func:`render_clip`)."""
    from autox3d_tf.data.annotations import ClassMap

    t0 = time.time()
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (a classifier needs two classes), got {num_classes}")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"{os.fspath(out_dir)} is a file, not a folder: give a folder to write the dataset into")
    names = class_names(num_classes)
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and >= 16, got {size}")
    if frames < 4 or clips_per_class < 1 or moving < 1:
        raise ValueError(f"need frames >= 4, clips_per_class >= 1 and moving >= 1, got {frames}, {clips_per_class}, {moving}")
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
            clip = render_clip(c, np.random.default_rng([seed, i]), size, frames, moving)
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
