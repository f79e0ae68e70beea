"""The TFRecord layout shared by the writer (:mod:`~autox3d_tf.data.tfrecord`) and the reader
(:mod:`~autox3d_tf.data.tfrecord_pipeline`): feature keys, the ``SequenceExample``, shard names.

Each video is one ``tf.train.SequenceExample`` in TF Model Garden's video layout:

- feature list ``image/encoded`` (:data:`IMAGE_KEY`): one JPEG per stored frame;
- context ``clip/label/index`` (:data:`LABEL_KEY`, int64), ``clip/label/string``, ``clip/media_id``
  (:data:`MEDIA_ID_KEY`, the video id), ``image/frame_rate`` (stored fps), ``image/height``,
  ``image/width``, ``image/format``.

Shards are ``{prefix}-{k:05d}-of-{n:05d}.tfrecord`` (:func:`shard_paths`); :func:`find_shards`
resolves a glob, a list of files or such a prefix.

TensorFlow is imported inside the functions only, so that the converter's worker processes can
configure it before it loads.

TensorFlow-only (tf.train.SequenceExample).
"""

from __future__ import annotations

import glob
import os
from typing import Sequence

__all__ = [
    "IMAGE_KEY",
    "LABEL_KEY",
    "LABEL_NAME_KEY",
    "MEDIA_ID_KEY",
    "FRAME_RATE_KEY",
    "HEIGHT_KEY",
    "WIDTH_KEY",
    "FORMAT_KEY",
    "make_sequence_example",
    "parse_sequence_example",
    "shard_paths",
    "matching_shards",
    "find_shards",
]

IMAGE_KEY = "image/encoded"
LABEL_KEY = "clip/label/index"
LABEL_NAME_KEY = "clip/label/string"
MEDIA_ID_KEY = "clip/media_id"
FRAME_RATE_KEY = "image/frame_rate"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
FORMAT_KEY = "image/format"


def make_sequence_example(
    jpegs: Sequence[bytes], label: int, video_id: str, label_name: str = "", fps: float = 0.0,
    height: int = 0, width: int = 0,
) -> bytes:
    """A serialised ``SequenceExample`` in TF Model Garden's video layout."""
    import tensorflow as tf

    def i64(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    def byt(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() if isinstance(v, str) else v]))

    context = tf.train.Features(feature={
        LABEL_KEY: i64(label),
        LABEL_NAME_KEY: byt(label_name),
        MEDIA_ID_KEY: byt(video_id),
        FRAME_RATE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=[float(fps)])),
        HEIGHT_KEY: i64(height),
        WIDTH_KEY: i64(width),
        FORMAT_KEY: byt("JPEG"),
    })
    frames = tf.train.FeatureList(feature=[
        tf.train.Feature(bytes_list=tf.train.BytesList(value=[j])) for j in jpegs])
    ex = tf.train.SequenceExample(context=context, feature_lists=tf.train.FeatureLists(feature_list={IMAGE_KEY: frames}))
    return ex.SerializeToString()


def parse_sequence_example(serialized):
    """Parses one serialised video ``SequenceExample`` (a string tensor): ``{"jpegs": string [N],
    "label": int32, "video_id": string}`` (``-1`` for a record without a label)."""
    import tensorflow as tf

    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            LABEL_KEY: tf.io.VarLenFeature(tf.int64),
            MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
        sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    label = tf.sparse.to_dense(context[LABEL_KEY], default_value=-1)
    label = tf.cond(tf.size(label) > 0, lambda: label[0], lambda: tf.constant(-1, tf.int64))
    return {"jpegs": sequence[IMAGE_KEY], "label": tf.cast(label, tf.int32), "video_id": context[MEDIA_ID_KEY]}


def shard_paths(out_prefix: str | os.PathLike, shards: int) -> list[str]:
    """The final file names of ``shards`` shards: ``{prefix}-00000-of-0000N.tfrecord``, ..."""
    out_prefix = os.fspath(out_prefix)
    return [f"{out_prefix}-{k:05d}-of-{shards:05d}.tfrecord" for k in range(shards)]


def matching_shards(pattern: str | os.PathLike) -> list[str]:
    """The files of one glob or ``to-tfrecord`` prefix, sorted (empty when nothing matches)."""
    p = os.fspath(pattern)
    return sorted(glob.glob(p)) or sorted(glob.glob(p + "-*-of-*.tfrecord")) or sorted(glob.glob(p + "*.tfrecord"))


def find_shards(pattern: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The TFRecord files of a glob, a ``to-tfrecord`` prefix, or a list of them; raises
    ``FileNotFoundError`` naming a pattern that matches nothing."""
    patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    files: list[str] = []
    for p in patterns:
        matched = matching_shards(p)
        if not matched:
            raise FileNotFoundError(f"no TFRecord files match {os.fspath(p)!r}")
        files += matched
    return files
