"""The key layout of E3D's PyTorch ``state_dict`` (tinynas ``Cnn3DNet``), for the strict converter.

``autox3d_tf.weights.convert`` maps every weighted layer of a built model to one PyTorch module; for
the "e3d" layout (alibaba/lightweight-neural-architecture-search, ``tinynas/deploy/cnn3dnet``) the
module paths are (``S`` = stage from 1, ``B`` = block from 0, ``F`` = number of stages + 1):

=====================  ==========================================  ==========
Keras layer            E3D (``Cnn3DNet``)                          kind
=====================  ==========================================  ==========
stem_conv_spatial      block_list.0.conv1                          conv3d
stem_bn                block_list.0.bn1                            bn
..._conv_a / bn_a      block_list.S.block_list.B.conv1.conv1 / .bn1 pointwise
..._conv_b / bn_b      block_list.S.block_list.B.conv2.conv1 / .bn1 depthwise
..._conv_c / bn_c      block_list.S.block_list.B.conv3.conv1 / .bn1 pointwise
head_conv / head_bn    block_list.F.conv1 / block_list.F.bn1       pointwise
head_dense             fc_linear.0 (Linear, with bias)             linear
predictions            fc_linear.3 (Linear)                        linear
=====================  ==========================================  ==========

E3D's shortcuts (identity, average pool) have no parameters, so a model layer with a role outside
this table (a projection shortcut, squeeze-excitation, a temporal stem convolution) has no E3D
counterpart and the converter reports it.
"""

from __future__ import annotations

from autox3d_tf.arch import naming

__all__ = ["E3D_CLASSIFIER", "E3D_LAYOUT", "e3d_torch_layer", "is_e3d_key"]

E3D_LAYOUT = "e3d"
E3D_CLASSIFIER = "fc_linear.3"

_BLOCK = {
    naming.CONV_A: ("conv1.conv1", "pointwise"),
    naming.BN_A: ("conv1.bn1", "bn"),
    naming.CONV_B: ("conv2.conv1", "depthwise"),
    naming.BN_B: ("conv2.bn1", "bn"),
    naming.CONV_C: ("conv3.conv1", "pointwise"),
    naming.BN_C: ("conv3.bn1", "bn"),
}


def is_e3d_key(key: str) -> bool:
    """Whether a state-dict key is in E3D's layout (``block_list.N...`` or ``fc_linear.N...``)."""
    return key.startswith(("block_list.", "fc_linear."))


def e3d_torch_layer(layer_name: str, num_stages: int) -> tuple[str, str] | None:
    """(PyTorch module path, kind) of the Keras layer ``layer_name`` in E3D's layout, or None."""
    final = f"block_list.{num_stages + 1}"
    fixed = {
        naming.STEM_CONV_SPATIAL: ("block_list.0.conv1", "conv3d"),
        naming.STEM_BN: ("block_list.0.bn1", "bn"),
        naming.HEAD_CONV: (f"{final}.conv1", "pointwise"),
        naming.HEAD_BN: (f"{final}.bn1", "bn"),
        naming.HEAD_DENSE: ("fc_linear.0", "linear"),
        naming.PREDICTIONS: (E3D_CLASSIFIER, "linear"),
    }
    if layer_name in fixed:
        return fixed[layer_name]
    parsed = naming.parse_block_layer(layer_name)
    if parsed is None or parsed[2] not in _BLOCK:
        return None
    stage, block, role = parsed
    module, kind = _BLOCK[role]
    return f"block_list.{stage}.block_list.{block}.{module}", kind
