"""Temporal and spatial sampling: training clips, uniform evaluation clips, evaluation crops.

Frame indices follow PySlowFast: a clip is ``frames`` frames ``rate`` apart; a training clip starts
uniformly at random in ``[0, num_frames - span]``; evaluation clip ``i`` of ``N`` starts at
``delta * i / (N - 1)`` (``delta = num_frames - span``), so the first and last views touch the ends,
and a single view is centred. Videos shorter than a clip loop (indices wrap).

Annotated segments (Kinetics ``time_start`` / ``time_end``, in seconds) restrict sampling to the frames
``[round(time_start * fps), round(time_end * fps))`` of the file (:func:`segment_frames`): clips are
drawn, and loop, inside the segment. A segment restricts only when it lies inside the video: one that
reaches the end of the file (``time_end`` at or past its last frame, e.g. ``0`` / ``ceil(duration)``
on Kinetics' already-trimmed 10 s videos) means the whole video, as without a segment. A segment that
starts at or past the end of the file cannot be in it (the file is most likely already trimmed to
the segment): the whole video is used and the segment is flagged ``past_end`` so that the pipelines
report it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from autox3d_tf.data.decode import clip_indices

__all__ = [
    "Segment",
    "segment_frames",
    "clip_span",
    "random_clip_start",
    "train_clip_indices",
    "uniform_clip_starts",
    "eval_clip_indices",
    "spatial_crop_offsets",
]


class Segment(NamedTuple):
    """The frames ``[first, first + count)`` clips are sampled from; ``past_end`` marks an annotated
    segment that started past the end of the video (the whole video is used instead)."""

    first: int
    count: int
    past_end: bool = False


def segment_frames(num_frames: int, fps: float, start: float | None = None, end: float | None = None) -> Segment:
    """The frame range of the segment ``[start, end)`` seconds of a ``num_frames`` video at ``fps``.

    No segment, or one reaching the end of the video (within a frame), gives the whole video; a
    segment starting at or past the end gives the whole video with ``past_end=True``; otherwise the
    segment's frames (at least one).
    """
    num_frames = int(num_frames)
    whole = Segment(0, num_frames)
    if num_frames <= 0 or (start is None and end is None):
        return whole
    first = max(0, int(round(float(start or 0.0) * fps)))
    if first >= num_frames:
        return Segment(0, num_frames, past_end=True)
    if end is None:  # only a start: from there to the end
        return Segment(first, num_frames - first)
    stop = int(round(float(end) * fps))
    if stop >= num_frames - 1:  # reaches the end of the file: the whole video, as without a segment
        return whole
    return Segment(first, max(1, stop - first))


def _in_segment(indices: np.ndarray, segment: Segment | None) -> np.ndarray:
    return indices if segment is None else indices + segment.first


def clip_span(frames: int, rate: int) -> int:
    """Number of source frames a clip covers: ``(frames - 1) * rate + 1``."""
    return (int(frames) - 1) * int(rate) + 1


def random_clip_start(num_frames: int, frames: int, rate: int, rng: np.random.Generator) -> int:
    """A uniform random start in ``[0, max(0, num_frames - span)]``."""
    delta = max(0, int(num_frames) - clip_span(frames, rate))
    return int(rng.integers(0, delta + 1))


def train_clip_indices(
    num_frames: int, frames: int, rate: int, rng: np.random.Generator, segment: Segment | None = None
) -> np.ndarray:
    """Indices of one random training clip (looping when the video is shorter than the clip), inside
    ``segment`` (:func:`segment_frames`) when given."""
    n = num_frames if segment is None else segment.count
    return _in_segment(clip_indices(n, frames, rate, random_clip_start(n, frames, rate, rng)), segment)


def uniform_clip_starts(num_frames: int, frames: int, rate: int, num_clips: int) -> list[int]:
    """Starts of ``num_clips`` evenly spaced clips covering the video (one clip: centred)."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    delta = max(0, int(num_frames) - clip_span(frames, rate))
    if num_clips == 1:
        return [delta // 2]
    return [int(round(delta * i / (num_clips - 1))) for i in range(num_clips)]


def eval_clip_indices(
    num_frames: int, frames: int, rate: int, num_clips: int, segment: Segment | None = None
) -> np.ndarray:
    """Indices ``[num_clips, frames]`` of the evaluation clips of a video (of ``segment`` when given)."""
    n = num_frames if segment is None else segment.count
    starts = uniform_clip_starts(n, frames, rate, num_clips)
    return _in_segment(np.stack([clip_indices(n, frames, rate, s) for s in starts]), segment)


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
