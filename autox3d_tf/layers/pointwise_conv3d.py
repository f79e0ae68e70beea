"""1x1x1 convolution of a clip as 2D operations on its frames, with optional strides."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from autox3d_tf.layers.temporal import bias_add

# From this many pixels per call (batch x frames x height x width, the batch counted as 1 when
# unknown) the 1x1x1 convolution runs as a 1x1 Conv2D instead of a matmul: with oneDNN, Conv2D
# is the faster on the first X3D stages' many pixels and the matmul on the last stages' few (the
# README's speed section has the measurements).
CONV_MIN_ROWS = 12288


def _rows(shape) -> int:
    """Static pixel count of a (batch, frames, height, width, channels) shape; 0 if unknown."""
    if any(d is None for d in shape[1:4]):
        return 0
    batch = shape[0] if shape[0] is not None else 1
    return int(batch * shape[1] * shape[2] * shape[3])


@keras.saving.register_keras_serializable(package="autox3d_tf")
class PointwiseConv3D(keras.layers.Layer):
    """A 1x1x1 convolution on ``(batch, frames, height, width, channels)`` tensors.

    Equivalent to ``Conv3D(filters, 1, strides=strides)`` with PyTorch's (and TF's 'valid')
    subsampling, and faster than Conv3D on CPU. A temporal stride keeps every ``st``-th frame
    (a strided slice); the frames, ``(batch * frames, H, W, C)``, then go through a strided 1x1
    Conv2D when there is a spatial stride, else a 1x1 Conv2D from `CONV_MIN_ROWS` pixels per
    call and one matmul on the channel axis below, each followed by the bias and activation
    (which TensorFlow fuses into it). The kernel has shape ``(in_channels, filters)``.

    Args:
        filters: output channels.
        strides: int or (t, h, w).
        use_bias: whether to add a per-channel bias.
        activation: optional activation (e.g. "relu" in a BatchNorm-folded graph).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as in Keras.
    """

    def __init__(
        self,
        filters: int,
        strides: int | Sequence[int] = 1,
        use_bias: bool = False,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"`filters` must be a positive int, got {filters}.")
        self.filters = int(filters)
        strides = (strides,) * 3 if isinstance(strides, int) else tuple(int(s) for s in strides)
        if len(strides) != 3 or min(strides) < 1:
            raise ValueError(f"`strides` must be a positive int or 3 positive ints, got {strides}.")
        self.strides = strides
        self.use_bias = bool(use_bias)
        self.activation = None if activation is None else keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("PointwiseConv3D needs a known number of input channels (last axis).")
        self.kernel = self.add_weight(
            name="kernel",
            shape=(channels, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer, regularizer=self.bias_regularizer
            )

    def compute_output_shape(self, input_shape):
        dims = [None if n is None else (n - 1) // s + 1 for n, s in zip(input_shape[1:4], self.strides)]
        return (input_shape[0], *dims, self.filters)

    def call(self, inputs):
        st, sh, sw = self.strides
        x = inputs
        if st > 1:
            x = x[:, ::st]
        shape = ops.shape(x)
        if (sh, sw) != (1, 1):
            # A strided 1x1 Conv2D on the frames reads the subsampled pixels in place.
            flat = ops.reshape(x, (-1, shape[2], shape[3], shape[4]))
            kernel = ops.reshape(self.kernel, (1, 1, *self.kernel.shape))
            y = ops.conv(flat, kernel, strides=(sh, sw), padding="valid")
            y_shape = ops.shape(y)
            out_shape = (shape[0], shape[1], y_shape[1], y_shape[2], self.filters)
        elif _rows(x.shape) >= CONV_MIN_ROWS:
            # Many pixels: a 1x1 Conv2D on the frames, which oneDNN runs faster than a matmul there.
            out_shape = (shape[0], shape[1], shape[2], shape[3], self.filters)
            flat = ops.reshape(x, (-1, shape[2], shape[3], x.shape[-1]))
            kernel = ops.reshape(self.kernel, (1, 1, *self.kernel.shape))
            y = ops.conv(flat, kernel, strides=1, padding="valid")
        else:
            out_shape = (shape[0], shape[1], shape[2], shape[3], self.filters)
            # A 2D matmul, bias and activation in a row: TensorFlow fuses them into one kernel.
            y = ops.matmul(ops.reshape(x, (-1, x.shape[-1])), self.kernel)
        # Bias and activation right after the matmul / conv (no reshape in between), so that
        # TensorFlow fuses the three into one kernel.
        if self.use_bias:
            y = bias_add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return ops.reshape(y, out_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation) if self.activation else None,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            }
        )
        return config
