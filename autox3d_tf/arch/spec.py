"""`ArchSpec`: a frozen, JSON-serialisable description of one network of the autox3d-v1 space.

A spec names everything the builder needs and nothing it can derive: the stem, every stage's
output width and spatial stride, every block's type, expansion ratio and attention, the head
widths and the default input clip. X3D-XS..XL are specs (see `autox3d_tf.arch.x3d`), and so is
every architecture the search can sample.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

SPACE_NAME = "autox3d-v1"


class SpecError(ValueError):
    """An invalid architecture specification; the message names the offending field."""


def _positive_int(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{where} must be a positive integer, got {value!r}.")


Kernel = tuple[int, int, int]

# How the two depthwise convolutions of a pseudo-3D block combine (S: spatial, T: temporal).
SERIAL = "serial"  # y = T(S(x))         P3D-A, "(2+1)D"
PARALLEL = "parallel"  # y = S(x) + T(x)     P3D-B
SERIAL_RESIDUAL = "serial_residual"  # y = S(x) + T(S(x))  P3D-C
TOPOLOGIES: tuple[str, ...] = (SERIAL, PARALLEL, SERIAL_RESIDUAL)


@dataclass(frozen=True)
class Pseudo3D:
    """A pseudo-3D operator: a ``1 x k x k`` spatial and a ``kt x 1 x 1`` temporal depthwise
    convolution, combined by ``topology`` (`TOPOLOGIES`).

    The block's spatial stride goes to the spatial convolution; in a parallel block the temporal
    branch takes the same spatial stride (a ``(kt, 1, 1)`` kernel with strides ``(1, s, s)``), so
    both branches have one shape. ``temporal_dilation`` spaces the temporal taps in time (padding
    ``dilation * (kt // 2)`` frames each side keeps the clip length).
    """

    spatial_kernel: Kernel = (1, 3, 3)
    temporal_kernel: Kernel = (3, 1, 1)
    temporal_dilation: int = 1
    topology: str = SERIAL

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise SpecError(f"pseudo-3D topology {self.topology!r} is unknown; valid values are {list(TOPOLOGIES)}.")
        if self.spatial_kernel[0] != 1 or self.temporal_kernel[1:] != (1, 1):
            raise SpecError(f"a pseudo-3D operator needs a (1, h, w) and a (t, 1, 1) kernel, got {self.kernels}.")
        _positive_int(self.temporal_dilation, "temporal_dilation")

    @property
    def kernels(self) -> tuple[Kernel, Kernel]:
        """``(spatial, temporal)``: the block's ``conv_b_0`` and ``conv_b_1``."""
        return (self.spatial_kernel, self.temporal_kernel)

    @property
    def is_plain_series(self) -> bool:
        """Whether the block is its two kernels applied one after the other, undilated."""
        return self.topology == SERIAL and self.temporal_dilation == 1


# The pseudo-3D block types (the one definition; `autox3d_tf.models.pseudo3d` builds them).
PSEUDO3D_BLOCKS: dict[str, Pseudo3D] = {
    "2+1d": Pseudo3D(),
    "p3d-b": Pseudo3D(topology=PARALLEL),
    "p3d-c": Pseudo3D(topology=SERIAL_RESIDUAL),
    "2+1d-d2": Pseudo3D(temporal_dilation=2),
}

# Depthwise kernels per block type: one kernel, or a pseudo-3D block's (spatial, temporal) pair,
# combined as `PSEUDO3D_BLOCKS` says (for "2+1d": one after the other).
BLOCK_KERNELS: dict[str, tuple[Kernel, ...]] = {
    "3x3x3": ((3, 3, 3),),
    "1x3x3": ((1, 3, 3),),
    "5x3x3": ((5, 3, 3),),
    "2+1d": PSEUDO3D_BLOCKS["2+1d"].kernels,
    "3x5x5": ((3, 5, 5),),
    "1x5x5": ((1, 5, 5),),  # E3D's first stage
    **{t: op.kernels for t, op in PSEUDO3D_BLOCKS.items() if t != "2+1d"},
}
# The block types of the autox3d-v1 search space (its default; the searchers' vocabulary).
V1_BLOCK_TYPES: tuple[str, ...] = ("3x3x3", "1x3x3", "5x3x3", "2+1d", "3x5x5")
SKIP = "skip"
BLOCK_TYPES: tuple[str, ...] = (*BLOCK_KERNELS, SKIP)


def pseudo3d(block_type: str) -> Pseudo3D | None:
    """The pseudo-3D descriptor of ``block_type``, or None for a single-kernel type (or skip)."""
    return PSEUDO3D_BLOCKS.get(block_type)


def is_plain_series(block_type: str) -> bool:
    """Whether ``block_type``'s kernels are applied one after the other without dilation: what a
    searcher that only knows `BLOCK_KERNELS` as a chain of convolutions can compute."""
    op = pseudo3d(block_type)
    return op is None or op.is_plain_series
ATTENTIONS: tuple[str, ...] = ("none", "se")
SE_RATIO = 0.0625

# Activation after a block's depthwise convolution: X3D's Swish or E3D's ReLU.
SWISH = "swish"
RELU = "relu"
ACTIVATIONS: tuple[str, ...] = (SWISH, RELU)
# Shortcut rules of a block:
# - "projection" (X3D): identity when width and stride are kept, else a 1x1x1 convolution with the
#   block's stride (with BatchNorm when the width changes);
# - "pool" (E3D): identity when the width is kept (after a per-frame stride x stride average pool
#   when the block is strided), no shortcut at all when the width changes.
PROJECTION = "projection"
POOL = "pool"
SHORTCUTS: tuple[str, ...] = (PROJECTION, POOL)

# The specification formats: the autox3d-v1 family (X3D, AutoX3D, searched points) and E3D's.
SPACES: tuple[str, ...] = (SPACE_NAME, "e3d")


def round_width(width: float, multiplier: float = 1.0, min_width: int = 8, divisor: int = 8) -> int:
    """Rounds ``width * multiplier`` to the nearest multiple of ``divisor`` (X3D's rule).

    The result is at least ``min_width`` and never more than 10% below the exact product.
    """
    if not multiplier:
        return int(width)
    exact = width * multiplier
    rounded = max(min_width, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


def _check_keys(data: Mapping[str, Any], cls: type, where: str) -> None:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    }
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; valid fields are {sorted(names)}.")
    missing = sorted(required - set(data))
    if missing:
        raise SpecError(f"{where}: missing field(s) {missing}.")


@dataclass(frozen=True)
class BlockSpec:
    """One residual block: depthwise kernel type, expansion ratio of the inner width, attention.

    ``type="skip"`` is an identity block (allowed anywhere but a stage's first block).

    The defaults are X3D's block; E3D's sets ``inner`` (its bottleneck width, which then replaces
    ``expansion``), ``activation="relu"`` after the depthwise convolution and ``shortcut="pool"``
    (see `SHORTCUTS`).
    """

    type: str = "3x3x3"
    expansion: float = 2.25
    attention: str = "none"
    inner: int | None = None
    activation: str = SWISH
    shortcut: str = PROJECTION

    def __post_init__(self) -> None:
        if self.type not in BLOCK_TYPES:
            raise SpecError(f"block type {self.type!r} is unknown; valid types are {list(BLOCK_TYPES)}.")
        if isinstance(self.expansion, bool) or not isinstance(self.expansion, (int, float)):
            raise SpecError(f"block expansion must be a number, got {self.expansion!r}.")
        if not math.isfinite(self.expansion) or self.expansion <= 0:
            raise SpecError(f"block expansion must be a positive number, got {self.expansion!r}.")
        if self.attention not in ATTENTIONS:
            raise SpecError(f"block attention {self.attention!r} is unknown; valid values are {list(ATTENTIONS)}.")
        if self.inner is not None:
            _positive_int(self.inner, "block inner width")
        if self.activation not in ACTIVATIONS:
            raise SpecError(f"block activation {self.activation!r} is unknown; valid values are {list(ACTIVATIONS)}.")
        if self.shortcut not in SHORTCUTS:
            raise SpecError(f"block shortcut {self.shortcut!r} is unknown; valid values are {list(SHORTCUTS)}.")
        object.__setattr__(self, "expansion", float(self.expansion))
        if self.inner is not None:  # an absolute inner width: the ratio carries no meaning
            object.__setattr__(self, "expansion", 2.25)
        if self.type == SKIP:  # a skip computes nothing: its other fields carry no meaning
            for name, value in (("expansion", 2.25), ("attention", "none"), ("inner", None),
                                ("activation", SWISH), ("shortcut", PROJECTION)):
                object.__setattr__(self, name, value)

    @property
    def is_skip(self) -> bool:
        return self.type == SKIP

    @property
    def kernels(self) -> tuple[tuple[int, int, int], ...]:
        return BLOCK_KERNELS.get(self.type, ())

    @property
    def pseudo3d(self) -> Pseudo3D | None:
        """How the block's two depthwise convolutions combine (None for one kernel or a skip)."""
        return pseudo3d(self.type)

    def inner_width(self, width: int) -> int:
        """Width of the depthwise convolution: ``inner`` when set (E3D's bottleneck), else
        ``int(expansion * width)`` as in X3D."""
        if self.inner is not None:
            return self.inner
        return max(1, int(self.expansion * width))

    def has_shortcut(self, in_width: int, width: int) -> bool:
        """Whether the block adds a shortcut branch (always for "projection"; for "pool" only
        when the width is kept)."""
        return self.shortcut == PROJECTION or in_width == width

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; the E3D-style fields appear only when they differ from X3D's."""
        if self.is_skip:
            return {"type": SKIP}
        data: dict[str, Any] = {"type": self.type}
        if self.inner is None:
            data["expansion"] = self.expansion
        else:
            data["inner"] = self.inner
        data["attention"] = self.attention
        if self.activation != SWISH:
            data["activation"] = self.activation
        if self.shortcut != PROJECTION:
            data["shortcut"] = self.shortcut
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "block") -> "BlockSpec":
        _check_keys(data, cls, where)
        try:
            return cls(**data)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None


@dataclass(frozen=True)
class StageSpec:
    """One stage: output width, spatial stride of its first block, and its blocks."""

    width: int
    blocks: tuple[BlockSpec, ...]
    stride: int = 2

    def __post_init__(self) -> None:
        _positive_int(self.width, "stage width")
        _positive_int(self.stride, "stage stride")
        blocks = tuple(self.blocks)
        if not blocks:
            raise SpecError("a stage needs at least one block.")
        for i, block in enumerate(blocks):
            if not isinstance(block, BlockSpec):
                raise SpecError(f"block {i} must be a BlockSpec, got {type(block).__name__}.")
        if blocks[0].is_skip:
            raise SpecError("a stage's first block cannot be 'skip' (it changes width or stride).")
        object.__setattr__(self, "blocks", blocks)

    @property
    def depth(self) -> int:
        """Number of blocks that compute (skips excluded)."""
        return sum(not b.is_skip for b in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "stride": self.stride, "blocks": [b.to_dict() for b in self.blocks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "stage") -> "StageSpec":
        _check_keys(data, cls, where)
        blocks = data["blocks"]
        if not isinstance(blocks, (list, tuple)):
            raise SpecError(f"{where}.blocks must be a list, got {type(blocks).__name__}.")
        parsed = tuple(BlockSpec.from_dict(b, f"{where}.blocks[{i}]") for i, b in enumerate(blocks))
        try:
            return cls(width=data["width"], blocks=parsed, stride=data.get("stride", 2))
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: stem, stages, head and its default input clip.

    Attributes:
        name: a label (e.g. ``"x3d_s"``), used as the default Keras model name.
        stages: the residual stages, in order.
        input_frames, input_size: default clip length and (square) crop.
        stem_width: output channels of the stem.
        stem_temporal_kernel: length of the stem's depthwise temporal convolution (0: none, as
            in E3D, whose stem is its 1x3x3 convolution, BN and ReLU).
        head_width: channels of the head's 1x1x1 convolution before pooling.
        head_hidden: width of the fully connected layer after pooling (0 for none).
        head_activation: activation after that layer: "relu" (X3D) or "swish" (E3D).
        head_bias: whether that layer has a bias (E3D's has, X3D's has not).
        space: the family this spec belongs to (`SPACES`): "autox3d-v1" or "e3d".
        causal: the causal form of the network (`autox3d_tf.layers.causal`): temporal
            convolutions padded on the past side only and squeeze-excitation on a cumulative
            average over time, so that the output at frame t depends only on frames up to t and the
            network can stream frame by frame (`autox3d_tf.models.streaming`). Same weights and MACs.
    """

    name: str
    stages: tuple[StageSpec, ...]
    input_frames: int = 16
    input_size: int = 224
    stem_width: int = 24
    stem_temporal_kernel: int = 5
    head_width: int = 432
    head_hidden: int = 2048
    head_activation: str = RELU
    head_bias: bool = False
    space: str = SPACE_NAME
    causal: bool = False
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"spec name must be a non-empty string, got {self.name!r}.")
        for name in ("input_frames", "input_size", "stem_width", "head_width"):
            _positive_int(getattr(self, name), name)
        if self.stem_temporal_kernel != 0:
            _positive_int(self.stem_temporal_kernel, "stem_temporal_kernel")
        if isinstance(self.head_hidden, bool) or not isinstance(self.head_hidden, int) or self.head_hidden < 0:
            raise SpecError(f"head_hidden must be an integer >= 0, got {self.head_hidden!r}.")
        if self.stem_temporal_kernel and self.stem_temporal_kernel % 2 == 0:
            raise SpecError(f"stem_temporal_kernel must be odd (or 0: none), got {self.stem_temporal_kernel}.")
        if self.head_activation not in (RELU, SWISH):
            raise SpecError(f"head_activation {self.head_activation!r} is unknown; valid values are {[RELU, SWISH]}.")
        if not isinstance(self.head_bias, bool):
            raise SpecError(f"head_bias must be true or false, got {self.head_bias!r}.")
        if not isinstance(self.causal, bool):
            raise SpecError(f"causal must be true or false, got {self.causal!r}.")
        stages = tuple(self.stages)
        if not stages:
            raise SpecError("a spec needs at least one stage.")
        for i, stage in enumerate(stages):
            if not isinstance(stage, StageSpec):
                raise SpecError(f"stage {i} must be a StageSpec, got {type(stage).__name__}.")
        if self.space not in SPACES:
            raise SpecError(f"space {self.space!r} is unknown; valid spaces are {list(SPACES)}.")
        object.__setattr__(self, "stages", stages)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    @property
    def total_stride(self) -> int:
        return 2 * math.prod(s.stride for s in self.stages)

    def replace(self, **changes: Any) -> "ArchSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "space": self.space,
            "input_frames": self.input_frames,
            "input_size": self.input_size,
            "stem_width": self.stem_width,
            "stem_temporal_kernel": self.stem_temporal_kernel,
            "stages": [s.to_dict() for s in self.stages],
            "head_width": self.head_width,
            "head_hidden": self.head_hidden,
        }
        if self.head_activation != RELU:
            data["head_activation"] = self.head_activation
        if self.head_bias:
            data["head_bias"] = True
        if self.causal:
            data["causal"] = True
        if self.notes:
            data["notes"] = self.notes
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchSpec":
        _check_keys(data, cls, "spec")
        stages = data["stages"]
        if not isinstance(stages, (list, tuple)):
            raise SpecError(f"spec.stages must be a list, got {type(stages).__name__}.")
        parsed = tuple(StageSpec.from_dict(s, f"spec.stages[{i}]") for i, s in enumerate(stages))
        return cls(**{**data, "stages": parsed})

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"not valid JSON: {err}") from None
        return cls.from_dict(data)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str) -> "ArchSpec":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())
