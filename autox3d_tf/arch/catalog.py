"""The named architectures of the package: each one's `ArchSpec` and default clip (timm's pretrained_cfg).

    from autox3d_tf.arch.catalog import architecture_config, get_spec, list_architectures
    architecture_config("x3d-s").frames      # 13; names are case-insensitive, '-' and '_' alike

Everything that needs a model's architecture or clip settings by name (the weights registry and
converter, the data pipelines, training, export) reads it here; the zoo (`autox3d_tf.zoo`) adds a
keras.applications-style factory per name on top, and `autox3d_tf.zoo.get_model_config` adds the
pretrained weights and label names that exist.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from dataclasses import asdict, dataclass, field
from typing import Callable

from autox3d_tf.arch.e3d import E3D_VARIANTS, e3d_spec
from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.arch.x3d import X3D_VARIANTS, x3d_spec
from autox3d_tf.layers.normalization import MEAN, STD

AUTOX3D_VARIANTS = ("XS", "S", "M", "L")
X3D_PAPER = "https://arxiv.org/abs/2004.04730"
E3D_PAPER = "https://openreview.net/forum?id=lj1Eb1OPeNw"
E3D_CODE = "https://github.com/alibaba/lightweight-neural-architecture-search"
AUTOX3D_PAPER = (
    "https://openaccess.thecvf.com/content/WACV2022/html/Jiang_Auto-X3D_Ultra-Efficient_Video_Understanding_via_"
    "Finer-Grained_Neural_Architecture_Search_WACV_2022_paper.html"
)


@dataclass(frozen=True)
class ModelConfig:
    """Default input configuration of a named architecture.

    ``frames`` x ``sampling_rate`` is the clip; ``train_crop`` and ``test_crop`` the square crops;
    ``train_scale`` the short-side scale jitter range used in training; ``mean`` / ``std`` the
    input normalisation (`autox3d_tf.layers.normalization`).
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


@functools.lru_cache(maxsize=None)
def _autox3d_text(variant: str) -> str:
    resource = importlib.resources.files("autox3d_tf").joinpath("resources", "autox3d", f"autox3d_{variant.lower()}.json")
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError:  # pragma: no cover - broken installation
        raise RuntimeError(
            f"The AutoX3D-{variant} spec is missing from the package ({resource}); reinstall autox3d_tf, or "
            f"regenerate it with zoo/recipes/autox3d_{variant.lower()}.sh."
        ) from None


def autox3d_spec(variant: str) -> ArchSpec:
    """The frozen `ArchSpec` of AutoX3D-XS, S, M or L (package data, ``resources/autox3d/``)."""
    key = str(variant).upper()
    if key not in AUTOX3D_VARIANTS:
        raise ValueError(f"Unknown AutoX3D variant {variant!r}; valid variants are {list(AUTOX3D_VARIANTS)}.")
    return ArchSpec.from_json(_autox3d_text(key))


@dataclass(frozen=True)
class CatalogEntry:
    """One named architecture: its default input configuration and a function returning its spec."""

    config: ModelConfig
    spec_fn: Callable[[], ArchSpec]


_CATALOG: dict[str, CatalogEntry] = {}


def register_architecture(config: ModelConfig, spec_fn: Callable[[], ArchSpec]) -> None:
    """Adds (or replaces) a named architecture."""
    _CATALOG[config.name] = CatalogEntry(config, spec_fn)


def _entry(name: str) -> CatalogEntry:
    if isinstance(name, str) and name in _CATALOG:
        return _CATALOG[name]
    lowered = {k.lower().replace("-", "_"): k for k in _CATALOG}
    key = name.lower().replace("-", "_") if isinstance(name, str) else None
    if key in lowered:
        return _CATALOG[lowered[key]]
    hint = difflib.get_close_matches(str(name), list(_CATALOG), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"Unknown model {name!r}.{suggestion} Valid models are: {', '.join(list_architectures())}.")


def list_architectures() -> list[str]:
    """Names of all named architectures, in registration order."""
    return list(_CATALOG)


def architecture_config(name: str) -> ModelConfig:
    """The default input configuration of a named architecture (case-insensitive name)."""
    return _entry(name).config


def get_spec(name: str) -> ArchSpec:
    """The `ArchSpec` of a named architecture."""
    return _entry(name).spec_fn()


def canonical_name(name: str) -> str:
    """The registered spelling of ``name`` (``"x3d-s"`` -> ``"X3D_S"``)."""
    return _entry(name).config.name


def _register_builtin() -> None:
    for variant, v in X3D_VARIANTS.items():
        register_architecture(
            x3d_clip_config(
                f"X3D_{variant}",
                variant,
                family="x3d",
                description=f"X3D-{variant}: width x{v.width_factor}, depth x{v.depth_factor}",
                paper=X3D_PAPER,
            ),
            functools.partial(x3d_spec, variant),
        )
    for variant in AUTOX3D_VARIANTS:
        lower = variant.lower()
        register_architecture(
            x3d_clip_config(
                f"AutoX3D_{variant}",
                variant,
                family="autox3d",
                description=(
                    f"AutoX3D-{variant}: autox3d-v1 architecture from the training-free entropy search under the "
                    f"MACs of X3D-{variant}; untrained (no pretrained weights)"
                ),
                paper=AUTOX3D_PAPER,
                extra={
                    "spec": f"resources/autox3d/autox3d_{lower}.json",
                    "recipe": f"zoo/recipes/autox3d_{lower}.sh",
                    "search": "entropy (STEntr, training-free)",
                    "counterpart": f"X3D_{variant}",
                },
            ),
            functools.partial(autox3d_spec, variant),
        )
    for variant, e in E3D_VARIANTS.items():
        register_architecture(
            ModelConfig(
                name=f"E3D_{variant}",
                family="e3d",
                frames=e.frames,
                sampling_rate=e.sampling_rate,
                train_crop=e.size,
                test_crop=e.test_crop,
                train_scale=e.train_scale,
                description=(
                    f"E3D-{variant}: the published STEntr-searched structure (ICLR 2023) at the budget of "
                    f"{e.counterpart}; head hidden width 2048 (unset upstream); no pretrained weights"
                ),
                paper=E3D_PAPER,
                extra={
                    "structure": f"{E3D_CODE}/blob/main/configs/action_recognition/models/E3D_{variant}.txt",
                    "search": "entropy (STEntr, training-free), by the E3D authors",
                    "counterpart": e.counterpart,
                    "head_hidden": "2048 (num_hidden is unset upstream)",
                    "dropout_rate": 0.2,
                },
            ),
            functools.partial(e3d_spec, variant),
        )


_register_builtin()
