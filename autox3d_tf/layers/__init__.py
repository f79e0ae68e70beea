"""Keras layers of autox3d_tf: video convolutions that need neither grouped Conv3D nor XLA."""

from autox3d_tf.layers.causal import CumulativeAveragePooling3D, TemporalBuffer, causal_padding
from autox3d_tf.layers.depthwise_conv3d import DepthwiseConv3D, depthwise_implementation
from autox3d_tf.layers.frame_conv3d import FrameConv3D
from autox3d_tf.layers.frame_pooling import FramePooling2D
from autox3d_tf.layers.normalization import MEAN, STD, PixelNormalization, normalize_pixels
from autox3d_tf.layers.pointwise_conv3d import PointwiseConv3D

__all__ = [
    "CumulativeAveragePooling3D",
    "DepthwiseConv3D",
    "FrameConv3D",
    "FramePooling2D",
    "MEAN",
    "PixelNormalization",
    "PointwiseConv3D",
    "STD",
    "TemporalBuffer",
    "causal_padding",
    "depthwise_implementation",
    "normalize_pixels",
]
