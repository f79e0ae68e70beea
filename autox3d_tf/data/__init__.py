"""Video input pipelines on tf.data: video files and TFRecords, training and multi-view evaluation.

The pipelines and the augmentation are TensorFlow only (tf.data, tf.image); annotations, sampling,
clip settings and the error log need no TensorFlow. This package imports only the layers and
architectures below it (no zoo, training, search or export).

Submodules (imported lazily, so ``import autox3d_tf.data`` does not load TensorFlow):

- :mod:`~autox3d_tf.data.decode`: PyAV decoding (``probe_video``, ``decode_frames``, ``clip_indices``).
- :mod:`~autox3d_tf.data.frame_folder`: videos stored as folders of numbered JPEG / PNG frames.
- :mod:`~autox3d_tf.data.annotations`: Kinetics CSV, PySlowFast lists, SSv2 JSON; the class map.
- :mod:`~autox3d_tf.data.directory`: annotations of a folder of class sub-folders, Keras' split.
- :mod:`~autox3d_tf.data.sampling`: training and evaluation frame indices (clips, and the snippets
  of temporal segments), evaluation crops; :mod:`~autox3d_tf.data.tf_sampling`: their TF twins.
- :mod:`~autox3d_tf.data.augment`: per-clip scale jitter, crop, flip, normalisation (TensorFlow).
- :mod:`~autox3d_tf.data.clip`: ``ClipSettings`` and ``resolve_clip``, the one clip resolution.
- :mod:`~autox3d_tf.data.error_log`: ``DecodeErrorLog``, what a pipeline skipped and why.
- :mod:`~autox3d_tf.data.video_pipeline`: ``video_dataset``, ``video_eval_dataset`` (video files).
- :mod:`~autox3d_tf.data.directory_pipeline`: ``video_dataset_from_directory``,
  ``video_eval_dataset_from_directory`` (``keras.utils.image_dataset_from_directory``'s arguments).
- :mod:`~autox3d_tf.data.tfrecord_pipeline`: ``tfrecord_dataset``, ``tfrecord_eval_dataset``.
- :mod:`~autox3d_tf.data.common`: what the two kinds of pipeline share (sharding, seeds, views).
- :mod:`~autox3d_tf.data.tfrecord_format`: the SequenceExample layout (feature keys) and shard names.
- :mod:`~autox3d_tf.data.tfrecord`: ``convert_to_tfrecord`` (writes SequenceExample shards).
- :mod:`~autox3d_tf.data.evaluation`: ``evaluate_views``, ``aggregate_views`` (top-1 / top-5).
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
    "FRAME_FOLDER_FPS": "frame_folder",
    "VideoRecord": "annotations",
    "Annotations": "annotations",
    "ClassMap": "annotations",
    "MissingVideosError": "annotations",
    "load_annotations": "annotations",
    "check_videos_exist": "annotations",
    "directory_annotations": "directory",
    "split_annotations": "directory",
    "train_clip_indices": "sampling",
    "eval_clip_indices": "sampling",
    "uniform_clip_starts": "sampling",
    "segment_parts": "sampling",
    "snippet_train_indices": "sampling",
    "snippet_eval_indices": "sampling",
    "Segment": "sampling",
    "segment_frames": "sampling",
    "ClipSettings": "clip",
    "resolve_clip": "clip",
    "DecodeErrorLog": "error_log",
    "video_dataset": "video_pipeline",
    "video_eval_dataset": "video_pipeline",
    "video_dataset_from_directory": "directory_pipeline",
    "video_eval_dataset_from_directory": "directory_pipeline",
    "BadRecordError": "tfrecord_pipeline",
    "tfrecord_dataset": "tfrecord_pipeline",
    "tfrecord_eval_dataset": "tfrecord_pipeline",
    "parse_sequence_example": "tfrecord_format",
    "make_sequence_example": "tfrecord_format",
    "shard_paths": "tfrecord_format",
    "find_shards": "tfrecord_format",
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
