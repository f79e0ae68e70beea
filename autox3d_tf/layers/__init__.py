"""Keras layers of autox3d_tf: video convolutions that need neither grouped Conv3D nor XLA."""

from autox3d_tf.layers.depthwise_conv3d import DepthwiseConv3D
from autox3d_tf.layers.pointwise_conv3d import PointwiseConv3D

__all__ = ["DepthwiseConv3D", "PointwiseConv3D"]
