"""The autox3d-v1 search space as data (docs/ARCHITECTURE.md section 6).

A `SearchSpace` lists every decision and its candidates, turns a vector of choices into an
`ArchSpec` and back, and tabulates the exact MACs of every candidate so that the cost of any
sampled architecture is known without building it (`arch_macs`, and `macs_tables` for the
in-graph computation used by the search).

Decision layout (the order of a choice vector):
    one width decision per stage, then for every block of every stage: type, expansion,
    attention. Block types are indices into ``block_types``; for every block but a stage's
    first, the extra last index means ``skip``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from autox3d_tf.arch.naming import block_prefix
from autox3d_tf.arch.macs import block_macs, head_macs, stem_macs
from autox3d_tf.arch.spec import (
    ATTENTIONS,
    BLOCK_KERNELS,
    SKIP,
    V1_BLOCK_TYPES,
    ArchSpec,
    BlockSpec,
    SpecError,
    StageSpec,
)

X3D_BASE_WIDTHS = (24, 48, 96, 192)
DEPTHS = {"default": (3, 5, 11, 7), "L": (5, 10, 25, 15)}
WIDTH_MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5)
EXPANSIONS = (1.5, 2.25, 3.0, 4.0)


def round8(width: float) -> int:
    """Nearest multiple of 8 (ties down, at least 8): 12 -> 8, 18 -> 16, 36 -> 32, 60 -> 56."""
    return max(8, 8 * math.ceil(width / 8 - 0.5))


@dataclass(frozen=True)
class Decision:
    """One categorical decision of the space."""

    name: str
    kind: str  # "width", "type", "expansion" or "attention"
    stage: int
    block: int | None
    candidates: tuple

    @property
    def size(self) -> int:
        return len(self.candidates)


def checked_choices(decisions: Sequence[Decision], choices: Sequence[int]) -> list[int]:
    """``choices`` as a list of ints, one in range per decision (else a ValueError naming it)."""
    choices = [int(c) for c in np.asarray(choices).reshape(-1)]
    if len(choices) != len(decisions):
        raise ValueError(f"expected {len(decisions)} choices, got {len(choices)}.")
    for c, d in zip(choices, decisions):
        if not 0 <= c < d.size:
            raise ValueError(f"choice {c} out of range for decision {d.name} ({d.size} candidates).")
    return choices


@dataclass(frozen=True)
class SearchSpace:
    """A space of X3D-style networks: per-stage widths, per-block type / expansion / attention.

    The default arguments give ``autox3d-v1``; narrower spaces (fewer candidates) are useful for
    experiments and tests. ``input_frames`` and ``input_size`` are the clip the MACs refer to.
    """

    stage_widths: tuple[tuple[int, ...], ...]
    max_depths: tuple[int, ...]
    block_types: tuple[str, ...] = V1_BLOCK_TYPES  # any of BLOCK_KERNELS (the pseudo-3D types too)
    allow_skip: bool = True
    expansions: tuple[float, ...] = EXPANSIONS
    attentions: tuple[str, ...] = ATTENTIONS
    input_frames: int = 16
    input_size: int = 224
    stem_width: int = 24
    stem_temporal_kernel: int = 5
    head_width: int = 432
    head_hidden: int = 2048
    classes: int = 400
    name: str = "autox3d-v1"
    decisions: tuple[Decision, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.stage_widths) != len(self.max_depths):
            raise SpecError("stage_widths and max_depths need one entry per stage.")
        for t in self.block_types:
            if t not in BLOCK_KERNELS:
                raise SpecError(f"block type {t!r} is unknown; valid types are {list(BLOCK_KERNELS)}.")
        for a in self.attentions:
            if a not in ATTENTIONS:
                raise SpecError(f"attention {a!r} is unknown; valid values are {list(ATTENTIONS)}.")
        if not self.block_types or not self.expansions or not self.attentions:
            raise SpecError("every decision needs at least one candidate.")
        decisions = [
            Decision(f"stage{s + 1}_width", "width", s, None, tuple(w)) for s, w in enumerate(self.stage_widths)
        ]
        for s, depth in enumerate(self.max_depths):
            for b in range(depth):
                types = self.block_types + ((SKIP,) if self.allow_skip and b > 0 else ())
                prefix = block_prefix(s + 1, b)
                decisions.append(Decision(f"{prefix}_type", "type", s, b, types))
                decisions.append(Decision(f"{prefix}_expansion", "expansion", s, b, tuple(self.expansions)))
                decisions.append(Decision(f"{prefix}_attention", "attention", s, b, tuple(self.attentions)))
        object.__setattr__(self, "decisions", tuple(decisions))

    # ----------------------------------------------------------------- structure
    @property
    def num_stages(self) -> int:
        return len(self.max_depths)

    @property
    def num_decisions(self) -> int:
        return len(self.decisions)

    @property
    def max_candidates(self) -> int:
        return max(d.size for d in self.decisions)

    def candidate_mask(self) -> np.ndarray:
        """``(num_decisions, max_candidates)`` booleans: which padded entries are real."""
        mask = np.zeros((self.num_decisions, self.max_candidates), dtype=bool)
        for i, d in enumerate(self.decisions):
            mask[i, : d.size] = True
        return mask

    def block_decision_index(self, stage: int, block: int) -> int:
        """Index of the ``type`` decision of a block (expansion and attention follow it)."""
        return self.num_stages + 3 * (sum(self.max_depths[:stage]) + block)

    def log10_size(self) -> float:
        """log10 of the number of architectures in the space."""
        return float(sum(math.log10(d.size) for d in self.decisions))

    # ------------------------------------------------------------ specs <-> choices
    def decode(self, choices: Sequence[int], name: str = "autox3d_searched") -> ArchSpec:
        """The `ArchSpec` of a choice vector."""
        choices = checked_choices(self.decisions, choices)
        stages = []
        for s, depth in enumerate(self.max_depths):
            width = self.stage_widths[s][choices[s]]
            blocks = []
            for b in range(depth):
                i = self.block_decision_index(s, b)
                t = self.decisions[i].candidates[choices[i]]
                if t == SKIP:
                    blocks.append(BlockSpec(SKIP))
                else:
                    blocks.append(
                        BlockSpec(t, self.expansions[choices[i + 1]], self.attentions[choices[i + 2]])
                    )
            stages.append(StageSpec(width=width, blocks=tuple(blocks), stride=2))
        return ArchSpec(
            name=name,
            stages=tuple(stages),
            input_frames=self.input_frames,
            input_size=self.input_size,
            stem_width=self.stem_width,
            stem_temporal_kernel=self.stem_temporal_kernel,
            head_width=self.head_width,
            head_hidden=self.head_hidden,
        )

    def encode(self, spec: ArchSpec) -> list[int]:
        """The choice vector of ``spec``; a `SpecError` names the first field outside the space."""
        if len(spec.stages) != self.num_stages:
            raise SpecError(f"spec has {len(spec.stages)} stages, the space {self.num_stages}.")
        for field_name in ("stem_width", "stem_temporal_kernel", "head_width", "head_hidden"):
            if getattr(spec, field_name) != getattr(self, field_name):
                raise SpecError(f"spec {field_name}={getattr(spec, field_name)} differs from the space's.")
        if spec.head_activation != "relu" or spec.head_bias:
            raise SpecError("spec has an E3D-style head (Swish, bias), outside the space.")
        choices = [0] * self.num_decisions
        for s, stage in enumerate(spec.stages):
            if stage.width not in self.stage_widths[s]:
                raise SpecError(f"stage {s + 1} width {stage.width} not in {self.stage_widths[s]}.")
            if stage.stride != 2:
                raise SpecError(f"stage {s + 1} stride {stage.stride} is not 2.")
            if len(stage.blocks) > self.max_depths[s]:
                raise SpecError(f"stage {s + 1} has {len(stage.blocks)} blocks, at most {self.max_depths[s]}.")
            choices[s] = self.stage_widths[s].index(stage.width)
            blocks = list(stage.blocks) + [BlockSpec(SKIP)] * (self.max_depths[s] - len(stage.blocks))
            for b, block in enumerate(blocks):
                i = self.block_decision_index(s, b)
                types = self.decisions[i].candidates
                if block.type not in types:
                    raise SpecError(f"stage {s + 1} block {b} type {block.type!r} not in {types}.")
                choices[i] = types.index(block.type)
                if not block.is_skip and (block.inner is not None or block.activation != "swish"
                                          or block.shortcut != "projection"):
                    raise SpecError(f"stage {s + 1} block {b} is an E3D-style block (inner width, ReLU or pool "
                                    "shortcut), outside the space.")
                if not block.is_skip:
                    if block.expansion not in self.expansions:
                        raise SpecError(f"stage {s + 1} block {b} expansion {block.expansion} not in {self.expansions}.")
                    if block.attention not in self.attentions:
                        raise SpecError(f"stage {s + 1} block {b} attention {block.attention!r} not in {self.attentions}.")
                    choices[i + 1] = self.expansions.index(block.expansion)
                    choices[i + 2] = self.attentions.index(block.attention)
        return choices

    def contains(self, spec: ArchSpec) -> bool:
        try:
            self.encode(spec)
        except SpecError:
            return False
        return True

    # -------------------------------------------------------------------- MACs
    def _sizes(self) -> list[int]:
        """Spatial size at the input of each stage, then after the last stage."""
        _, h = stem_macs(self.input_frames, self.input_size, self.stem_width, self.stem_temporal_kernel)
        sizes = [h]
        for _ in self.max_depths:
            sizes.append((sizes[-1] + 2 - 3) // 2 + 1)
        return sizes

    def macs_tables(self) -> tuple[int, np.ndarray, list[np.ndarray]]:
        """Tables for the in-graph MACs of a choice vector.

        Returns ``(constant, head, blocks)``: ``head[w]`` is the head's cost for last-stage width
        index ``w``; ``blocks[k][w_in, w, t, e, a]`` the cost of block ``k`` (in decision order)
        with input width index ``w_in`` (of the previous stage for a stage's first block, else of
        its own stage), width index ``w``, type ``t``, expansion ``e`` and attention ``a``.
        """
        frames = self.input_frames
        constant, _ = stem_macs(frames, self.input_size, self.stem_width, self.stem_temporal_kernel)
        sizes = self._sizes()
        ntypes = len(self.block_types) + (1 if self.allow_skip else 0)
        blocks = []
        for s, depth in enumerate(self.max_depths):
            in_widths = (self.stem_width,) if s == 0 else self.stage_widths[s - 1]
            widths = self.stage_widths[s]
            for b in range(depth):
                ins = in_widths if b == 0 else widths
                table = np.zeros((len(ins), len(widths), ntypes, len(self.expansions), len(self.attentions)), np.int64)
                for (wi, w_in), (wo, w), (ti, t), (ei, e), (ai, a) in itertools.product(
                    enumerate(ins), enumerate(widths), enumerate(self.block_types),
                    enumerate(self.expansions), enumerate(self.attentions),
                ):  # fmt: skip
                    stride = 2 if b == 0 else 1
                    size = sizes[s] if b == 0 else sizes[s + 1]
                    table[wi, wo, ti, ei, ai] = block_macs(frames, size, w_in, w, stride, BlockSpec(t, e, a))[0]
                blocks.append(table)
        last = self.stage_widths[-1]
        head = np.array(
            [head_macs(frames, sizes[-1], w, self.head_width, self.head_hidden, self.classes) for w in last], np.int64
        )
        return int(constant), head, blocks

    def extreme_choices(self, largest: bool = True) -> list[int]:
        """The choices of the most (or least) expensive architecture of the space.

        Every block's cost grows with each of its width, expansion and attention choices and
        the type order by cost does not depend on them, so picking each decision's largest (or
        smallest) cost candidate gives the space's maximum (minimum) MACs.
        """
        sizes = self._sizes()
        w = max(self.stage_widths[0])
        type_cost = [
            block_macs(self.input_frames, sizes[1], w, w, 1, BlockSpec(t, self.expansions[0], "none"))[0]
            for t in self.block_types
        ]
        pick = max if largest else min
        choices = []
        for d in self.decisions:
            if d.kind == "width":
                choices.append(d.candidates.index(pick(d.candidates)))
            elif d.kind == "expansion":
                choices.append(d.candidates.index(pick(d.candidates)))
            elif d.kind == "attention":
                order = [c == "se" for c in d.candidates]
                choices.append(order.index(largest) if largest in order else 0)
            elif not largest and SKIP in d.candidates:
                choices.append(d.candidates.index(SKIP))
            else:
                costs = type_cost
                choices.append(int(np.argmax(costs) if largest else np.argmin(costs)))
        return choices

    def arch_macs(self, choices: Sequence[int]) -> int:
        """MACs of the architecture a choice vector describes (via its `ArchSpec`)."""
        from autox3d_tf.arch.macs import spec_macs

        return spec_macs(self.decode(choices), classes=self.classes)


def autox3d_v1(
    budget: str = "default",
    *,
    input_frames: int = 16,
    input_size: int = 224,
    classes: int = 400,
    **overrides,
) -> SearchSpace:
    """The autox3d-v1 space on the X3D skeleton.

    Args:
        budget: "default" (up to [3, 5, 11, 7] blocks) or "L" (up to [5, 10, 25, 15]).
        input_frames, input_size: the clip the MACs refer to.
        classes: classifier size (counted in the MACs).
        overrides: any other `SearchSpace` field, e.g. ``block_types=("3x3x3", "1x3x3")``.
    """
    if budget not in DEPTHS:
        raise ValueError(f"Unknown budget {budget!r}; valid budgets are {list(DEPTHS)}.")
    widths = tuple(tuple(dict.fromkeys(round8(w * m) for m in WIDTH_MULTIPLIERS)) for w in X3D_BASE_WIDTHS)
    kwargs = dict(
        stage_widths=widths,
        max_depths=DEPTHS[budget],
        input_frames=input_frames,
        input_size=input_size,
        classes=classes,
    )
    kwargs.update(overrides)
    return SearchSpace(**kwargs)


SPACE_PRESETS: dict[str, str] = {
    "autox3d-v1": "up to [3, 5, 11, 7] blocks, every candidate",
    "autox3d-v1-L": "up to [5, 10, 25, 15] blocks, every candidate",
    "small": "up to [1, 2, 3, 2] blocks, every candidate, 192-wide head",
    "tiny": "2 block types, 2 widths, 2 expansions, up to [1, 2, 2, 1] blocks: minutes on a CPU",
}


def space_preset(name: str, *, input_frames: int, input_size: int, classes: int) -> SearchSpace:
    """A named search space (:data:`SPACE_PRESETS`) at the given clip and class count."""
    clip = dict(input_frames=input_frames, input_size=input_size, classes=classes)
    if name == "autox3d-v1":
        return autox3d_v1(**clip)
    if name == "autox3d-v1-L":
        return autox3d_v1("L", **clip, name="autox3d-v1-L")
    if name == "small":
        return autox3d_v1(**clip, max_depths=(1, 2, 3, 2), head_width=192, head_hidden=256, name="autox3d-v1-small")
    if name == "tiny":
        return autox3d_v1(**clip, max_depths=(1, 2, 2, 1), stage_widths=((8, 16), (16, 32), (32, 48), (48, 64)),
                          block_types=("3x3x3", "1x3x3"), expansions=(1.5, 2.25), head_width=64, head_hidden=0,
                          name="autox3d-v1-tiny")
    raise ValueError(f"Unknown search space {name!r}; valid spaces are {list(SPACE_PRESETS)}.")
