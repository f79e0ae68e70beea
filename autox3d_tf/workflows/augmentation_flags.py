"""The augmentation flags that `autox3d train` and `autox3d search` share: --flip and --scale_jitter."""

from __future__ import annotations

from absl import app

from autox3d_tf.workflows.flagset import FlagSet

__all__ = ["define_augmentation_flags", "parse_scale_jitter"]


def define_augmentation_flags(flagset: FlagSet) -> None:
    """Defines ``--flip`` / ``--noflip`` and ``--scale_jitter MIN,MAX`` on ``flagset``."""
    flagset.boolean("flip", None, "Random horizontal flips of training clips (default: on, off for Something-Something "
                    "annotations). --noflip when a class names a direction (left / right swipes, clockwise / "
                    "counter-clockwise): a flip turns it into the other class.")
    flagset.list("scale_jitter", None, "MIN,MAX: the short-side scale jitter range of training clips, in pixels "
                 "(default: the model's, scaled with --crop).")


def parse_scale_jitter(values: list[str] | None) -> tuple[int, int] | None:
    """``["MIN", "MAX"]`` -> ``(MIN, MAX)``; None stays None.

    Raises:
        app.UsageError: not two integers with ``0 < MIN <= MAX``.
    """
    if values is None:
        return None
    try:
        low, high = (int(v) for v in values)
    except ValueError:
        raise app.UsageError(f"--scale_jitter must be MIN,MAX in pixels, got {','.join(values)!r}") from None
    if not 0 < low <= high:
        raise app.UsageError(f"--scale_jitter needs 0 < MIN <= MAX, got {low},{high}")
    return low, high
