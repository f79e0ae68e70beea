"""tf.data pipelines over ``SequenceExample`` TFRecord shards (``autox3d to-tfrecord`` or TF Model
Garden's layout, :mod:`~autox3d_tf.data.tfrecord_format`): training clips and multi-view evaluation.

    from autox3d_tf.data import tfrecord_dataset, tfrecord_eval_dataset
    train = tfrecord_dataset("shards/train", model="X3D_S", batch_size=8, seed=0)
    views = tfrecord_eval_dataset("shards/val", model="X3D_S", num_clips=10, num_crops=3)

TensorFlow only (tf.data; JPEG frames decoded by ``tf.io``).

The datasets yield what the video-file pipelines (:mod:`~autox3d_tf.data.video_pipeline`) yield, with
the same clip settings (:func:`~autox3d_tf.data.clip.resolve_clip`) and per-clip seeds. Records that
fail to parse or decode, and truncated or corrupt shards, are skipped, logged and counted in
``dataset.error_log`` (:class:`~autox3d_tf.data.error_log.DecodeErrorLog`, ``kind="record"``), or,
with ``on_error="raise"``, stop the iteration with a :class:`BadRecordError` message naming them.
Under ``strategy.distribute_datasets_from_function``, pass the ``InputContext`` as
``input_context``: each input pipeline then reads only its share of the shards (or records).
``segments=K`` samples K snippets per clip as the video-file pipelines do
(:mod:`~autox3d_tf.data.tf_sampling`, the same indices as :mod:`~autox3d_tf.data.sampling`).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from autox3d_tf.data import augment
from autox3d_tf.data.clip import resolve_clip
from autox3d_tf.data.common import (check_on_error, check_segments, eval_views, finish, input_pipelines,
                                    pipeline_seed, seed_stream)
from autox3d_tf.data.error_log import DecodeErrorLog
from autox3d_tf.data.tf_sampling import snippet_eval_indices_tf, snippet_train_indices_tf
from autox3d_tf.data.tfrecord_format import IMAGE_KEY, MEDIA_ID_KEY, find_shards, parse_sequence_example

__all__ = ["BadRecordError", "tfrecord_dataset", "tfrecord_eval_dataset"]


def _decode_jpegs(jpegs: tf.Tensor) -> tf.Tensor:
    return tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=3), jpegs,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8), parallel_iterations=16)


# TFRecord framing around each record's data: length (8 bytes), its CRC (4), the data's CRC (4).
_RECORD_FRAMING = 16


class BadRecordError(Exception):
    """A TFRecord record or shard could not be read, parsed or decoded; ``path`` is the shard."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(reason)


def _diagnose_record(raw: bytes) -> tuple[str, str]:
    """``(video_id, what is wrong)`` for a record whose parse or decode failed (Python only, no TF)."""
    try:
        ex = tf.train.SequenceExample.FromString(raw)
    except Exception as err:  # google.protobuf.message.DecodeError
        return "", f"not a SequenceExample ({type(err).__name__}: {err})"
    ids = ex.context.feature[MEDIA_ID_KEY].bytes_list.value if MEDIA_ID_KEY in ex.context.feature else []
    vid = ids[0].decode("utf-8", "replace") if ids else ""
    if IMAGE_KEY not in ex.feature_lists.feature_list:
        return vid, f"no {IMAGE_KEY} frames"
    frames = ex.feature_lists.feature_list[IMAGE_KEY].feature
    if not frames:
        return vid, f"no {IMAGE_KEY} frames"
    for k, feature in enumerate(frames):
        values = feature.bytes_list.value
        jpeg = values[0] if values else b""
        if not jpeg.startswith(b"\xff\xd8"):
            return vid, f"frame {k} of {len(frames)} is not a JPEG"
        if not jpeg.rstrip(b"\0").endswith(b"\xff\xd9"):
            return vid, f"frame {k} of {len(frames)} is a truncated JPEG"
    return vid, "could not be parsed or a frame could not be decoded (corrupt JPEG data or features)"


def _record_reporter(log: DecodeErrorLog, on_error: str):
    """The numpy functions that report a bad record and an unreadable shard end (or raise)."""

    def fail(reason: str, path: str) -> bool:
        if on_error == "raise":
            raise BadRecordError(path, reason)
        log.record(path, reason)
        return False

    def bad_record(raw: bytes, file: bytes, index: np.ndarray) -> bool:
        vid, why = _diagnose_record(raw)
        file = file.decode()
        named = f" (video {vid!r})" if vid else ""
        return fail(f"{file}: record {int(index)}{named}: {why}", file)

    def shard_end(file: bytes, size: np.ndarray, consumed: np.ndarray, count: np.ndarray) -> bool:
        if int(consumed) == int(size):
            return False  # read to the end: the sentinel is dropped, nothing to report
        file = file.decode()
        return fail(f"{file}: unreadable after record {int(count) - 1} (byte {int(consumed)} of {int(size)}): "
                    "truncated or corrupt TFRecord file, the rest of it is skipped", file)

    return bad_record, shard_end


def _read_shard(file: tf.Tensor, size: tf.Tensor, shard_end) -> tf.data.Dataset:
    """``(record, file, index)`` of one TFRecord file. TF stops a file at its first damaged record;
    the bytes read are counted, and when they fall short of the file's size ``shard_end`` reports it."""
    records = tf.data.TFRecordDataset(file).ignore_errors().enumerate()
    records = records.map(lambda i, raw: (raw, i, False))
    sentinel = tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(-1, tf.int64), True))

    def count(state, element):
        raw, index, is_end = element
        zero = tf.constant(0, tf.int64)
        add = tf.where(is_end, zero, tf.cast(tf.strings.length(raw), tf.int64) + _RECORD_FRAMING)
        state = (state[0] + add, state[1] + tf.where(is_end, zero, tf.constant(1, tf.int64)))
        return state, (raw, index, is_end, state[0], state[1])

    ds = records.concatenate(sentinel).scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), count)

    def keep(raw, index, is_end, consumed, n):
        return tf.cond(is_end, lambda: tf.numpy_function(shard_end, [file, size, consumed, n], tf.bool,
                                                          stateful=True),
                       lambda: tf.constant(True))

    ds = ds.filter(keep)
    return ds.map(lambda raw, index, is_end, consumed, n: (raw, file, index))


def _records(
    files: list[str], shuffle: bool, seed: int | None, deterministic: bool, shard_end,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """``(record, file, index)`` from the shards; with several input pipelines, this one's share:
    every ``n``-th file when there are at least ``n`` files, else every ``n``-th record."""
    n, i = input_pipelines(input_context)
    by_record = n > 1 and len(files) < n
    if n > 1 and not by_record:
        files = files[i::n]
    sizes = [os.path.getsize(f) for f in files]
    ds = tf.data.Dataset.from_tensor_slices((files, np.array(sizes, np.int64)))
    if shuffle and not by_record:  # record sharding needs the same file order in every pipeline
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(lambda f, size: _read_shard(f, size, shard_end), cycle_length=min(4, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or by_record)
    return ds.shard(n, i) if by_record else ds


def _guarded(load, fallback: tuple, bad_record):
    """Wraps ``load(record, *extra) -> tuple`` so that a record failing to parse or decode gives
    ``(*fallback, False)`` after ``bad_record`` reported it (or raised); good ones ``(*out, True)``."""

    def run(raw, file, index, *extra):
        good = tf.data.Dataset.from_tensors((raw, *extra)).map(lambda *a: (*load(*a), True)).ignore_errors()

        def failed(_):
            ok = tf.numpy_function(bad_record, [raw, file, index], tf.bool, stateful=True)
            return (*fallback, tf.ensure_shape(ok, []))

        return good.concatenate(tf.data.Dataset.from_tensors(0).map(failed)).take(1).get_single_element()

    return run


def tfrecord_dataset(
    pattern: str | Sequence[str],
    model: str | None = "X3D_S",
    *,
    batch_size: int = 8,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
    segments: int = 1,
    flip: bool = True,
    seed: int | None = None,
    shuffle: bool = True,
    shuffle_buffer: int = 256,
    repeat: bool = False,
    drop_remainder: bool = True,
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Training clips from SequenceExample shards (``autox3d to-tfrecord`` or TF Model Garden's
    layout): ``(clip float32 [T, crop, crop, 3], label int32)``, batched and prefetched.

    ``pattern`` is a glob, a list of files, or the ``OUT_PREFIX`` given to ``to-tfrecord``. ``rate``
    counts stored frames (the converter may have changed the frame rate).

    Bad data, as for video files: a record that fails to parse or whose sampled JPEG frames fail to
    decode, and a truncated or corrupt shard (TF cannot read past a damaged record, so the rest of
    that file is lost), are skipped, logged and counted in ``dataset.error_log``
    (:class:`DecodeErrorLog`, ``kind="record"``; the path is the shard, the reason names the record
    and video) with ``on_error="skip"``, or stop the iteration with a :class:`BadRecordError` message
    naming them with ``on_error="raise"``.

    With ``input_context`` (``strategy.distribute_datasets_from_function``), this pipeline reads its
    share: every ``num_input_pipelines``-th shard when there are at least as many shards as
    pipelines, else every ``num_input_pipelines``-th record; ``batch_size`` is per pipeline.
    """
    check_on_error(on_error)
    files = find_shards(pattern)
    cfg = resolve_clip(model, frames=frames, rate=rate, crop=crop, scale_range=scale_range)
    K = check_segments(segments)
    T = K * cfg.frames
    seed = pipeline_seed(seed, input_context)
    deterministic = seed is not None
    log = error_log if error_log is not None else DecodeErrorLog("record")
    bad_record, shard_end = _record_reporter(log, on_error)

    def load(serialized, clip_seed):
        ex = parse_sequence_example(serialized)
        n = tf.shape(ex["jpegs"])[0]
        idx = snippet_train_indices_tf(n, cfg.frames, cfg.rate, K, augment._seed(clip_seed, 4))
        jpegs = tf.gather(ex["jpegs"], idx)
        shape = tf.io.extract_jpeg_shape(jpegs[0])
        window = augment.train_crop_window(shape[0], shape[1], cfg.scale_range, cfg.train_crop, clip_seed)
        patch = tf.map_fn(
            lambda s: tf.io.decode_and_crop_jpeg(s, window, channels=3, dct_method="INTEGER_FAST"), jpegs,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8), parallel_iterations=16)
        clip = augment.finish_train_clip(patch, clip_seed, cfg.train_crop, flip, cfg.mean, cfg.std)
        return clip, ex["label"]

    shape = [T, cfg.train_crop, cfg.train_crop, 3]
    guarded = _guarded(load, (tf.zeros(shape), tf.constant(-1, tf.int32)), bad_record)

    def decode(record, clip_seed):
        clip, label, ok = guarded(*record, clip_seed)
        return tf.ensure_shape(clip, shape), tf.ensure_shape(label, []), ok

    ds = _records(files, shuffle, seed, deterministic, shard_end, input_context)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = tf.data.Dataset.zip((ds, seed_stream(seed)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.filter(lambda clip, label, ok: ok).map(lambda clip, label, ok: (clip, label))
    ds = finish(ds, batch_size, drop_remainder)
    ds.error_log = log
    ds.clip_settings = cfg
    return ds


def tfrecord_eval_dataset(
    pattern: str | Sequence[str],
    model: str | None = "X3D_S",
    *,
    num_clips: int = 10,
    num_crops: int = 3,
    batch_size: int = 8,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    segments: int = 1,
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Evaluation views from SequenceExample shards: ``(clip, label, video_id)``, ``num_clips`` x
    ``num_crops`` views per video (see :func:`video_eval_dataset`, also for ``segments``). Bad
    records and shards, and ``input_context``, as in :func:`tfrecord_dataset`."""
    check_on_error(on_error)
    files = find_shards(pattern)
    cfg = resolve_clip(model, frames=frames, rate=rate, test_crop=crop)
    K = check_segments(segments)
    T, V = K * cfg.frames, num_clips * num_crops
    log = error_log if error_log is not None else DecodeErrorLog("record")
    bad_record, shard_end = _record_reporter(log, on_error)

    def load(serialized):
        ex = parse_sequence_example(serialized)
        n = tf.shape(ex["jpegs"])[0]
        idx = snippet_eval_indices_tf(n, cfg.frames, cfg.rate, K, num_clips)
        frames_ = _decode_jpegs(tf.gather(ex["jpegs"], tf.reshape(idx, [-1])))
        shape = tf.shape(frames_)
        clips = tf.reshape(frames_, tf.concat([[num_clips, T], shape[1:]], 0))
        v = eval_views(clips, cfg, num_crops)
        return v, tf.fill([V], ex["label"]), tf.fill([V], ex["video_id"])

    shape = [V, T, cfg.test_crop, cfg.test_crop, 3]
    fallback = (tf.zeros(shape), tf.fill([V], -1), tf.fill([V], ""))
    guarded = _guarded(load, fallback, bad_record)

    def decode(raw, file, index):
        v, labels, ids, ok = guarded(raw, file, index)
        return tf.ensure_shape(v, shape), tf.ensure_shape(labels, [V]), tf.ensure_shape(ids, [V]), ok

    ds = _records(files, False, None, True, shard_end, input_context)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda v, labels, ids, ok: ok).map(lambda v, labels, ids, ok: (v, labels, ids))
    ds = ds.unbatch()
    ds = finish(ds, batch_size, False)
    ds.error_log = log
    ds.clip_settings = cfg
    return ds
