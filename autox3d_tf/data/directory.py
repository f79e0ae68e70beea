"""Annotations of a folder of videos: one sub-folder per class, as ``keras.utils.image_dataset_from_directory``.

    data/
      abseiling/  a.mp4  b.webm
      zumba/      c.mp4  d/00001.jpg d/00002.jpg ...      (the frame folder d/ is one video)

    ann = directory_annotations("data")                    # classes ["abseiling", "zumba"]
    train, val = split_annotations(ann, 0.2, "both", seed=1)

The class of a video is the class sub-folder it lies in, at any depth; class names are the sorted
sub-folder names (hidden ones skipped), or ``class_names`` (a subset of them, in that order). Videos
are the files with one of ``extensions``, and frame folders (:mod:`~autox3d_tf.data.frame_folder`: a
folder holding JPEG / PNG frames, or an empty leaf folder, which is reported when decoded).
``labels=None`` reads the whole folder unlabelled (label -1), e.g. a folder of Jester frame folders;
``labels`` as a list gives the labels of the videos in path order. Symbolic links to folders below
the class folders are followed only with ``follow_links``. Nothing is written into the folder: its
class names come from its sub-folders.

The split (:func:`split_annotations`) mirrors Keras': the videos, permuted by ``seed`` (kept in
order without one), the last ``int(validation_split * n)`` for validation and the rest for
training, so the two subsets are disjoint and cover the folder whichever is asked first.

Plain Python and NumPy (no TensorFlow).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from autox3d_tf.data.annotations import VIDEO_EXTENSIONS, Annotations, ClassMap, VideoRecord
from autox3d_tf.data.frame_folder import FRAME_EXTENSIONS

__all__ = [
    "VIDEO_EXTENSIONS",
    "DIRECTORY_FORMAT",
    "class_folders",
    "directory_annotations",
    "check_split_arguments",
    "split_annotations",
]

DIRECTORY_FORMAT = "directory"


def class_folders(directory: str | os.PathLike) -> list[str]:
    """The class sub-folders of ``directory``: sorted names, hidden ones skipped."""
    directory = os.fspath(directory)
    return [n for n in sorted(os.listdir(directory))
            if not n.startswith(".") and os.path.isdir(os.path.join(directory, n))]


def _extensions(extensions: Sequence[str] | str) -> tuple[str, ...]:
    extensions = (extensions,) if isinstance(extensions, str) else tuple(extensions)
    return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def _holds_frames(filenames: Sequence[str]) -> bool:
    return any(not n.startswith(".") and os.path.splitext(n)[1].lower() in FRAME_EXTENSIONS for n in filenames)


def _videos_under(folder: str, extensions: tuple[str, ...], follow_links: bool) -> list[str]:
    """Video files and frame folders below ``folder`` (not ``folder`` itself), in path order."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_links):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (follow_links or not os.path.islink(os.path.join(dirpath, d))))
        if dirpath != folder and (_holds_frames(filenames) or not (dirnames or filenames)):
            found.append(dirpath)
            dirnames[:] = []
            continue
        found += [os.path.join(dirpath, n) for n in sorted(filenames)
                  if not n.startswith(".") and os.path.splitext(n)[1].lower() in extensions]
    return found


def _no_videos(directory: str, folders: Sequence[str], ext: tuple[str, ...]) -> ValueError:
    hint = ""
    if any(_holds_frames(os.listdir(f)) for f in folders):
        hint = (" (a folder that holds JPEG / PNG frames is one video: a dataset folder holds class folders, "
                "which hold videos or frame folders; labels=None reads a folder of frame folders)")
    return ValueError(f"No videos found in directory {directory}. Allowed extensions: {', '.join(ext)}, "
                      f"and frame folders{hint}")


def _labels_argument(labels, class_names) -> None:
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the "
                         "number of videos in the target directory. If you wish to infer the labels from the "
                         'subdirectory names in the target directory, pass `labels="inferred"`. If you wish to '
                         f"get a dataset that only contains videos (no labels), pass `labels=None`. "
                         f"Received: labels={labels}")
    if class_names is not None and labels != "inferred":
        raise ValueError(f'You can only pass `class_names` if `labels="inferred"`. Received: labels={labels}, '
                         f"and class_names={class_names}")


def directory_annotations(
    directory: str | os.PathLike,
    labels: str | Sequence[int] | None = "inferred",
    class_names: Sequence[str] | None = None,
    extensions: Sequence[str] | str = VIDEO_EXTENSIONS,
    follow_links: bool = False,
    class_map: ClassMap | None = None,
) -> Annotations:
    """The videos of ``directory`` as :class:`Annotations` (format ``"directory"``).

    Args:
      directory: a folder of class sub-folders (or, with ``labels`` not ``"inferred"``, of videos).
      labels: ``"inferred"`` (from the class sub-folders), None (unlabelled: label -1), or a list of
        integer labels, one per video in path order (class names ``"0"``, ``"1"``, ...).
      class_names: with ``labels="inferred"``: the classes to read, a subset of the sub-folders,
        whose order gives the labels (default: every sub-folder, sorted).
      extensions: the video file extensions read (frame folders are always read).
      follow_links: follow symbolic links to folders inside the class folders.
      class_map: a fixed class-index map (a training run's): every class sub-folder must be in it
        and labels are its indices (``load_annotations(directory, classes=...)``).

    Records are in path order within each class, classes in label order. A video's id is its
    path below ``directory`` without extension, so ids are unique.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"video folder not found: {directory}")
    _labels_argument(labels, class_names)
    ext = _extensions(extensions)
    if labels == "inferred":
        cmap, items, searched = _inferred(directory, class_names, class_map, ext, follow_links)
    else:
        cmap, items = _listed(directory, labels, class_map, ext, follow_links)
        searched = [directory]
    if not items:
        raise _no_videos(directory, searched, ext)
    records = [VideoRecord(path=path, label=label, label_name=name, video_id=_video_id(directory, path))
               for path, label, name in items]
    return Annotations(records=records, classes=cmap, source=directory, format=DIRECTORY_FORMAT)


def _video_id(directory: str, path: str) -> str:
    below = os.path.relpath(path, directory)
    return (below if os.path.isdir(path) else os.path.splitext(below)[0]).replace(os.sep, "/")


def _inferred(directory: str, class_names, class_map, ext, follow_links):
    """``(class map, [(path, label, class name)], class folders)`` of the class sub-folders."""
    subdirs = class_folders(directory)
    if class_names is not None:
        if not set(class_names).issubset(subdirs):
            raise ValueError(f"The `class_names` passed did not match the names of the subdirectories of the "
                             f"target directory {directory}. Expected: {subdirs} (or a subset of it), but "
                             f"received: class_names={list(class_names)}")
        subdirs = list(class_names)
    if class_map is not None:
        unknown = sorted(set(subdirs) - set(class_map.names))
        if unknown:
            raise ValueError(f"{directory}: {len(unknown)} class folders are not in the class map: {unknown[:10]}")
    cmap = class_map if class_map is not None else ClassMap(list(subdirs))
    folders = [os.path.join(directory, name) for name in subdirs]
    items = [(path, cmap.index[name], name)
             for name, folder in zip(subdirs, folders) for path in _videos_under(folder, ext, follow_links)]
    return cmap, items, folders


def _listed(directory: str, labels, class_map, ext, follow_links):
    """``(class map, [(path, label, class name)])`` of every video below ``directory``, labelled -1
    (``labels=None``) or by the list ``labels``."""
    paths = _videos_under(directory, ext, follow_links)
    if labels is None:
        return (class_map if class_map is not None else ClassMap([])), [(path, -1, "") for path in paths]
    if len(labels) != len(paths):
        raise ValueError(f"Expected the lengths of `labels` to match the number of videos in the target "
                         f"directory. len(labels) is {len(labels)} while we found {len(paths)} videos in "
                         f"directory {directory}.")
    top = max(labels, default=-1)
    cmap = class_map if class_map is not None else ClassMap([str(i) for i in range(top + 1)])
    return cmap, [(path, int(y), cmap.names[y] if 0 <= y < len(cmap) else str(y)) for path, y in zip(paths, labels)]


def check_split_arguments(validation_split: float | None, subset: str | None, shuffle: bool, seed: int | None) -> None:
    """Raises Keras' ``ValueError`` for inconsistent ``validation_split`` / ``subset`` / ``seed``."""
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, "
                         "to make sure that there is no overlap between the training and validation subset.")


def _subset(ann: Annotations, keep: np.ndarray, name: str, validation_split: float) -> Annotations:
    records = [r for r, k in zip(ann.records, keep) if k]
    if not records:
        raise ValueError(f"No {name} videos in {ann.source}: validation_split={validation_split} of "
                         f"{len(ann.records)} videos leaves the {name} subset empty")
    return Annotations(records=records, classes=ann.classes, source=ann.source, format=ann.format)


def split_annotations(
    ann: Annotations, validation_split: float | None, subset: str | None, seed: int | None = None
) -> Annotations | tuple[Annotations, Annotations]:
    """The ``subset`` (``"training"``, ``"validation"``, or ``"both"``: the pair) of ``ann`` under
    ``validation_split``; ``ann`` itself without a split. Records keep their order in each subset;
    the split depends only on the videos, ``validation_split`` and ``seed``."""
    check_split_arguments(validation_split, subset, False, seed)
    if not validation_split:
        return ann
    n = len(ann.records)
    order = np.arange(n)
    if seed is not None:
        np.random.RandomState(seed).shuffle(order)
    validation = np.zeros(n, bool)
    validation[order[n - int(validation_split * n):]] = True
    pair = (_subset(ann, ~validation, "training", validation_split),
            _subset(ann, validation, "validation", validation_split))
    return pair if subset == "both" else pair[subset == "validation"]
