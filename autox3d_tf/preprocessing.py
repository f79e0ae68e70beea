"""Input normalisation and Kinetics-400 label decoding for the zoo models (keras.applications style).

    from autox3d_tf.preprocessing import preprocess_input, decode_predictions
    x = preprocess_input(frames_uint8)            # (batch, frames, h, w, 3) -> normalised float32
    probs = model.predict(x)
    decode_predictions(probs, top=5)              # [[(index, label, probability), ...], ...]

The normalisation is the one every X3D checkpoint was trained with (pytorchvideo / PySlowFast):
pixels scaled to [0, 1], then ``(x - 0.45) / 0.225`` per channel.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Sequence

import numpy as np

from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels

__all__ = ["MEAN", "STD", "preprocess_input", "decode_predictions", "kinetics400_classes", "class_names"]


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Normalises RGB clips with pixel values in [0, 255] (uint8 or float) for the zoo models.

    Computes ``(x / 255 - 0.45) / 0.225`` per channel, as the pytorchvideo / PySlowFast X3D
    reference does on [0, 1] pixels.

    Args:
        x: NumPy array or tensor of shape (..., 3), channels last, values in [0, 255].
        data_format: only "channels_last" (or None) is supported.

    Returns:
        float32 NumPy array for NumPy / list input, a float32 tensor for tensor input.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(f"Only channels_last clips are supported, got data_format={data_format!r}.")
    if isinstance(x, (np.ndarray, list, tuple, int, float)):
        arr = np.asarray(x)
        if arr.ndim == 0 or arr.shape[-1] != 3:
            raise ValueError(f"Expected RGB clips with 3 channels last, got shape {arr.shape}.")
        return normalize_pixels(arr.astype(np.float32))
    from keras import ops

    if x.shape[-1] is not None and x.shape[-1] != 3:
        raise ValueError(f"Expected RGB clips with 3 channels last, got shape {tuple(x.shape)}.")
    return normalize_pixels(ops.cast(x, "float32"))


@functools.lru_cache(maxsize=None)
def class_names(resource: str = "kinetics400_classes.txt") -> tuple[str, ...]:
    """Class names shipped as package data (``autox3d_tf/resources/<resource>``), one per line."""
    text = resources.files("autox3d_tf").joinpath("resources", resource).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def kinetics400_classes() -> tuple[str, ...]:
    """The 400 Kinetics-400 class names in the index order of the X3D checkpoints."""
    names = class_names("kinetics400_classes.txt")
    if len(names) != 400:
        raise RuntimeError(f"kinetics400_classes.txt holds {len(names)} names, 400 expected.")
    return names


def decode_predictions(
    preds: Any, top: int = 5, class_list: Sequence[str] | None = None
) -> list[list[tuple[int, str, float]]]:
    """Top-k labels of a batch of predictions.

    Args:
        preds: (batch, classes) probabilities (or logits), NumPy array or tensor.
        top: how many classes per sample.
        class_list: class names (default: Kinetics-400, which needs 400 columns).

    Returns:
        One list per sample of ``(class_index, class_name, score)`` tuples, best first.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError(f"`decode_predictions` expects a batch of predictions (2D, (batch, classes)); got shape {preds.shape}.")
    names = tuple(class_list) if class_list is not None else kinetics400_classes()
    if preds.shape[1] != len(names):
        raise ValueError(
            f"Predictions have {preds.shape[1]} classes but {len(names)} class names are known"
            + (" (Kinetics-400)" if class_list is None else "")
            + "; pass `class_list` for other label sets."
        )
    if int(top) < 1:
        raise ValueError(f"`top` must be >= 1, got {top!r}.")
    k = min(int(top), preds.shape[1])
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:k]
        results.append([(int(i), names[i], float(row[i])) for i in order])
    return results
