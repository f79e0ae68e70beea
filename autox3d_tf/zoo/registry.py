"""The zoo's registry: a keras.applications-style factory for every named architecture (timm-style).

The architectures and their clip settings are `autox3d_tf.arch.catalog`'s; this module adds the
factories and the lookups a user of the zoo expects (`list_models`, `get_model`).
"""

from __future__ import annotations

import fnmatch
from typing import Callable

from autox3d_tf.arch.catalog import ModelConfig, canonical_name, get_config, get_spec, list_architectures

__all__ = ["ModelConfig", "canonical_name", "get_config", "get_model", "get_spec", "list_models", "register_factory"]

_FACTORIES: dict[str, Callable] = {}


def register_factory(name: str, factory: Callable) -> None:
    """Registers the factory of the catalogued architecture ``name``."""
    _FACTORIES[canonical_name(name)] = factory


def list_models(filter: str = "", pretrained: bool = False) -> list[str]:
    """Names of the zoo models, in registration order (timm's ``list_models``).

    Args:
        filter: a case-insensitive shell pattern, e.g. ``"autox3d*"`` (empty: all models).
        pretrained: only models with at least one registered pretrained weights file.
    """
    names = [n for n in list_architectures() if n in _FACTORIES]
    if filter:
        names = [n for n in names if fnmatch.fnmatch(n.lower(), filter.lower())]
    if pretrained:
        from autox3d_tf.weights import available_weights

        names = [n for n in names if available_weights(n)]
    return names


def get_model(name: str, **kwargs):
    """Builds a zoo model by name; ``kwargs`` are the factory's keyword arguments."""
    return _FACTORIES[canonical_name(name)](**kwargs)
