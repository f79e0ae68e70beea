"""Clip settings: how clips are sampled and augmented, and the one function that resolves them.

    from autox3d_tf.data.clip import resolve_clip
    resolve_clip("X3D_XS")                # 4 x 12 frames, crop 160 / test 182, jitter [182, 228]
    resolve_clip("X3D_XS", crop=64)       # crop 64 / test 73, jitter [73, 91]: the model's ratios

- :class:`ClipSettings`: frames, sampling rate, train / test crop, scale jitter, mean / std.
- :func:`resolve_clip`: a named architecture's defaults (``autox3d_tf.arch.catalog.architecture_config``),
  then a spec's default clip, then explicit overrides. Every pipeline, training run, evaluation and
  benchmark resolves its clip here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from autox3d_tf.layers.normalization import MEAN, STD

__all__ = ["ClipSettings", "resolve_clip"]


@dataclass(frozen=True)
class ClipSettings:
    """How clips are sampled and augmented (defaults come from a named architecture)."""

    frames: int
    rate: int  # 0: frames spread over the whole video (`autox3d_tf.data.sampling.WHOLE_VIDEO`)
    train_crop: int
    test_crop: int
    scale_range: tuple[int, int]
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD


def _model_clip(model: str) -> ClipSettings:
    from autox3d_tf.arch.catalog import architecture_config

    cfg = architecture_config(model)
    return ClipSettings(cfg.frames, cfg.sampling_rate, cfg.train_crop, cfg.test_crop, tuple(cfg.train_scale),
                        tuple(cfg.mean), tuple(cfg.std))


def _explicit_clip(frames: int | None, rate: int | None, crop: int | None, test_crop: int | None) -> ClipSettings:
    """The base of a clip without a model: the crop given (train or test, each the other's default)
    and a scale jitter of ``[crop, round(crop * 1.25)]``."""
    if frames is None or rate is None or (crop is None and test_crop is None):
        raise ValueError("without a model, give frames, rate and crop (or test_crop)")
    train = int(crop or test_crop)
    return ClipSettings(int(frames), int(rate), train, int(test_crop or train), (train, int(round(train * 1.25))))


def resolve_clip(
    model: str | None = "X3D_S",
    spec=None,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    test_crop: int | None = None,
    scale_range: Sequence[int] | None = None,
) -> ClipSettings:
    """Clip settings: ``model``'s defaults (``autox3d_tf.arch.catalog.architecture_config``), then the spec's
    default clip (``input_frames``, ``input_size``) when a spec is given, then the explicit arguments
    (``crop`` is the training crop, ``test_crop`` the evaluation one).

    When the train crop differs from the model's, the default test crop and scale jitter keep the
    model's ratios to it (X3D-XS: crop 160, test 182, jitter [182, 228]; crop 64 -> test 73,
    jitter [73, 91]). The jitter never goes below the train crop.

    With ``model=None``, ``frames``, ``rate`` and a crop must be given (``crop`` or ``test_crop``, each
    defaulting to the other); the scale range defaults to ``[crop, round(crop * 1.25)]``.
    """
    if spec is not None:
        frames = frames or spec.input_frames
        crop = crop or spec.input_size
    base = _model_clip(model) if model is not None else _explicit_clip(frames, rate, crop, test_crop)
    crop = int(crop or base.train_crop)
    ratio = crop / base.train_crop
    if test_crop is None:
        test_crop = base.test_crop if crop == base.train_crop else int(round(base.test_crop * ratio))
    if scale_range is None:
        scale_range = (int(round(base.scale_range[0] * ratio)), int(round(base.scale_range[1] * ratio)))
    return ClipSettings(
        frames=int(frames or base.frames),
        rate=int(base.rate if rate is None else rate),
        train_crop=crop,
        test_crop=int(test_crop),
        scale_range=(max(int(scale_range[0]), crop), max(int(scale_range[1]), crop)),
        mean=base.mean,
        std=base.std,
    )
