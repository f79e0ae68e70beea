"""The differentiable search on the autox3d-v1 block space: a softmax mixture over each block's type.

`BlockMixtureSpace` keeps a network's skeleton (an `ArchSpec`: stages, widths, depths, expansions,
attention; X3D-XS by default) and relaxes every block's type over the v1 types (and "skip" for
every block but a stage's first), so the differentiable search can be compared with the
probabilistic search (`ArchitectureSearch`) and the entropy search on the same block vocabulary.
It has the interface `DifferentiableSearch` uses (`ops`, `edges` = the blocks, `cost_tables`,
`edge_scale`, `derive`, `spec`, `macs`, `op_mask`, `make_supernet`); ``derive`` gives an `ArchSpec`:
the strongest type per block, then, over a MACs budget, the cheapest probability-losing swaps.

`BlockMixtureSuperNet` builds every type of every block with the zoo builder's own
`residual_block` (one small functional model per block and type), between the builder's stem and
head: block ``k``'s output is ``sum_t w[k, t] * block_t(x)`` (+ ``w[k, skip] * x``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from autox3d_tf.arch import naming
from autox3d_tf.arch.macs import block_macs, conv_out, head_macs, stem_macs
from autox3d_tf.arch.spec import SKIP, V1_BLOCK_TYPES, ArchSpec, BlockSpec, StageSpec
from autox3d_tf.models.builder import network_head, network_stem, residual_block

__all__ = ["BlockMixtureSpace", "BlockMixtureSuperNet"]


@dataclass(frozen=True)
class BlockMixtureSpace:
    """Every block of ``skeleton`` with its type relaxed over ``types`` (+ skip where allowed).

    Attributes:
        skeleton: the fixed part of the network (its blocks' types are ignored).
        types: the candidate block types.
        allow_skip: also "skip" for every block but a stage's first.
        classes: classifier outputs.
        name: the space's name.
    """

    skeleton: ArchSpec
    types: tuple[str, ...] = V1_BLOCK_TYPES
    allow_skip: bool = True
    classes: int = 400
    name: str = "autox3d-v1-types"
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(self.types) + ((SKIP,) if self.allow_skip else ())

    @property
    def blocks(self) -> list[tuple[int, int, int, int, int, BlockSpec]]:
        """``(stage, block, in_width, width, stride, block spec)`` of every block of the skeleton."""
        out, in_width = [], self.skeleton.stem_width
        for s, stage in enumerate(self.skeleton.stages, start=1):
            for b, block in enumerate(stage.blocks):
                out.append((s, b, in_width, stage.width, stage.stride if b == 0 else 1, block))
                in_width = stage.width
        return out

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [(s, b) for s, b, *_ in self.blocks]

    @property
    def num_edges(self) -> int:
        return len(self.blocks)

    @property
    def reductions(self) -> tuple[int, ...]:
        return ()

    @property
    def input_frames(self) -> int:
        return self.skeleton.input_frames

    @property
    def input_size(self) -> int:
        return self.skeleton.input_size

    def op_mask(self) -> np.ndarray:
        """``(blocks, ops)``: False for "skip" at a stage's first block."""
        mask = np.ones((self.num_edges, len(self.ops)), bool)
        if self.allow_skip:
            for k, (_, b, *_rest) in enumerate(self.blocks):
                mask[k, -1] = b > 0
        return mask

    def _block(self, k: int, type_: str) -> BlockSpec:
        base = self.blocks[k][5]
        return BlockSpec(type_, base.expansion, base.attention) if type_ != SKIP else BlockSpec(SKIP)

    def spec(self, types, name: str = "autox3d_searched", notes: str = "") -> ArchSpec:
        """The `ArchSpec` of the skeleton with ``types`` (one per block), or ``types`` itself if it is one."""
        if isinstance(types, ArchSpec):
            return types
        stages, k = [], 0
        for stage in self.skeleton.stages:
            blocks = []
            for _ in stage.blocks:
                blocks.append(self._block(k, types[k]))
                k += 1
            stages.append(StageSpec(stage.width, tuple(blocks), stage.stride))
        return self.skeleton.replace(name=name, stages=tuple(stages), notes=notes or self.skeleton.notes)

    def macs(self, spec: ArchSpec) -> int:
        from autox3d_tf.arch.macs import spec_macs

        return spec_macs(spec, classes=self.classes)

    def cost_tables(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(per block and type MACs, zeros, stem + head MACs)`` for one clip."""
        if "costs" in self._tables:
            return self._tables["costs"]
        sk = self.skeleton
        frames = sk.input_frames
        fixed, size = stem_macs(frames, sk.input_size, sk.stem_width, sk.stem_temporal_kernel)
        table = np.zeros((self.num_edges, len(self.ops)))
        for k, (_, _, in_width, width, stride, _) in enumerate(self.blocks):
            for t, type_ in enumerate(self.ops):
                if type_ != SKIP:
                    table[k, t] = block_macs(frames, size, in_width, width, stride, self._block(k, type_))[0]
            size = conv_out(size, 3, stride)
        fixed += head_macs(frames, size, sk.stages[-1].width, sk.head_width, sk.head_hidden, self.classes)
        result = (table, np.zeros_like(table), float(fixed))
        self._tables["costs"] = result
        return result

    def edge_scale(self) -> np.ndarray:
        return np.ones(self.num_edges)

    def derive(self, normal: np.ndarray, reduce: np.ndarray | None = None, macs_target: float | None = None) -> ArchSpec:
        """The strongest allowed type per block, then cheaper swaps until within ``macs_target``."""
        probs = np.where(self.op_mask(), np.asarray(normal, np.float64), 0.0)
        choice = [int(np.argmax(row)) for row in probs]
        costs = self.cost_tables()[0]

        def current() -> ArchSpec:
            return self.spec([self.ops[c] for c in choice])

        while macs_target is not None and self.macs(current()) > macs_target:
            best, best_score = None, np.inf
            for k, c in enumerate(choice):
                for alt in range(len(self.ops)):
                    saved = costs[k, c] - costs[k, alt]
                    if saved > 0 and self.op_mask()[k, alt]:
                        score = (probs[k, c] - probs[k, alt]) / saved
                        if score < best_score:
                            best, best_score = (k, alt), score
            if best is None:
                break
            choice[best[0]] = best[1]
        return current()

    def make_supernet(self, name: str = "supernet") -> "BlockMixtureSuperNet":
        return BlockMixtureSuperNet(self, name=name)


class BlockMixtureSuperNet(keras.Model):
    """Every type of every block of a `BlockMixtureSpace`; ``supernet(clips, weights, _, training)``."""

    def __init__(self, space: BlockMixtureSpace, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        sk = space.skeleton
        frames = sk.input_frames
        clip = keras.Input((frames, None, None, 3))
        self.stem = keras.Model(clip, network_stem(clip, sk), name="stem")
        self.block_models = []
        for k, (s, b, in_width, width, stride, _) in enumerate(space.blocks):
            branches = []
            for type_ in space.types:
                x = keras.Input((frames, None, None, in_width))
                prefix = f"{naming.block_prefix(s, b)}_{type_.replace('+', 'p')}"
                branches.append(keras.Model(x, residual_block(x, space._block(k, type_), in_width, width, stride, prefix),
                                            name=prefix))
            self.block_models.append(branches)
        features = keras.Input((frames, None, None, sk.stages[-1].width))
        self.head = keras.Model(features, network_head(features, sk, classes=space.classes, classifier_activation=None,
                                                       dropout_rate=0.0), name="head")
        self._skip_allowed = [bool(m) for m in space.op_mask()[:, -1]] if space.allow_skip else None

    def call(self, clips, normal_weights, reduce_weights=None, training=False):
        x = self.stem(clips, training=training)
        for k, branches in enumerate(self.block_models):
            total = None
            for t, branch in enumerate(branches):
                term = normal_weights[k, t] * branch(x, training=training)
                total = term if total is None else total + term
            if self._skip_allowed is not None and self._skip_allowed[k]:
                total = total + normal_weights[k, len(branches)] * x
            x = total
        return self.head(x, training=training)

    def build_all(self) -> None:
        space = self.space
        clip = keras.ops.zeros((1, space.input_frames, space.input_size, space.input_size, 3))
        uniform = keras.ops.ones((space.num_edges, len(space.ops))) / len(space.ops)
        self(clip, uniform, uniform)
