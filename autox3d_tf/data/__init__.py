"""Video input pipelines on tf.data: video files and TFRecords, training and multi-view evaluation.

Submodules (imported lazily, so ``import autox3d_tf.data`` does not load TensorFlow):

- :mod:`~autox3d_tf.data.decode`: PyAV decoding (``probe_video``, ``decode_frames``, ``clip_indices``).
- :mod:`~autox3d_tf.data.annotations`: Kinetics CSV, PySlowFast lists, SSv2 JSON; the class map.
- :mod:`~autox3d_tf.data.sampling`: training and evaluation frame indices, evaluation crops.
- :mod:`~autox3d_tf.data.augment`: per-clip scale jitter, crop, flip, normalisation (TensorFlow).
- :mod:`~autox3d_tf.data.pipeline`: ``video_dataset``, ``video_eval_dataset``, ``tfrecord_dataset``...
- :mod:`~autox3d_tf.data.evaluation`: ``evaluate_views``, ``aggregate_views`` (top-1 / top-5).
- :mod:`~autox3d_tf.data.tfrecord`: ``convert_to_tfrecord`` (SequenceExample shards).
- :mod:`~autox3d_tf.data.synthetic`: ``write_synthetic_dataset``, the built-in motion dataset.
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
    "decode_frames_for": "decode",
    "VideoRecord": "annotations",
    "Annotations": "annotations",
    "ClassMap": "annotations",
    "MissingVideosError": "annotations",
    "load_annotations": "annotations",
    "check_videos_exist": "annotations",
    "train_clip_indices": "sampling",
    "eval_clip_indices": "sampling",
    "uniform_clip_starts": "sampling",
    "Segment": "sampling",
    "segment_frames": "sampling",
    "ClipSettings": "pipeline",
    "DecodeErrorLog": "pipeline",
    "BadRecordError": "pipeline",
    "clip_settings": "pipeline",
    "video_dataset": "pipeline",
    "video_eval_dataset": "pipeline",
    "tfrecord_dataset": "pipeline",
    "tfrecord_eval_dataset": "pipeline",
    "parse_sequence_example": "pipeline",
    "aggregate_views": "evaluation",
    "evaluate_views": "evaluation",
    "convert_to_tfrecord": "tfrecord",
    "write_synthetic_dataset": "synthetic",
    "render_clip": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"autox3d_tf.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'autox3d_tf.data' has no attribute {name!r}")
