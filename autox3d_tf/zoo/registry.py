"""The model registry: every zoo model, its spec and default input configuration (timm-style)."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Callable

from autox3d_tf.arch.spec import ArchSpec

# Normalisation of [0, 1] pixels used by every X3D checkpoint (DESIGN.md section 3).
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Default input configuration of a zoo model.

    ``frames`` x ``sampling_rate`` is the clip; ``train_crop`` and ``test_crop`` the square crops;
    ``train_scale`` the short-side scale jitter range used in training.
    """

    name: str
    family: str
    frames: int
    sampling_rate: int
    train_crop: int
    test_crop: int
    train_scale: tuple[int, int]
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    num_classes: int = 400
    description: str = ""
    paper: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.frames, self.train_crop, self.train_crop, 3)

    def to_dict(self) -> dict:
        return asdict(self)


def x3d_clip_config(name: str, variant: str, family: str, description: str, paper: str, **extra) -> ModelConfig:
    """A `ModelConfig` with the clip settings (frames, rate, crops, scale jitter) of an X3D variant."""
    from autox3d_tf.arch.x3d import X3D_VARIANTS

    v = X3D_VARIANTS[variant]
    return ModelConfig(
        name=name,
        family=family,
        frames=v.frames,
        sampling_rate=v.sampling_rate,
        train_crop=v.train_crop,
        test_crop=v.test_crop,
        train_scale=v.train_scale,
        description=description,
        paper=paper,
        **extra,
    )


@dataclass(frozen=True)
class ModelEntry:
    config: ModelConfig
    spec_fn: Callable[[], ArchSpec]
    factory: Callable


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(config: ModelConfig, spec_fn: Callable[[], ArchSpec], factory: Callable) -> None:
    _REGISTRY[config.name] = ModelEntry(config, spec_fn, factory)


def _entry(name: str) -> ModelEntry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    lowered = {k.lower().replace("-", "_"): k for k in _REGISTRY}
    key = name.lower().replace("-", "_") if isinstance(name, str) else None
    if key in lowered:
        return _REGISTRY[lowered[key]]
    hint = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"Unknown model {name!r}.{suggestion} Valid models are: {', '.join(list_models())}.")


def list_models() -> list[str]:
    """Names of all zoo models, in registration order."""
    return list(_REGISTRY)


def get_config(name: str) -> ModelConfig:
    """The default input configuration of a model (case-insensitive name)."""
    return _entry(name).config


def get_spec(name: str) -> ArchSpec:
    """The `ArchSpec` of a model."""
    return _entry(name).spec_fn()


def get_model(name: str, **kwargs):
    """Builds a zoo model by name; ``kwargs`` are the factory's keyword arguments."""
    return _entry(name).factory(**kwargs)


def canonical_name(name: str) -> str:
    return _entry(name).config.name
