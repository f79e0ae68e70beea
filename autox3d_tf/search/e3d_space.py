"""E3D's search space as data: five stages of ``Res3DK1DWK1`` blocks, for `entropy_search`.

The space of alibaba/lightweight-neural-architecture-search's ``space_3d_k1dwk1`` in our terms: per
stage an output width, a bottleneck (inner) width, a depthwise kernel ``(kt, k)`` among E3D's
(1, 3), (1, 5) and (3, 3), and a number of blocks; E3D's stem, shortcut rule and head are fixed
(`autox3d_tf.arch.e3d.e3d_network`), and so are the stage strides ``(2, 2, 2, 1, 2)``. The
published E3D-S / M / L are points of `e3d_space` (``contains``), and E3D's layer budget (1 per
plain convolution, 3 per block: 83 for S and M, 167 for L) is `layer_constraint`.

Decision layout (the order of a choice vector): for each stage, its width, bottleneck, kernel and
depth. Width, bottleneck and depth candidates are increasing, so `entropy_search`'s repair step can
shrink an over-budget vector one step at a time.

    space = e3d_space("S")
    spec, history = entropy_search(space, macs_budget, init_specs=[e3d_spec("S")],
                                   constraint=layer_constraint(83))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from autox3d_tf.arch.e3d import E3D_VARIANTS, E3DStage, e3d_layers, e3d_network
from autox3d_tf.arch.spec import POOL, RELU, ArchSpec, SpecError
from autox3d_tf.search.space import Decision, checked_choices

__all__ = ["E3DSearchSpace", "KERNELS", "e3d_space", "layer_constraint"]

# (kt, k): the kernels of tinynas' space_3d_k1dwk1 (``search_kernel_size_list``); add (3, 5) for
# the 3x5x5 blocks of autox3d-v1.
KERNELS: tuple[tuple[int, int], ...] = ((1, 3), (1, 5), (3, 3))
STRIDES = (2, 2, 2, 1, 2)


def _steps(low: int, high: int, step: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1, step))


@dataclass(frozen=True)
class E3DSearchSpace:
    """E3D-style networks: per stage width, bottleneck, depthwise kernel ``(kt, k)`` and depth."""

    stage_widths: tuple[tuple[int, ...], ...]
    bottlenecks: tuple[tuple[int, ...], ...]
    depths: tuple[tuple[int, ...], ...]
    kernels: tuple[tuple[int, int], ...] = KERNELS
    strides: tuple[int, ...] = STRIDES
    input_frames: int = 13
    input_size: int = 160
    classes: int = 400
    name: str = "e3d-k1dwk1"
    decisions: tuple[Decision, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.strides)
        if not len(self.stage_widths) == len(self.bottlenecks) == len(self.depths) == n:
            raise SpecError("stage_widths, bottlenecks, depths and strides need one entry per stage.")
        decisions = []
        for s in range(n):
            for kind, cands in (("width", self.stage_widths[s]), ("bottleneck", self.bottlenecks[s]),
                                ("kernel", self.kernels), ("depth", self.depths[s])):
                if not cands:
                    raise SpecError(f"stage {s + 1} {kind}: every decision needs at least one candidate.")
                decisions.append(Decision(f"stage{s + 1}_{kind}", kind, s, None, tuple(cands)))
        object.__setattr__(self, "decisions", tuple(decisions))

    @property
    def num_stages(self) -> int:
        return len(self.strides)

    @property
    def num_decisions(self) -> int:
        return len(self.decisions)

    def log10_size(self) -> float:
        """log10 of the number of architectures in the space."""
        return float(sum(np.log10(d.size) for d in self.decisions))

    def decode(self, choices: Sequence[int], name: str = "e3d_searched") -> ArchSpec:
        """The `ArchSpec` of a choice vector."""
        choices = checked_choices(self.decisions, choices)
        stages = []
        for s in range(self.num_stages):
            w, b, k, depth = (self.decisions[4 * s + i].candidates[choices[4 * s + i]] for i in range(4))
            stages.append(E3DStage(w, b, k[0], k[1], self.strides[s], depth))
        return e3d_network(stages, name=name, frames=self.input_frames, size=self.input_size)

    def encode(self, spec: ArchSpec) -> list[int]:
        """The choice vector of ``spec``; a `SpecError` names the first field outside the space."""
        reference = self.decode([0] * self.num_decisions)
        for name in ("stem_width", "stem_temporal_kernel", "head_width", "head_hidden", "head_activation",
                     "head_bias"):
            if getattr(spec, name) != getattr(reference, name):
                raise SpecError(f"spec {name}={getattr(spec, name)!r} differs from the space's.")
        if len(spec.stages) != self.num_stages:
            raise SpecError(f"spec has {len(spec.stages)} stages, the space {self.num_stages}.")
        choices = []
        for s, stage in enumerate(spec.stages):
            first = stage.blocks[0]
            if stage.stride != self.strides[s]:
                raise SpecError(f"stage {s + 1} stride {stage.stride} is not {self.strides[s]}.")
            if any(b != first for b in stage.blocks) or first.activation != RELU or first.shortcut != POOL \
                    or first.attention != "none" or first.inner is None or len(first.kernels) != 1:
                raise SpecError(f"stage {s + 1} is not a stage of identical E3D blocks.")
            kt, k, _ = first.kernels[0]
            values = (stage.width, first.inner, (kt, k), len(stage.blocks))
            for i, value in enumerate(values):
                d = self.decisions[4 * s + i]
                if value not in d.candidates:
                    raise SpecError(f"{d.name} {value} not in {d.candidates}.")
                choices.append(d.candidates.index(value))
        return choices

    def contains(self, spec: ArchSpec) -> bool:
        try:
            self.encode(spec)
        except SpecError:
            return False
        return True


def e3d_space(variant: str = "S", *, input_frames: int | None = None, input_size: int | None = None,
              classes: int = 400, **overrides) -> E3DSearchSpace:
    """The E3D space around E3D-``variant`` at its clip.

    Candidates (multiples of 8, from about half to about twice E3D's values): stage widths
    16-48 / 32-96 / 64-192 / 64-192 / 128-384, bottlenecks 16-64 / 48-192 / 96-288 / 96-288 /
    192-576 (step 16), E3D's three kernels, and 1-10 blocks per stage (1-16 for L, whose stages have 13).
    ``overrides`` go to `E3DSearchSpace`, e.g. ``kernels=KERNELS + ((3, 5),)``.
    """
    key = str(variant).upper()
    if key not in E3D_VARIANTS:
        raise ValueError(f"Unknown E3D variant {variant!r}; valid variants are {list(E3D_VARIANTS)}.")
    v = E3D_VARIANTS[key]
    max_depth = 16 if key == "L" else 10
    kwargs = dict(
        stage_widths=(_steps(16, 48, 8), _steps(32, 96, 8), _steps(64, 192, 8), _steps(64, 192, 8), _steps(128, 384, 8)),
        bottlenecks=(_steps(16, 64, 8), _steps(48, 192, 8), _steps(96, 288, 8), _steps(96, 288, 8), _steps(192, 576, 16)),
        depths=(_steps(1, max_depth, 1),) * 5,
        input_frames=input_frames or v.frames,
        input_size=input_size or v.size,
        classes=classes,
        name=f"e3d-k1dwk1-{key}",
    )
    kwargs.update(overrides)
    return E3DSearchSpace(**kwargs)


def layer_constraint(
    max_layers: int, btn_ratio: tuple[float, float] | None = None
) -> Callable[[ArchSpec], bool]:
    """E3D's layer budget as an `entropy_search` constraint (`autox3d_tf.arch.e3d.e3d_layers`).

    ``btn_ratio=(low, high)`` also bounds every stage's bottleneck / width ratio (tinynas mutates
    the bottleneck as 1.5-4x the width; the published E3D stages lie in [1.33, 2.52]).
    """

    def check(spec: ArchSpec) -> bool:
        if e3d_layers(spec) > max_layers:
            return False
        if btn_ratio is None:
            return True
        return all(btn_ratio[0] <= st.blocks[0].inner_width(st.width) / st.width <= btn_ratio[1] for st in spec.stages)

    return check
