"""Video input pipelines on tf.data: video files and TFRecords, training and multi-view evaluation.

Submodules (imported lazily, so ``import autox3d_tf.data`` does not load TensorFlow):

- :mod:`~autox3d_tf.data.decode`: PyAV decoding (``probe_video``, ``decode_frames``, ``clip_indices``).
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    "VideoDecodeError": "decode",
    "VideoInfo": "decode",
    "probe_video": "decode",
    "decode_frames": "decode",
    "clip_indices": "decode",
    "resize_short_side": "decode",
    "center_crop": "decode",
    "load_clip": "decode",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"autox3d_tf.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'autox3d_tf.data' has no attribute {name!r}")
