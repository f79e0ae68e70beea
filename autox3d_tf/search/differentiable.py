"""`DifferentiableSearch`: the DARTS search of a cell network as a `keras.Model` driven by ``fit``.

Each ``train_step`` on ``{"train": (x, y), "held_out": (xv, yv)}`` (`search_dataset`) does:

1. an architecture step on the held-out batch: the loss of the supernet mixed by
   ``softmax(alpha)`` (`CellSuperNet`) plus ``penalty * max(0, E[MACs] / target - 1)``, where
   ``E[MACs]`` is the MACs of the network the weights describe in expectation (each edge's cost
   under its softmax, scaled by the share of its node's edges a derived cell keeps); Adam on the
   logits ``alpha``. First order by default (DARTS' ``xi = 0``); with ``second_order=True`` the
   gradient at the weights after a virtual SGD step ``w' = w - xi * dL_train/dw``, minus ``xi``
   times the finite-difference Hessian-vector product
   ``(dL_train(w+, alpha)/dalpha - dL_train(w-, alpha)/dalpha) / (2 eps)``,
   ``w+- = w +- eps * dL_val(w', alpha)/dw'`` (DARTS eq. 7-8), computed with
   ``stateless_call`` so no variable is overwritten;
2. a weight step on the train batch with the logits fixed (the weight optimizer, gradient norm
   clipped at ``grad_clip``).

Both losses are scaled by 1/replicas (optimizers sum gradients over replicas), so N replicas with
the global batch equal one replica (MirroredStrategy). During ``warmup_steps`` the logits do not
move (zero gradient, Adam's counter held at 0). `SearchCheckpoint` saves and restores the whole
state (`checkpoint_items`). ``derive`` gives the genotype (`CellSearchSpace.derive`).

TensorFlow-only (tf.distribute, a custom ``train_step``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.training.strategy import keras_logs

__all__ = ["ArchWeights", "DifferentiableSearch"]


def _replica_mean(value):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def _zeros_for_none(grads, variables):
    """Zero gradients where there are none (a space without reduction cells)."""
    return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]


class ArchWeights(keras.layers.Layer):
    """The architecture logits: ``normal`` and ``reduce``, each ``(edges, ops)``; operations the
    space's ``op_mask`` forbids on an edge get probability 0."""

    def __init__(self, space, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        shape = (space.num_edges, len(space.ops))
        mask = space.op_mask() if hasattr(space, "op_mask") else np.ones(shape, bool)
        self._mask = tf.constant(mask)
        init = keras.initializers.RandomNormal(stddev=1e-3, seed=seed)
        self.normal = self.add_weight(shape=shape, initializer=init, name="normal")
        self.reduce = self.add_weight(shape=shape, initializer=keras.initializers.RandomNormal(stddev=1e-3, seed=seed + 1),
                                      name="reduce")

    @property
    def logits(self) -> list:
        return [self.normal, self.reduce]

    def masked(self, logits):
        return tf.where(self._mask, logits, -1e9 * tf.ones_like(logits))

    def probs(self) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.nn.softmax(self.masked(self.normal), -1), tf.nn.softmax(self.masked(self.reduce), -1)


class DifferentiableSearch(keras.Model):
    """Supernet weights and architecture logits of ``space``, trained in alternation by ``fit``.

    Args:
        space: a `CellSearchSpace` (cells of pseudo-3D and other operations), or a
            `autox3d_tf.search.block_mixture.BlockMixtureSpace` (the autox3d-v1 block types).
        macs_target: the MACs budget (None: no MACs term).
        penalty: lambda of the MACs hinge.
        second_order: DARTS' second-order approximation (else first order).
        xi: the virtual step's learning rate (second order).
        warmup_steps: weight steps with the logits frozen.
        grad_clip: global norm clipping of the weight gradients (DARTS: 5).
        segments: clips hold this many snippets of ``space.input_frames`` frames one after the
            other (TSN-style temporal segments); they are folded into the batch and the logits
            averaged (the consensus of `autox3d_tf.models.segment_consensus`).
        seed: initialisation of the logits.

    ``fit`` reports ``loss`` / ``accuracy`` (train batches, running), ``held_out_loss``,
    ``expected_gmacs`` and ``entropy`` (mean over edges of the softmax entropy).
    """

    def __init__(self, space, macs_target: float | None = None, *, penalty: float = 5.0,
                 second_order: bool = False, xi: float = 0.01, warmup_steps: int = 0, grad_clip: float = 5.0,
                 segments: int = 1, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if macs_target is not None and macs_target <= 0:
            raise ValueError(f"macs_target must be positive, got {macs_target}")
        self.space = space
        self.macs_target = None if macs_target is None else float(macs_target)
        self.penalty = float(penalty)
        self.second_order = bool(second_order)
        self.xi = float(xi)
        self.warmup_steps = int(warmup_steps)
        self.grad_clip = float(grad_clip)
        self.segments = int(segments)
        self.supernet = space.make_supernet(name="supernet")
        self.supernet.build_all()
        self.arch_weights = ArchWeights(space, seed=seed, name="arch_weights")
        normal, reduce, fixed = space.cost_tables()
        scale = space.edge_scale()[:, None]
        self._costs = (tf.constant(normal * scale, tf.float32), tf.constant(reduce * scale, tf.float32))
        self._fixed = float(fixed)
        self.arch_optimizer = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.built = True

    def compile(self, optimizer="sgd", arch_optimizer=None, **kwargs):
        """``optimizer`` trains the supernet weights; ``arch_optimizer`` (default Adam(3e-3)) the logits."""
        super().compile(optimizer=optimizer, **kwargs)
        self.arch_optimizer = keras.optimizers.get(arch_optimizer or keras.optimizers.Adam(3e-3))
        self.optimizer.build(self.supernet.trainable_variables)
        self.arch_optimizer.build(self.arch_weights.logits)

    def build(self, input_shape=None):
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def checkpoint_items(self) -> dict:
        """What `SearchCheckpoint` saves: weights (BatchNorm statistics included), logits and both
        optimizers. The supernet's variables are listed one by one: its layers live in plain lists,
        which ``tf.train.Checkpoint`` does not walk."""
        weights = tf.train.Checkpoint(**{f"w{i}": v for i, v in enumerate(self.supernet.weights)})
        return {"supernet": weights, "arch_weights": self.arch_weights, "optimizer": self.optimizer,
                "arch_optimizer": self.arch_optimizer}

    # ------------------------------------------------------------------ pieces
    def expected_macs(self, normal_probs, reduce_probs) -> tf.Tensor:
        """MACs of the network the relaxed weights describe, in expectation (see the module docstring)."""
        return (self._fixed + tf.reduce_sum(normal_probs * self._costs[0])
                + tf.reduce_sum(reduce_probs * self._costs[1]))

    def _fold(self, clips):
        if self.segments == 1:
            return clips
        shape = tf.shape(clips)
        return tf.reshape(clips, tf.concat([[-1, shape[1] // self.segments], shape[2:]], 0))

    def _unfold(self, logits):
        if self.segments == 1:
            return logits
        return tf.reduce_mean(tf.reshape(logits, [-1, self.segments, logits.shape[-1]]), axis=1)

    def _forward(self, clips, normal, reduce, training):
        return self._unfold(self.supernet(self._fold(clips), normal, reduce, training=training))

    def call(self, clips, training=False):
        normal, reduce = self.arch_weights.probs()
        return self._forward(clips, normal, reduce, training)

    @staticmethod
    def _loss(labels, logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), logits))

    def _arch_objective(self, normal, reduce, held_out_loss):
        if self.macs_target is None:
            return held_out_loss
        probs = [tf.nn.softmax(self.arch_weights.masked(a), -1) for a in (normal, reduce)]
        hinge = tf.nn.relu(self.expected_macs(*probs) / self.macs_target - 1.0)
        return held_out_loss + self.penalty * hinge

    def _stateless_loss(self, trainable, non_trainable, normal, reduce, x, y):
        probs = [tf.nn.softmax(self.arch_weights.masked(a), -1) for a in (normal, reduce)]
        logits, _ = self.supernet.stateless_call(trainable, non_trainable, self._fold(x), *probs, training=True)
        return self._loss(y, self._unfold(logits))

    def _second_order_grads(self, x, y, xv, yv, replicas):
        """DARTS' second-order gradient of the held-out objective with respect to the logits."""
        weights = self.supernet.trainable_variables
        trainable = [tf.identity(v) for v in weights]
        non_trainable = [tf.identity(v) for v in self.supernet.non_trainable_variables]
        normal, reduce = tf.identity(self.arch_weights.normal), tf.identity(self.arch_weights.reduce)
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            train_loss = self._stateless_loss(trainable, non_trainable, normal, reduce, x, y)
        g_train = [tf.zeros_like(w) if g is None else g for g, w in zip(tape.gradient(train_loss, trainable), trainable)]
        virtual = [w - self.xi * g for w, g in zip(trainable, g_train)]
        with tf.GradientTape() as tape:
            tape.watch(virtual + [normal, reduce])
            held = self._stateless_loss(virtual, non_trainable, normal, reduce, xv, yv)
            objective = self._arch_objective(normal, reduce, held)
        grads = tape.gradient(objective, virtual + [normal, reduce])
        d_virtual = [tf.zeros_like(w) if g is None else g for g, w in zip(grads[:-2], virtual)]
        d_alpha = _zeros_for_none(grads[-2:], [normal, reduce])
        eps = 0.01 / (tf.linalg.global_norm(d_virtual) + 1e-12)

        def alpha_grads(sign: float):
            shifted = [w + sign * eps * d for w, d in zip(trainable, d_virtual)]
            with tf.GradientTape() as t:
                t.watch([normal, reduce])
                loss = self._stateless_loss(shifted, non_trainable, normal, reduce, x, y)
            return _zeros_for_none(t.gradient(loss, [normal, reduce]), [normal, reduce])

        plus, minus = alpha_grads(1.0), alpha_grads(-1.0)
        hessian = [(p - m) / (2.0 * eps) for p, m in zip(plus, minus)]
        return [(a - self.xi * h) / replicas for a, h in zip(d_alpha, hessian)], held

    # ------------------------------------------------------------------ the step
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        if not isinstance(data, dict) or "train" not in data or "held_out" not in data:
            raise ValueError('DifferentiableSearch.fit expects batches {"train": (x, y), "held_out": (x, y)}; '
                             "see search_dataset().")
        (x, y), (xv, yv) = data["train"][:2], data["held_out"][:2]
        step = tf.identity(self.optimizer.iterations.value)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        logits_vars = self.arch_weights.logits

        # 1. architecture, on the held-out batch
        if self.second_order:
            arch_grads, held_loss = self._second_order_grads(x, y, xv, yv, replicas)
        else:
            with tf.GradientTape() as tape:
                normal, reduce = self.arch_weights.probs()
                held_loss = self._loss(yv, self._forward(xv, normal, reduce, True))
                objective = self._arch_objective(self.arch_weights.normal, self.arch_weights.reduce, held_loss)
                scaled = objective / replicas
            arch_grads = tape.gradient(scaled, logits_vars)
        active = step >= self.warmup_steps
        # A space without reduction cells leaves the reduction logits without a gradient.
        arch_grads = [tf.zeros_like(v) if g is None else tf.where(active, g, tf.zeros_like(g))
                      for g, v in zip(arch_grads, logits_vars)]
        self.arch_optimizer.apply_gradients(zip(arch_grads, logits_vars))
        iterations = self.arch_optimizer.iterations
        iterations.assign(tf.where(active, iterations, tf.zeros_like(iterations)))

        # 2. weights, on the train batch, the mixture fixed
        normal, reduce = (tf.stop_gradient(p) for p in self.arch_weights.probs())
        with tf.GradientTape() as tape:
            logits = self._forward(x, normal, reduce, True)
            loss = self._loss(y, logits)
            scaled = loss / replicas
        weights = self.supernet.trainable_variables
        grads = [tf.zeros_like(w) if g is None else g for g, w in zip(tape.gradient(scaled, weights), weights)]
        if self.grad_clip:  # clip the gradient of the global batch (the sum over replicas), exactly
            ctx = tf.distribute.get_replica_context()
            total = grads if ctx is None or replicas == 1 else ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            factor = tf.minimum(1.0, self.grad_clip / (tf.linalg.global_norm(total) + 1e-12))
            grads = [g * factor for g in grads]
        self.optimizer.apply_gradients(zip(grads, weights))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(y, logits)

        entropy = tf.reduce_mean(tf.concat([-tf.reduce_sum(p * tf.math.log(p + 1e-12), -1) for p in (normal, reduce)], 0))
        return keras_logs({
            "loss": self.loss_tracker.result(),
            "accuracy": self.accuracy_tracker.result(),
            "held_out_loss": _replica_mean(held_loss),
            "expected_gmacs": self.expected_macs(normal, reduce) / 1e9,
            "entropy": entropy,
        })

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        if isinstance(data, dict):
            data = data["held_out"]
        x, y = data[0], data[1]
        logits = self(x, training=False)
        self.loss_tracker.update_state(self._loss(y, logits))
        self.accuracy_tracker.update_state(y, logits)
        return keras_logs({"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()})

    # ------------------------------------------------------------------ results
    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """The softmax of the normal and reduction logits, ``(edges, ops)`` each."""
        normal, reduce = self.arch_weights.probs()
        return np.asarray(normal), np.asarray(reduce)

    def derive(self, macs_target: float | None = None):
        """The genotype (DARTS' discretisation, within ``macs_target`` or the search's budget)."""
        normal, reduce = self.probabilities()
        return self.space.derive(normal, reduce, self.macs_target if macs_target is None else macs_target)

    def derive_spec(self, name: str = "cells_searched", **kwargs):
        """`derive` as a `CellNetSpec`."""
        return self.space.spec(self.derive(**kwargs), name=name)
