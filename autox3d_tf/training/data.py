"""Training / evaluation datasets for the training scripts, on top of :mod:`autox3d_tf.data`.

TensorFlow only (tf.data).

- :func:`~autox3d_tf.data.clip.resolve_clip` (importable here too): the clip settings, resolved in
  :mod:`autox3d_tf.data.clip` for every caller.
- :func:`shuffle_frames`: a dataset map that permutes every clip's frames in time (one random
  permutation per clip): the "no motion" control, which keeps appearance and destroys motion.
- :func:`train_dataset`, :func:`eval_dataset`: video files (annotation CSV / list / JSON, or a
  folder of class sub-folders) or SequenceExample TFRecords, with the class map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import tensorflow as tf

from autox3d_tf.data.clip import ClipSettings, resolve_clip
from autox3d_tf.data.tfrecord_format import find_shards, matching_shards

__all__ = [
    "resolve_clip",
    "permute_frames",
    "shuffle_frames",
    "is_tfrecord_source",
    "load_class_names",
    "DataInfo",
    "train_dataset",
    "eval_dataset",
]


def permute_frames(clip: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Permutes the frames of ``clip`` (``[T, H, W, C]`` or a batch ``[B, T, H, W, C]``) with one
    random permutation per clip, drawn from the stateless ``seed`` (int ``[2]``)."""
    rank = clip.shape.rank
    if rank not in (4, 5):
        raise ValueError(f"clips must be [T, H, W, C] or [B, T, H, W, C], got rank {rank}")
    keys = tf.random.stateless_uniform(tf.shape(clip)[: rank - 3], seed=seed)
    order = tf.argsort(keys, axis=-1)
    return tf.gather(clip, order, axis=rank - 4, batch_dims=rank - 4)


def shuffle_frames(dataset: tf.data.Dataset, seed: int | None = None) -> tf.data.Dataset:
    """``dataset`` (elements ``(clip, ...)``, batched or not) with every clip's frames randomly
    permuted in time; a new permutation each epoch, reproducible under ``seed``. Attributes that
    the pipelines attach (``error_log``, ``annotations``, ``clip_settings``) are kept."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def apply(element, pair):
        if isinstance(element, (tuple, list)):
            return (permute_frames(element[0], pair), *element[1:])
        return permute_frames(element, pair)

    out = tf.data.Dataset.zip((dataset, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    for name in ("error_log", "annotations", "clip_settings"):
        if hasattr(dataset, name):
            setattr(out, name, getattr(dataset, name))
    return out


def is_tfrecord_source(source: str | os.PathLike) -> bool:
    """True for TFRecord globs / files / ``to-tfrecord`` output prefixes, False for annotation files
    and folders of videos."""
    source = os.fspath(source)
    if os.path.isdir(source):
        return False
    if os.path.isfile(source):
        return source.endswith((".tfrecord", ".tfrecords")) or ".tfrecord-" in source
    return bool(matching_shards(source))


def load_class_names(source: str, classes: Sequence[str] | str | None = None) -> list[str] | None:
    """Class names: ``classes`` (a list, or a class-map file), else a folder's class sub-folders,
    else ``{prefix}.classes.json`` (what ``to-tfrecord`` writes beside its shards), else
    ``classes.json`` beside the data (annotation file or TFRecord shards), else None."""
    from autox3d_tf.data.annotations import CLASS_MAP_FILENAME, ClassMap
    from autox3d_tf.data.directory import class_folders

    if classes is not None:
        return list(ClassMap.load(classes).names) if isinstance(classes, (str, os.PathLike)) else list(classes)
    source = os.fspath(source)
    if os.path.isdir(source):
        return class_folders(source) or None
    beside = os.path.join(os.path.dirname(os.path.abspath(source)), CLASS_MAP_FILENAME)
    for path in (f"{source}.classes.json", beside):
        if os.path.isfile(path):
            return list(ClassMap.load(path).names)
    return None


@dataclass
class DataInfo:
    """What a dataset holds: examples (videos or records), class names, clip settings."""

    num_examples: int
    class_names: list[str]
    clip: ClipSettings
    kind: str  # "video" or "tfrecord"


@dataclass(frozen=True)
class HoldOut:
    """A deterministic split of a video source into a training and a validation subset (Keras'
    ``validation_split`` / ``subset`` / ``seed``, by video): ``fraction`` of the videos, chosen by
    ``seed``, form the validation subset; ``subset`` is the one read."""

    fraction: float
    subset: str
    seed: int = 0


def select_annotations(source: str, class_names: Sequence[str] | None, split: str | None,
                       hold_out: HoldOut | None = None):
    """The `Annotations` of a video source: its ``split`` rows (Kinetics CSV), labelled with
    ``class_names`` when given, and only ``hold_out``'s subset of its videos when given."""
    from autox3d_tf.data.annotations import load_annotations
    from autox3d_tf.data.directory import split_annotations

    ann = load_annotations(source, split=split, classes=list(class_names) if class_names else None)
    if hold_out is None:
        return ann
    return split_annotations(ann, hold_out.fraction, hold_out.subset, hold_out.seed)


def _no_hold_out_for_tfrecords(source: str, hold_out: HoldOut | None) -> None:
    if hold_out is not None:
        raise ValueError(f"a validation split is drawn from videos, not TFRecords ({source}): split the videos "
                         "before `to-tfrecord`, or give separate validation data")


def _count_records(pattern: str) -> int:
    return int(sum(1 for _ in tf.data.TFRecordDataset(find_shards(pattern))))


def train_dataset(
    source: str,
    model: str,
    clip: ClipSettings,
    *,
    batch_size: int,
    class_names: Sequence[str] | str | None = None,
    split: str | None = None,
    seed: int | None = None,
    shuffle_time: bool = False,
    one_hot: bool = True,
    repeat: bool = True,
    flip: bool | None = None,
    hold_out: HoldOut | None = None,
    segments: int = 1,
    input_context: tf.distribute.InputContext | None = None,
) -> tuple[tf.data.Dataset, DataInfo]:
    """Batched training clips ``(clip, one_hot_label)`` (or int labels) from video files or TFRecords.

    The class names come from ``class_names``, a folder's class sub-folders, or the data's
    ``classes.json`` (video annotations build it when missing). With ``shuffle_time`` every clip's frames are permuted in time. With
    ``input_context`` (``strategy.distribute_datasets_from_function``) the dataset reads only this
    input pipeline's share of the videos or TFRecords and ``batch_size`` is its batch; the
    :class:`DataInfo` still describes the whole data set. With ``hold_out`` only its subset of the
    videos is read. With ``segments=K`` a clip is K snippets ``[K * frames, crop, crop, 3]``
    (`autox3d_tf.data.video_dataset`)."""
    from autox3d_tf.data.tfrecord_pipeline import tfrecord_dataset
    from autox3d_tf.data.video_pipeline import video_dataset

    source = os.fspath(source)
    names = load_class_names(source, class_names)
    kw = dict(frames=clip.frames, rate=clip.rate, crop=clip.train_crop, scale_range=clip.scale_range,
              segments=segments)
    if is_tfrecord_source(source):
        _no_hold_out_for_tfrecords(source, hold_out)
        if not names:
            raise ValueError(f"no class map for {source}: put classes.json beside the shards or pass class_names")
        ds = tfrecord_dataset(source, model, batch_size=batch_size, seed=seed, repeat=repeat,
                              flip=True if flip is None else flip, input_context=input_context, **kw)
        info = DataInfo(_count_records(source), names, clip, "tfrecord")
    else:
        ann = select_annotations(source, names, split, hold_out)
        ds = video_dataset(ann, model, batch_size=batch_size, seed=seed, repeat=repeat, flip=flip,
                           input_context=input_context, **kw)
        info = DataInfo(len(ann), list(ann.classes.names), clip, "video")
    if shuffle_time:
        ds = shuffle_frames(ds, None if seed is None else seed + 7919)
    if one_hot:
        depth = len(info.class_names)
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, depth)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info


def eval_dataset(
    source: str,
    model: str,
    clip: ClipSettings,
    *,
    batch_size: int,
    num_clips: int = 10,
    num_crops: int = 3,
    class_names: Sequence[str] | str | None = None,
    split: str | None = None,
    shuffle_time: bool = False,
    seed: int | None = None,
    hold_out: HoldOut | None = None,
    segments: int = 1,
) -> tuple[tf.data.Dataset, DataInfo]:
    """Evaluation views ``(clip, label, video_id)``: ``num_clips`` x ``num_crops`` per video at the
    test crop, from video files or TFRecords (see ``autox3d_tf.data.video_eval_dataset``, also for
    ``segments``); with ``hold_out``, of its subset of the videos only."""
    from autox3d_tf.data.tfrecord_pipeline import tfrecord_eval_dataset
    from autox3d_tf.data.video_pipeline import video_eval_dataset

    source = os.fspath(source)
    names = load_class_names(source, class_names)
    kw = dict(frames=clip.frames, rate=clip.rate, crop=clip.test_crop, num_clips=num_clips, num_crops=num_crops,
              segments=segments)
    if is_tfrecord_source(source):
        _no_hold_out_for_tfrecords(source, hold_out)
        ds = tfrecord_eval_dataset(source, model, batch_size=batch_size, **kw)
        info = DataInfo(_count_records(source), names or [], clip, "tfrecord")
    else:
        ann = select_annotations(source, names, split, hold_out)
        ds = video_eval_dataset(ann, model, batch_size=batch_size, **kw)
        info = DataInfo(len(ann), list(ann.classes.names), clip, "video")
    if shuffle_time:
        ds = shuffle_frames(ds, seed)
    return ds, info
