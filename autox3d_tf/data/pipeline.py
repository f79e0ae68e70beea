"""tf.data pipelines over video files (PyAV) and TFRecord shards, for training and evaluation.

    from autox3d_tf.data import video_dataset, video_eval_dataset, evaluate_views
    train = video_dataset("train.csv", model="X3D_S", batch_size=8, seed=0)
    model.fit(train, epochs=10)
    views = video_eval_dataset("val.csv", model="X3D_S", num_clips=10, num_crops=3)
    print(evaluate_views(model, views))          # {'top1': ..., 'top5': ..., 'videos': ...}

Training datasets yield ``(clip float32 [T, crop, crop, 3], label int32)``, batched and prefetched,
ready for ``model.fit`` and ``strategy.experimental_distribute_dataset``. Evaluation datasets yield
``(clip, label, video_id)`` with ``num_clips * num_crops`` views per video.

Clip settings default to the zoo model's (``autox3d_tf.zoo.get_config``): X3D-S is 13 x 6 frames, crop
160 (train) / 182 (test), short-side scale jitter [182, 228]. Every random choice of a clip comes from
one per-clip seed, so a pipeline built with ``seed=`` yields the same clips every run (and new ones
each epoch). Bad videos: a missing file fails when the dataset is built (all of them listed); a file
that fails to decode during iteration is skipped, logged and counted in ``dataset.error_log`` (or,
with ``on_error="raise"``, stops the iteration with an error naming it).
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from autox3d_tf.data import augment
from autox3d_tf.data.annotations import Annotations, VideoRecord, check_videos_exist, load_annotations
from autox3d_tf.data.decode import VideoDecodeError, decode_frames_for
from autox3d_tf.data.sampling import clip_span, eval_clip_indices, train_clip_indices

__all__ = [
    "ClipSettings",
    "DecodeErrorLog",
    "clip_settings",
    "video_dataset",
    "video_eval_dataset",
    "tfrecord_dataset",
    "tfrecord_eval_dataset",
    "parse_sequence_example",
]

logger = logging.getLogger("autox3d_tf.data")

IMAGE_KEY = "image/encoded"
LABEL_KEY = "clip/label/index"
MEDIA_ID_KEY = "clip/media_id"


@dataclass(frozen=True)
class ClipSettings:
    """How clips are sampled and augmented (defaults come from a zoo model)."""

    frames: int
    rate: int
    train_crop: int
    test_crop: int
    scale_range: tuple[int, int]
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)


def clip_settings(
    model: str | None = "X3D_S",
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    test_crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
) -> ClipSettings:
    """The zoo model's clip settings (``autox3d_tf.zoo.get_config``), with any field overridden.

    With ``model=None`` every field must be given (``test_crop`` defaults to ``crop``, the scale
    range to ``[crop, round(crop * 1.25)]``).
    """
    if model is not None:
        from autox3d_tf.zoo import get_config

        cfg = get_config(model)
        base = ClipSettings(cfg.frames, cfg.sampling_rate, cfg.train_crop, cfg.test_crop,
                            tuple(cfg.train_scale), tuple(cfg.mean), tuple(cfg.std))
    else:
        if frames is None or rate is None or crop is None:
            raise ValueError("without a model, give frames, rate and crop")
        base = ClipSettings(frames, rate, crop, test_crop or crop, (crop, int(round(crop * 1.25))))
    crop_ = crop or base.train_crop
    scale = tuple(scale_range) if scale_range else base.scale_range
    if crop is not None and scale_range is None and model is not None and crop != base.train_crop:
        ratio = crop / base.train_crop  # keep the model's jitter relative to the new crop
        scale = (int(round(base.scale_range[0] * ratio)), int(round(base.scale_range[1] * ratio)))
    return ClipSettings(
        frames=frames or base.frames,
        rate=rate or base.rate,
        train_crop=crop_,
        test_crop=test_crop or (crop if crop is not None and model is None else base.test_crop),
        scale_range=(int(scale[0]), int(scale[1])),
        mean=base.mean,
        std=base.std,
    )


class DecodeErrorLog:
    """Thread-safe record of videos skipped during iteration: ``count``, ``errors`` (path, reason)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors: list[tuple[str, str]] = []

    def record(self, path: str, reason: str) -> None:
        with self._lock:
            self.errors.append((path, reason))
            n = len(self.errors)
        logger.warning("skipped bad video (%d so far): %s", n, reason)

    @property
    def count(self) -> int:
        return len(self.errors)

    @property
    def paths(self) -> list[str]:
        """Distinct skipped files, in order of first failure."""
        return list(dict.fromkeys(p for p, _ in self.errors))

    def summary(self) -> str:
        """One line per distinct bad file, with the number of skips."""
        if not self.errors:
            return "no bad videos"
        counts: dict[str, int] = {}
        reasons: dict[str, str] = {}
        for p, r in self.errors:
            counts[p] = counts.get(p, 0) + 1
            reasons.setdefault(p, r)
        lines = [f"{self.count} clips skipped from {len(counts)} bad videos:"]
        lines += [f"  {reasons[p]} (x{counts[p]})" for p in counts]
        return "\n".join(lines)

    def reset(self) -> None:
        with self._lock:
            self.errors.clear()


def _as_annotations(source, video_root=None, split=None) -> Annotations:
    if isinstance(source, Annotations):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_annotations(source, video_root=video_root, split=split)
    records = list(source)
    if records and not isinstance(records[0], VideoRecord):
        raise TypeError("source must be an annotation path, an Annotations, or a list of VideoRecord")
    from autox3d_tf.data.annotations import ClassMap

    return Annotations(records=records, classes=ClassMap([]))


def _check_on_error(on_error: str) -> None:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")


def _seed_stream(seed: int | None) -> tf.data.Dataset:
    """An endless stream of int64 per-clip seeds: reproducible under ``seed``, new each epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)


def _finish(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool) -> tf.data.Dataset:
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def video_dataset(
    source: str | os.PathLike | Annotations | Sequence[VideoRecord],
    model: str | None = "X3D_S",
    *,
    batch_size: int = 8,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
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
) -> tf.data.Dataset:
    """Training clips from video files: ``(clip float32 [T, crop, crop, 3], label int32)``, batched.

    Args:
      source: an annotation file (Kinetics CSV, PySlowFast list, SSv2 JSON), :class:`Annotations`, or
        a list of :class:`VideoRecord`.
      model: zoo model whose clip settings are the defaults (``frames``, ``rate``, ``crop``,
        ``scale_range`` override them).
      flip: random horizontal flip; default on, except for Something-Something annotations.
      seed: makes the whole pipeline (order, clip starts, crops, flips) reproducible.
      shuffle / repeat / drop_remainder: as in tf.data.
      on_error: ``"skip"`` (log, count in ``error_log``, continue) or ``"raise"``.
      split: for a Kinetics CSV, the split to keep.

    Raises :class:`~autox3d_tf.data.annotations.MissingVideosError` when annotated files are missing.
    The returned dataset has an ``error_log`` attribute (:class:`DecodeErrorLog`).
    """
    _check_on_error(on_error)
    ann = _as_annotations(source, video_root, split)
    if not ann.records:
        raise ValueError(f"no videos in {ann.source or 'the given records'}")
    check_videos_exist(ann.records)
    cfg = clip_settings(model, frames, rate, crop, None, scale_range)
    if flip is None:
        flip = ann.format != "ssv2"
    log = error_log if error_log is not None else DecodeErrorLog()
    paths = np.array([r.path for r in ann.records])
    labels = np.array([r.label for r in ann.records], dtype=np.int32)
    n = len(paths)
    T = cfg.frames

    def load(index: np.ndarray, clip_seed: np.ndarray):
        path = str(paths[int(index)])
        rng = np.random.default_rng([int(clip_seed) & 0xFFFFFFFFFFFF, 17])
        try:
            clip, _ = decode_frames_for(path, lambda info: train_clip_indices(info.num_frames, T, cfg.rate, rng))
            return clip, True
        except VideoDecodeError as err:
            if on_error == "raise":
                raise
            log.record(path, str(err))
            return np.zeros((T, 1, 1, 3), np.uint8), False

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
    ds = tf.data.Dataset.zip((ds, _seed_stream(seed)))
    deterministic = seed is not None
    ds = ds.map(decode, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    ds = ds.filter(lambda clip, label, s, ok: ok)
    ds = ds.map(aug, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    ds = _finish(ds, batch_size, drop_remainder)
    ds.error_log = log
    ds.annotations = ann
    ds.clip_settings = cfg
    return ds


def _views(frames: tf.Tensor, cfg: ClipSettings, num_crops: int) -> tf.Tensor:
    """``[N, T, H, W, 3]`` uint8 -> normalised ``[num_crops * N, T, crop, crop, 3]`` (crop-major)."""
    views = augment.eval_crops(frames, cfg.test_crop, num_crops)  # [crops, N, T, c, c, 3]
    views = tf.reshape(views, [-1, cfg.frames, cfg.test_crop, cfg.test_crop, 3])
    return (views / 255.0 - tf.constant(cfg.mean)) / tf.constant(cfg.std)


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
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    video_root: str | os.PathLike | None = None,
    split: str | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Evaluation views from video files: ``(clip [T, crop, crop, 3], label, video_id string)``.

    Each video gives ``num_clips`` uniformly spaced temporal clips x ``num_crops`` (1 or 3) spatial
    crops of its short side resized to ``crop`` (default: the model's test crop); the video is opened
    once for all its views. Average them with :func:`~autox3d_tf.data.evaluation.evaluate_views`.
    """
    _check_on_error(on_error)
    ann = _as_annotations(source, video_root, split)
    if not ann.records:
        raise ValueError(f"no videos in {ann.source or 'the given records'}")
    check_videos_exist(ann.records)
    cfg = clip_settings(model, frames, rate, None, crop, None)
    log = error_log if error_log is not None else DecodeErrorLog()
    paths = np.array([r.path for r in ann.records])
    labels = np.array([r.label for r in ann.records], dtype=np.int32)
    ids = np.array([r.video_id for r in ann.records])
    T, V = cfg.frames, num_clips * num_crops

    def load(index: np.ndarray):
        path = str(paths[int(index)])
        try:
            clips, _ = decode_frames_for(
                path, lambda info: eval_clip_indices(info.num_frames, T, cfg.rate, num_clips))
            return clips, True
        except VideoDecodeError as err:
            if on_error == "raise":
                raise
            log.record(path, str(err))
            return np.zeros((num_clips, T, 1, 1, 3), np.uint8), False

    def decode(index):
        clips, ok = tf.numpy_function(load, [index], [tf.uint8, tf.bool], stateful=True)
        clips = tf.ensure_shape(clips, [num_clips, T, None, None, 3])
        return clips, index, tf.ensure_shape(ok, [])

    def views(clips, index, ok):
        v = _views(clips, cfg, num_crops)
        return (v, tf.fill([V], tf.gather(labels, index)), tf.fill([V], tf.gather(ids, index)))

    ds = tf.data.Dataset.range(len(paths))
    ds = ds.map(decode, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.filter(lambda c, i, ok: ok)
    ds = ds.map(views, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.unbatch()
    ds = _finish(ds, batch_size, False)
    ds.error_log = log
    ds.annotations = ann
    ds.clip_settings = cfg
    return ds


# ----------------------------------------------------------------------------------------- TFRecords


def parse_sequence_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one TF Model Garden video ``SequenceExample``: ``{"jpegs": string [N], "label": int32,
    "video_id": string}`` (JPEG frames in ``image/encoded``, label in ``clip/label/index``)."""
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


def _decode_jpegs(jpegs: tf.Tensor) -> tf.Tensor:
    return tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=3), jpegs,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8), parallel_iterations=16)


def _tfrecord_files(pattern: str | Sequence[str]) -> list[str]:
    patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    files: list[str] = []
    for p in patterns:
        p = os.fspath(p)
        matched = sorted(glob.glob(p)) or sorted(glob.glob(p + "-*-of-*.tfrecord")) or sorted(
            glob.glob(p + "*.tfrecord"))
        if not matched:
            raise FileNotFoundError(f"no TFRecord files match {p!r}")
        files += matched
    return files


def _records(files: list[str], shuffle: bool, seed: int | None, deterministic: bool) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def _skip_errors(ds: tf.data.Dataset, on_error: str) -> tf.data.Dataset:
    return ds.ignore_errors(log_warning=True) if on_error == "skip" else ds


def tfrecord_dataset(
    pattern: str | Sequence[str],
    model: str | None = "X3D_S",
    *,
    batch_size: int = 8,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
    flip: bool = True,
    seed: int | None = None,
    shuffle: bool = True,
    shuffle_buffer: int = 256,
    repeat: bool = False,
    drop_remainder: bool = True,
    on_error: str = "skip",
) -> tf.data.Dataset:
    """Training clips from SequenceExample shards (``autox3d to-tfrecord`` or TF Model Garden's
    layout): ``(clip float32 [T, crop, crop, 3], label int32)``, batched and prefetched.

    ``pattern`` is a glob, a list of files, or the ``OUT_PREFIX`` given to ``to-tfrecord``. ``rate``
    counts stored frames (the converter may have changed the frame rate). A record that fails to
    parse or decode is skipped with a logged warning (``on_error="skip"``) or raises.
    """
    _check_on_error(on_error)
    files = _tfrecord_files(pattern)
    cfg = clip_settings(model, frames, rate, crop, None, scale_range)
    T = cfg.frames
    deterministic = seed is not None

    def load(serialized, clip_seed):
        ex = parse_sequence_example(serialized)
        n = tf.shape(ex["jpegs"])[0]
        delta = tf.maximum(n - clip_span(T, cfg.rate), 0)
        u = tf.random.stateless_uniform([], augment._seed(clip_seed, 4), maxval=2**30, dtype=tf.int64)
        start = u % tf.cast(delta + 1, tf.int64)
        idx = (start + tf.range(T, dtype=tf.int64) * cfg.rate) % tf.cast(tf.maximum(n, 1), tf.int64)
        jpegs = tf.gather(ex["jpegs"], idx)
        shape = tf.io.extract_jpeg_shape(jpegs[0])
        window = augment.train_crop_window(shape[0], shape[1], cfg.scale_range, cfg.train_crop, clip_seed)
        patch = tf.map_fn(
            lambda s: tf.io.decode_and_crop_jpeg(s, window, channels=3, dct_method="INTEGER_FAST"), jpegs,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8), parallel_iterations=16)
        clip = augment.finish_train_clip(patch, clip_seed, cfg.train_crop, flip, cfg.mean, cfg.std)
        return clip, ex["label"]

    ds = _records(files, shuffle, seed, deterministic)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = tf.data.Dataset.zip((ds, _seed_stream(seed)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = _skip_errors(ds, on_error)
    ds = _finish(ds, batch_size, drop_remainder)
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
    on_error: str = "skip",
) -> tf.data.Dataset:
    """Evaluation views from SequenceExample shards: ``(clip, label, video_id)``, ``num_clips`` x
    ``num_crops`` views per video (see :func:`video_eval_dataset`)."""
    _check_on_error(on_error)
    files = _tfrecord_files(pattern)
    cfg = clip_settings(model, frames, rate, None, crop, None)
    T, V = cfg.frames, num_clips * num_crops

    def load(serialized):
        ex = parse_sequence_example(serialized)
        n = tf.shape(ex["jpegs"])[0]
        delta = tf.maximum(n - clip_span(T, cfg.rate), 0)
        if num_clips == 1:
            starts = tf.reshape(delta // 2, [1])
        else:
            steps = tf.range(num_clips, dtype=tf.float64) / float(num_clips - 1)
            starts = tf.cast(tf.round(tf.cast(delta, tf.float64) * steps), tf.int32)
        idx = (starts[:, None] + tf.range(T)[None, :] * cfg.rate) % tf.maximum(n, 1)
        frames_ = _decode_jpegs(tf.gather(ex["jpegs"], tf.reshape(idx, [-1])))
        shape = tf.shape(frames_)
        clips = tf.reshape(frames_, tf.concat([[num_clips, T], shape[1:]], 0))
        v = _views(clips, cfg, num_crops)
        return v, tf.fill([V], ex["label"]), tf.fill([V], ex["video_id"])

    ds = _records(files, False, None, True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = _skip_errors(ds, on_error)
    ds = ds.unbatch()
    ds = _finish(ds, batch_size, False)
    ds.clip_settings = cfg
    return ds
