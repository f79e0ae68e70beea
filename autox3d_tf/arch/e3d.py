"""The E3D family (Wang et al., "Maximizing Spatio-Temporal Entropy of Deep 3D CNNs for Efficient
Video Recognition", ICLR 2023) as `ArchSpec` points.

The structures are the published ``E3D_{S,M,L}.txt`` of alibaba/lightweight-neural-architecture-search
(``configs/action_recognition/models/``): a ``1x3x3`` stride-2 stem (no temporal convolution), five
stages of ``Res3DK1DWK1`` blocks (1x1x1 -> depthwise ``(kt, k, k)`` -> 1x1x1, ReLU after the
depthwise convolution, no squeeze-excitation, E3D's "pool" shortcut rule), a 1x1x1 convolution to
512 channels with BN and ReLU, then global pooling, a hidden dense layer with bias, Swish, dropout 0.2
and the classifier. Upstream leaves the hidden width unset (``num_hidden=None``); we use 2048, X3D's.
"""

from __future__ import annotations

from dataclasses import dataclass

from autox3d_tf.arch.spec import POOL, RELU, SWISH, ArchSpec, BlockSpec, StageSpec

HEAD_WIDTH = 512
HEAD_HIDDEN = 2048  # not specified upstream (num_hidden=None); X3D's width
DROPOUT = 0.2
STEM_WIDTH = 24
SPACE = "e3d"


@dataclass(frozen=True)
class E3DStage:
    """One ``SuperRes3DK1DWK1`` stage: output width, bottleneck width, depthwise kernel ``(kt, k)``,
    spatial stride of its first block and number of blocks ``L``."""

    width: int
    bottleneck: int
    kt: int
    k: int
    stride: int
    depth: int


@dataclass(frozen=True)
class E3DVariant:
    """The structure and clip settings of one E3D model.

    ``frames`` and ``size`` are the clip E3D was searched and budgeted at (``E3D_X3D{S,M,L}_FLOPs.py``:
    ``frames``, ``image_size``); the sampling rate, test crop and scale jitter are those of the X3D
    model of the same budget (the repository gives no training recipe).
    """

    stages: tuple[E3DStage, ...]
    frames: int
    size: int
    sampling_rate: int
    test_crop: int
    train_scale: tuple[int, int]
    counterpart: str
    flops_budget: int
    layers_budget: int


_STAGE1 = E3DStage(24, 32, 1, 5, 2, 3)

E3D_VARIANTS: dict[str, E3DVariant] = {
    "S": E3DVariant(
        (_STAGE1, E3DStage(48, 96, 3, 3, 2, 6), E3DStage(120, 176, 3, 3, 2, 6), E3DStage(120, 176, 3, 3, 1, 6),
         E3DStage(256, 384, 3, 3, 2, 6)),
        frames=13, size=160, sampling_rate=6, test_crop=182, train_scale=(182, 228), counterpart="X3D_S",
        flops_budget=2_000_000_000, layers_budget=83,
    ),
    "M": E3DVariant(
        (_STAGE1, E3DStage(64, 96, 3, 3, 2, 6), E3DStage(120, 176, 3, 3, 2, 6), E3DStage(120, 176, 3, 3, 1, 6),
         E3DStage(184, 464, 3, 3, 2, 6)),
        frames=16, size=224, sampling_rate=5, test_crop=256, train_scale=(256, 320), counterpart="X3D_M",
        flops_budget=5_000_000_000, layers_budget=83,
    ),
    "L": E3DVariant(
        (_STAGE1, E3DStage(48, 120, 3, 3, 2, 13), E3DStage(120, 176, 3, 3, 2, 13),
         E3DStage(120, 176, 3, 3, 1, 13), E3DStage(192, 480, 3, 3, 2, 13)),
        frames=16, size=312, sampling_rate=5, test_crop=356, train_scale=(356, 446), counterpart="X3D_L",
        flops_budget=18_500_000_000, layers_budget=167,
    ),
}


def e3d_block(kt: int, k: int, bottleneck: int) -> BlockSpec:
    """An E3D ``Res3DK1DWK1`` block: depthwise ``(kt, k, k)``, bottleneck width, ReLU, "pool" shortcut."""
    return BlockSpec(f"{kt}x{k}x{k}", inner=bottleneck, attention="none", activation=RELU, shortcut=POOL)


def e3d_stage(stage: E3DStage) -> StageSpec:
    """The `StageSpec` of one E3D stage (``depth`` identical blocks)."""
    block = e3d_block(stage.kt, stage.k, stage.bottleneck)
    return StageSpec(width=stage.width, blocks=(block,) * stage.depth, stride=stage.stride)


def e3d_network(
    stages, *, name: str, frames: int, size: int, notes: str = ""
) -> ArchSpec:
    """An E3D-style network: E3D's stem, ``stages`` (`E3DStage` or `StageSpec`), E3D's head."""
    specs = tuple(s if isinstance(s, StageSpec) else e3d_stage(s) for s in stages)
    return ArchSpec(
        name=name,
        stages=specs,
        input_frames=frames,
        input_size=size,
        stem_width=STEM_WIDTH,
        stem_temporal_kernel=0,
        head_width=HEAD_WIDTH,
        head_hidden=HEAD_HIDDEN,
        head_activation=SWISH,
        head_bias=True,
        space=SPACE,
        notes=notes,
    )


def e3d_layers(spec: ArchSpec) -> int:
    """E3D's layer count (its ``layers`` budget): 1 per plain conv (stem, final conv), 3 per block."""
    return 2 + 3 * sum(stage.depth for stage in spec.stages)


def e3d_spec(variant: str) -> ArchSpec:
    """The `ArchSpec` of E3D-S, M or L."""
    key = str(variant).upper()
    if key not in E3D_VARIANTS:
        raise ValueError(f"Unknown E3D variant {variant!r}; valid variants are {list(E3D_VARIANTS)}.")
    v = E3D_VARIANTS[key]
    return e3d_network(v.stages, name=f"e3d_{key.lower()}", frames=v.frames, size=v.size)


__all__ = ["DROPOUT", "E3DStage", "E3DVariant", "E3D_VARIANTS", "e3d_block", "e3d_layers", "e3d_network",
           "e3d_spec", "e3d_stage"]
