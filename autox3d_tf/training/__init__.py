"""Training, evaluation and the X3D recipe on ``model.fit`` and ``tf.distribute``.

    from autox3d_tf.training import train, evaluate
    result = train("data/train.csv", model="X3D_XS", out_dir="runs/xs", epochs=10)
    metrics = evaluate("runs/xs", "data/test.csv", num_clips=10, num_crops=3)

Modules: :mod:`~autox3d_tf.training.recipe` (optimizer, schedule, weight decay),
:mod:`~autox3d_tf.training.strategy` (picking a distribution strategy),
:mod:`~autox3d_tf.training.data` (datasets, the time-shuffle control),
:mod:`~autox3d_tf.training.finetune` (freezing, fine-tuning defaults),
:mod:`~autox3d_tf.training.loops` (``train``), :mod:`~autox3d_tf.training.evaluation` (``evaluate``).
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    "Recipe": "recipe",
    "L2SGD": "recipe",
    "build_optimizer": "recipe",
    "warmup_cosine_schedule": "recipe",
    "weight_decay_exclusions": "recipe",
    "scaled_learning_rate": "recipe",
    "pick_strategy": "strategy",
    "split_cpu": "strategy",
    "resolve_clip": "data",
    "shuffle_frames": "data",
    "permute_frames": "data",
    "train_dataset": "data",
    "eval_dataset": "data",
    "freeze_before": "finetune",
    "finetune_learning_rate": "finetune",
    "layer_groups": "finetune",
    "TrainResult": "loops",
    "train": "loops",
    "load_run": "loops",
    "load_trained_model": "loops",
    "evaluate": "evaluation",
    "confusion_matrix": "evaluation",
    "plot_confusion_matrix": "evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"autox3d_tf.training.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'autox3d_tf.training' has no attribute {name!r}")
