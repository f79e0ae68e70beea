"""A sampled architecture of the supernet as a standalone built network (TensorFlow only).

`extract_subnet` builds the `build_model` network of an architecture and copies into it the
weights the supernet uses for that architecture: the channels of the masks drawn from a seed,
the chosen block type's depthwise kernels and BatchNorm, the SE weights of the SE width. The
supernet's weights and the built network's layers are named by the one scheme of
`autox3d_tf.arch.naming`. Like the supernet, TensorFlow-only (its masks are ``tf`` ops).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch import naming
from autox3d_tf.models.builder import build_model

if TYPE_CHECKING:
    from autox3d_tf.search.supernet import SuperNet


def _array(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def _kept(mask) -> np.ndarray:
    """Indices of the channels a mask keeps."""
    return np.flatnonzero(np.asarray(mask) > 0)


def extract_subnet(
    net: "SuperNet", choices: Sequence[int] | np.ndarray, seed: Sequence[int] = (0, 0), name: str = "autox3d_subnet"
) -> keras.Model:
    """The plain `build_model` network of ``choices`` with the weights ``net`` uses for them.

    Args:
        net: a built `SuperNet`.
        choices: the architecture, an int per decision of ``net.space`` (its decision order).
        seed: the stateless (2,) seed of the channel masks (as in ``net(clips, choices, seed)``).
        name: the model's name.

    Returns:
        A `VideoModel` with ``model(clips, training=True) == net(clips, choices, seed)`` (BatchNorm
        with batch statistics over the whole batch, i.e. ``bn_group_size=None``). It outputs
        logits and has no dropout; its BatchNorm moving statistics are the initial ones.
    """
    space = net.space
    choices = np.asarray(choices, np.int32).reshape(-1)
    spec = space.decode(choices, name=name)
    model = build_model(
        spec,
        input_shape=(space.input_frames, space.input_size, space.input_size, 3),
        classes=space.classes,
        classifier_activation=None,
        dropout_rate=0.0,
    )
    masks = net.masks(tf.constant(choices), tf.constant(seed, tf.int64))
    stage_idx = [_kept(m) for m in masks["stage_masks"]]

    def put(layer_name: str, *values: np.ndarray) -> None:
        """Sets the first weights of a layer (the rest, e.g. BN moving statistics, stay)."""
        layer = model.get_layer(layer_name)
        layer.set_weights(list(values) + [_array(w) for w in layer.weights[len(values) :]])

    put(naming.STEM_CONV_SPATIAL, _array(net.stem_conv)[None])
    put(naming.STEM_CONV_TEMPORAL, _array(net.stem_temporal))
    put(naming.STEM_BN, _array(net.stem_bn[0]), _array(net.stem_bn[1]))
    in_idx = np.arange(space.stem_width)
    for s, b, block in net.blocks:
        i = space.block_decision_index(s, b)
        if choices[i] >= len(block.block_types):  # skipped
            continue
        _, inner_mask, se_mask, same_width = masks[block.name]
        inner, out_idx = _kept(inner_mask), stage_idx[s]
        p = naming.block_prefix(s + 1, b)
        put(naming.block_layer(p, naming.CONV_A), _array(block.conv_a)[0, 0][np.ix_(in_idx, inner)])
        put(naming.block_layer(p, naming.BN_A), _array(block.bn_a[0])[inner], _array(block.bn_a[1])[inner])
        kernels = block.branch_kernels[choices[i]]
        for k, kernel in enumerate(kernels):
            put(naming.block_layer(p, naming.depthwise_role(k, len(kernels))), _array(kernel)[..., inner, :])
        gamma, beta = block.branch_bns[choices[i]]
        put(naming.block_layer(p, naming.BN_B), _array(gamma)[inner], _array(beta)[inner])
        if space.attentions[choices[i + 2]] == "se":
            se = int(np.asarray(se_mask).sum())
            put(
                naming.block_layer(p, naming.SE_REDUCE),
                _array(block.se_reduce_kernel)[inner, :se],
                _array(block.se_reduce_bias)[:se],
            )
            put(
                naming.block_layer(p, naming.SE_EXPAND),
                _array(block.se_expand_kernel)[:se][:, inner],
                _array(block.se_expand_bias)[inner],
            )
        put(naming.block_layer(p, naming.CONV_C), _array(block.conv_c)[0, 0][np.ix_(inner, out_idx)])
        put(naming.block_layer(p, naming.BN_C), _array(block.bn_c[0])[out_idx], _array(block.bn_c[1])[out_idx])
        if block.has_shortcut:
            put(naming.block_layer(p, naming.SHORTCUT_CONV), _array(block.shortcut_conv)[0, 0][np.ix_(in_idx, out_idx)])
            if not bool(same_width):
                put(
                    naming.block_layer(p, naming.SHORTCUT_BN),
                    _array(block.shortcut_bn[0])[out_idx],
                    _array(block.shortcut_bn[1])[out_idx],
                )
        in_idx = out_idx
    put(naming.HEAD_CONV, _array(net.head_conv)[0, 0][in_idx])
    put(naming.HEAD_BN, _array(net.head_bn[0]), _array(net.head_bn[1]))
    if space.head_hidden:
        put(naming.HEAD_DENSE, _array(net.head_dense))
    put(naming.PREDICTIONS, _array(net.classifier_kernel), _array(net.classifier_bias))
    return model
