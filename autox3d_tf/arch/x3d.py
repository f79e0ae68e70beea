"""The X3D family as points of the autox3d-v1 space (Feichtenhofer, CVPR 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from autox3d_tf.arch.spec import ArchSpec, BlockSpec, StageSpec, round_width

BASE_WIDTHS = (12, 24, 48, 96)  # stage widths before the width factor (stem input 12)
BASE_DEPTHS = (1, 2, 5, 3)
BOTTLENECK_EXPANSION = 2.25
HEAD_HIDDEN = 2048


@dataclass(frozen=True)
class X3DVariant:
    """Expansion factors and clip settings of one X3D model."""

    frames: int
    sampling_rate: int
    train_crop: int
    test_crop: int
    width_factor: float
    depth_factor: float
    train_scale: tuple[int, int]


X3D_VARIANTS: dict[str, X3DVariant] = {
    "XS": X3DVariant(4, 12, 160, 182, 2.0, 2.2, (182, 228)),
    "S": X3DVariant(13, 6, 160, 182, 2.0, 2.2, (182, 228)),
    "M": X3DVariant(16, 5, 224, 256, 2.0, 2.2, (256, 320)),
    "L": X3DVariant(16, 5, 312, 356, 2.0, 5.0, (356, 446)),
    "XL": X3DVariant(16, 5, 312, 356, 2.9, 5.0, (356, 446)),
}


def x3d_widths(width_factor: float) -> tuple[int, ...]:
    """Stage widths: X3D doubles each stage (rounded to 8), then applies the width factor."""
    dims = [BASE_WIDTHS[0]]
    for _ in BASE_WIDTHS[1:]:
        dims.append(round_width(dims[-1], 2.0))
    return tuple(round_width(d, width_factor) for d in dims)


def x3d_depths(depth_factor: float) -> tuple[int, ...]:
    return tuple(int(math.ceil(depth_factor * d)) for d in BASE_DEPTHS)


def x3d_spec(variant: str) -> ArchSpec:
    """The `ArchSpec` of X3D-XS, S, M, L or XL."""
    key = variant.upper()
    if key not in X3D_VARIANTS:
        raise ValueError(f"Unknown X3D variant {variant!r}; valid variants are {list(X3D_VARIANTS)}.")
    v = X3D_VARIANTS[key]
    widths = x3d_widths(v.width_factor)
    stages = tuple(
        StageSpec(
            width=w,
            stride=2,
            blocks=tuple(
                BlockSpec("3x3x3", BOTTLENECK_EXPANSION, "se" if i % 2 == 0 else "none") for i in range(depth)
            ),
        )
        for w, depth in zip(widths, x3d_depths(v.depth_factor))
    )
    return ArchSpec(
        name=f"x3d_{key.lower()}",
        stages=stages,
        input_frames=v.frames,
        input_size=v.train_crop,
        stem_width=round_width(BASE_WIDTHS[0], v.width_factor),
        stem_temporal_kernel=5,
        head_width=int(BOTTLENECK_EXPANSION * widths[-1]),
        head_hidden=HEAD_HIDDEN,
    )
