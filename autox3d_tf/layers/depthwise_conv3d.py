"""Depthwise 3D convolution without grouped Conv3D.

Keras' ``Conv3D(groups=C)`` only runs through XLA on CPU, where it is many times slower than
the alternative used here, and TF Serving / TFLite cannot run it (docs/ARCHITECTURE.md).
This layer computes the same function as a depthwise 3D convolution by summing, over the
temporal taps of the kernel, a depthwise 2D convolution of the matching time-shifted frames:

    y[t] = sum_i  depthwise_conv2d(x[t * stride_t + i - pad_t], kernel[i])

which is exact and only uses ops that every Keras backend, TF Serving and TFLite support.

Two implementations of that sum, with the same weights and outputs, and a rule choosing
between them, set by ``implementation=``:

- ``"slices"``: the clip's frames in one axis, padded in time; each temporal tap is one depthwise
  2D convolution of a time-shifted slice, which TensorFlow takes without copying. With more than
  one clip the rows that straddle two clips are dropped by a gather.
- ``"shift_conv"``: each temporal tap is a depthwise 2D convolution of the unpadded frames, moved
  into place in time by a depthwise convolution along the frame axis with a one-hot kernel
  (which also zero-pads): no pad, slice or gather (`autox3d_tf.layers.temporal`, shared with
  the search supernet).
- ``"auto"`` (default): "slices" for one clip (a static batch of 1, temporal stride 1), where it
  needs no gather and is the faster in TensorFlow; "shift_conv" otherwise, which is the faster
  for training (the gather's gradient is slow) and for batched inference. TFLite copies every
  slice and pad, so its export always uses "shift_conv". The README's speed section has the
  measurements.

A ``(kt, 1, 1)`` kernel (the X3D stem's temporal convolution) is, whatever the choice, one
depthwise convolution along the frame axis of the clip.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import keras
from keras import ops

from autox3d_tf.layers.temporal import (
    add_n,
    bias_add,
    conv_along_frames,
    depthwise_conv2d,
    is_tensorflow,
    same_pads,
    sum_temporal_taps,
)

# Names that benchmarks/latency_floor.py calls.
_bias_add = bias_add
_depthwise_conv2d = depthwise_conv2d

PaddingArg = str | int | Sequence[int] | Sequence[Sequence[int]]
IMPLEMENTATIONS = ("auto", "slices", "shift_conv")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    if _is_int(value):
        value = (value, value, value)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not all(_is_int(v) for v in value):
        raise ValueError(f"`{name}` must be a positive int or a tuple of 3 positive ints, got {value!r}.")
    value = tuple(value)
    if len(value) != 3 or any(v < 1 for v in value):
        raise ValueError(f"`{name}` must be a positive int or a tuple of 3 positive ints, got {value}.")
    return value  # type: ignore[return-value]


def _normalize_padding(padding: PaddingArg) -> str | tuple[tuple[int, int], ...]:
    """Returns "same", "valid" or explicit ((t0, t1), (h0, h1), (w0, w1)) zero padding."""
    if isinstance(padding, str):
        padding = padding.lower()
        if padding not in ("same", "valid"):
            raise ValueError(f"`padding` must be 'same', 'valid' or explicit sizes, got '{padding}'.")
        return padding
    if _is_int(padding):
        padding = (padding, padding, padding)
    if not hasattr(padding, "__len__"):
        raise ValueError(f"`padding` must be 'same', 'valid' or explicit sizes, got {padding!r}.")
    pairs = []
    for p in padding:
        if _is_int(p):
            pair = (p, p)
        elif hasattr(p, "__len__") and all(_is_int(v) for v in p):
            pair = tuple(p)
        else:
            raise ValueError(f"Explicit `padding` entries must be ints or (before, after) pairs >= 0, got {padding}.")
        if len(pair) != 2 or min(pair) < 0:
            raise ValueError(f"Explicit `padding` entries must be ints or (before, after) pairs >= 0, got {padding}.")
        pairs.append(pair)
    if len(pairs) != 3:
        raise ValueError(f"Explicit `padding` needs 3 entries (time, height, width), got {padding}.")
    return tuple(pairs)


def _check_implementation(implementation: str) -> str:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"`implementation` must be one of {list(IMPLEMENTATIONS)}, got {implementation!r}.")
    return implementation


def _out_len(size: int | None, kernel: int, stride: int, pads: tuple[int, int]) -> int | None:
    if size is None:
        return None
    return (size + pads[0] + pads[1] - kernel) // stride + 1


@keras.saving.register_keras_serializable(package="autox3d_tf")
class DepthwiseConv3D(keras.layers.Layer):
    """Depthwise 3D convolution (depth multiplier 1) on channels-last video tensors.

    Args:
        kernel_size: int or (t, h, w).
        strides: int or (t, h, w).
        padding: "valid", "same" (TensorFlow semantics), or explicit zero padding: an int, a
            tuple of 3 ints (symmetric, as PyTorch's ``padding=``) or 3 (before, after) pairs.
        use_bias: whether to add a per-channel bias.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as in Keras.
        implementation: "auto", "slices" or "shift_conv" (see the module docstring); the weights and
            the function computed are the same.
        dilation_rate: int or (t, h, w); only the temporal rate may exceed 1, and only for a
            ``(kt, 1, 1)`` kernel with spatial strides 1 (a pseudo-3D block's dilated temporal
            convolution): the taps are ``t`` frames apart, ``y[f] = sum_i k[i] x[f * st + i * t - pad]``.

    Input ``(batch, frames, height, width, channels)``; output the same rank with the
    convolved sizes. The kernel has shape ``(t, h, w, channels, 1)``.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: PaddingArg = "valid",
        use_bias: bool = False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        implementation: str = "auto",
        dilation_rate: int | Sequence[int] = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.implementation = _check_implementation(implementation)
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.strides = _triple(strides, "strides")
        self.dilation_rate = _triple(dilation_rate, "dilation_rate")
        if self.dilation_rate[1:] != (1, 1):
            raise ValueError(f"`dilation_rate` may only dilate time, got {self.dilation_rate}.")
        if self.dilation_rate[0] > 1 and (self.kernel_size[1:] != (1, 1) or self.strides[1:] != (1, 1)):
            raise ValueError(
                "A temporal `dilation_rate` needs a (kt, 1, 1) kernel with spatial strides 1, got kernel "
                f"{self.kernel_size} and strides {self.strides}."
            )
        self.padding = _normalize_padding(padding)
        if self.dilation_rate[0] > 1 and not isinstance(self.padding, str) and any(map(any, self.padding[1:])):
            raise ValueError(f"A temporal `dilation_rate` pads only time, got padding {self.padding}.")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("DepthwiseConv3D needs a known number of input channels (last axis).")
        self.input_spec = keras.layers.InputSpec(ndim=5, axes={-1: channels})
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, 1),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(channels,), initializer=self.bias_initializer, regularizer=self.bias_regularizer
            )

    def _pads(self, shape) -> tuple[tuple[int, int], ...]:
        """Explicit (before, after) pads per axis; 'same' needs static sizes only when stride > 1."""
        if self.padding == "valid":
            return ((0, 0),) * 3
        if self.padding == "same":
            pads = []
            for size, k, s in zip(shape[1:4], self._spans(), self.strides):
                if size is None:
                    if s != 1:
                        raise ValueError("'same' padding with stride > 1 needs static input sizes.")
                    size = 1  # with stride 1 the pads do not depend on the size
                pads.append(same_pads(size, k, s))
            return tuple(pads)
        return self.padding

    def _spans(self) -> tuple[int, int, int]:
        """The kernel's extent per axis: ``(kt - 1) * dilation + 1`` in time."""
        (kt, kh, kw), dt = self.kernel_size, self.dilation_rate[0]
        return ((kt - 1) * dt + 1, kh, kw)

    def _spatial_same(self, pads) -> bool:
        """Whether the spatial pads are TensorFlow's 'same' at stride 1 (the 2D op's own padding)."""
        _, kh, kw = self.kernel_size
        _, sh, sw = self.strides
        _, (ph0, ph1), (pw0, pw1) = pads
        return sh == sw == 1 and (ph0, ph1) == same_pads(1, kh, 1) and (pw0, pw1) == same_pads(1, kw, 1)

    def compute_output_shape(self, input_shape):
        pads = self._pads(input_shape)
        dims = [_out_len(n, k, s, p) for n, k, s, p in zip(input_shape[1:4], self._spans(), self.strides, pads)]
        return (input_shape[0], *dims, input_shape[-1])

    def call(self, inputs):
        out_shape = self.compute_output_shape(inputs.shape)
        if any(d is not None and d < 1 for d in out_shape[1:4]):
            raise ValueError(
                f"DepthwiseConv3D {self.name}: input {tuple(inputs.shape)} is smaller than the kernel "
                f"{self.kernel_size} with padding {self.padding!r} (output would be {out_shape})."
            )
        _, kh, kw = self.kernel_size
        st, sh, sw = self.strides
        pads = self._pads(inputs.shape)
        (pt0, pt1), (ph0, ph1), (pw0, pw1) = pads
        if kh == kw == 1 and sh == sw == 1 and not (ph0 or ph1 or pw0 or pw1):
            return self._temporal_only(inputs, (pt0, pt1), out_shape)
        single_clip = inputs.shape[0] == 1 and st == 1
        if self.implementation == "shift_conv" or (self.implementation == "auto" and not single_clip):
            return self._shift_conv(inputs, pads, out_shape)
        return self._slices(inputs, pads)

    def _slices(self, inputs, pads):
        """The "slices" implementation (see the module docstring)."""
        kt, kh, kw = self.kernel_size
        st, sh, sw = self.strides
        (pt0, pt1), (ph0, ph1), (pw0, pw1) = pads
        channels = inputs.shape[-1]
        # Spatial padding: TF 'same' at stride 1 and explicit pads on TensorFlow are done by the
        # 2D op itself; only other backends pad the tensor (a copy).
        spatial_same = self._spatial_same(pads)
        native_pads = not spatial_same and is_tensorflow()
        if spatial_same or native_pads:
            conv_padding = "same" if spatial_same else [[0, 0], [ph0, ph1], [pw0, pw1], [0, 0]]
            hp = wp = (0, 0)
        else:
            conv_padding = "valid"
            hp, wp = (ph0, ph1), (pw0, pw1)
        x = inputs
        if pt0 or pt1 or any(hp) or any(wp):
            x = ops.pad(x, [[0, 0], [pt0, pt1], list(hp), list(wp), [0, 0]])

        shape = ops.shape(x)
        batch, frames, height, width = shape[0], shape[1], shape[2], shape[3]
        out_frames = (frames - kt) // st + 1
        spatial_identity = kh == kw == 1 and sh == sw == 1 and not (ph0 or ph1 or pw0 or pw1)

        # Frames of all clips in one axis: (batch * frames, H, W, C). A temporal tap is then a
        # contiguous slice of that axis, which TensorFlow takes without copying.
        flat = ops.reshape(x, (-1, height, width, channels))
        span = batch * frames - (kt - 1)
        terms = []
        for i in range(kt):
            tap = flat[i : i + span] if kt > 1 else flat
            if spatial_identity:
                terms.append(tap * self.kernel[i, 0, 0, :, 0])
            else:
                terms.append(depthwise_conv2d(tap, self.kernel[i], (sh, sw), conv_padding))
        bias_done = False
        if self.use_bias and is_tensorflow() and isinstance(conv_padding, str) and not spatial_identity:
            # A BiasAdd right after one tap's convolution: Grappler fuses the two into one kernel.
            # Not with explicit pads: TensorFlow 2.21's fused depthwise kernel aborts the process
            # on them ("Check failed ... Invalid index from the dimension").
            terms[0] = bias_add(terms[0], self.bias)
            bias_done = True
        out = add_n(terms)

        # With one clip (static batch 1) and temporal stride 1, the rows of the sum are exactly
        # the output frames; otherwise row b * frames + t * st is output frame t of clip b and the
        # rows in between straddle two clips and are dropped.
        one_clip = inputs.shape[0] == 1
        if (kt > 1 or st > 1) and not (one_clip and st == 1):
            rows = ops.arange(batch)[:, None] * frames + ops.arange(out_frames)[None, :] * st
            out = ops.take(out, ops.reshape(rows, (-1,)), axis=0)
        out_dims = ops.shape(out)
        out = ops.reshape(out, (batch, out_frames, out_dims[1], out_dims[2], channels))
        if self.use_bias and not bias_done:
            out = out + self.bias
        return out

    def _shift_conv(self, inputs, pads, out_shape):
        """The "shift_conv" implementation (see the module docstring)."""
        kt = self.kernel_size[0]
        st, sh, sw = self.strides
        (pt0, pt1), (ph0, ph1), (pw0, pw1) = pads
        channels = inputs.shape[-1]
        x = inputs
        if self._spatial_same(pads):
            conv_padding = "same"
        else:
            if ph0 or ph1 or pw0 or pw1:
                x = ops.pad(x, [[0, 0], [0, 0], [ph0, ph1], [pw0, pw1], [0, 0]])
            conv_padding = "valid"
        shape = ops.shape(x)
        frames = ops.reshape(x, (-1, shape[2], shape[3], channels))
        out, (height, width) = sum_temporal_taps(
            lambda i: depthwise_conv2d(frames, self.kernel[i], (sh, sw), conv_padding),
            kt,
            shape[1],
            (pt0, pt1),
            st,
            bias=self.bias if self.use_bias else None,
        )
        out_frames = out_shape[1] if out_shape[1] is not None else ops.shape(out)[1]
        height = out_shape[2] if out_shape[2] is not None else height
        width = out_shape[3] if out_shape[3] is not None else width
        return ops.reshape(out, (shape[0], out_frames, height, width, channels))

    def _temporal_only(self, inputs, pads: tuple[int, int], out_shape):
        """A (kt, 1, 1) kernel: one depthwise 2D convolution over (frames, pixels) per clip.

        The clip is viewed as (batch, frames, H * W, C) (a free reshape); the temporal taps are
        the rows of a (kt, 1) kernel and the temporal zero padding is the op's own padding, so
        there is no copy, no per-tap op and no row selection, for any batch size.
        """
        st = self.strides[0]
        channels = inputs.shape[-1]
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (shape[0], shape[1], -1, channels))
        out, native_padding = conv_along_frames(x, self.kernel[:, 0], pads, st, self.dilation_rate[0])
        fuse_bias = self.use_bias and native_padding
        if fuse_bias:
            out = bias_add(out, self.bias)
        frames = out_shape[1] if out_shape[1] is not None else ops.shape(out)[1]
        height = inputs.shape[2] if inputs.shape[2] is not None else shape[2]
        width = inputs.shape[3] if inputs.shape[3] is not None else shape[3]
        out = ops.reshape(out, (shape[0], frames, height, width, channels))
        if self.use_bias and not fuse_bias:
            out = out + self.bias
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "implementation": self.implementation,
                "dilation_rate": self.dilation_rate,
            }
        )
        return config


@contextlib.contextmanager
def depthwise_implementation(model: keras.layers.Layer, implementation: str) -> Iterator[None]:
    """Within the block, every `DepthwiseConv3D` of ``model`` uses ``implementation`` (for
    graphs traced there, e.g. an export); the previous choices are restored on exit."""
    _check_implementation(implementation)
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, DepthwiseConv3D)]
    previous = [layer.implementation for layer in layers]
    for layer in layers:
        layer.implementation = implementation
    try:
        yield
    finally:
        for layer, choice in zip(layers, previous):
            layer.implementation = choice
