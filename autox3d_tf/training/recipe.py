"""The X3D training recipe: SGD with momentum, cosine learning rate with linear warm-up, and
PyTorch-style (coupled, L2) weight decay that skips BatchNorm parameters and biases.

PySlowFast trains X3D with ``torch.optim.SGD(momentum=0.9, weight_decay=5e-5)``, where the decay
is added to the gradient *before* momentum, and with ``BN.WEIGHT_DECAY = 0``. Keras' built-in
``weight_decay`` is decoupled (AdamW / SGDW style: ``w -= lr * wd * w`` after the step), which with
momentum 0.9 decays about ten times less; :class:`L2SGD` reproduces the PyTorch semantics.

    optimizer = build_optimizer(model, learning_rate=0.1, total_steps=10_000, warmup_steps=1_000)
    model.compile(optimizer, ...)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import ops

__all__ = [
    "OPTIMIZERS",
    "ADAMW_LEARNING_RATE",
    "Recipe",
    "L2SGD",
    "warmup_cosine_schedule",
    "weight_decay_exclusions",
    "build_optimizer",
    "scaled_learning_rate",
]


OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of the X3D recipe (PySlowFast ``configs/Kinetics/X3D_*.yaml``).

    ``optimizer`` is ``"sgd"`` (the X3D recipe: :class:`L2SGD`) or ``"adamw"`` (Keras' AdamW, with
    its decoupled ``weight_decay``, the same exclusions, ``momentum`` as ``beta_1``; often quicker on
    small data, as in the demo). ``base_learning_rate`` is the peak rate for ``base_batch_size``
    clips; the rate used is scaled linearly with the global batch (Goyal et al.). ``warmup_fraction`` of the schedule is a linear
    warm-up from ``warmup_start_factor`` x peak (PySlowFast: 35 of 300 epochs).
    """

    optimizer: str = "sgd"
    base_learning_rate: float = 1.6
    base_batch_size: int = 1024
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-5
    decay_bias: bool = False
    warmup_fraction: float = 35.0 / 300.0
    warmup_start_factor: float = 0.01
    final_learning_rate_factor: float = 0.0
    dropout_rate: float = 0.5
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; valid optimizers are {list(OPTIMIZERS)}.")

    def to_dict(self) -> dict:
        return asdict(self)


ADAMW_LEARNING_RATE = 2e-3


def scaled_learning_rate(batch_size: int, recipe: Recipe = Recipe()) -> float:
    """The recipe's peak learning rate for a global batch of ``batch_size`` clips (AdamW: a fixed
    ``2e-3``, which does not scale linearly with the batch)."""
    if recipe.optimizer == "adamw":
        return ADAMW_LEARNING_RATE
    return recipe.base_learning_rate * batch_size / recipe.base_batch_size


@keras.saving.register_keras_serializable(package="autox3d_tf")
class L2SGD(keras.optimizers.SGD):
    """SGD whose ``weight_decay`` is PyTorch's: ``g += weight_decay * w`` before momentum.

    Variables passed to ``exclude_from_weight_decay`` (see :func:`weight_decay_exclusions`) get no
    decay. Everything else (momentum, Nesterov, schedules, loss scaling, distribution) is Keras' SGD.
    """

    def _apply_weight_decay(self, variables) -> None:  # Keras' decoupled decay: replaced below
        return

    def update_step(self, gradient, variable, learning_rate):
        if self.weight_decay and self._use_weight_decay(variable):
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(self.weight_decay, variable.dtype), variable),
            )
        return super().update_step(gradient, variable, learning_rate)


def warmup_cosine_schedule(
    peak_learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.01,
    final_factor: float = 0.0,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from ``warmup_start_factor * peak`` to ``peak`` over ``warmup_steps``, then a
    half cosine to ``final_factor * peak`` at ``total_steps`` (Keras' ``CosineDecay``)."""
    total_steps = max(int(total_steps), 1)
    warmup_steps = int(min(max(warmup_steps, 0), total_steps - 1))
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            peak_learning_rate, decay_steps=total_steps, alpha=final_factor
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_learning_rate * warmup_start_factor,
        decay_steps=total_steps - warmup_steps,
        alpha=final_factor,
        warmup_target=peak_learning_rate,
        warmup_steps=warmup_steps,
    )


def weight_decay_exclusions(model: keras.Model, decay_bias: bool = False) -> list:
    """Trainable variables that get no weight decay: every BatchNormalization parameter, and biases
    unless ``decay_bias``. A layer that keeps such parameters as raw variables (the search's
    supernet) lists them in a ``no_weight_decay_weights()`` method, which is honoured too."""
    excluded: dict[int, object] = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        declared = getattr(layer, "no_weight_decay_weights", None)
        if callable(declared):
            excluded.update((id(v), v) for v in declared())
        if layer is model:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            for v in layer.trainable_weights:
                excluded[id(v)] = v
        elif not decay_bias:
            for v in layer.trainable_weights:
                if v.name == "bias" or v.path.endswith("/bias"):
                    excluded[id(v)] = v
    return list(excluded.values())


def build_optimizer(
    model: keras.Model,
    *,
    learning_rate: float | None = None,
    batch_size: int = 1024,
    total_steps: int,
    warmup_steps: int | None = None,
    recipe: Recipe = Recipe(),
) -> keras.optimizers.Optimizer:
    """The recipe's optimizer for ``model`` (:class:`L2SGD`, or AdamW) on a warm-up + cosine schedule.

    Args:
      model: the model to train (its BatchNorm parameters and biases are excluded from decay).
      learning_rate: peak learning rate; default :func:`scaled_learning_rate` of ``batch_size``.
      batch_size: the global batch size (for the default learning rate).
      total_steps: optimizer steps of the whole run.
      warmup_steps: default ``recipe.warmup_fraction`` of ``total_steps``.
    """
    peak = scaled_learning_rate(batch_size, recipe) if learning_rate is None else float(learning_rate)
    if warmup_steps is None:
        warmup_steps = int(round(recipe.warmup_fraction * total_steps))
    schedule = warmup_cosine_schedule(
        peak, total_steps, warmup_steps, recipe.warmup_start_factor, recipe.final_learning_rate_factor
    )
    if recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, beta_1=recipe.momentum, weight_decay=recipe.weight_decay or None
        )
    else:
        optimizer = L2SGD(
            learning_rate=schedule,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=recipe.weight_decay or None,
        )
    if recipe.weight_decay:
        optimizer.exclude_from_weight_decay(var_list=weight_decay_exclusions(model, recipe.decay_bias))
    return optimizer
