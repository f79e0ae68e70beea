"""tf.data pipelines over video files (decoded with PyAV): training clips and multi-view evaluation.

    from autox3d_tf.data import video_dataset, video_eval_dataset, evaluate_views
    train = video_dataset("train.csv", model="X3D_S", batch_size=8, seed=0)
    model.fit(train, epochs=10)
    views = video_eval_dataset("val.csv", model="X3D_S", num_clips=10, num_crops=3)
    print(evaluate_views(model, views))          # {'top1': ..., 'top5': ..., 'videos': ...}

TensorFlow only (tf.data; the decoding runs in ``tf.numpy_function``).

Training datasets yield ``(clip float32 [T, crop, crop, 3], label int32)``, batched and prefetched,
ready for ``model.fit`` and ``strategy.experimental_distribute_dataset``. Evaluation datasets yield
``(clip, label, video_id)`` with ``num_clips * num_crops`` views per video.

Clip settings default to the model's (:func:`~autox3d_tf.data.clip.resolve_clip`): X3D-S is 13 x 6
frames, crop 160 (train) / 182 (test), short-side scale jitter [182, 228]. Every random choice of a
clip comes from one per-clip seed, so a pipeline built with ``seed=`` yields the same clips every run
(and new ones each epoch). Bad videos: a missing file fails when the dataset is built (all of them
listed); a file that fails to decode during iteration is skipped, logged and counted in
``dataset.error_log`` (:class:`~autox3d_tf.data.error_log.DecodeErrorLog`), or, with
``on_error="raise"``, stops the iteration with an error naming it.

Temporal segments (``segments=K``, TSN-style): the clip is K snippets of ``frames`` x ``rate``, one
per equal part of the video (a random position in training, the part's centre in evaluation, see
:mod:`~autox3d_tf.data.sampling`), concatenated in time: ``[K * frames, crop, crop, 3]``, augmented as
one clip. Feed it to :func:`autox3d_tf.models.segment_consensus`. ``segments=1`` is the plain clip.

Kinetics segments (``time_start`` / ``time_end``) restrict clips to that part of the video when it
lies inside it (:mod:`~autox3d_tf.data.sampling`); a segment starting past the video's end samples the
whole video and is listed in ``dataset.error_log.segment_fallbacks``. Under
``strategy.distribute_datasets_from_function``, pass the ``InputContext`` as ``input_context``: each
input pipeline then decodes only its share of the videos.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from autox3d_tf.data import augment
from autox3d_tf.data.annotations import Annotations, ClassMap, VideoRecord, check_videos_exist, load_annotations
from autox3d_tf.data.clip import resolve_clip
from autox3d_tf.data.common import check_on_error, check_segments, eval_views, finish, pipeline_seed, pipeline_share, seed_stream
from autox3d_tf.data.decode import VideoDecodeError, VideoInfo, decode_frames_for
from autox3d_tf.data.error_log import DecodeErrorLog
from autox3d_tf.data.sampling import Segment, segment_frames, snippet_eval_indices, snippet_train_indices

__all__ = ["video_dataset", "video_eval_dataset"]


def _as_annotations(source, video_root=None, split=None) -> Annotations:
    if isinstance(source, Annotations):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_annotations(source, video_root=video_root, split=split)
    records = list(source)
    if records and not isinstance(records[0], VideoRecord):
        raise TypeError("source must be an annotation path, an Annotations, or a list of VideoRecord")
    return Annotations(records=records, classes=ClassMap([]))


def _video_share(ann: Annotations, input_context) -> Annotations:
    """Annotations of the videos this input pipeline decodes (all of them without a context)."""
    if not ann.records:
        raise ValueError(f"no videos in {ann.source or 'the given records'}")
    records = pipeline_share(list(ann.records), input_context, "videos")
    if len(records) == len(ann.records):
        return ann
    return Annotations(records=records, classes=ann.classes, source=ann.source, format=ann.format)


def _segment(info: VideoInfo, record: VideoRecord, log: DecodeErrorLog) -> Segment:
    """The frames of ``record``'s annotated segment in the opened video; reports a past-end one."""
    start, end = record.segment
    seg = segment_frames(info.num_frames, info.fps, start, end)
    if seg.past_end:
        log.record_segment_fallback(
            record.path, f"{record.path}: segment [{start}, {end}) s starts past the end of the video "
            f"({info.num_frames / info.fps:.2f} s); whole video used")
    return seg


def _decode_or_skip(rec: VideoRecord, indices, log: DecodeErrorLog, on_error: str, empty: tuple[int, ...]):
    """``(frames, True)``: ``rec``'s frames at ``indices(info, segment)`` (decoded in one pass). A video
    that fails to decode is logged in ``log`` and gives ``(zeros(empty), False)``, or raises with
    ``on_error="raise"``."""
    try:
        frames, _ = decode_frames_for(rec.path, lambda info: indices(info, _segment(info, rec, log)))
        return frames, True
    except VideoDecodeError as err:
        if on_error == "raise":
            raise
        log.record(rec.path, str(err))
        return np.zeros(empty, np.uint8), False


def video_dataset(
    source: str | os.PathLike | Annotations | Sequence[VideoRecord],
    model: str | None = "X3D_S",
    *,
    batch_size: int = 8,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
    segments: int = 1,
    flip: bool | None = None,
    seed: int | None = None,
    shuffle: bool = True,
    repeat: bool = False,
    drop_remainder: bool = True,
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    video_root: str | os.PathLike | None = None,
    split: str | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Training clips from video files: ``(clip float32 [T, crop, crop, 3], label int32)``, batched.

    Args:
      source: an annotation file (Kinetics CSV, PySlowFast list, SSv2 JSON), a folder of class
        sub-folders (:mod:`~autox3d_tf.data.directory`), :class:`Annotations`, or a list of
        :class:`VideoRecord`; a video may be a frame folder (:mod:`~autox3d_tf.data.frame_folder`).
      model: named architecture whose clip settings are the defaults (``frames``, ``rate``, ``crop``,
        ``scale_range`` override them; see :func:`~autox3d_tf.data.clip.resolve_clip`).
      segments: K temporal segments: clips of K snippets ``[K * frames, crop, crop, 3]`` (module
        docstring); 1 (default) is the plain clip.
      flip: random horizontal flip; default on, except for Something-Something annotations.
      seed: makes the whole pipeline (order, clip starts, crops, flips) reproducible.
      shuffle / repeat / drop_remainder: as in tf.data.
      on_error: ``"skip"`` (log, count in ``error_log``, continue) or ``"raise"``.
      split: for a Kinetics CSV, the split to keep.
      input_context: under ``strategy.distribute_datasets_from_function``, the ``InputContext``:
        this pipeline then decodes only its share of the videos (every ``num_input_pipelines``-th,
        from ``input_pipeline_id``), with its own seed. ``batch_size`` is this pipeline's batch
        (``input_context.get_per_replica_batch_size(global_batch)``).

    Clips come only from a record's annotated segment (Kinetics ``time_start`` / ``time_end``) when
    it lies inside the video; see :mod:`~autox3d_tf.data.sampling` for the rules.

    Raises :class:`~autox3d_tf.data.annotations.MissingVideosError` when annotated files are missing
    (of this pipeline's share). The returned dataset has an ``error_log`` attribute
    (:class:`DecodeErrorLog`) and ``annotations`` (the videos this pipeline reads).
    """
    check_on_error(on_error)
    ann = _video_share(_as_annotations(source, video_root, split), input_context)
    check_videos_exist(ann.records)
    cfg = resolve_clip(model, frames=frames, rate=rate, crop=crop, scale_range=scale_range)
    if flip is None:
        flip = ann.format != "ssv2"
    seed = pipeline_seed(seed, input_context)
    log = error_log if error_log is not None else DecodeErrorLog()
    recs = list(ann.records)
    labels = np.array([r.label for r in recs], dtype=np.int32)
    n = len(recs)
    K = check_segments(segments)
    T = K * cfg.frames

    def load(index: np.ndarray, clip_seed: np.ndarray):
        rng = np.random.default_rng([int(clip_seed) & 0xFFFFFFFFFFFF, 17])

        def indices(info: VideoInfo, segment: Segment) -> np.ndarray:
            return snippet_train_indices(info.num_frames, cfg.frames, cfg.rate, K, rng, segment)

        return _decode_or_skip(recs[int(index)], indices, log, on_error, (T, 1, 1, 3))

    def decode(index, clip_seed):
        clip, ok = tf.numpy_function(load, [index, clip_seed], [tf.uint8, tf.bool], stateful=True)
        clip = tf.ensure_shape(clip, [T, None, None, 3])
        return clip, tf.gather(labels, index), clip_seed, tf.ensure_shape(ok, [])

    def aug(clip, label, clip_seed, ok):
        out = augment.train_augment(clip, clip_seed, cfg.train_crop, cfg.scale_range, flip, cfg.mean, cfg.std)
        return out, label

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = tf.data.Dataset.zip((ds, seed_stream(seed)))
    deterministic = seed is not None
    ds = ds.map(decode, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    ds = ds.filter(lambda clip, label, s, ok: ok)
    ds = ds.map(aug, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    ds = finish(ds, batch_size, drop_remainder)
    ds.error_log = log
    ds.annotations = ann
    ds.clip_settings = cfg
    return ds


def video_eval_dataset(
    source: str | os.PathLike | Annotations | Sequence[VideoRecord],
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
    video_root: str | os.PathLike | None = None,
    split: str | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Evaluation views from video files: ``(clip [T, crop, crop, 3], label, video_id string)``.

    Each video gives ``num_clips`` uniformly spaced temporal clips (of its annotated segment, as in
    :func:`video_dataset`) x ``num_crops`` (1 or 3) spatial crops of its short side resized to
    ``crop`` (default: the model's test crop; with ``model=None`` give ``frames``, ``rate`` and
    ``crop``); the video is opened once for all its views. With ``input_context`` this pipeline
    reads only its share of the videos (all views of a video stay together). Average the views with
    :func:`~autox3d_tf.data.evaluation.evaluate_views`.

    With ``segments=K`` a view is K snippets ``[K * frames, crop, crop, 3]``: the temporal views are
    the K parts themselves (one view: every snippet at its part's centre; ``num_clips`` views: view
    ``i`` shifts every snippet to the ``i``-th of ``num_clips`` uniform positions inside its part).
    """
    check_on_error(on_error)
    ann = _video_share(_as_annotations(source, video_root, split), input_context)
    check_videos_exist(ann.records)
    cfg = resolve_clip(model, frames=frames, rate=rate, test_crop=crop)
    log = error_log if error_log is not None else DecodeErrorLog()
    recs = list(ann.records)
    labels = np.array([r.label for r in recs], dtype=np.int32)
    ids = np.array([r.video_id for r in recs])
    K = check_segments(segments)
    T, V = K * cfg.frames, num_clips * num_crops

    def load(index: np.ndarray):
        def indices(info: VideoInfo, segment: Segment) -> np.ndarray:
            return snippet_eval_indices(info.num_frames, cfg.frames, cfg.rate, K, num_clips, segment)

        return _decode_or_skip(recs[int(index)], indices, log, on_error, (num_clips, T, 1, 1, 3))

    def decode(index):
        clips, ok = tf.numpy_function(load, [index], [tf.uint8, tf.bool], stateful=True)
        clips = tf.ensure_shape(clips, [num_clips, T, None, None, 3])
        return clips, index, tf.ensure_shape(ok, [])

    def views(clips, index, ok):
        v = eval_views(clips, cfg, num_crops)
        return (v, tf.fill([V], tf.gather(labels, index)), tf.fill([V], tf.gather(ids, index)))

    ds = tf.data.Dataset.range(len(recs))
    ds = ds.map(decode, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.filter(lambda c, i, ok: ok)
    ds = ds.map(views, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.unbatch()
    ds = finish(ds, batch_size, False)
    ds.error_log = log
    ds.annotations = ann
    ds.clip_settings = cfg
    return ds

