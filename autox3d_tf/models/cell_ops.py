"""The operations of a cell network (`autox3d_tf.arch.cells`) as Keras layers.

A `CellOp` makes the layers of one operation on one edge once and applies them to any input,
so the derived network (`build_cell_model`, a plain functional model) and the search's
supernet (every candidate of every edge, `autox3d_tf.search.cell_supernet`) are built from the same
code, with the same layer names: a derived network takes its weights from a supernet by name.

Every convolution operation is ReLU, its depthwise convolution(s), a pointwise convolution to the
edge's channels and BatchNorm (pseudo-3D: the two depthwise convolutions combined by
`combine_pseudo3d`). A strided identity (an input edge of a reduction cell) is ReLU, a strided
1x1x1 convolution and BatchNorm. Pooling is per frame (`FramePooling2D`). "zero" has no layers.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from autox3d_tf.arch.cells import op_descriptor
from autox3d_tf.arch.spec import PSEUDO3D_BLOCKS
from autox3d_tf.layers import DepthwiseConv3D, FramePooling2D, PointwiseConv3D
from autox3d_tf.models.builder import BN_EPSILON, BN_MOMENTUM, CONV_INIT, DEPTHWISE_INIT, fresh_initializer
from autox3d_tf.models.pseudo3d import combine_pseudo3d, pseudo3d_convs

__all__ = ["CellOp", "Preprocess", "cell_bn", "edge_name"]


def edge_name(cell: int, node: int, index: int, op: str) -> str:
    """The name prefix of operation ``op`` on the edge from state ``index`` to ``node`` of ``cell``."""
    return f"cell{cell}_node{node}_in{index}_{op}"


def cell_bn(name: str, synchronized: bool = False) -> layers.BatchNormalization:
    """A cell network's BatchNorm; ``synchronized`` (the search's supernet) computes the statistics
    over the global batch under tf.distribute, so N replicas equal one replica."""
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, synchronized=synchronized, name=name)


class CellOp:
    """The layers of operation ``op`` with ``channels`` outputs and spatial ``stride``.

    Call it on a tensor (symbolic or eager) to apply them; ``layers`` lists them (empty for the
    identity at stride 1 and for "zero", which outputs nothing: `is_zero`). ``sync_bn``: see `cell_bn`.
    """

    def __init__(self, op: str, channels: int, stride: int, prefix: str, sync_bn: bool = False):
        self.op = op
        self.kind, arg = op_descriptor(op)
        self.stride = int(stride)
        self.layers: list[keras.layers.Layer] = []
        self._combine = None
        strides = (1, self.stride, self.stride)
        if self.kind == "pool":
            self.layers = [FramePooling2D(arg, 3, self.stride, name=f"{prefix}_pool")]
        elif self.kind == "identity" and self.stride > 1:
            self.layers = [
                layers.ReLU(name=f"{prefix}_relu"),
                PointwiseConv3D(channels, strides=strides, kernel_initializer=fresh_initializer(CONV_INIT),
                                name=f"{prefix}_conv"),
                cell_bn(f"{prefix}_bn", sync_bn),
            ]
        elif self.kind in ("sep", "p3d"):
            if self.kind == "sep":
                depthwise = [DepthwiseConv3D(arg, strides=strides, padding=tuple(k // 2 for k in arg),
                                             kernel_initializer=fresh_initializer(DEPTHWISE_INIT),
                                             name=f"{prefix}_dw")]
            else:
                descriptor = PSEUDO3D_BLOCKS[arg]
                depthwise = list(pseudo3d_convs(descriptor, self.stride, names=(f"{prefix}_dw_s", f"{prefix}_dw_t"),
                                                initializer=lambda: fresh_initializer(DEPTHWISE_INIT)))
                self._combine = (descriptor.topology, f"{prefix}_sum")
            self.layers = [
                layers.ReLU(name=f"{prefix}_relu"),
                *depthwise,
                PointwiseConv3D(channels, kernel_initializer=fresh_initializer(CONV_INIT), name=f"{prefix}_pw"),
                cell_bn(f"{prefix}_bn", sync_bn),
            ]

    @property
    def is_zero(self) -> bool:
        return self.kind == "zero"

    def __call__(self, x: Any, training: bool | None = None) -> Any:
        if self.is_zero:
            raise ValueError("the 'zero' operation has no output; leave it out of the sum")
        if self._combine is None:
            for layer in self.layers:
                x = _apply(layer, x, training)
            return x
        relu, spatial, temporal, pointwise, bn = self.layers
        topology, name = self._combine
        x = relu(x)
        x = combine_pseudo3d(x, spatial, temporal, topology, name=name)
        return _apply(bn, pointwise(x), training)


def _apply(layer: keras.layers.Layer, x: Any, training: bool | None) -> Any:
    if isinstance(layer, layers.BatchNormalization) and training is not None:
        return layer(x, training=training)
    return layer(x)


class Preprocess:
    """A cell's input to ``channels``: ReLU, a 1x1x1 convolution (strided when the input is
    twice the cell's size: it comes from before a reduction) and BatchNorm."""

    def __init__(self, channels: int, reduce: bool, prefix: str, sync_bn: bool = False):
        self.layers = [
            layers.ReLU(name=f"{prefix}_relu"),
            PointwiseConv3D(channels, strides=(1, 2, 2) if reduce else 1,
                            kernel_initializer=fresh_initializer(CONV_INIT), name=f"{prefix}_conv"),
            cell_bn(f"{prefix}_bn", sync_bn),
        ]

    def __call__(self, x: Any, training: bool | None = None) -> Any:
        for layer in self.layers:
            x = _apply(layer, x, training)
        return x
