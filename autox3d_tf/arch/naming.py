"""The one naming scheme of an X3D network's layers.

`autox3d_tf.models.build_model` names its layers with these functions and constants, the search
supernet names its blocks and weights after them and copies a sampled architecture's weights into
the built network by them (``autox3d_tf.search.subnet``), and the checkpoint converter
(``autox3d_tf.weights.convert``) maps each name to a pytorchvideo / PySlowFast module. Saved weights
files (``.weights.h5``) address weights by these names: they must not change.

A built network's layers (after its input, ``frames``)::

    preprocessing (with ``include_preprocessing=True``)
    stem_pad, stem_conv_spatial, stem_conv_temporal, stem_bn, stem_relu
    stage{s}_block{b}_{conv_a, bn_a, relu_a, conv_b[_{k}], conv_b_add, bn_b, se_pool, se_reduce,
                       se_expand, se_scale, swish | relu_b, conv_c, bn_c, shortcut_conv, shortcut_bn,
                       shortcut_pool, add, relu}
    head_conv, head_bn, head_relu, head_pool, head_dense, head_dense_relu | head_dense_swish,
    head_dropout, predictions

E3D's blocks name their ReLU after the depthwise convolution ``relu_b`` (X3D's Swish: ``swish``), the
per-frame average pool of a strided identity shortcut ``shortcut_pool``, and the Swish after the
head's hidden dense layer ``head_dense_swish``; an E3D stem has no ``stem_conv_temporal``.

Stages are numbered from 1 and blocks from 0, as pytorchvideo's ``blocks[s].res_blocks[b]``; a
block with two depthwise convolutions (the pseudo-3D types: "2+1d", "p3d-b", "p3d-c", "2+1d-d2") names
them ``conv_b_0`` (spatial) and ``conv_b_1`` (temporal), and the sum of the two that "p3d-b" and
"p3d-c" compute ``conv_b_add``.
"""

from __future__ import annotations

import re

INPUTS = "frames"
PREPROCESSING = "preprocessing"

STEM_PAD = "stem_pad"
STEM_CONV_SPATIAL = "stem_conv_spatial"
STEM_CONV_TEMPORAL = "stem_conv_temporal"
STEM_BN = "stem_bn"
STEM_RELU = "stem_relu"

HEAD_CONV = "head_conv"
HEAD_BN = "head_bn"
HEAD_RELU = "head_relu"
HEAD_POOL = "head_pool"
HEAD_DENSE = "head_dense"
HEAD_DENSE_RELU = "head_dense_relu"
HEAD_DENSE_SWISH = "head_dense_swish"
HEAD_DROPOUT = "head_dropout"
PREDICTIONS = "predictions"
AVG_POOL = "avg_pool"
MAX_POOL = "max_pool"

# Roles of a residual block's layers with weights (each maps to one PyTorch module).
CONV_A = "conv_a"
BN_A = "bn_a"
CONV_B = "conv_b"
BN_B = "bn_b"
SE_REDUCE = "se_reduce"
SE_EXPAND = "se_expand"
CONV_C = "conv_c"
BN_C = "bn_c"
SHORTCUT_CONV = "shortcut_conv"
SHORTCUT_BN = "shortcut_bn"
BLOCK_WEIGHT_ROLES = (CONV_A, BN_A, CONV_B, BN_B, SE_REDUCE, SE_EXPAND, CONV_C, BN_C, SHORTCUT_CONV, SHORTCUT_BN)

# Roles of its layers without weights.
RELU_A = "relu_a"
SE_POOL = "se_pool"
SE_SCALE = "se_scale"
CONV_B_ADD = "conv_b_add"  # the sum of a pseudo-3D block's two depthwise convolutions
SWISH = "swish"
RELU_B = "relu_b"  # E3D: ReLU instead of Swish after the depthwise convolution
SHORTCUT_POOL = "shortcut_pool"  # E3D: per-frame average pool of a strided identity shortcut
ADD = "add"
RELU = "relu"

_BLOCK_LAYER = re.compile(r"^stage(\d+)_block(\d+)_(" + "|".join(BLOCK_WEIGHT_ROLES) + r")$")


def block_prefix(stage: int, block: int) -> str:
    """``"stage{stage}_block{block}"``: the name of block ``block`` (from 0) of stage ``stage`` (from 1)."""
    return f"stage{stage}_block{block}"


def block_layer(prefix: str, role: str) -> str:
    """The name of the layer of role ``role`` (e.g. `CONV_A`) in the block named ``prefix``."""
    return f"{prefix}_{role}"


def depthwise_role(index: int, count: int) -> str:
    """The role of depthwise convolution ``index`` of a block with ``count`` of them:
    ``"conv_b"`` for the only one, else ``"conv_b_{index}"``."""
    return CONV_B if count == 1 else f"{CONV_B}_{index}"


def parse_block_layer(name: str) -> tuple[int, int, str] | None:
    """``(stage, block, role)`` of a block layer with weights named ``name`` (a role of
    `BLOCK_WEIGHT_ROLES`; the ``conv_b_{k}`` of a two-convolution block are not), else None."""
    match = _BLOCK_LAYER.match(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), match.group(3)
