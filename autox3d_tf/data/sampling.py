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

Temporal segments (TSN-style, ``segments=K``; not to be confused with the annotated segment above,
inside which they are taken): the video is split into K equal parts, part ``k`` being the frames
``[k * n // K, (k + 1) * n // K)``, and one snippet of ``frames`` x ``rate`` is sampled from each
(:func:`snippet_train_indices`, :func:`snippet_eval_indices`); the K snippets are concatenated in
time, a clip of ``K * frames`` frames. In training a snippet starts uniformly at random in
``[first_k, first_k + max(0, count_k - span)]``; in evaluation view ``i`` of ``num_clips`` starts at
``first_k + uniform_clip_starts(count_k, ...)[i]`` (one view: the snippet centred in its part; N
views: shifted from the part's start to its end, as the uniform clips are over the whole video). A
part shorter than a snippet starts the snippet at its first frame and the indices run on, looping
over the video as clips do. ``K = 1`` gives exactly the clips above.

Whole-video clips (sampling rate 0, :data:`WHOLE_VIDEO`): the ``frames`` frames are spread over the
whole video (or its annotated segment) instead of ``rate`` apart: frame ``i`` comes from the ``i``-th
of ``frames`` equal parts, at a random position in training and at the part's centre in evaluation
(view ``i`` of ``num_clips``: shifted through the part as snippets are). This is TSN's sampling with
the frames kept as one clip, for actions whose length varies from video to video (a gesture of 1 to
9 s): every clip sees the whole action. It is the snippet sampling below with ``frames`` parts of one
frame each (with K segments, ``K * frames`` parts).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from autox3d_tf.data.decode import clip_indices

__all__ = [
    "WHOLE_VIDEO",
    "snippet_layout",
    "Segment",
    "segment_frames",
    "clip_span",
    "random_clip_start",
    "train_clip_indices",
    "uniform_clip_starts",
    "eval_clip_indices",
    "spatial_crop_offsets",
    "segment_parts",
    "snippet_train_indices",
    "snippet_eval_indices",
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


WHOLE_VIDEO = 0
"""The sampling rate that spreads a clip's frames over the whole video (module docstring)."""


def snippet_layout(frames: int, rate: int, segments: int = 1) -> tuple[int, int, int]:
    """``(frames, rate, segments)`` of the snippet sampling that draws a clip: unchanged for a rate
    of 1 or more; ``WHOLE_VIDEO`` gives ``(1, 1, segments * frames)``, one frame per part."""
    if int(rate) == WHOLE_VIDEO:
        return 1, 1, int(segments) * int(frames)
    if int(rate) < 0:
        raise ValueError(f"sampling rate must be positive, or {WHOLE_VIDEO} for whole-video clips, got {rate}")
    return int(frames), int(rate), int(segments)


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
    if rate == WHOLE_VIDEO:
        return snippet_train_indices(num_frames, frames, rate, 1, rng, segment)
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
    if rate == WHOLE_VIDEO:
        return snippet_eval_indices(num_frames, frames, rate, 1, num_clips, segment)
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


def segment_parts(num_frames: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """``(first, count)`` int64 ``[segments]``: the K equal temporal parts of ``num_frames`` frames,
    part ``k`` being ``[k * n // K, (k + 1) * n // K)``."""
    if int(segments) <= 0:
        raise ValueError(f"segments must be positive, got {segments}")
    bounds = (np.arange(int(segments) + 1, dtype=np.int64) * int(num_frames)) // int(segments)
    return bounds[:-1], np.diff(bounds)


def _snippets(n: int, frames: int, rate: int, starts: np.ndarray) -> np.ndarray:
    return np.concatenate([clip_indices(n, frames, rate, int(s)) for s in starts])


def snippet_train_indices(
    num_frames: int, frames: int, rate: int, segments: int, rng: np.random.Generator,
    segment: Segment | None = None,
) -> np.ndarray:
    """Indices ``[segments * frames]`` of one training clip of K snippets: one snippet at a random
    position inside each temporal part (module docstring), inside ``segment`` when given. One
    segment draws exactly what :func:`train_clip_indices` draws."""
    frames, rate, segments = snippet_layout(frames, rate, segments)
    n = num_frames if segment is None else segment.count
    first, count = segment_parts(n, segments)
    starts = [f + random_clip_start(c, frames, rate, rng) for f, c in zip(first, count)]
    return _in_segment(_snippets(n, frames, rate, np.asarray(starts)), segment)


def snippet_eval_indices(
    num_frames: int, frames: int, rate: int, segments: int, num_clips: int = 1, segment: Segment | None = None
) -> np.ndarray:
    """Indices ``[num_clips, segments * frames]`` of the evaluation clips of K snippets: view ``i``
    takes from every temporal part the snippet :func:`uniform_clip_starts` places ``i``-th in it
    (one view: the part's centre). One segment gives :func:`eval_clip_indices`."""
    frames, rate, segments = snippet_layout(frames, rate, segments)
    n = num_frames if segment is None else segment.count
    first, count = segment_parts(n, segments)
    starts = np.array([[f + s for s in uniform_clip_starts(c, frames, rate, num_clips)]
                       for f, c in zip(first, count)])  # [segments, num_clips]
    return _in_segment(np.stack([_snippets(n, frames, rate, starts[:, i]) for i in range(num_clips)]), segment)
