"""The zoo's registry: a keras.applications-style factory for every named architecture (timm-style).

The architectures and their clip settings are `autox3d_tf.arch.catalog`'s; this module adds the
factories and the lookups a user of the zoo expects: `list_models`, `get_model`, and
`get_model_config` (timm's ``pretrained_cfg``: the clip, the normalisation, the weights that exist
and their label names).
"""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass, field, fields
from typing import Callable

from autox3d_tf.arch.catalog import ModelConfig, architecture_config, canonical_name, get_spec, list_architectures

__all__ = [
    "ModelConfig",
    "ZooModelConfig",
    "canonical_name",
    "get_config",
    "get_model",
    "get_model_config",
    "get_spec",
    "list_models",
    "register_factory",
]

_FACTORIES: dict[str, Callable] = {}


@dataclass(frozen=True)
class ZooModelConfig(ModelConfig):
    """A zoo model's `ModelConfig` (clip, crops, scale jitter, mean / std) plus what is pretrained.

    Attributes:
        weights: the datasets with pretrained weights (``weights=`` values), e.g. ``("kinetics400",)``.
        pretrained: dataset -> its weights entry (URL, file, sha256, classes, metrics, provenance).
        label_names: the class names of the first pretrained classifier (empty without weights).
    """

    weights: tuple[str, ...] = ()
    pretrained: dict = field(default_factory=dict)
    label_names: tuple[str, ...] = ()


def register_factory(name: str, factory: Callable) -> None:
    """Registers the factory of the catalogued architecture ``name``."""
    _FACTORIES[canonical_name(name)] = factory


def get_model_config(name: str) -> ZooModelConfig:
    """Everything needed to feed and read the zoo model ``name`` (case-insensitive).

        cfg = get_model_config("x3d_s")
        cfg.frames, cfg.sampling_rate, cfg.train_crop, cfg.test_crop, cfg.train_scale, cfg.mean, cfg.std
        cfg.weights        # ("kinetics400",)
        cfg.label_names    # the 400 Kinetics class names
    """
    from autox3d_tf.preprocessing import class_names
    from autox3d_tf.weights import list_weights

    base = architecture_config(name)
    entries = list_weights(base.name)
    first = entries[0] if entries else None
    labels = class_names(first.class_names) if first is not None and first.class_names else ()
    return ZooModelConfig(
        **{f.name: getattr(base, f.name) for f in fields(ModelConfig)},
        weights=tuple(e.dataset for e in entries),
        pretrained={e.dataset: e.to_dict() for e in entries},
        label_names=tuple(labels),
    )


def get_config(name: str) -> ZooModelConfig:
    """Deprecated name of :func:`get_model_config` (it clashed with Keras' ``get_config``)."""
    warnings.warn("autox3d_tf.zoo.get_config is deprecated: use get_model_config", DeprecationWarning, stacklevel=2)
    return get_model_config(name)


def list_models(filter: str = "", pretrained: bool = False) -> list[str]:
    """Names of the zoo models, in registration order (timm's ``list_models``).

    Args:
        filter: a case-insensitive shell pattern, e.g. ``"x3d*"`` or ``"*_s"`` (empty: all models).
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
