"""Convolution along the frame axis of a clip: the temporal taps of a depthwise 3D convolution.

A depthwise 3D convolution with ``kt`` temporal taps is the sum over the taps ``i`` of a 2D
convolution of every frame with the kernel's slice ``i``, moved ``i - pad_before`` frames in
time. `sum_temporal_taps` computes that sum without padding or slicing the frames: each tap
is moved into place by `conv_along_frames` with a one-hot kernel (which also zero-pads). With
the frames of a clip viewed as ``(clips, frames, pixels, C)`` (a free reshape of
``(clips * frames, H, W, C)``), the frame axis is a spatial axis of one depthwise 2D
convolution, which every backend, TF Serving and TFLite run.

`autox3d_tf.layers.DepthwiseConv3D` ("shift_conv" and its ``(kt, 1, 1)`` kernels) and the
search supernet's blocks (``autox3d_tf.search.supernet``) share these functions.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
from keras import ops


def is_tensorflow() -> bool:
    """Whether Keras runs on the TensorFlow backend."""
    return keras.backend.backend() == "tensorflow"


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' (before, after) padding for one axis of static length."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def bias_add(x: Any, bias: Any) -> Any:
    """Per-channel bias; on TensorFlow a BiasAdd, which Grappler fuses into the op before it."""
    if is_tensorflow():
        import tensorflow as tf

        return tf.nn.bias_add(x, bias)
    return x + bias


def depthwise_conv2d(
    x: Any, kernel: Any, strides: tuple[int, int], padding: str | list, dilation: tuple[int, int] = (1, 1)
) -> Any:
    """Depthwise 2D convolution of ``(N, H, W, C)`` ``x``; ``padding`` is "same", "valid" or, on
    the TensorFlow backend only, explicit ``[[0, 0], [h0, h1], [w0, w1], [0, 0]]`` pairs (not with
    ``dilation``, whose taps are ``dilation`` rows / columns apart; strides must then be 1)."""
    if isinstance(padding, str):
        if tuple(dilation) != (1, 1):
            return ops.depthwise_conv(x, kernel, strides=strides, padding=padding, dilation_rate=tuple(dilation))
        return ops.depthwise_conv(x, kernel, strides=strides, padding=padding)
    if tuple(dilation) != (1, 1):
        raise ValueError("depthwise_conv2d: explicit padding with a dilation is not supported; pad the tensor.")
    import tensorflow as tf

    return tf.nn.depthwise_conv2d(x, kernel, (1, *strides, 1), padding)


def add_n(terms: list) -> Any:
    """``terms[0] + terms[1] + ...``, added in order."""
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    return out


def conv_along_frames(
    view: Any, kernel: Any, pads: tuple[int, int], stride: int = 1, dilation: int = 1
) -> tuple[Any, bool]:
    """Depthwise convolution of a ``(clips, frames, pixels, C)`` view along its frame axis.

    Args:
        view: the clips, each frame's pixels in one axis.
        kernel: ``(kt, 1, C, 1)``.
        pads: zero frames (before, after) of each clip, added by the op itself where it can
            ("same", TensorFlow's explicit pads without dilation), else by padding the tensor first.
        stride: temporal stride, by subsampling the stride-1 output: TensorFlow's depthwise
            kernel takes no unequal strides (nor their gradient).
        dilation: the temporal taps are ``dilation`` frames apart (the op's dilation ``(d, 1)``):
            ``y[t] = sum_i kernel[i] * x[t + i * d - pads[0]]``.

    Returns:
        The ``(clips, out_frames, pixels, C)`` output and whether the op's padding was
        "same" / "valid", after which a BiasAdd may fuse into it (TensorFlow 2.21's fused
        depthwise kernel aborts on explicit pads, see `DepthwiseConv3D`).
    """
    span = (kernel.shape[0] - 1) * dilation + 1
    if not any(pads):
        padding: str | list = "valid"
    elif tuple(pads) == same_pads(1, span, 1):
        padding = "same"
    elif is_tensorflow() and dilation == 1:
        padding = [[0, 0], list(pads), [0, 0], [0, 0]]
    else:
        view = ops.pad(view, [[0, 0], list(pads), [0, 0], [0, 0]])
        padding = "valid"
    out = depthwise_conv2d(view, kernel, (1, 1), padding, (dilation, 1))
    if stride > 1:
        out = out[:, ::stride]
    return out, isinstance(padding, str)


def _spatial_size(x: Any) -> tuple[Any, Any]:
    """``(H, W)`` of ``(N, H, W, C)`` ``x``: static ints where known, else scalar tensors."""
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        dims = ops.shape(x)
        height = dims[1] if height is None else height
        width = dims[2] if width is None else width
    return height, width


def sum_temporal_taps(
    tap: Callable[[int], Any],
    kt: int,
    frames: Any,
    pads: tuple[int, int],
    stride: int = 1,
    bias: Any = None,
) -> tuple[Any, tuple[Any, Any]]:
    """``y[t] = sum_i tap(i)[t * stride + i - pads[0]]`` over the frames of each clip.

    Each tap is moved to its frames by `conv_along_frames` with a one-hot kernel (zero frames
    beyond the clip), except the one that is already in place (stride 1 and length-preserving
    pads), so there is no pad, slice or row gather.

    Args:
        tap: ``tap(i)`` is ``(clips * frames, H, W, C)``: every frame convolved (in 2D) with
            temporal tap ``i`` of the kernel.
        kt: the number of temporal taps.
        frames: frames per clip (an int, or a scalar tensor when unknown).
        pads: zero frames (before, after) of each clip.
        stride: temporal stride (the moved taps are subsampled).
        bias: an optional ``(C,)`` bias, added once (right after the in-place tap's
            convolution, where TensorFlow fuses it, when there is one).

    Returns:
        ``(sum, (H, W))``: the ``(clips, out_frames, H * W, C)`` sum and the taps' spatial size
        (static ints where known).
    """
    in_place = pads[0] if stride == 1 and pads[0] + pads[1] == kt - 1 else None
    terms = []
    for i in range(kt):
        y = tap(i)
        if bias is not None and i == in_place:
            y = bias_add(y, bias)
        height, width = _spatial_size(y)
        channels = y.shape[-1]
        view = ops.reshape(y, (-1, frames, height * width, channels))
        if i != in_place:
            one_hot = np.zeros((kt, 1, channels, 1), keras.backend.standardize_dtype(y.dtype))
            one_hot[i] = 1.0
            view, _ = conv_along_frames(view, ops.convert_to_tensor(one_hot), pads, stride)
        terms.append(view)
    out = add_n(terms)
    if bias is not None and in_place is None:
        out = out + bias
    return out, (height, width)
