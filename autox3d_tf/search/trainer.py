"""`ArchitectureSearch`: the probabilistic search as a `keras.Model` driven by ``model.fit``.

Each ``train_step`` does (docs/ARCHITECTURE.md section 7):

1. a weight step: sample one architecture from the distribution with a stateless RNG keyed by
   (seed, step), so every replica trains the same one; run the supernet with it (random
   channel subsets of the chosen sizes); SGD on the train batch;
2. after ``warmup_steps``, a distribution step on the held-out batch: sample K architectures
   (K shrinks as the distribution's entropy falls, FP-NAS style), compute the loss L_k and the
   exact MACs F_k of each, importance weights
   ``w = softmax(-(L_k + lambda * max(0, F_k / F_target - 1)))`` (minus 1/K by default, a
   zero-mean control variate), and an Adam step on the logits along the gradient of
   ``sum_k w_k log p(arch_k)``. During the warm-up the update is zero and Adam's step counter
   is held at 0, so the first real update is a fresh Adam step.

The dataset yields ``{"train": (clips, labels), "held_out": (clips, labels)}`` (see
`search_dataset`; `search_input` builds it from video files or TFRecords, per worker). Under
``tf.distribute`` (MirroredStrategy, MultiWorkerMirroredStrategy) every replica samples the same
architectures (stateless RNG keyed by (seed, step), the step being the weight optimizer's
iteration count, read before the update); the weight loss is scaled by 1/replicas because the
optimizer sums gradients across replicas; the held-out losses are averaged across replicas
before the importance weights, so every replica applies the same update. All cross-replica communication happens at the top level of ``train_step``, never inside
the supernet's conditionals.

TensorFlow-only (tf.distribute, stateless tf.random, a custom ``train_step``).
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.search.distribution import ArchDistribution
from autox3d_tf.search.space import SearchSpace
from autox3d_tf.search.supernet import SuperNet
from autox3d_tf.training.recipe import weight_decay_exclusions
from autox3d_tf.training.data import HoldOut
from autox3d_tf.training.strategy import dataset_per_worker, keras_logs

WEIGHT_OPTIMIZERS = ("sgd", "adamw")


def search_dataset(train: tf.data.Dataset, held_out: tf.data.Dataset) -> tf.data.Dataset:
    """Zips a (clips, labels) train dataset with a repeated held-out one, in the format above."""
    return tf.data.Dataset.zip(train, held_out.repeat()).map(
        lambda t, h: {"train": t, "held_out": h}, num_parallel_calls=tf.data.AUTOTUNE
    )


def _clips(source: str, split: str | None, batch: int, input_context: tf.distribute.InputContext | None,
           class_names: Sequence[str] | None = None, hold_out: HoldOut | None = None, **kwargs) -> tf.data.Dataset:
    """Repeated, shuffled training clips ``(clip, label)`` from an annotation file, a folder of class
    sub-folders or TFRecord shards (only ``hold_out``'s subset of the videos when given); video
    labels index ``class_names`` when given."""
    from autox3d_tf.data import tfrecord_dataset, video_dataset
    from autox3d_tf.training.data import is_tfrecord_source, select_annotations

    kwargs.update(batch_size=batch, shuffle=True, repeat=True, drop_remainder=True, input_context=input_context)
    if is_tfrecord_source(source):
        if hold_out is not None:
            raise ValueError(f"a held-out share is drawn from videos, not TFRecords ({source}): give --held_out_data")
        return tfrecord_dataset(source, None, **kwargs)
    ann = select_annotations(source, class_names, split or None, hold_out)
    return video_dataset(ann, None, **kwargs)


def search_input(
    strategy: tf.distribute.Strategy,
    train_source: str,
    held_out_source: str,
    *,
    batch_size: int,
    frames: int,
    rate: int,
    crop: int,
    seed: int = 0,
    train_split: str | None = None,
    held_out_split: str | None = None,
    class_names: Sequence[str] | None = None,
    flip: bool | None = None,
    scale_range: Sequence[int] | None = None,
    held_out_fraction: float | None = None,
    split_seed: int = 0,
    segments: int = 1,
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """The input of ``ArchitectureSearch.fit`` (see `search_dataset`) from video annotation files
    (Kinetics CSV with ``*_split``, PySlowFast list, SSv2 JSON), folders of class sub-folders or
    TFRecord shards, endless. ``class_names`` (the training data's) label the videos of both
    sources alike. ``flip`` (default: on, except for Something-Something annotations) and
    ``scale_range`` (the short-side scale jitter) augment the clips of both. With
    ``held_out_fraction`` the held-out clips are that share of the training source's videos (by
    video, drawn with ``split_seed``) and the weights train on the rest; the held-out source and
    split are then not used. With ``segments=K`` a clip is K snippets of ``frames`` x ``rate``, one
    per equal segment of the video (TSN-style, `autox3d_tf.data.video_dataset`).

    ``batch_size`` is the global batch of both steps. Under a multi-worker
    ``MultiWorkerMirroredStrategy`` every worker decodes only its share of both sources (see
    `autox3d_tf.training.strategy.dataset_per_worker`)."""
    clip = dict(frames=frames, rate=rate, crop=crop, flip=flip, scale_range=scale_range)
    if segments != 1:
        clip["segments"] = int(segments)

    if held_out_fraction:
        train_part, held_part = (HoldOut(float(held_out_fraction), s, int(split_seed)) for s in ("training", "validation"))
        held_out_source, held_out_split = train_source, train_split
    else:
        train_part = held_part = None

    def make(batch: int, ctx: tf.distribute.InputContext | None) -> tf.data.Dataset:
        return search_dataset(
            _clips(train_source, train_split, batch, ctx, class_names, train_part, seed=seed, **clip),
            _clips(held_out_source, held_out_split, batch, ctx, class_names, held_part, seed=seed + 1, **clip))

    return dataset_per_worker(strategy, batch_size, make)


def _replica_reduce(value, op):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(op, value)


def _num_replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


class ArchitectureSearch(keras.Model):
    """Supernet weights and an architecture distribution, trained in alternation by ``fit``.

    Args:
        space: the `SearchSpace`.
        macs_target: the MACs budget F_target (at the space's input clip).
        penalty: lambda of the MACs hinge ``max(0, F / F_target - 1)``.
        num_samples: K at maximum entropy (the largest K).
        min_samples: K never falls below this.
        warmup_steps: weight steps with the distribution frozen (the Adam state of the logits
            starts fresh when the warm-up ends).
        seed: the RNG seed of the whole search; with the step it keys every random draw.
        bn_group_size: clips per BatchNorm statistics group (default: the whole per-replica
            batch; set it to the per-replica batch to make N replicas equal to one replica
            with the global batch).
        centered: subtract the uniform weight 1/K from the importance weights (a control
            variate: ``sum_k log p(arch_k) / K`` has zero expected gradient, so the expected
            update is unchanged, but K architectures with equal scores give exactly no update
            instead of a random push that Adam's normalisation turns into a drift).
        check_replicas: also report ``replica_mismatch``, the spread across replicas of a hash
            of the architectures each replica sampled (sum of squared deviations from the
            replica mean: 0 when all sampled the same).

    ``fit`` reports ``loss`` / ``accuracy`` (running, of the sampled architectures on the train
    batches), ``sample_loss`` / ``sample_accuracy`` / ``sample_gmacs`` (this step's sampled
    architecture), ``held_out_loss`` (mean over the K held-out samples), ``entropy``,
    ``expected_gmacs``, ``argmax_gmacs`` and ``samples`` (K).
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
        check_replicas: bool = False,
        centered: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_samples < 1 or min_samples < 1 or min_samples > num_samples:
            raise ValueError("need 1 <= min_samples <= num_samples.")
        if macs_target <= 0:
            raise ValueError(f"macs_target must be positive, got {macs_target}.")
        self.space = space
        self.macs_target = float(macs_target)
        self.penalty = float(penalty)
        self.num_samples = int(num_samples)
        self.min_samples = int(min_samples)
        self.warmup_steps = int(warmup_steps)
        self.seed = int(seed)
        self.check_replicas = bool(check_replicas)
        self.centered = bool(centered)
        self.supernet = SuperNet(space, bn_group_size=bn_group_size, name="supernet")
        self.supernet.build()
        self.distribution = ArchDistribution(space, name="distribution")
        self.arch_optimizer = None
        self._max_entropy = self.distribution.max_entropy()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.built = True

    # --------------------------------------------------------------- set-up
    def compile(self, optimizer="sgd", arch_optimizer=None, **kwargs):
        """``optimizer`` trains the supernet weights; ``arch_optimizer`` (default Adam(0.025)) the logits.

        Both optimizers are built here, so a checkpoint can be restored before the first step.
        """
        super().compile(optimizer=optimizer, **kwargs)
        self.arch_optimizer = keras.optimizers.get(arch_optimizer or keras.optimizers.Adam(0.025))
        self.optimizer.build(self.supernet.trainable_variables)
        self.arch_optimizer.build([self.distribution.logits])

    def build(self, input_shape=None):
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build symbolically: weights and both optimizers exist after `compile`.

        (Keras' default reduces a first batch across replicas to build the model, which fails
        for dict batches under MultiWorkerMirroredStrategy.)
        """
        return

    def build_all(self, input_shape=None) -> None:
        """Kept for compatibility: everything is built by the constructor and `compile`."""
        self.build(input_shape)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _seed(self, step, salt: int):
        base = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.random.experimental.stateless_fold_in(base, salt)

    def sample_architecture(self, step) -> tf.Tensor:
        """The architecture the weight step of ``step`` trains (same on every replica)."""
        return self.distribution.sample(self._seed(step, 0))

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
        """Losses, sampled choices and validity of up to ``num_samples`` architectures.

        A ``tf.while_loop`` runs ``count`` forward passes (one trace of the supernet, no tape).
        """
        d = self.space.num_decisions

        def body(k, losses, archs):
            arch = self.distribution.sample(self._seed(step, 100 + 2 * k))
            logits = self.supernet(clips, arch, self._seed(step, 101 + 2 * k))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), logits))
            return k + 1, losses.write(k, loss), archs.write(k, arch)

        losses = tf.TensorArray(tf.float32, size=self.num_samples, element_shape=())
        archs = tf.TensorArray(tf.int32, size=self.num_samples, element_shape=(d,))
        _, losses, archs = tf.while_loop(lambda k, *_: k < count, body, (tf.constant(0), losses, archs))
        # Unused slots stay at their defaults: loss 0, choices 0, marked invalid below.
        valid = tf.range(self.num_samples) < count
        stacked_l = tf.where(valid, losses.stack(), 0.0)
        stacked_a = tf.where(valid[:, None], archs.stack(), 0)
        return stacked_l, stacked_a, valid

    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        if not isinstance(data, dict) or "train" not in data or "held_out" not in data:
            raise ValueError(
                'ArchitectureSearch.fit expects batches {"train": (x, y), "held_out": (x, y)}; see search_dataset().'
            )
        (x, y), (xv, yv) = data["train"][:2], data["held_out"][:2]
        step = tf.identity(self.optimizer.iterations.value)  # read now, before the update increments it
        replicas = _num_replicas()

        # 1. weights, one sampled architecture (the same on every replica)
        arch = self.sample_architecture(step)
        with tf.GradientTape() as tape:
            logits = self.supernet(x, arch, self._seed(step, 1))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y, tf.int32), logits))
            scaled = loss / replicas  # the optimizer sums gradients over replicas
        weights = self.supernet.trainable_variables
        grads = tape.gradient(scaled, weights)
        grads = [tf.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]
        self.optimizer.apply_gradients(zip(grads, weights))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(y, logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32)

        # 2. distribution, after the warm-up (zero samples and a zero update during it)
        active = step >= self.warmup_steps
        count = tf.where(active, self.num_samples_now(), 0)
        losses, archs, valid = self._held_out_losses(xv, yv, step, count)
        losses = _replica_reduce(losses, tf.distribute.ReduceOp.MEAN)
        macs = tf.cast(self.distribution.macs(archs), tf.float32)
        hinge = tf.nn.relu(macs / self.macs_target - 1.0)
        score = tf.where(valid, -(losses + self.penalty * hinge), -1e9)
        importance = tf.nn.softmax(score) * tf.cast(valid, tf.float32)
        if self.centered:
            n = tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0)
            importance = (importance - 1.0 / n) * tf.cast(valid, tf.float32)
        importance = tf.stop_gradient(importance)
        with tf.GradientTape() as arch_tape:
            objective = -tf.reduce_sum(importance * self.distribution.log_prob(archs)) / replicas
        arch_grad = arch_tape.gradient(objective, self.distribution.logits)
        arch_grad = tf.where(active, arch_grad, tf.zeros_like(arch_grad))
        self.arch_optimizer.apply_gradients([(arch_grad, self.distribution.logits)])
        # A zero gradient leaves Adam's moments at zero; resetting its step count during the
        # warm-up makes the first real update that of a fresh Adam (bias correction included).
        iterations = self.arch_optimizer.iterations
        iterations.assign(tf.where(active, iterations, tf.zeros_like(iterations)))

        n_valid = tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0)
        logs = {
            "loss": self.loss_tracker.result(),
            "accuracy": self.accuracy_tracker.result(),
            "sample_loss": _replica_reduce(loss, tf.distribute.ReduceOp.MEAN),
            "sample_accuracy": _replica_reduce(tf.reduce_mean(correct), tf.distribute.ReduceOp.MEAN),
            "sample_gmacs": tf.cast(self.distribution.macs(arch), tf.float32) / 1e9,
            "held_out_loss": tf.reduce_sum(tf.where(valid, losses, 0.0)) / n_valid,
            "entropy": self.distribution.entropy(),
            "expected_gmacs": tf.cast(self.distribution.expected_macs(), tf.float32) / 1e9,
            "argmax_gmacs": tf.cast(self.distribution.macs(self.distribution.argmax()), tf.float32) / 1e9,
            "samples": count,
        }
        if self.check_replicas:
            weights_ = tf.cast(tf.range(1, self.space.num_decisions + 1) % 9973 + 1, tf.float32)
            code = tf.reduce_sum(tf.cast(tf.concat([arch, tf.reshape(archs, [-1])], 0), tf.float32) * tf.tile(weights_, [self.num_samples + 1]))
            deviation = code - _replica_reduce(code, tf.distribute.ReduceOp.MEAN)
            logs["replica_mismatch"] = _replica_reduce(tf.square(deviation), tf.distribute.ReduceOp.SUM)
        return keras_logs(logs)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        if isinstance(data, dict):
            data = data["held_out"]
        x, y = data[0], data[1]
        logits = self(x, training=False)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y, tf.int32), logits))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(y, logits)
        return keras_logs({"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()})

    # ------------------------------------------------------------- results
    def derive(self, macs_target: float | None = None, tolerance: float = 0.05, samples: int = 4096, seed: int = 0):
        """The final architecture: the most probable one, within the budget when there is one.

        Without a target (or when the argmax already costs between ``(1 - tolerance) * target``
        and ``target``) this is the argmax. Otherwise, among the argmax and ``samples`` draws
        from the distribution, the most probable architecture in that window (or, if none is,
        the most probable one under the target; if none is, the cheapest). Returns
        ``(choices, macs)``.
        """
        d = self.distribution
        best = d.argmax().numpy()
        target = self.macs_target if macs_target is None else float(macs_target)
        best_macs = float(d.numpy_macs(best[None])[0])
        if target is None or (1 - tolerance) * target <= best_macs <= target:
            return best, best_macs
        draws = tf.random.stateless_categorical(d.masked_logits(), samples, seed=[seed, 12345], dtype=tf.int32)
        cands = np.concatenate([best[None], draws.numpy().T], 0)
        macs = d.numpy_macs(cands)
        logp = d.log_prob(tf.constant(cands)).numpy()
        for ok in (((1 - tolerance) * target <= macs) & (macs <= target), macs <= target):
            if ok.any():
                j = int(np.flatnonzero(ok)[np.argmax(logp[ok])])
                return cands[j], float(macs[j])
        j = int(np.argmin(macs))
        return cands[j], float(macs[j])

    def derive_spec(self, name: str = "autox3d_searched", **kwargs):
        """`derive` as an `ArchSpec`."""
        choices, _ = self.derive(**kwargs)
        return self.space.decode(choices, name=name)


def build_weight_optimizer(
    model: ArchitectureSearch,
    kind: str = "sgd",
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.1,
    weight_decay: float = 5e-5,
) -> keras.optimizers.Optimizer:
    """The optimizer of ``model``'s supernet weights (build it in the strategy's scope): ``"sgd"``,
    momentum 0.9 (the paper's), or ``"adamw"`` with decoupled ``weight_decay``, which skips
    BatchNorm parameters and biases (the recipe's `weight_decay_exclusions`, which finds the
    supernet's raw ones)."""
    if kind not in WEIGHT_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {WEIGHT_OPTIMIZERS}, got {kind!r}")
    if kind == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    optimizer.exclude_from_weight_decay(var_list=weight_decay_exclusions(model))
    return optimizer


__all__ = ["WEIGHT_OPTIMIZERS", "ArchitectureSearch", "build_weight_optimizer", "search_dataset", "search_input"]
