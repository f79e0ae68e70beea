"""What the video-file and TFRecord pipelines share: the ``on_error`` check, an input pipeline's
share and seed under ``tf.distribute``, the per-clip seed stream, batching, and evaluation views.

TensorFlow only (tf.data).
"""

from __future__ import annotations

import tensorflow as tf

from autox3d_tf.data import augment
from autox3d_tf.data.clip import ClipSettings

__all__ = ["check_on_error", "check_segments", "input_pipelines", "pipeline_share", "pipeline_seed", "seed_stream", "finish",
           "eval_views"]


def check_on_error(on_error: str) -> None:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")


def check_segments(segments: int) -> int:
    """``segments`` (temporal segments per clip) as an int; a ValueError unless it is one >= 1."""
    if isinstance(segments, bool) or int(segments) != segments or segments < 1:
        raise ValueError(f"segments must be a positive integer, got {segments!r}")
    return int(segments)


def input_pipelines(input_context: tf.distribute.InputContext | None) -> tuple[int, int]:
    """``(number of input pipelines, this pipeline's id)`` (``(1, 0)`` without a context)."""
    if input_context is None:
        return 1, 0
    return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)


def pipeline_share(items: list, input_context: tf.distribute.InputContext | None, what: str) -> list:
    """This input pipeline's share of ``items`` (every ``n``-th, from its id): disjoint, covering."""
    n, i = input_pipelines(input_context)
    if n <= 1:
        return items
    share = items[i::n]
    if not share:
        raise ValueError(f"{len(items)} {what} cannot feed {n} input pipelines: pipeline {i} gets none")
    return share


def pipeline_seed(seed: int | None, input_context: tf.distribute.InputContext | None) -> int | None:
    """A distinct seed per input pipeline, so workers do not draw the same clip parameters."""
    _, i = input_pipelines(input_context)
    return None if seed is None else int(seed) + 1_000_003 * i


def seed_stream(seed: int | None) -> tf.data.Dataset:
    """An endless stream of int64 per-clip seeds: reproducible under ``seed``, new each epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)


def finish(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool) -> tf.data.Dataset:
    """Batched (unless ``batch_size`` is 0) and prefetched."""
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_views(frames: tf.Tensor, cfg: ClipSettings, num_crops: int) -> tf.Tensor:
    """``[N, T, H, W, 3]`` uint8 -> normalised ``[num_crops * N, T, crop, crop, 3]`` (crop-major);
    ``T`` is the clip's (``K * frames`` with temporal segments), ``cfg.frames`` when unknown."""
    length = frames.shape[1] or cfg.frames
    views = augment.eval_crops(frames, cfg.test_crop, num_crops)  # [crops, N, T, c, c, 3]
    views = tf.reshape(views, [-1, length, cfg.test_crop, cfg.test_crop, 3])
    return augment.normalize_clip(views, cfg.mean, cfg.std)
