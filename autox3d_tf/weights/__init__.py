"""Pretrained weights: loading by path (the registry and checkpoint conversion come in issue 3)."""

from __future__ import annotations

import os

import keras


def load_pretrained(model: keras.Model, model_name: str, weights: str, *, include_top: bool = True, classes: int = 400) -> None:
    """Loads ``weights`` (a `.weights.h5` path) into ``model``."""
    if not os.path.exists(weights):
        raise ValueError(
            f"`weights` for {model_name} must be None or the path to an existing weights file; "
            f"{weights!r} does not exist (named pretrained weights are not available yet)."
        )
    model.load_weights(weights)
