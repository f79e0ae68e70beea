"""`FramePooling2D`: max or average pooling of every frame of a clip (no 3D pooling op).

Pooling ``(batch, frames, H, W, C)`` per frame is a 2D pooling of ``(batch * frames, H, W, C)``,
which every backend, TF Serving and TFLite run; average pooling this way also avoids AvgPool3D
(docs/ARCHITECTURE.md). "same" padding; an average excludes the padded positions.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["FramePooling2D"]

MODES = ("max", "avg")


@keras.saving.register_keras_serializable(package="autox3d_tf")
class FramePooling2D(keras.layers.Layer):
    """Per-frame ``pool_size x pool_size`` max or average pooling with spatial ``strides``.

    Args:
        mode: "max" or "avg".
        pool_size: the square window.
        strides: spatial stride.
    """

    def __init__(self, mode: str = "max", pool_size: int = 3, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"FramePooling2D mode must be one of {list(MODES)}, got {mode!r}.")
        self.mode = mode
        self.pool_size = int(pool_size)
        self.strides = int(strides)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def compute_output_shape(self, input_shape):
        batch, frames, height, width, channels = input_shape

        def out(size):
            return None if size is None else -(-size // self.strides)

        return (batch, frames, out(height), out(width), channels)

    def call(self, x):
        shape = ops.shape(x)
        frames, height, width, channels = (x.shape[i] if x.shape[i] is not None else shape[i] for i in range(1, 5))
        flat = ops.reshape(x, (-1, height, width, channels))
        pool = ops.max_pool if self.mode == "max" else ops.average_pool
        y = pool(flat, pool_size=self.pool_size, strides=self.strides, padding="same")
        return ops.reshape(y, (-1, frames, y.shape[1] or ops.shape(y)[1], y.shape[2] or ops.shape(y)[2], channels))

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "pool_size": self.pool_size, "strides": self.strides}
