"""TensorFlow twins of :mod:`~autox3d_tf.data.sampling`'s clip and snippet indices, for graphs that
know the number of frames only at run time (TFRecord pipelines, the serving signature).

Same rules and the same indices as the NumPy functions (module docstring of
:mod:`~autox3d_tf.data.sampling`): ``segments`` equal temporal parts, one snippet of ``frames`` x
``rate`` per part, looping over the video when it is short. One segment gives the plain clip; rate
0 (``WHOLE_VIDEO``) spreads the frames over the whole video.

TensorFlow only.
"""

from __future__ import annotations

import tensorflow as tf

from autox3d_tf.data.sampling import clip_span, snippet_layout

__all__ = ["segment_parts_tf", "snippet_train_indices_tf", "snippet_eval_indices_tf"]


def segment_parts_tf(num_frames: tf.Tensor, segments: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``(first, count)`` int64 ``[segments]`` of the temporal parts of ``num_frames`` frames."""
    n = tf.cast(num_frames, tf.int64)
    bounds = (tf.range(segments + 1, dtype=tf.int64) * n) // segments
    return bounds[:-1], bounds[1:] - bounds[:-1]


def _snippets(num_frames: tf.Tensor, frames: int, rate: int, starts: tf.Tensor) -> tf.Tensor:
    """``starts [..., K]`` -> indices ``[..., K * frames]`` (looping over ``num_frames``)."""
    n = tf.maximum(tf.cast(num_frames, tf.int64), 1)
    idx = starts[..., None] + tf.range(frames, dtype=tf.int64) * rate
    shape = tf.concat([tf.shape(starts, out_type=tf.int64)[:-1], [-1]], 0)
    return tf.reshape(idx % n, shape)


def snippet_train_indices_tf(num_frames: tf.Tensor, frames: int, rate: int, segments: int,
                             seed: tf.Tensor) -> tf.Tensor:
    """int64 ``[segments * frames]``: one snippet at a random position in each part, drawn from the
    stateless ``seed`` (``[2]``); with one segment, the TFRecord pipeline's plain training clip."""
    frames, rate, segments = snippet_layout(frames, rate, segments)
    first, count = segment_parts_tf(num_frames, segments)
    delta = tf.maximum(count - clip_span(frames, rate), 0)
    u = tf.random.stateless_uniform([segments], seed, maxval=2**30, dtype=tf.int64)
    return _snippets(num_frames, frames, rate, first + u % (delta + 1))


def snippet_eval_indices_tf(num_frames: tf.Tensor, frames: int, rate: int, segments: int,
                            num_clips: int = 1) -> tf.Tensor:
    """int64 ``[num_clips, segments * frames]``: view ``i`` takes the ``i``-th of ``num_clips``
    uniformly placed snippets of every part (one view: the parts' centres)."""
    frames, rate, segments = snippet_layout(frames, rate, segments)
    first, count = segment_parts_tf(num_frames, segments)
    delta = tf.maximum(count - clip_span(frames, rate), 0)  # [K]
    if num_clips == 1:
        offsets = (delta // 2)[None, :]
    else:
        steps = tf.range(num_clips, dtype=tf.float64)[:, None] / float(num_clips - 1)
        offsets = tf.cast(tf.round(tf.cast(delta, tf.float64)[None, :] * steps), tf.int64)
    return _snippets(num_frames, frames, rate, first[None, :] + offsets)
