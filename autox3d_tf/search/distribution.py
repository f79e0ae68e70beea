"""The architecture distribution: one categorical per decision, with trainable logits.

Sampling uses stateless random ops keyed by a (seed, step) pair, so every replica of a
distributed step draws the same architecture without communicating. MACs of a sample, the
expected MACs under the distribution and the MACs of its most probable architecture come from
the space's exact tables, in graph.
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
        constant, head, blocks = space.macs_tables()
        self._macs_constant = float(constant)
        self._macs_head = head.astype(np.float64)
        self._macs_blocks = [t.astype(np.float64) for t in blocks]
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
    def _block_inputs(self, k: int) -> tuple[int, int]:
        """(decision index of the input width, decision index of the width) of block ``k``."""
        space = self.space
        s, b = self._block_stage(k)
        return (s - 1 if s > 0 else -1) if b == 0 else s, s

    def _block_stage(self, k: int) -> tuple[int, int]:
        for s, depth in enumerate(self.space.max_depths):
            if k < depth:
                return s, k
            k -= depth
        raise IndexError(k)

    def macs(self, choices) -> tf.Tensor:
        """Exact MACs (float64) of the architecture ``choices``."""
        choices = tf.cast(choices, tf.int32)
        space = self.space
        total = tf.constant(self._macs_constant, tf.float64)
        total += tf.gather(self._macs_head, choices[space.num_stages - 1])
        for k, table in enumerate(self._macs_blocks):
            s, b = self._block_stage(k)
            w_in_dec, w_dec = self._block_inputs(k)
            i = space.block_decision_index(s, b)
            w_in = choices[w_in_dec] if w_in_dec >= 0 else tf.constant(0, tf.int32)
            idx = tf.stack([w_in, choices[w_dec], choices[i], choices[i + 1], choices[i + 2]])
            total += tf.gather_nd(table, idx[None])[0]
        return total

    def expected_macs(self) -> tf.Tensor:
        """E[MACs] under the distribution (exact: decisions are independent)."""
        space = self.space
        p = tf.cast(self.probs(), tf.float64)

        def probs_of(d: int) -> tf.Tensor:
            return p[d, : space.decisions[d].size]

        total = tf.constant(self._macs_constant, tf.float64)
        total += tf.reduce_sum(probs_of(space.num_stages - 1) * self._macs_head)
        for k, table in enumerate(self._macs_blocks):
            s, b = self._block_stage(k)
            w_in_dec, w_dec = self._block_inputs(k)
            i = space.block_decision_index(s, b)
            pt, pe, pa = probs_of(i), probs_of(i + 1), probs_of(i + 2)
            table = tf.constant(table[..., : pt.shape[0], :, :])
            if w_in_dec == w_dec:  # in-stage block: input width is the stage's own width
                diag = tf.linalg.diag_part(tf.transpose(table, (2, 3, 4, 0, 1)))  # (t, e, a, w)
                total += tf.einsum("teaw,w,t,e,a->", diag, probs_of(w_dec), pt, pe, pa)
            else:
                pin = probs_of(w_in_dec) if w_in_dec >= 0 else tf.ones((1,), tf.float64)
                total += tf.einsum("vwtea,v,w,t,e,a->", table, pin, probs_of(w_dec), pt, pe, pa)
        return total

    # ------------------------------------------------------------------ export
    def argmax_spec(self, name: str = "autox3d_searched") -> ArchSpec:
        return self.space.decode(self.argmax().numpy(), name=name)

    def probabilities_by_decision(self) -> dict[str, list[float]]:
        p = self.probs().numpy()
        return {d.name: [float(v) for v in p[i, : d.size]] for i, d in enumerate(self.space.decisions)}
