"""The one input normalisation of every model in the package, and the layer that applies it.

Every X3D checkpoint (pytorchvideo / PySlowFast) was trained on RGB pixels scaled to [0, 1] and
normalised per channel with :data:`MEAN` and :data:`STD`. :func:`normalize_pixels` is that formula
on pixels in [0, 255]; the data pipelines, ``preprocess_input``, the SavedModel and TFLite exports
and :class:`PixelNormalization` (``include_preprocessing=True``) all call it.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)
PIXEL_MAX = 255.0


def normalization_constants(mean=MEAN, std=STD) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, offset)``, float32 per channel, with ``x * scale + offset == (x / 255 - mean) / std``."""
    mean = np.asarray(mean, np.float64)
    std = np.asarray(std, np.float64)
    return (1.0 / (PIXEL_MAX * std)).astype(np.float32), (-mean / std).astype(np.float32)


def normalize_pixels(x: Any, mean=MEAN, std=STD) -> Any:
    """``(x / 255 - mean) / std`` per channel for float pixels ``x`` in [0, 255], channels last.

    Computed as one multiply-add, ``x * scale + offset`` (one MUL and one ADD in a TFLite file), with
    float32 NumPy constants, so it keeps the type of ``x``: a NumPy array, a TensorFlow tensor
    (inside tf.data or a ``tf.function``) or a Keras tensor of any backend. Cast integer pixels to
    float32 first.
    """
    scale, offset = normalization_constants(mean, std)
    return x * scale + offset


@keras.saving.register_keras_serializable(package="autox3d_tf")
class PixelNormalization(keras.layers.Layer):
    """Casts pixels in [0, 255] (uint8 or float) to float32 and applies :func:`normalize_pixels`.

    The first layer of a model built with ``include_preprocessing=True`` (keras.applications'
    ConvNeXt convention): such a model takes raw RGB clips.
    """

    def __init__(self, mean=MEAN, std=STD, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def call(self, inputs):
        return normalize_pixels(ops.cast(inputs, "float32"), self.mean, self.std)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std)}
