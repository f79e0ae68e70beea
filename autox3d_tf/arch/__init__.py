"""Architecture specifications: the `ArchSpec` dataclass and the X3D points of the space."""

from autox3d_tf.arch.spec import (
    ATTENTIONS,
    BLOCK_KERNELS,
    BLOCK_TYPES,
    PSEUDO3D_BLOCKS,
    SPACE_NAME,
    V1_BLOCK_TYPES,
    ArchSpec,
    BlockSpec,
    Pseudo3D,
    SpecError,
    StageSpec,
    round_width,
)
from autox3d_tf.arch.x3d import X3D_VARIANTS, x3d_spec

__all__ = [
    "ATTENTIONS",
    "BLOCK_KERNELS",
    "BLOCK_TYPES",
    "PSEUDO3D_BLOCKS",
    "SPACE_NAME",
    "V1_BLOCK_TYPES",
    "ArchSpec",
    "BlockSpec",
    "Pseudo3D",
    "SpecError",
    "StageSpec",
    "X3D_VARIANTS",
    "round_width",
    "x3d_spec",
]
