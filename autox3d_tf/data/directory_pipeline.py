"""Video datasets from a folder of class sub-folders, like ``keras.utils.image_dataset_from_directory``.

    from autox3d_tf.data import video_dataset_from_directory, video_eval_dataset_from_directory
    train, val = video_dataset_from_directory("data", validation_split=0.2, subset="both", seed=1,
                                              model="X3D_S", batch_size=8)
    train.class_names                       # ["abseiling", "zumba"]: the sorted sub-folders
    views = video_eval_dataset_from_directory("data", validation_split=0.2, subset="validation", seed=1)

The folder layout, the class names and the split are :mod:`~autox3d_tf.data.directory`'s; the clips
are :func:`~autox3d_tf.data.video_pipeline.video_dataset`'s and
:func:`~autox3d_tf.data.video_pipeline.video_eval_dataset`'s. The two functions split a folder the
same way under the same ``validation_split`` and ``seed``, so a model trained on the training
subset can be scored on the validation subset. Every returned dataset has ``class_names`` and
``file_paths`` (its subset's videos, in folder order), besides the pipelines' ``error_log``,
``annotations`` and ``clip_settings``.

TensorFlow only (tf.data).
"""

from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf

from autox3d_tf.data.annotations import Annotations
from autox3d_tf.data.directory import VIDEO_EXTENSIONS, check_split_arguments, directory_annotations, split_annotations
from autox3d_tf.data.error_log import DecodeErrorLog
from autox3d_tf.data.video_pipeline import video_dataset, video_eval_dataset

__all__ = ["video_dataset_from_directory", "video_eval_dataset_from_directory"]

LABEL_MODES = ("int", "categorical", "binary", None)
_ATTRIBUTES = ("error_log", "annotations", "clip_settings")


def _annotations(directory, labels, label_mode, class_names, validation_split, subset, shuffle, seed, extensions,
                 follow_links) -> Annotations | tuple[Annotations, Annotations]:
    if label_mode not in LABEL_MODES:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    check_split_arguments(validation_split, subset, shuffle, seed)
    ann = directory_annotations(directory, labels, class_names, extensions, follow_links)
    if label_mode == "binary" and len(ann.classes) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={ann.classes.names}")
    return split_annotations(ann, validation_split, subset, seed)


def _labelled(ds: tf.data.Dataset, label_mode: str | None, num_classes: int) -> tf.data.Dataset:
    if label_mode == "int":
        out = ds
    elif label_mode is None:
        out = ds.map(lambda clip, label: clip, num_parallel_calls=tf.data.AUTOTUNE)
    elif label_mode == "categorical":
        out = ds.map(lambda clip, label: (clip, tf.one_hot(label, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        out = ds.map(lambda clip, label: (clip, tf.cast(label, tf.float32)[..., None]),
                     num_parallel_calls=tf.data.AUTOTUNE)
    for name in _ATTRIBUTES:
        setattr(out, name, getattr(ds, name))
    return out


def _named(ds: tf.data.Dataset, ann: Annotations, labelled: bool) -> tf.data.Dataset:
    ds.class_names = list(ann.classes.names) if labelled else None
    ds.file_paths = [r.path for r in ann.records]
    return ds


def video_dataset_from_directory(
    directory: str | os.PathLike,
    labels: str | Sequence[int] | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    *,
    model: str | None = "X3D_S",
    batch_size: int = 8,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    extensions: Sequence[str] | str = VIDEO_EXTENSIONS,
    follow_links: bool = False,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    scale_range: tuple[int, int] | None = None,
    segments: int = 1,
    flip: bool | None = None,
    repeat: bool = False,
    drop_remainder: bool = True,
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Training clips from a folder of class sub-folders (videos or frame folders), batched.

    Args:
      directory: one sub-folder per class (see :mod:`~autox3d_tf.data.directory`).
      labels: ``"inferred"`` (the class sub-folders), None (no labels), or one integer per video in
        path order.
      label_mode: ``"int"`` (int32 labels), ``"categorical"`` (one-hot float32), ``"binary"``
        (float32 ``[1]``, two classes), or None (clips only).
      class_names: with ``labels="inferred"``, the classes to read (a subset of the sub-folders),
        in label order; default all of them, sorted.
      validation_split / subset / seed: a fraction of the videos held out by file; ``subset`` is
        ``"training"``, ``"validation"`` or ``"both"`` (returns the pair; the validation dataset is
        not shuffled). With ``shuffle``, a split needs ``seed`` (it also seeds the clips).
      extensions: the video file extensions read; follow_links: follow linked folders.
      The other arguments are :func:`~autox3d_tf.data.video_pipeline.video_dataset`'s.

    Elements: ``(clip float32 [T, crop, crop, 3], label)`` per ``label_mode``, or ``clip``.
    """
    split = _annotations(directory, labels, label_mode, class_names, validation_split, subset, shuffle, seed,
                         extensions, follow_links)
    labelled = labels is not None and label_mode is not None
    mode = label_mode if labelled else None
    kw = dict(batch_size=batch_size, frames=frames, rate=rate, crop=crop, scale_range=scale_range, segments=segments,
              flip=flip,
              seed=seed, drop_remainder=drop_remainder, on_error=on_error, error_log=error_log,
              num_parallel_calls=num_parallel_calls, input_context=input_context)

    def build(ann: Annotations, shuffled: bool) -> tf.data.Dataset:
        ds = video_dataset(ann, model, shuffle=shuffled, repeat=repeat, **kw)
        return _named(_labelled(ds, mode, len(ann.classes)), ann, labelled)

    if subset == "both":
        return build(split[0], shuffle), build(split[1], False)
    return build(split, shuffle)


def video_eval_dataset_from_directory(
    directory: str | os.PathLike,
    labels: str | Sequence[int] | None = "inferred",
    class_names: Sequence[str] | None = None,
    *,
    model: str | None = "X3D_S",
    num_clips: int = 10,
    num_crops: int = 3,
    batch_size: int = 8,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    extensions: Sequence[str] | str = VIDEO_EXTENSIONS,
    follow_links: bool = False,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    segments: int = 1,
    on_error: str = "skip",
    error_log: DecodeErrorLog | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Multi-view evaluation views ``(clip, label int32, video_id)`` of a folder of class
    sub-folders: :func:`~autox3d_tf.data.video_pipeline.video_eval_dataset` on the folder, or on
    the ``subset`` of its split (the same split as :func:`video_dataset_from_directory`'s under the
    same ``validation_split`` and ``seed``). Unlabelled videos (``labels=None``) have label -1;
    video ids are paths below ``directory`` without extension."""
    split = _annotations(directory, labels, "int", class_names, validation_split, subset, False, seed,
                         extensions, follow_links)
    kw = dict(num_clips=num_clips, num_crops=num_crops, batch_size=batch_size, frames=frames, rate=rate, crop=crop,
              segments=segments, on_error=on_error, error_log=error_log, num_parallel_calls=num_parallel_calls,
              input_context=input_context)

    def build(ann: Annotations) -> tf.data.Dataset:
        return _named(video_eval_dataset(ann, model, **kw), ann, labels is not None)

    if subset == "both":
        return build(split[0]), build(split[1])
    return build(split)
