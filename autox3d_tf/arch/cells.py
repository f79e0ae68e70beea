"""Cell networks of the differentiable (DARTS-style) search for video: the genotype and the network.

A cell network (Liu et al., "DARTS", ICLR 2019; for video Peng, Hong, Zhao, ICIP 2019) is a stem, a
stack of ``layers`` cells and a classifier. Every cell takes the outputs of the two cells before it
(``s0``, ``s1``), computes ``nodes`` intermediate nodes, each the sum of two operations applied to
two earlier states (``s0``, ``s1`` or an earlier node), and outputs the concatenation of its
nodes. Reduction cells (at a third and two thirds of the depth) halve the spatial size and double
the channels; the frame axis is never subsampled. The operations (`CELL_OPS`) are pseudo-3D
convolutions, depthwise-separable 1x3x3 / 3x3x3 convolutions, per-frame max / average pooling,
the identity and zero (only inside the search's mixtures).

`Genotype` is the choice of operations and inputs of both cell types, `CellNetSpec` the whole
network; both are frozen, validated and JSON round-tripped like `ArchSpec`. `cell_net_macs` counts
the multiply-adds analytically (the convention of `autox3d_tf.arch.macs`), and `op_macs` the cost
of one operation, which the search's MACs-aware objective uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from autox3d_tf.arch.macs import conv_out
from autox3d_tf.arch.spec import PSEUDO3D_BLOCKS, SpecError

__all__ = [
    "CELL_OPS",
    "CellNetSpec",
    "Genotype",
    "SEARCH_OPS",
    "TEMPORAL_OPS",
    "cell_net_macs",
    "op_macs",
    "reduction_layers",
]

# name -> (kind, argument): a pseudo-3D operator's block type (`PSEUDO3D_BLOCKS`), a separable
# convolution's depthwise kernel, a pooling's mode.
_OPS: dict[str, tuple[str, Any]] = {
    "p3d_a": ("p3d", "2+1d"),
    "p3d_b": ("p3d", "p3d-b"),
    "p3d_c": ("p3d", "p3d-c"),
    "p3d_a_d2": ("p3d", "2+1d-d2"),
    "sep_conv_1x3x3": ("sep", (1, 3, 3)),
    "sep_conv_3x3x3": ("sep", (3, 3, 3)),
    "max_pool_1x3x3": ("pool", "max"),
    "avg_pool_1x3x3": ("pool", "avg"),
    "identity": ("identity", None),
    "zero": ("zero", None),
}
CELL_OPS: tuple[str, ...] = tuple(_OPS)
SEARCH_OPS = CELL_OPS  # the default candidates of every edge
TEMPORAL_OPS: frozenset[str] = frozenset({"p3d_a", "p3d_b", "p3d_c", "p3d_a_d2", "sep_conv_3x3x3"})


def op_descriptor(op: str) -> tuple[str, Any]:
    """``(kind, argument)`` of a cell operation: ``("p3d", block type)``, ``("sep", kernel)``,
    ``("pool", "max" | "avg")``, ``("identity", None)`` or ``("zero", None)``."""
    if op not in _OPS:
        raise SpecError(f"cell operation {op!r} is unknown; valid operations are {list(CELL_OPS)}.")
    return _OPS[op]



@dataclass(frozen=True)
class Genotype:
    """The operations of a normal and a reduction cell: per node, two ``(op, input)`` pairs.

    ``input`` 0 is the cell's first input (the output of the cell two back), 1 its second (the
    previous cell's), ``2 + j`` intermediate node ``j``; a node's two inputs differ. The cell's
    output concatenates all its intermediate nodes.
    """

    normal: tuple[tuple[str, int], ...]
    reduce: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        for kind in ("normal", "reduce"):
            pairs = tuple((str(op), int(i)) for op, i in getattr(self, kind))
            if not pairs or len(pairs) % 2:
                raise SpecError(f"genotype.{kind} needs two (op, input) pairs per node, got {len(pairs)} pairs.")
            for k, (op, index) in enumerate(pairs):
                op_descriptor(op)
                node = k // 2
                if op == "zero":
                    raise SpecError(f"genotype.{kind}[{k}]: 'zero' is not an operation of a derived cell.")
                if not 0 <= index < 2 + node:
                    raise SpecError(f"genotype.{kind}[{k}]: node {node} can take inputs 0..{node + 1}, got {index}.")
            for node in range(len(pairs) // 2):
                if pairs[2 * node][1] == pairs[2 * node + 1][1]:
                    raise SpecError(f"genotype.{kind}: node {node} takes input {pairs[2 * node][1]} twice.")
            object.__setattr__(self, kind, pairs)
        if len(self.normal) != len(self.reduce):
            raise SpecError("genotype: the normal and reduction cells need the same number of nodes.")

    @property
    def nodes(self) -> int:
        return len(self.normal) // 2

    def to_dict(self) -> dict[str, Any]:
        return {"normal": [list(p) for p in self.normal], "reduce": [list(p) for p in self.reduce]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Genotype":
        if not isinstance(data, Mapping) or set(data) != {"normal", "reduce"}:
            raise SpecError("genotype: expected an object with exactly 'normal' and 'reduce'.")
        try:
            return cls(normal=tuple(tuple(p) for p in data["normal"]), reduce=tuple(tuple(p) for p in data["reduce"]))
        except (TypeError, ValueError) as err:
            if isinstance(err, SpecError):
                raise
            raise SpecError(f"genotype: each entry must be [op, input], got {err}.") from None


def reduction_layers(layers: int) -> tuple[int, ...]:
    """DARTS' reduction cells: at a third and two thirds of ``layers`` (none below 3 cells)."""
    if layers < 3:
        return ()
    return (layers // 3, 2 * layers // 3)


@dataclass(frozen=True)
class CellNetSpec:
    """A cell network: the genotype, the widths, the depth and the default input clip.

    Attributes:
        name: model name.
        genotype: the two cells.
        channels: channels of each node in the first cells (doubled at every reduction).
        layers: number of cells.
        stem_multiplier: the stem outputs ``stem_multiplier * channels`` channels.
        stem_temporal_kernel: frames of the stem's depthwise temporal convolution (1: none, so
            only the cells' operations see motion).
        input_frames, input_size: the default clip (frames x size x size).
        notes: free text (where the genotype came from).
    """

    name: str
    genotype: Genotype
    channels: int = 16
    layers: int = 5
    stem_multiplier: int = 3
    stem_temporal_kernel: int = 3
    input_frames: int = 8
    input_size: int = 112
    notes: str = ""
    family: str = field(default="cells", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.genotype, Genotype):
            raise SpecError(f"genotype must be a Genotype, got {type(self.genotype).__name__}.")
        for name in ("channels", "layers", "stem_multiplier", "stem_temporal_kernel", "input_frames", "input_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"{name} must be a positive integer, got {value!r}.")
        if self.input_size < 2 ** (1 + len(reduction_layers(self.layers))):
            raise SpecError(f"input_size {self.input_size} is smaller than the network's total stride.")

    @property
    def reductions(self) -> tuple[int, ...]:
        return reduction_layers(self.layers)

    @property
    def total_stride(self) -> int:
        """The spatial stride from the input to the last cell (the stem's 2, then 2 per reduction)."""
        return 2 ** (1 + len(self.reductions))

    def to_dict(self) -> dict[str, Any]:
        return {"family": "cells", "name": self.name, "genotype": self.genotype.to_dict(), "channels": self.channels,
                "layers": self.layers, "stem_multiplier": self.stem_multiplier,
                "stem_temporal_kernel": self.stem_temporal_kernel, "input_frames": self.input_frames,
                "input_size": self.input_size, "notes": self.notes}

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CellNetSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"cell network: expected a JSON object, got {type(data).__name__}.")
        data = dict(data)
        if data.pop("family", "cells") != "cells":
            raise SpecError("cell network: 'family' must be 'cells'.")
        known = {"name", "genotype", "channels", "layers", "stem_multiplier", "stem_temporal_kernel", "input_frames",
                 "input_size", "notes"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"cell network: unknown field(s) {unknown}; valid fields are {sorted(known)}.")
        if "name" not in data or "genotype" not in data:
            raise SpecError("cell network: 'name' and 'genotype' are required.")
        return cls(**{**data, "genotype": Genotype.from_dict(data["genotype"])})

    @classmethod
    def from_json(cls, text: str) -> "CellNetSpec":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise SpecError(f"cell network JSON: {err}") from None

    @classmethod
    def load(cls, path: str) -> "CellNetSpec":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


def op_macs(op: str, frames: int, size: int, channels: int, stride: int) -> int:
    """MACs of one cell operation on ``frames x size x size x channels`` (output ``size / stride``).

    Separable and pseudo-3D convolutions: ReLU, the depthwise kernels, a pointwise
    ``channels -> channels`` convolution and BatchNorm; the identity at stride 2 is a ReLU, a
    strided 1x1x1 convolution and BatchNorm; pooling, the identity and zero cost nothing.
    """
    kind, arg = op_descriptor(op)
    out = conv_out(size, 3, stride)
    positions = frames * out * out
    if kind in ("pool", "zero") or (kind == "identity" and stride == 1):
        return 0
    if kind == "identity":
        return positions * channels * channels + 2 * positions * channels
    kernels = PSEUDO3D_BLOCKS[arg].kernels if kind == "p3d" else (arg,)
    volume = sum(kt * kh * kw for kt, kh, kw in kernels)
    return positions * channels * volume + positions * channels * channels + 2 * positions * channels


def _preprocess_macs(frames: int, size: int, c_in: int, channels: int, reduce: bool) -> int:
    """ReLU, 1x1x1 convolution (stride 2 when ``reduce``) and BatchNorm of a cell's input."""
    out = conv_out(size, 1, 2) if reduce else size
    positions = frames * out * out
    return positions * c_in * channels + 2 * positions * channels


def stem_macs(frames: int, size: int, width: int, temporal_kernel: int = 3) -> tuple[int, int]:
    """(MACs, output size) of the stem: a 1x3x3 stride-2 convolution, a ``temporal_kernel`` x 1 x 1
    depthwise one, BatchNorm."""
    out = conv_out(size, 3, 2)
    positions = frames * out * out
    return positions * 3 * 9 * width + positions * width * temporal_kernel + 2 * positions * width, out


def cell_net_macs(spec: CellNetSpec, frames: int | None = None, size: int | None = None, classes: int = 400) -> int:
    """MACs of ``spec`` for one clip (default: the spec's input)."""
    frames = frames or spec.input_frames
    size = size or spec.input_size
    channels = spec.channels
    c_stem = spec.stem_multiplier * channels
    macs, size = stem_macs(frames, size, c_stem, spec.stem_temporal_kernel)
    c_pp, c_p, reduce_prev = c_stem, c_stem, False
    size_pp = size
    for layer in range(spec.layers):
        reduce = layer in spec.reductions
        if reduce:
            channels *= 2
        macs += _preprocess_macs(frames, size_pp, c_pp, channels, reduce_prev)
        macs += _preprocess_macs(frames, size, c_p, channels, False)
        pairs = spec.genotype.reduce if reduce else spec.genotype.normal
        for op, index in pairs:
            stride = 2 if reduce and index < 2 else 1
            in_size = size if (index < 2 or not reduce) else conv_out(size, 3, 2)
            macs += op_macs(op, frames, in_size, channels, stride)
        size_pp = size
        if reduce:
            size = conv_out(size, 3, 2)
        c_pp, c_p, reduce_prev = c_p, spec.genotype.nodes * channels, reduce
    return int(macs + c_p * classes)


def search_edges(nodes: int) -> list[tuple[int, int]]:
    """``(node, input)`` of every edge of a cell with ``nodes`` intermediate nodes, in order."""
    return [(node, index) for node in range(nodes) for index in range(2 + node)]


def validate_ops(ops: Sequence[str]) -> tuple[str, ...]:
    """``ops`` as a tuple, every one a known cell operation, without repeats."""
    ops = tuple(ops)
    for op in ops:
        op_descriptor(op)
    if len(set(ops)) != len(ops) or not ops:
        raise SpecError(f"candidate operations must be distinct and non-empty, got {list(ops)}.")
    return ops
