"""Temporal and spatial sampling: training clips, uniform evaluation clips, evaluation crops.

Frame indices follow PySlowFast: a clip is ``frames`` frames ``rate`` apart; a training clip starts
uniformly at random in ``[0, num_frames - span]``; evaluation clip ``i`` of ``N`` starts at
``delta * i / (N - 1)`` (``delta = num_frames - span``), so the first and last views touch the ends,
and a single view is centred. Videos shorter than a clip loop (indices wrap).
"""

from __future__ import annotations

import numpy as np

from autox3d_tf.data.decode import clip_indices

__all__ = [
    "clip_span",
    "random_clip_start",
    "train_clip_indices",
    "uniform_clip_starts",
    "eval_clip_indices",
    "spatial_crop_offsets",
]


def clip_span(frames: int, rate: int) -> int:
    """Number of source frames a clip covers: ``(frames - 1) * rate + 1``."""
    return (int(frames) - 1) * int(rate) + 1


def random_clip_start(num_frames: int, frames: int, rate: int, rng: np.random.Generator) -> int:
    """A uniform random start in ``[0, max(0, num_frames - span)]``."""
    delta = max(0, int(num_frames) - clip_span(frames, rate))
    return int(rng.integers(0, delta + 1))


def train_clip_indices(num_frames: int, frames: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one random training clip (looping when the video is shorter than the clip)."""
    return clip_indices(num_frames, frames, rate, random_clip_start(num_frames, frames, rate, rng))


def uniform_clip_starts(num_frames: int, frames: int, rate: int, num_clips: int) -> list[int]:
    """Starts of ``num_clips`` evenly spaced clips covering the video (one clip: centred)."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    delta = max(0, int(num_frames) - clip_span(frames, rate))
    if num_clips == 1:
        return [delta // 2]
    return [int(round(delta * i / (num_clips - 1))) for i in range(num_clips)]


def eval_clip_indices(num_frames: int, frames: int, rate: int, num_clips: int) -> np.ndarray:
    """Indices ``[num_clips, frames]`` of the evaluation clips of a video."""
    starts = uniform_clip_starts(num_frames, frames, rate, num_clips)
    return np.stack([clip_indices(num_frames, frames, rate, s) for s in starts])


def spatial_crop_offsets(height: int, width: int, crop: int, num_crops: int = 3) -> list[tuple[int, int]]:
    """``(top, left)`` of ``num_crops`` square crops along the longer side (PySlowFast's
    ``uniform_crop``): 3 crops are start, centre, end; 1 crop is the centre."""
    if crop > height or crop > width:
        raise ValueError(f"crop {crop} larger than frame {height}x{width}")
    cy, cx = (height - crop) // 2, (width - crop) // 2
    if num_crops == 1:
        return [(cy, cx)]
    if num_crops != 3:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if height > width:
        return [(0, cx), (cy, cx), (height - crop, cx)]
    return [(cy, 0), (cy, cx), (cy, width - crop)]
