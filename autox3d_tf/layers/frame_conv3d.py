"""A Conv3D whose kernel spans one frame, computed as a 2D convolution of every frame."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="autox3d_tf")
class FrameConv3D(keras.layers.Conv3D):
    """``keras.layers.Conv3D`` with a ``(1, kh, kw)`` kernel and temporal stride 1.

    Same weights (kernel ``(1, kh, kw, in, out)``), arguments and output as ``Conv3D``; the call
    reshapes the clip to its frames ``(batch * frames, H, W, C)`` and runs one 2D convolution.
    TFLite has no fast 3D convolution (its XNNPACK delegate leaves ``CONV_3D`` to a slow
    reference kernel) but runs ``CONV_2D`` well; TensorFlow runs both at the same speed, and a
    plain ``Pad`` in front of the stem then no longer fuses into the convolution, which made
    Grappler drop all of its fusions in the training step ("remapper failed ... stem_pad").
    """

    def __init__(self, filters: int, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.kernel_size[0] != 1 or self.strides[0] != 1 or self.dilation_rate[0] != 1:
            raise ValueError(
                f"FrameConv3D needs a kernel of 1 frame, temporal stride and dilation 1; got kernel_size "
                f"{self.kernel_size}, strides {self.strides}, dilation_rate {self.dilation_rate}."
            )
        if self.groups != 1 or self.data_format != "channels_last":
            raise ValueError("FrameConv3D supports groups=1 and channels_last only.")

    def call(self, inputs):
        shape = ops.shape(inputs)
        frames = ops.reshape(inputs, (-1, shape[2], shape[3], inputs.shape[-1]))
        y = ops.conv(
            frames,
            self.kernel[0],
            strides=self.strides[1:],
            padding=self.padding,
            dilation_rate=self.dilation_rate[1:],
        )
        if self.use_bias:
            y = y + self.bias
        if self.activation is not None:
            y = self.activation(y)
        y_shape = ops.shape(y)
        return ops.reshape(y, (shape[0], shape[1], y_shape[1], y_shape[2], self.filters))
