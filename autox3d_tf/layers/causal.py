"""The layers of a causal network and of its streaming form.

A causal network's output at frame ``t`` depends only on frames ``0..t``: its temporal
convolutions are padded on the past side only (`causal_padding`), and every average over time
is a cumulative one (`CumulativeAveragePooling3D`: at frame ``t``, the mean of frames ``0..t``,
which at the last frame is the global average of the clip).

The streaming form of the same network runs a clip in chunks of any length, down to one frame,
and carries between chunks what the next chunk needs (MoViNet's stream states):

- a temporal convolution with a ``span``-frame kernel keeps its last ``span - 1`` input frames
  (`TemporalBuffer`, whose zero initial state is the causal zero padding);
- a cumulative average keeps the running sum and count of what it has seen.

With those states, the chunked outputs equal the full-clip outputs at every frame.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


def causal_padding(kernel: Sequence[int], dilation: int = 1) -> tuple[tuple[int, int], ...]:
    """``DepthwiseConv3D`` padding for ``kernel`` ``(t, h, w)``: ``(span - 1, 0)`` frames in time
    (the past side only; ``span = (t - 1) * dilation + 1``) and ``k // 2`` on both sides in space."""
    kt, kh, kw = kernel
    span = (kt - 1) * dilation + 1
    return ((span - 1, 0), (kh // 2, kh // 2), (kw // 2, kw // 2))


def _last_frame(x):
    """``x[:, -1]`` of ``(batch, frames, C)``; with a static frame count a plain slice and a reshape
    (TFLite's XNNPACK delegate takes those, not the slice that drops an axis)."""
    length = x.shape[1]
    if length is None:
        return x[:, -1]
    return ops.reshape(x[:, length - 1 :], (-1, x.shape[-1]))


@keras.saving.register_keras_serializable(package="autox3d_tf")
class CumulativeAveragePooling3D(keras.layers.Layer):
    """The mean over space and over time up to each frame: ``y[t] = mean(x[0..t])``.

    Input ``(batch, frames, height, width, channels)``; output ``(batch, frames, channels)``, or
    ``(batch, frames, 1, 1, channels)`` with ``keepdims``. At the last frame it equals
    ``GlobalAveragePooling3D``.

    Called as ``layer(x)`` it pools a whole clip. Called as ``layer(x, total, count)`` it continues
    a stream: ``total`` ``(batch, channels)`` is the sum of the per-frame spatial means seen so far
    and ``count`` ``(batch, 1)`` their number (both zero at the start), and it returns
    ``(y, new_total, new_count)``.
    """

    def __init__(self, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def _shape(self, y):
        return y[:, :, None, None, :] if self.keepdims else y

    def call(self, inputs, total=None, count=None):
        means = ops.mean(inputs, axis=(2, 3))  # (batch, frames, channels)
        sums = ops.cumsum(means, axis=1)
        steps = ops.cast(ops.arange(1, ops.shape(means)[1] + 1), means.dtype)[None, :, None]
        if total is None:
            return self._shape(sums / steps)
        sums = sums + total[:, None, :]
        seen = count[:, None, :] + steps
        return self._shape(sums / seen), _last_frame(sums), _last_frame(seen)


    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


@keras.saving.register_keras_serializable(package="autox3d_tf")
class TemporalBuffer(keras.layers.Layer):
    """The input of a causal temporal convolution in a stream: the last ``frames`` input frames
    of the earlier chunks (``state``, zeros at the start) followed by this chunk.

    ``layer(x, state)`` returns ``(concat(state, x), new_state)``, where ``new_state`` is the last
    ``frames`` frames of the concatenation. A convolution unpadded in time on the concatenation
    gives one output per frame of ``x``.
    """

    def __init__(self, frames: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ValueError(f"`frames` must be a positive integer, got {frames!r}.")
        self.frames = frames

    def call(self, inputs, state):
        joined = ops.concatenate([state, inputs], axis=1)
        length = joined.shape[1]
        if length is None:
            return joined, joined[:, -self.frames :]
        # A non-negative start where the length is static: XNNPACK takes that slice, not a negative one.
        return joined, joined[:, length - self.frames :]


    def get_config(self):
        return {**super().get_config(), "frames": self.frames}
