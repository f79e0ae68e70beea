"""One builder from a `CellNetSpec` (a genotype and its widths) to a plain functional `keras.Model`.

The network (`autox3d_tf.arch.cells`): a stem (a 1x3x3 stride-2 convolution, a 3x1x1 depthwise
one, BatchNorm) to ``stem_multiplier * channels``, ``layers`` cells (reductions at a third and two
thirds, which halve the size and double the channels), global average pooling and the
classifier. Layer names (`autox3d_tf.models.cell_ops.edge_name`) are the search supernet's, so a
derived network can take the supernet's weights. The model trains with ``fit``, evaluates,
exports to a SavedModel and TFLite like any zoo model (no custom training logic inside).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from autox3d_tf.arch.cells import CellNetSpec
from autox3d_tf.layers import DepthwiseConv3D, FrameConv3D, PixelNormalization
from autox3d_tf.models.builder import CONV_INIT, DEPTHWISE_INIT, HEAD_INIT, fresh_initializer
from autox3d_tf.models.cell_ops import CellOp, Preprocess, cell_bn, edge_name

__all__ = ["build_cell_model", "cell_stem", "cell_widths"]


def cell_stem(width: int, temporal_kernel: int = 3, sync_bn: bool = False):
    """The stem's layers: ``(pad, spatial conv, temporal depthwise conv, BatchNorm)``."""
    return (
        layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name="stem_pad"),
        FrameConv3D(width, (1, 3, 3), strides=(1, 2, 2), padding="valid", use_bias=False,
                    kernel_initializer=fresh_initializer(CONV_INIT), name="stem_conv_spatial"),
        DepthwiseConv3D((temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0), kernel_initializer=fresh_initializer(DEPTHWISE_INIT),
                        name="stem_conv_temporal"),
        cell_bn("stem_bn", sync_bn),
    )


def cell_widths(spec: CellNetSpec) -> list[tuple[int, bool, bool]]:
    """``(channels, reduce, reduce_prev)`` of every cell."""
    out, channels, reduce_prev = [], spec.channels, False
    for layer in range(spec.layers):
        reduce = layer in spec.reductions
        channels *= 2 if reduce else 1
        out.append((channels, reduce, reduce_prev))
        reduce_prev = reduce
    return out


def build_cell_model(
    spec: CellNetSpec,
    *,
    input_shape: Sequence[int | None] | None = None,
    classes: int = 400,
    classifier_activation: str | None = "softmax",
    dropout_rate: float = 0.0,
    name: str | None = None,
    include_preprocessing: bool = False,
) -> keras.Model:
    """The network of ``spec`` (its genotype's two chosen operations per node).

    Args:
        spec: the cell network.
        input_shape: ``(frames, height, width, 3)``; default the spec's clip.
        classes: classifier outputs.
        classifier_activation: activation of the classifier (None: logits).
        dropout_rate: dropout before the classifier.
        name: model name (default the spec's).
        include_preprocessing: take RGB pixels in [0, 255] and normalise inside.
    """
    if not isinstance(spec, CellNetSpec):
        raise TypeError(f"`spec` must be a CellNetSpec, got {type(spec).__name__}.")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer, got {classes!r}.")
    shape = tuple(input_shape) if input_shape is not None else (spec.input_frames, spec.input_size, spec.input_size, 3)
    inputs = keras.Input(shape=shape, name="frames")
    x = PixelNormalization(name="preprocessing")(inputs) if include_preprocessing else inputs
    for layer in cell_stem(spec.stem_multiplier * spec.channels, spec.stem_temporal_kernel):
        x = layer(x)
    s0 = s1 = x
    for cell, (channels, reduce, reduce_prev) in enumerate(cell_widths(spec)):
        states = [Preprocess(channels, reduce_prev, f"cell{cell}_pre0")(s0), Preprocess(channels, False, f"cell{cell}_pre1")(s1)]
        pairs = spec.genotype.reduce if reduce else spec.genotype.normal
        for node in range(spec.genotype.nodes):
            terms = []
            for op, index in pairs[2 * node: 2 * node + 2]:
                stride = 2 if reduce and index < 2 else 1
                terms.append(CellOp(op, channels, stride, edge_name(cell, node, index, op))(states[index]))
            states.append(layers.Add(name=f"cell{cell}_node{node}")(terms))
        s0, s1 = s1, layers.Concatenate(axis=-1, name=f"cell{cell}_out")(states[2:])
    x = layers.ReLU(name="head_relu")(s1)
    x = layers.GlobalAveragePooling3D(name="head_pool")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="head_dropout")(x)
    x = layers.Dense(classes, activation=classifier_activation, kernel_initializer=fresh_initializer(HEAD_INIT),
                     name="predictions")(x)
    return keras.Model(inputs, x, name=name or spec.name)
