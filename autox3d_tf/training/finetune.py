"""Fine-tuning a pretrained network: which layers train, and the recipe's fine-tuning defaults.

The layers of a built network (`autox3d_tf.arch.naming`) fall into groups, in order::

    stem, stage1, stage2, stage3, stage4 (as many stages as the spec has), head, classifier

``freeze_before(model, "stage3")`` freezes every layer of the groups before ``stage3`` and leaves
the rest trainable; ``"classifier"`` freezes the whole backbone (``--freeze_backbone``). A frozen
BatchNormalization runs in inference mode (Keras 3: ``trainable=False`` on a BatchNormalization
layer uses its moving statistics and does not update them, the transfer-learning convention), so a
frozen layer's weights and statistics are exactly the pretrained ones after training.
"""

from __future__ import annotations

import re

import keras

from autox3d_tf.arch import naming
from autox3d_tf.training.recipe import Recipe, scaled_learning_rate

__all__ = [
    "CLASSIFIER",
    "FINETUNE_LEARNING_RATE_FACTOR",
    "FINETUNE_WARMUP_FRACTION",
    "HEAD",
    "STEM",
    "finetune_learning_rate",
    "freeze_before",
    "layer_group",
    "layer_groups",
]

STEM = "stem"
HEAD = "head"
CLASSIFIER = "classifier"

# The peak learning rate of a fine-tuning run, relative to training from scratch, and its warm-up.
FINETUNE_LEARNING_RATE_FACTOR = 0.1
FINETUNE_WARMUP_FRACTION = 0.05

_STAGE = re.compile(r"^stage(\d+)_")


def layer_group(name: str) -> str | None:
    """The group of the layer named ``name``: "stem", "stage{s}", "head", "classifier", or None
    for layers outside the network's groups (the input, preprocessing, added layers)."""
    if name.startswith("stem_"):
        return STEM
    match = _STAGE.match(name)
    if match:
        return f"stage{int(match.group(1))}"
    if name == naming.PREDICTIONS:
        return CLASSIFIER
    if name.startswith("head_") or name in (naming.AVG_POOL, naming.MAX_POOL):
        return HEAD
    return None


def layer_groups(model: keras.Model) -> list[str]:
    """The groups of ``model``'s layers, in network order."""
    groups: list[str] = []
    for layer in model.layers:
        group = layer_group(layer.name)
        if group is not None and group not in groups:
            groups.append(group)
    return groups


def freeze_before(model: keras.Model, group: str | None) -> dict[str, list[str]]:
    """Freezes every layer of the groups before ``group`` (None: nothing is frozen).

    Returns:
        ``{"frozen": [...], "trainable": [...]}``: the names of the layers with weights.

    Raises:
        ValueError: ``group`` is not one of the model's groups (the message lists them).
    """
    groups = layer_groups(model)
    if group is not None and group not in groups:
        raise ValueError(f"unfreeze_from must be one of {groups}, got {group!r}")
    first = groups.index(group) if group is not None else 0
    frozen_groups = set(groups[:first])
    result: dict[str, list[str]] = {"frozen": [], "trainable": []}
    for layer in model.layers:
        frozen = layer_group(layer.name) in frozen_groups
        layer.trainable = not frozen
        if layer.weights:
            result["frozen" if frozen else "trainable"].append(layer.name)
    return result


def finetune_learning_rate(batch_size: int, recipe: Recipe = Recipe()) -> float:
    """The default peak learning rate when starting from pretrained weights: a tenth of the
    recipe's rate from scratch for the batch (AdamW: a tenth of its fixed 2e-3)."""
    return FINETUNE_LEARNING_RATE_FACTOR * scaled_learning_rate(batch_size, recipe)
