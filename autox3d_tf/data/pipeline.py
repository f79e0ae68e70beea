"""tf.data pipelines over video files (PyAV) and TFRecord shards, for training and evaluation.

    from autox3d_tf.data import video_dataset, video_eval_dataset, evaluate_views
    train = video_dataset("train.csv", model="X3D_S", batch_size=8, seed=0)
    model.fit(train, epochs=10)
    views = video_eval_dataset("val.csv", model="X3D_S", num_clips=10, num_crops=3)
    print(evaluate_views(model, views))          # {'top1': ..., 'top5': ..., 'videos': ...}

Training datasets yield ``(clip float32 [T, crop, crop, 3], label int32)``, batched and prefetched,
ready for ``model.fit`` and ``strategy.experimental_distribute_dataset``. Evaluation datasets yield
``(clip, label, video_id)`` with ``num_clips * num_crops`` views per video.

Clip settings default to the zoo model's (``autox3d_tf.arch.catalog.get_config``): X3D-S is 13 x 6 frames, crop
160 (train) / 182 (test), short-side scale jitter [182, 228]. Every random choice of a clip comes from
one per-clip seed, so a pipeline built with ``seed=`` yields the same clips every run (and new ones
each epoch). Bad videos: a missing file fails when the dataset is built (all of them listed); a file
that fails to decode during iteration is skipped, logged and counted in ``dataset.error_log`` (or,
with ``on_error="raise"``, stops the iteration with an error naming it). TFRecord pipelines do the
same for records that fail to parse or decode and for truncated or corrupt shards.

Kinetics segments (``time_start`` / ``time_end``) restrict clips to that part of the video when it
lies inside it (:mod:`~autox3d_tf.data.sampling`); a segment starting past the video's end samples the
whole video and is listed in ``dataset.error_log.segment_fallbacks``. Under
``strategy.distribute_datasets_from_function``, pass the ``InputContext`` as ``input_context``: each
input pipeline then decodes only its share of the videos (or TFRecord shards, or records).
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
from autox3d_tf.data.decode import VideoDecodeError, VideoInfo, decode_frames_for
from autox3d_tf.layers.normalization import MEAN, STD
from autox3d_tf.data.sampling import Segment, clip_span, eval_clip_indices, segment_frames, train_clip_indices

__all__ = [
    "ClipSettings",
    "DecodeErrorLog",
    "BadRecordError",
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
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD


def clip_settings(
    model: str | None = "X3D_S",
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    test_crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
) -> ClipSettings:
    """The zoo model's clip settings (``autox3d_tf.arch.catalog.get_config``), with any field overridden.

    With ``model=None``, ``frames``, ``rate`` and a crop must be given: ``crop`` (training) or
    ``test_crop`` (evaluation), each defaulting to the other; the scale range defaults to
    ``[crop, round(crop * 1.25)]``.
    """
    if model is not None:
        from autox3d_tf.arch.catalog import get_config

        cfg = get_config(model)
        base = ClipSettings(cfg.frames, cfg.sampling_rate, cfg.train_crop, cfg.test_crop,
                            tuple(cfg.train_scale), tuple(cfg.mean), tuple(cfg.std))
    else:
        if frames is None or rate is None or (crop is None and test_crop is None):
            raise ValueError("without a model, give frames, rate and crop (or test_crop)")
        train = crop or test_crop
        base = ClipSettings(frames, rate, train, test_crop or train, (train, int(round(train * 1.25))))
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
    """Thread-safe record of what a pipeline skipped during iteration.

    ``errors``: ``(path, reason)`` per skipped element (a video file, or for TFRecords a record or the
    unreadable rest of a shard, ``path`` being the shard); ``count``; ``paths`` (distinct files).
    ``segment_fallbacks``: ``(path, reason)`` per video whose annotated segment starts past its end,
    sampled whole instead (see :func:`~autox3d_tf.data.sampling.segment_frames`), recorded once each.
    ``kind`` (``"video"`` or ``"record"``) words the log lines and the summary.
    """

    def __init__(self, kind: str = "video") -> None:
        self._lock = threading.Lock()
        self.kind = kind
        self.errors: list[tuple[str, str]] = []
        self.segment_fallbacks: list[tuple[str, str]] = []
        self._fallback_paths: set[str] = set()

    def record(self, path: str, reason: str) -> None:
        with self._lock:
            self.errors.append((path, reason))
            n = len(self.errors)
        logger.warning("skipped bad %s (%d so far): %s", self.kind, n, reason)

    def record_segment_fallback(self, path: str, reason: str) -> None:
        """Notes (once per video) that its segment was past the end and the whole video was used."""
        with self._lock:
            if path in self._fallback_paths:
                return
            self._fallback_paths.add(path)
            self.segment_fallbacks.append((path, reason))
        logger.warning("annotated segment past the end of the video, sampling the whole video: %s", reason)

    @property
    def count(self) -> int:
        return len(self.errors)

    @property
    def paths(self) -> list[str]:
        """Distinct skipped files, in order of first failure."""
        return list(dict.fromkeys(p for p, _ in self.errors))

    def summary(self) -> str:
        """One line per distinct bad file, with the number of skips; then any segment fallbacks."""
        if not self.errors:
            lines = [f"no bad {self.kind}s"]
        else:
            counts: dict[str, int] = {}
            reasons: dict[str, str] = {}
            for p, r in self.errors:
                counts[p] = counts.get(p, 0) + 1
                reasons.setdefault(p, r)
            if self.kind == "video":
                lines = [f"{self.count} clips skipped from {len(counts)} bad videos:"]
            else:
                lines = [f"{self.count} bad {self.kind}s skipped in {len(counts)} files:"]
            lines += [f"  {reasons[p]} (x{counts[p]})" for p in counts]
        if self.segment_fallbacks:
            lines.append(f"{len(self.segment_fallbacks)} videos sampled whole (segment past their end):")
            lines += [f"  {r}" for _, r in self.segment_fallbacks]
        return "\n".join(lines)

    def reset(self) -> None:
        with self._lock:
            self.errors.clear()
            self.segment_fallbacks.clear()
            self._fallback_paths.clear()


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


def _pipelines(input_context: tf.distribute.InputContext | None) -> tuple[int, int]:
    """``(number of input pipelines, this pipeline's id)`` (``(1, 0)`` without a context)."""
    if input_context is None:
        return 1, 0
    return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)


def _share(items: list, input_context: tf.distribute.InputContext | None, what: str) -> list:
    """This input pipeline's share of ``items`` (every ``n``-th, from its id): disjoint, covering."""
    n, i = _pipelines(input_context)
    if n <= 1:
        return items
    share = items[i::n]
    if not share:
        raise ValueError(f"{len(items)} {what} cannot feed {n} input pipelines: pipeline {i} gets none")
    return share


def _pipeline_seed(seed: int | None, input_context: tf.distribute.InputContext | None) -> int | None:
    """A distinct seed per input pipeline, so workers do not draw the same clip parameters."""
    _, i = _pipelines(input_context)
    return None if seed is None else int(seed) + 1_000_003 * i


def _video_share(ann: Annotations, input_context) -> Annotations:
    """Annotations of the videos this input pipeline decodes (all of them without a context)."""
    if not ann.records:
        raise ValueError(f"no videos in {ann.source or 'the given records'}")
    records = _share(list(ann.records), input_context, "videos")
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
    input_context: tf.distribute.InputContext | None = None,
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
    _check_on_error(on_error)
    ann = _video_share(_as_annotations(source, video_root, split), input_context)
    check_videos_exist(ann.records)
    cfg = clip_settings(model, frames, rate, crop, None, scale_range)
    if flip is None:
        flip = ann.format != "ssv2"
    seed = _pipeline_seed(seed, input_context)
    log = error_log if error_log is not None else DecodeErrorLog()
    recs = list(ann.records)
    labels = np.array([r.label for r in recs], dtype=np.int32)
    n = len(recs)
    T = cfg.frames

    def load(index: np.ndarray, clip_seed: np.ndarray):
        rec = recs[int(index)]
        path = rec.path
        rng = np.random.default_rng([int(clip_seed) & 0xFFFFFFFFFFFF, 17])

        def choose(info: VideoInfo) -> np.ndarray:
            return train_clip_indices(info.num_frames, T, cfg.rate, rng, _segment(info, rec, log))

        try:
            clip, _ = decode_frames_for(path, choose)
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
    return augment.normalize_clip(views, cfg.mean, cfg.std)


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
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Evaluation views from video files: ``(clip [T, crop, crop, 3], label, video_id string)``.

    Each video gives ``num_clips`` uniformly spaced temporal clips (of its annotated segment, as in
    :func:`video_dataset`) x ``num_crops`` (1 or 3) spatial crops of its short side resized to
    ``crop`` (default: the model's test crop; with ``model=None`` give ``frames``, ``rate`` and
    ``crop``); the video is opened once for all its views. With ``input_context`` this pipeline
    reads only its share of the videos (all views of a video stay together). Average the views with
    :func:`~autox3d_tf.data.evaluation.evaluate_views`.
    """
    _check_on_error(on_error)
    ann = _video_share(_as_annotations(source, video_root, split), input_context)
    check_videos_exist(ann.records)
    cfg = clip_settings(model, frames, rate, None, crop, None)
    log = error_log if error_log is not None else DecodeErrorLog()
    recs = list(ann.records)
    labels = np.array([r.label for r in recs], dtype=np.int32)
    ids = np.array([r.video_id for r in recs])
    T, V = cfg.frames, num_clips * num_crops

    def load(index: np.ndarray):
        rec = recs[int(index)]
        path = rec.path

        def choose(info: VideoInfo) -> np.ndarray:
            return eval_clip_indices(info.num_frames, T, cfg.rate, num_clips, _segment(info, rec, log))

        try:
            clips, _ = decode_frames_for(path, choose)
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

    ds = tf.data.Dataset.range(len(recs))
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
    n, i = _pipelines(input_context)
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
    _check_on_error(on_error)
    files = _tfrecord_files(pattern)
    cfg = clip_settings(model, frames, rate, crop, None, scale_range)
    T = cfg.frames
    seed = _pipeline_seed(seed, input_context)
    deterministic = seed is not None
    log = error_log if error_log is not None else DecodeErrorLog("record")
    bad_record, shard_end = _record_reporter(log, on_error)

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
    ds = tf.data.Dataset.zip((ds, _seed_stream(seed)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.filter(lambda clip, label, ok: ok).map(lambda clip, label, ok: (clip, label))
    ds = _finish(ds, batch_size, drop_remainder)
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
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Evaluation views from SequenceExample shards: ``(clip, label, video_id)``, ``num_clips`` x
    ``num_crops`` views per video (see :func:`video_eval_dataset`). Bad records and shards, and
    ``input_context``, as in :func:`tfrecord_dataset`."""
    _check_on_error(on_error)
    files = _tfrecord_files(pattern)
    cfg = clip_settings(model, frames, rate, None, crop, None)
    T, V = cfg.frames, num_clips * num_crops
    log = error_log if error_log is not None else DecodeErrorLog("record")
    bad_record, shard_end = _record_reporter(log, on_error)

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
    ds = _finish(ds, batch_size, False)
    ds.error_log = log
    ds.clip_settings = cfg
    return ds
