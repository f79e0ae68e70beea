"""`CellSuperNet`: every candidate operation of every edge of a cell network, mixed by weights.

The network of `autox3d_tf.models.cell_builder.build_cell_model` (its BatchNorms synchronized
across replicas, so N replicas equal one) with each node the sum, over all its incoming
edges, of the edge's candidates weighted by the architecture weights (a softmax per edge):
``node_j = sum_i sum_o w[e(i, j), o] * op_o(state_i)``; "zero" contributes nothing. Normal cells
share one ``(edges, ops)`` weight matrix and reduction cells another. Layer names are the derived
network's (`autox3d_tf.models.cell_ops.edge_name`), so `copy_weights_to` gives a derived network
the supernet's weights; with one-hot weights that pick the derived cell's operations (and "zero"
elsewhere) the supernet computes the derived network's function.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from autox3d_tf.models.builder import HEAD_INIT, fresh_initializer
from autox3d_tf.models.cell_builder import cell_stem, cell_widths
from autox3d_tf.models.cell_ops import CellOp, Preprocess, edge_name
from autox3d_tf.search.cell_space import CellSearchSpace

__all__ = ["CellSuperNet"]


class CellSuperNet(keras.Model):
    """The mixed network of ``space``; call it as ``supernet(clips, normal_w, reduce_w, training)``."""

    def __init__(self, space: CellSearchSpace, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        self._spec = space.spec(_any_genotype(space))
        self.stem_layers = list(cell_stem(space.stem_multiplier * space.channels, space.stem_temporal_kernel, sync_bn=True))
        self.cells = []
        tracked: list[keras.layers.Layer] = []
        for cell, (channels, reduce, reduce_prev) in enumerate(cell_widths(self._spec)):
            pre = (Preprocess(channels, reduce_prev, f"cell{cell}_pre0", sync_bn=True),
                   Preprocess(channels, False, f"cell{cell}_pre1", sync_bn=True))
            edges = []
            for node, index in space.edges:
                stride = 2 if reduce and index < 2 else 1
                edges.append([CellOp(op, channels, stride, edge_name(cell, node, index, op), sync_bn=True)
                              for op in space.ops])
            self.cells.append((reduce, pre, edges))
            tracked += [layer for p in pre for layer in p.layers]
            tracked += [layer for candidates in edges for op in candidates for layer in op.layers]
        self._op_layers = tracked
        self.head_pool = layers.GlobalAveragePooling3D(name="head_pool")
        self.classifier = layers.Dense(space.classes, kernel_initializer=fresh_initializer(HEAD_INIT), name="predictions")

    def call(self, clips, normal_weights, reduce_weights, training=False):
        x = clips
        for layer in self.stem_layers:
            x = layer(x, training=training) if isinstance(layer, layers.BatchNormalization) else layer(x)
        s0 = s1 = x
        for reduce, pre, edges in self.cells:
            weights = reduce_weights if reduce else normal_weights
            states = [pre[0](s0, training), pre[1](s1, training)]
            for node in range(self.space.nodes):
                terms = []
                for e, (n, index) in enumerate(self.space.edges):
                    if n != node:
                        continue
                    for o, op in enumerate(edges[e]):
                        if not op.is_zero:
                            terms.append(weights[e, o] * op(states[index], training))
                total = terms[0]
                for term in terms[1:]:
                    total = total + term
                states.append(total)
            s0, s1 = s1, ops.concatenate(states[2:], axis=-1)
        x = self.head_pool(ops.relu(s1))
        return self.classifier(x)

    def build_all(self) -> None:
        """Creates every weight (one forward pass on a zero clip)."""
        space = self.space
        clip = ops.zeros((1, space.input_frames, space.input_size, space.input_size, 3))
        uniform = ops.ones((space.num_edges, len(space.ops))) / len(space.ops)
        self(clip, uniform, uniform)

    def copy_weights_to(self, model: keras.Model) -> int:
        """Gives ``model`` (a derived network) the weights of its layers here, by name; returns how many layers."""
        mine = {layer.name: layer for layer in self._all_layers()}
        copied = 0
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(mine[layer.name].get_weights())
                copied += 1
        return copied

    def _all_layers(self):
        return [*self.stem_layers, *self._op_layers, self.head_pool, self.classifier]


def _any_genotype(space: CellSearchSpace):
    """A placeholder genotype with the space's node count (the supernet needs only the widths)."""
    from autox3d_tf.arch.cells import Genotype

    op = next(o for o in space.ops if o != "zero")
    pairs = tuple(p for node in range(space.nodes) for p in ((op, 0), (op, 1)))
    return Genotype(normal=pairs, reduce=pairs)
