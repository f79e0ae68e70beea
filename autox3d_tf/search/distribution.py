"""The architecture distribution: one categorical per decision, with trainable logits.

Sampling uses stateless random ops keyed by a (seed, step) pair, so every replica of a
distributed step draws the same architecture without communicating. MACs of a sample, the
expected MACs under the distribution and the MACs of its most probable architecture come from
the space's exact tables, in graph.

TensorFlow-only (tf.Variable logits, stateless tf.random).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.search.space import SearchSpace

NEG = -1e9


class ArchDistribution(keras.layers.Layer):
    """Independent categoricals over the decisions of ``space`` (logits start at 0: uniform)."""

    def __init__(self, space: SearchSpace, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        self.mask = space.candidate_mask()
        self.logits = self.add_weight(
            name="logits", shape=self.mask.shape, initializer="zeros", trainable=True
        )
        self._build_macs_tables()
        self.built = True

    # ------------------------------------------------------------------ basics
    def masked_logits(self):
        return ops.where(self.mask, self.logits, NEG)

    def log_probs(self):
        return tf.nn.log_softmax(self.masked_logits(), axis=-1)

    def probs(self):
        return ops.softmax(self.masked_logits(), axis=-1)

    def sample(self, seed) -> tf.Tensor:
        """One architecture: an int32 vector of choices, a function of the stateless ``seed``."""
        draws = tf.random.stateless_categorical(self.masked_logits(), 1, seed=seed, dtype=tf.int32)
        return draws[:, 0]

    def log_prob(self, choices) -> tf.Tensor:
        """log p(choices); ``choices`` may be (D,) or a batch (K, D)."""
        choices = tf.cast(choices, tf.int32)
        batched = choices.shape.rank == 2
        columns = tf.transpose(choices) if batched else choices[:, None]  # (D, K)
        picked = tf.gather(self.log_probs(), columns, axis=1, batch_dims=1)
        total = tf.reduce_sum(picked, axis=0)
        return total if batched else total[0]

    def entropy(self) -> tf.Tensor:
        p = self.probs()
        return -tf.reduce_sum(tf.where(self.mask, p * self.log_probs(), 0.0))

    def max_entropy(self) -> float:
        return float(np.sum(np.log(self.mask.sum(axis=1))))

    def argmax(self) -> tf.Tensor:
        return tf.argmax(self.masked_logits(), axis=-1, output_type=tf.int32)

    # -------------------------------------------------------------------- MACs
    def _build_macs_tables(self) -> None:
        """Flattens the space's tables for vectorised lookups (a few ops for any number of archs).

        Every block gets a (M, M, M, M, M) table over (input width, width, type, expansion,
        attention) choices, padded with zeros (M = max candidates); blocks inside a stage, whose
        input width is the stage's own, hold their costs on the (input width == width) diagonal.
        ``_macs_cols[k]`` are the decision indices whose choices index block ``k``'s table (the
        stage-1 first block reads its input width from an extra all-zero column).
        """
        space = self.space
        constant, head, blocks = space.macs_tables()
        m = space.max_candidates
        d = space.num_decisions
        tables = np.zeros((len(blocks), m, m, m, m, m), np.float64)
        cols = np.zeros((len(blocks), 5), np.int64)
        k = 0
        for s, depth in enumerate(space.max_depths):
            for b in range(depth):
                i = space.block_decision_index(s, b)
                t = blocks[k][:, :, : space.decisions[i].size]  # no skip entry for a stage's first block
                if b == 0:
                    tables[k, : t.shape[0], : t.shape[1], : t.shape[2], : t.shape[3], : t.shape[4]] = t
                    cols[k] = (s - 1 if s > 0 else d, s, i, i + 1, i + 2)
                else:
                    for w in range(t.shape[1]):
                        tables[k, w, w, : t.shape[2], : t.shape[3], : t.shape[4]] = t[w, w]
                    cols[k] = (s, s, i, i + 1, i + 2)
                k += 1
        self._macs_constant = float(constant)
        self._macs_head = np.zeros(m, np.float64)
        self._macs_head[: head.shape[0]] = head
        self._macs_tables = tables
        self._macs_flat = tables.reshape(-1)
        self._macs_cols = cols
        # E[MACs]: in-stage blocks weight their diagonal by p(width) once (an all-ones input row).
        self._expected_cols = cols.copy()
        for k in range(len(blocks)):
            if cols[k, 0] == cols[k, 1]:
                self._expected_cols[k, 0] = d + 1
        self._macs_offsets = np.arange(len(blocks), dtype=np.int64) * m**5
        self._macs_strides = np.array([m**4, m**3, m**2, m, 1], np.int64)

    def macs(self, choices) -> tf.Tensor:
        """Exact MACs (float64) of the architecture ``choices`` (D,), or of each row of (K, D)."""
        choices = tf.cast(choices, tf.int64)
        batched = choices.shape.rank == 2
        c = choices if batched else choices[None]
        c = tf.pad(c, [[0, 0], [0, 1]])  # the extra zero column: stage 1's input width index
        picked = tf.gather(c, self._macs_cols, axis=1)  # (K, blocks, 5)
        index = self._macs_offsets + tf.reduce_sum(picked * self._macs_strides, axis=-1)
        total = tf.reduce_sum(tf.gather(self._macs_flat, index), axis=-1)
        total += tf.gather(self._macs_head, c[:, self.space.num_stages - 1]) + self._macs_constant
        return total if batched else total[0]

    def expected_macs(self) -> tf.Tensor:
        """E[MACs] under the distribution (exact: decisions are independent)."""
        p = tf.cast(self.probs(), tf.float64)
        m = self.space.max_candidates
        p = tf.concat([p, tf.one_hot([0], m, dtype=tf.float64), tf.ones((1, m), tf.float64)], axis=0)
        rows = tf.gather(p, self._expected_cols)  # (blocks, 5, M)
        blocks = tf.einsum("kvwtea,kv,kw,kt,ke,ka->", self._macs_tables, *tf.unstack(rows, axis=1))
        head = tf.reduce_sum(p[self.space.num_stages - 1] * self._macs_head)
        return blocks + head + self._macs_constant

    def numpy_macs(self, choices) -> np.ndarray:
        """`macs` in numpy, for many architectures at once (``choices`` (K, D))."""
        c = np.pad(np.asarray(choices, np.int64).reshape(-1, self.space.num_decisions), ((0, 0), (0, 1)))
        index = self._macs_offsets + (c[:, self._macs_cols] * self._macs_strides).sum(-1)
        return self._macs_flat[index].sum(-1) + self._macs_head[c[:, self.space.num_stages - 1]] + self._macs_constant

    # ------------------------------------------------------------------ export
    def argmax_spec(self, name: str = "autox3d_searched") -> ArchSpec:
        return self.space.decode(self.argmax().numpy(), name=name)

    def probabilities_by_decision(self) -> dict[str, list[float]]:
        p = self.probs().numpy()
        return {d.name: [float(v) for v in p[i, : d.size]] for i, d in enumerate(self.space.decisions)}
