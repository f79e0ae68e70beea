"""The cell search space of the differentiable search, its MACs tables and its discretisation.

A `CellSearchSpace` fixes everything of a cell network (`autox3d_tf.arch.cells.CellNetSpec`) but
the genotype: the candidate operations of every edge, the nodes per cell, the widths, the depth
and the clip. The architecture weights are two ``(edges, ops)`` matrices of logits, one shared by
every normal cell and one by every reduction cell (DARTS). ``derive`` turns them into a genotype:
per node the two incoming edges whose strongest operation other than "zero" weighs most, each
with that operation (DARTS' rule), then, if the network is over a MACs budget, the cheapest
probability-losing swaps of an edge to a cheaper operation until it is within it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as _replace

import numpy as np

from autox3d_tf.arch.cells import (
    SEARCH_OPS,
    CellNetSpec,
    Genotype,
    cell_net_macs,
    op_macs,
    reduction_layers,
    search_edges,
    stem_macs,
    validate_ops,
)
from autox3d_tf.arch.macs import conv_out

__all__ = ["CELL_SPACE_PRESETS", "CellSearchSpace", "cell_space_preset"]


@dataclass(frozen=True)
class CellSearchSpace:
    """Candidate operations, cell shape and network widths of a cell search.

    Attributes:
        ops: the candidates of every edge (default: all of `autox3d_tf.arch.cells.CELL_OPS`).
        nodes: intermediate nodes per cell.
        channels, layers, stem_multiplier, stem_temporal_kernel, input_frames, input_size: as in
            `CellNetSpec`.
        classes: classifier outputs (for the MACs).
        name: the space's name.
    """

    ops: tuple[str, ...] = SEARCH_OPS
    nodes: int = 4
    channels: int = 16
    layers: int = 5
    stem_multiplier: int = 3
    stem_temporal_kernel: int = 3
    input_frames: int = 8
    input_size: int = 112
    classes: int = 400
    name: str = "cells"
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", validate_ops(self.ops))
        if self.nodes < 1 or self.layers < 1:
            raise ValueError("a cell space needs at least one node and one cell")

    @property
    def edges(self) -> list[tuple[int, int]]:
        """``(node, input)`` of every edge of one cell."""
        return search_edges(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def reductions(self) -> tuple[int, ...]:
        return reduction_layers(self.layers)

    def spec(self, genotype: Genotype, name: str = "cells_searched", notes: str = "") -> CellNetSpec:
        """The `CellNetSpec` of ``genotype`` in this space."""
        return CellNetSpec(name=name, genotype=genotype, channels=self.channels, layers=self.layers,
                           stem_multiplier=self.stem_multiplier, stem_temporal_kernel=self.stem_temporal_kernel,
                           input_frames=self.input_frames, input_size=self.input_size, notes=notes)

    def macs(self, genotype: Genotype) -> int:
        """MACs of the network of ``genotype`` for one clip."""
        return cell_net_macs(self.spec(genotype), classes=self.classes)

    def cost_tables(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(normal, reduce, fixed)``: MACs of every (edge, op) summed over the cells of each type,
        and the MACs of everything else (stem, cell inputs, head) for one clip."""
        if "costs" in self._tables:
            return self._tables["costs"]
        frames = self.input_frames
        c_stem = self.stem_multiplier * self.channels
        fixed, size = stem_macs(frames, self.input_size, c_stem, self.stem_temporal_kernel)
        tables = {False: np.zeros((self.num_edges, len(self.ops))), True: np.zeros((self.num_edges, len(self.ops)))}
        channels, c_pp, c_p, reduce_prev, size_pp = self.channels, c_stem, c_stem, False, size
        for layer in range(self.layers):
            reduce = layer in self.reductions
            channels *= 2 if reduce else 1
            out_pp = conv_out(size_pp, 1, 2) if reduce_prev else size_pp
            fixed += frames * out_pp * out_pp * (c_pp * channels + 2 * channels)
            fixed += frames * size * size * (c_p * channels + 2 * channels)
            reduced = conv_out(size, 3, 2)
            for e, (_, index) in enumerate(self.edges):
                stride = 2 if reduce and index < 2 else 1
                in_size = reduced if reduce and index >= 2 else size
                for o, op in enumerate(self.ops):
                    tables[reduce][e, o] += op_macs(op, frames, in_size, channels, stride)
            size_pp = size
            if reduce:
                size = reduced
            c_pp, c_p, reduce_prev = c_p, self.nodes * channels, reduce
        fixed += c_p * self.classes
        result = (tables[False], tables[True], float(fixed))
        self._tables["costs"] = result
        return result

    def edge_scale(self) -> np.ndarray:
        """Per edge, the share of its node's incoming edges a derived cell keeps (2 of 2 + node)."""
        return np.array([2.0 / (2 + node) for node, _ in self.edges])

    def derive(self, normal: np.ndarray, reduce: np.ndarray, macs_target: float | None = None) -> Genotype:
        """The genotype of architecture weights ``normal`` / ``reduce`` (softmax probabilities or
        logits, ``(edges, ops)``), within ``macs_target`` when given and reachable."""
        probs = {False: _softmax(np.asarray(normal, np.float64)), True: _softmax(np.asarray(reduce, np.float64))}
        choice = {kind: self._strongest(probs[kind]) for kind in (False, True)}

        def genotype() -> Genotype:
            return Genotype(normal=self._pairs(choice[False]), reduce=self._pairs(choice[True]))

        if macs_target is None:
            return genotype()
        while self.macs(genotype()) > macs_target:
            swap = self._cheapest_swap(probs, choice)
            if swap is None:
                break
            kind, edge, op = swap
            choice[kind][edge] = op
        return genotype()

    def _strongest(self, probs: np.ndarray) -> dict[int, int]:
        """Per node, its two edges with the strongest non-zero op: ``{edge: op index}``."""
        usable = [o for o, op in enumerate(self.ops) if op != "zero"]
        chosen: dict[int, int] = {}
        for node in range(self.nodes):
            edges = [e for e, (n, _) in enumerate(self.edges) if n == node]
            best = {e: max(usable, key=lambda o: probs[e, o]) for e in edges}
            top = sorted(edges, key=lambda e: (-probs[e, best[e]], e))[:2]
            chosen.update({e: best[e] for e in sorted(top)})
        return chosen

    def _pairs(self, chosen: dict[int, int]) -> tuple[tuple[str, int], ...]:
        return tuple((self.ops[chosen[e]], self.edges[e][1]) for e in sorted(chosen))

    def _cheapest_swap(self, probs, choice):
        """The (kind, edge, op) swap to a cheaper operation that loses the least probability per MACs saved."""
        normal, reduce, _ = self.cost_tables()
        costs = {False: normal, True: reduce}
        best, best_score = None, np.inf
        for kind in (False, True):
            for edge, op in choice[kind].items():
                for alt, name in enumerate(self.ops):
                    saved = costs[kind][edge, op] - costs[kind][edge, alt]
                    if name == "zero" or saved <= 0:
                        continue
                    score = (probs[kind][edge, op] - probs[kind][edge, alt]) / saved
                    if score < best_score:
                        best, best_score = (kind, edge, alt), score
        return best

    def make_supernet(self, name: str = "supernet"):
        """The `CellSuperNet` of this space."""
        from autox3d_tf.search.cell_supernet import CellSuperNet

        return CellSuperNet(self, name=name)

    def replace(self, **changes) -> "CellSearchSpace":
        return _replace(self, **changes)


def _softmax(x: np.ndarray) -> np.ndarray:
    """Row softmax; rows that already sum to 1 with no negative entry are taken as probabilities."""
    if np.all(x >= 0) and np.allclose(x.sum(axis=-1), 1.0):
        return x
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


CELL_SPACE_PRESETS = {
    # Peng et al. (ICIP 2019): 4 segments x 2 frames at 112 x 112 (the segments fold into the batch).
    "cells": dict(nodes=4, channels=16, layers=5, input_frames=2, input_size=112),
    # Minutes on a CPU: 2 nodes, 3 cells, 8 channels.
    "cells-tiny": dict(nodes=2, channels=8, layers=3, input_frames=8, input_size=32),
}


def cell_space_preset(name: str, **overrides) -> CellSearchSpace:
    """A named cell space (`CELL_SPACE_PRESETS`) with ``overrides`` (e.g. ``input_frames=8``)."""
    if name not in CELL_SPACE_PRESETS:
        raise ValueError(f"unknown cell space {name!r}; valid spaces are {sorted(CELL_SPACE_PRESETS)}")
    return CellSearchSpace(**{**CELL_SPACE_PRESETS[name], "name": name, **overrides})
