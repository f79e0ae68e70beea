"""Pseudo-3D operators: a spatial ``1 x k x k`` and a temporal ``kt x 1 x 1`` convolution, combined.

The topologies of Qiu et al.'s P3D blocks (ICCV 2017), as block types of the autox3d space and as
operators of the cell search (S: the spatial convolution, T: the temporal one):

=============  ===================  ======================  =====================================
block type     topology             function                known as
=============  ===================  ======================  =====================================
``2+1d``       ``serial``           ``T(S(x))``             P3D-A, (2+1)D
``p3d-b``      ``parallel``         ``S(x) + T(x)``         P3D-B
``p3d-c``      ``serial_residual``  ``S(x) + T(S(x))``      P3D-C
``2+1d-d2``    ``serial``           ``T(S(x))``, T dilated  (2+1)D, temporal taps 2 frames apart
=============  ===================  ======================  =====================================

`PSEUDO3D` is `autox3d_tf.arch.spec.PSEUDO3D_BLOCKS` (the one definition: each entry's spatial
and temporal kernel, temporal dilation and topology); `combine_pseudo3d` wires the two
convolutions of an operator in a functional model. `autox3d_tf.models.build_model` builds the
blocks of these types with it (``conv_b_0`` spatial, ``conv_b_1`` temporal, BatchNorm ``bn_b``
after the combination) and so can any other builder: `pseudo3d_convs` makes the two depthwise
layers of a descriptor, with the stride placed as the blocks place it.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from autox3d_tf.arch.spec import PARALLEL, PSEUDO3D_BLOCKS, SERIAL, SERIAL_RESIDUAL, TOPOLOGIES, Pseudo3D
from autox3d_tf.layers import DepthwiseConv3D

PSEUDO3D: dict[str, Pseudo3D] = PSEUDO3D_BLOCKS

__all__ = ["FOLD_PARTS", "PSEUDO3D", "Pseudo3D", "TOPOLOGIES", "combine_pseudo3d", "pseudo3d_convs"]

# Folding the BatchNorm after a pseudo-3D operator, BN(y) = scale * y + bias, into its two
# convolutions: which of them takes the (per-channel) scale on its kernel and which the bias,
# as ``topology -> (spatial parts, temporal parts)``. Serial: T(S(x)) is linear in T, so T takes
# both. Parallel: scale both branches, bias one. Serial-residual: a depthwise T commutes with a
# per-channel scale, so scaling S scales both terms; the bias goes on T, after which nothing sees it.
FOLD_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    SERIAL: ((), ("scale", "bias")),
    PARALLEL: (("scale", "bias"), ("scale",)),
    SERIAL_RESIDUAL: (("scale",), ("bias",)),
}


def combine_pseudo3d(
    x: Any,
    spatial: Callable[[Any], Any],
    temporal: Callable[[Any], Any],
    topology: str,
    name: str | None = None,
) -> Any:
    """Applies a pseudo-3D operator's two convolutions to ``x`` as ``topology`` says.

    Args:
        x: the operator's input (a Keras tensor in a functional model, or an eager tensor).
        spatial: the spatial convolution S (any callable, e.g. a Keras layer).
        temporal: the temporal convolution T.
        topology: ``"serial"`` (``T(S(x))``), ``"parallel"`` (``S(x) + T(x)``; T must give S's
            output shape, e.g. by taking the same spatial stride) or ``"serial_residual"``
            (``S(x) + T(S(x))``).
        name: the name of the `keras.layers.Add` of the two sums' topologies (unused for serial).

    Returns:
        The combined tensor.
    """
    if topology == SERIAL:
        return temporal(spatial(x))
    if topology == PARALLEL:
        return keras.layers.Add(name=name)([spatial(x), temporal(x)])
    if topology == SERIAL_RESIDUAL:
        s = spatial(x)
        return keras.layers.Add(name=name)([s, temporal(s)])
    raise ValueError(f"pseudo-3D topology {topology!r} is unknown; valid values are {list(TOPOLOGIES)}.")


def pseudo3d_convs(
    op: Pseudo3D,
    stride: int = 1,
    names: tuple[str | None, str | None] = (None, None),
    biases: tuple[bool, bool] = (False, False),
    initializer: Callable[[], Any] | None = None,
    temporal_padding: Any = None,
    **kwargs: Any,
) -> tuple[DepthwiseConv3D, DepthwiseConv3D]:
    """The ``(spatial, temporal)`` depthwise convolutions of ``op`` for `combine_pseudo3d`.

    Both pad as PyTorch does (``kernel // 2``, and ``dilation * (kt // 2)`` frames in time), so
    time and, at stride 1, space keep their size. ``stride`` (spatial) goes to the spatial
    convolution, and in a parallel operator also to the temporal one (a ``(kt, 1, 1)`` kernel
    with strides ``(1, s, s)``), which then sees the operator's input. ``initializer()``, when
    given, makes each layer's own kernel initializer; ``temporal_padding``, when given, replaces the
    temporal convolution's padding (a causal network's); other ``kwargs`` go to both layers.
    """
    if initializer is not None:
        kwargs_s = {**kwargs, "kernel_initializer": initializer()}
        kwargs_t = {**kwargs, "kernel_initializer": initializer()}
    else:
        kwargs_s = kwargs_t = kwargs
    strides = (1, stride, stride)
    spatial = DepthwiseConv3D(
        op.spatial_kernel,
        strides=strides,
        padding=tuple(k // 2 for k in op.spatial_kernel),
        use_bias=biases[0],
        name=names[0],
        **kwargs_s,
    )
    kt = op.temporal_kernel[0]
    temporal = DepthwiseConv3D(
        op.temporal_kernel,
        strides=strides if op.topology == PARALLEL else 1,
        padding=(op.temporal_dilation * (kt // 2), 0, 0) if temporal_padding is None else temporal_padding,
        dilation_rate=(op.temporal_dilation, 1, 1),
        use_bias=biases[1],
        name=names[1],
        **kwargs_t,
    )
    return spatial, temporal
