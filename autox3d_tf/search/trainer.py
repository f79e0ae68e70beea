"""`ArchitectureSearch`: the probabilistic search as a `keras.Model` driven by ``model.fit``.

Each ``train_step`` does (DESIGN.md section 6):

1. a weight step: sample one architecture from the distribution with a stateless RNG keyed by
   (seed, step), so every replica trains the same one; run the supernet with it (random
   channel subsets of the chosen sizes); SGD on the train batch;
2. after ``warmup_steps``, a distribution step on the held-out batch: sample K architectures
   (K shrinks as the distribution's entropy falls, FP-NAS style), compute the loss L_k and the
   exact MACs F_k of each, importance weights
   ``w = softmax(-(L_k + lambda * max(0, F_k / F_target - 1)))``, and an Adam step on the
   logits along the gradient of ``sum_k w_k log p(arch_k)``.

The dataset yields ``{"train": (clips, labels), "held_out": (clips, labels)}`` (see
`search_dataset`). Under ``tf.distribute`` the held-out losses are averaged across replicas
before the importance weights, so every replica applies the same update.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from autox3d_tf.search.distribution import ArchDistribution
from autox3d_tf.search.space import SearchSpace
from autox3d_tf.search.supernet import SuperNet


def search_dataset(train: tf.data.Dataset, held_out: tf.data.Dataset) -> tf.data.Dataset:
    """Zips a (clips, labels) train dataset with a repeated held-out one, in the format above."""
    return tf.data.Dataset.zip(train, held_out.repeat()).map(
        lambda t, h: {"train": t, "held_out": h}, num_parallel_calls=tf.data.AUTOTUNE
    )


def _replica_mean(value):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, value)


class ArchitectureSearch(keras.Model):
    """Supernet weights and an architecture distribution, trained in alternation.

    Args:
        space: the `SearchSpace`.
        macs_target: the MACs budget F_target (at the space's input clip).
        penalty: lambda of the MACs hinge.
        num_samples: K at maximum entropy (the largest K).
        min_samples: K never falls below this.
        warmup_steps: steps with the distribution frozen (weights only).
        seed: the RNG seed of the whole search.
        bn_group_size: clips per BatchNorm statistics group (default: the per-replica batch).
    """

    def __init__(
        self,
        space: SearchSpace,
        macs_target: float,
        *,
        penalty: float = 5.0,
        num_samples: int = 4,
        min_samples: int = 2,
        warmup_steps: int = 0,
        seed: int = 0,
        bn_group_size: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_samples < 1 or min_samples < 1 or min_samples > num_samples:
            raise ValueError("need 1 <= min_samples <= num_samples.")
        self.space = space
        self.macs_target = float(macs_target)
        self.penalty = float(penalty)
        self.num_samples = int(num_samples)
        self.min_samples = int(min_samples)
        self.warmup_steps = int(warmup_steps)
        self.seed = int(seed)
        self.supernet = SuperNet(space, bn_group_size=bn_group_size, name="supernet")
        self.distribution = ArchDistribution(space, name="distribution")
        self.arch_optimizer = None
        self._max_entropy = self.distribution.max_entropy()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    # --------------------------------------------------------------- set-up
    def compile(self, optimizer="sgd", arch_optimizer=None, **kwargs):
        """``optimizer`` trains the supernet weights; ``arch_optimizer`` (Adam) the logits."""
        super().compile(optimizer=optimizer, **kwargs)
        self.arch_optimizer = keras.optimizers.get(arch_optimizer or keras.optimizers.Adam(0.025))

    def build(self, input_shape):
        self.supernet.build(input_shape)
        self.built = True

    def build_all(self, input_shape) -> None:
        """Builds the supernet and both optimizers (needed before restoring a checkpoint)."""
        self.build(input_shape)
        self.optimizer.build(self.supernet.trainable_variables)
        self.arch_optimizer.build([self.distribution.logits])

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _seed(self, step, salt: int):
        base = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.random.experimental.stateless_fold_in(base, salt)

    def call(self, clips, training=False):
        """Logits of the most probable architecture (for predict / evaluate)."""
        return self.supernet(clips, self.distribution.argmax(), self._seed(0, 7))

    # ------------------------------------------------------------ the search
    def num_samples_now(self):
        """K for this step: proportional to the entropy left, within [min_samples, num_samples]."""
        frac = self.distribution.entropy() / max(self._max_entropy, 1e-9)
        k = tf.cast(tf.math.ceil(frac * self.num_samples), tf.int32)
        return tf.clip_by_value(k, self.min_samples, self.num_samples)

    def _held_out_losses(self, clips, labels, step, count):
        """Losses, sampled choices and validity of up to ``num_samples`` architectures."""
        d = self.space.num_decisions

        def body(k, losses, archs):
            arch = self.distribution.sample(self._seed(step, 100 + 2 * k))
            logits = self.supernet(clips, arch, self._seed(step, 101 + 2 * k))
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
            return k + 1, losses.write(k, loss), archs.write(k, arch)

        losses = tf.TensorArray(tf.float32, size=self.num_samples, element_shape=())
        archs = tf.TensorArray(tf.int32, size=self.num_samples, element_shape=(d,))
        _, losses, archs = tf.while_loop(lambda k, *_: k < count, body, (tf.constant(0), losses, archs))
        # Unused slots stay at their defaults: loss 0, choices 0, marked invalid below.
        valid = tf.range(self.num_samples) < count
        stacked_l = tf.where(valid, losses.stack(), 0.0)
        stacked_a = tf.where(valid[:, None], archs.stack(), 0)
        return stacked_l, stacked_a, valid

    def train_step(self, data):
        if not isinstance(data, dict) or "train" not in data or "held_out" not in data:
            raise ValueError('ArchitectureSearch.fit expects batches {"train": (x, y), "held_out": (x, y)}; see search_dataset().')
        (x, y), (xv, yv) = data["train"], data["held_out"]
        step = self.optimizer.iterations

        # 1. weights, one sampled architecture
        arch = self.distribution.sample(self._seed(step, 0))
        with tf.GradientTape() as tape:
            logits = self.supernet(x, arch, self._seed(step, 1))
            per_example = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            loss = tf.reduce_mean(per_example)
            scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
        weights = self.supernet.trainable_variables
        grads = tape.gradient(scaled, weights)
        grads = [tf.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]
        self.optimizer.apply_gradients(zip(grads, weights))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(y, logits)

        # 2. distribution, after the warm-up (the update is zero during it)
        active = step >= self.warmup_steps
        count = tf.where(active, self.num_samples_now(), 0)
        losses, archs, valid = self._held_out_losses(xv, yv, step, count)
        losses = _replica_mean(losses)
        macs = tf.cast(tf.map_fn(self.distribution.macs, archs, fn_output_signature=tf.float64), tf.float32)
        hinge = tf.nn.relu(macs / self.macs_target - 1.0)
        score = tf.where(valid, -(losses + self.penalty * hinge), -1e9)
        importance = tf.stop_gradient(tf.nn.softmax(score) * tf.cast(valid, tf.float32))
        with tf.GradientTape() as arch_tape:
            objective = -tf.reduce_sum(importance * self.distribution.log_prob(archs))
            objective /= tf.distribute.get_strategy().num_replicas_in_sync
        arch_grad = arch_tape.gradient(objective, self.distribution.logits)
        arch_grad = tf.where(active, arch_grad, tf.zeros_like(arch_grad))
        self.arch_optimizer.apply_gradients([(arch_grad, self.distribution.logits)])

        return {
            "loss": self.loss_tracker.result(),
            "accuracy": self.accuracy_tracker.result(),
            "entropy": self.distribution.entropy(),
            "expected_gmacs": tf.cast(self.distribution.expected_macs(), tf.float32) / 1e9,
            "argmax_gmacs": tf.cast(self.distribution.macs(self.distribution.argmax()), tf.float32) / 1e9,
            "samples": count,
        }

    def test_step(self, data):
        if isinstance(data, dict):
            data = data["held_out"]
        x, y = data[0], data[1]
        logits = self(x, training=False)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}


__all__ = ["ArchitectureSearch", "search_dataset"]
