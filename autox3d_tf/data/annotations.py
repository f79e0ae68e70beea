"""Annotation formats and the class-index map.

Three formats, read into a list of :class:`VideoRecord`:

- Kinetics CSV: ``label,youtube_id,time_start,time_end,split``. Files are looked up under the video
  root by name: ``{youtube_id}_{time_start:06d}_{time_end:06d}.*`` or ``{youtube_id}.*``, in any
  sub-folder (``train/abseiling/...``); an optional ``path`` column names the file directly. A file
  with the long name is already cut to its segment (``trimmed``); in any other file, clips are
  sampled only from ``[time_start, time_end)`` of the file (see :mod:`autox3d_tf.data.sampling` for
  segments that reach or pass the end of the file).
- PySlowFast lists: one ``path label`` per line (space, tab or comma separated), paths relative to the
  video root.
- Something-Something v2 JSON: a list of ``{"id", "template", ...}``; the class is the template with
  its ``[something]`` brackets removed; files are ``{id}.webm`` (or any extension) under the root.

The class-index map (class name -> index) is built once, from the first annotation file loaded, as
the sorted list of names (the Kinetics order), and saved as ``classes.json`` beside the annotation
file; later loads (the validation split, the TFRecord converter) read it, so train and eval agree.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

__all__ = [
    "VideoRecord",
    "Annotations",
    "MissingVideosError",
    "ClassMap",
    "load_annotations",
    "detect_format",
    "check_videos_exist",
    "CLASS_MAP_FILENAME",
]

CLASS_MAP_FILENAME = "classes.json"
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv")


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video: its file, class index, id, and optional segment in seconds.

    ``start`` / ``end`` (Kinetics ``time_start`` / ``time_end``) restrict clips to that segment of
    the file, unless ``trimmed``: the file already holds only the segment (Kinetics' released
    ``{id}_{start:06d}_{end:06d}`` files), so the times refer to the source video, not to the file.
    """

    path: str
    label: int
    video_id: str
    label_name: str = ""
    start: float | None = None
    end: float | None = None
    trimmed: bool = False

    @property
    def segment(self) -> tuple[float | None, float | None]:
        """``(start, end)`` in seconds of the file to sample from; ``(None, None)``: the whole file."""
        return (None, None) if self.trimmed else (self.start, self.end)


class MissingVideosError(FileNotFoundError):
    """Annotated videos that are not on disk; ``missing`` lists their expected paths."""

    def __init__(self, missing: Sequence[str], total: int, show: int = 10):
        self.missing = list(missing)
        listed = "\n  ".join(self.missing[:show])
        more = f"\n  ... and {len(self.missing) - show} more" if len(self.missing) > show else ""
        super().__init__(f"{len(self.missing)} of {total} annotated videos are missing:\n  {listed}{more}")


@dataclass
class ClassMap:
    """Class names in index order, with JSON save/load (``{"classes": [...]}``)."""

    names: list[str] = field(default_factory=list)

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the map as JSON (atomically)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"classes": self.names}, f, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ClassMap":
        """Reads a map written by :meth:`save`, or a plain JSON list, or a ``{name: index}`` dict
        (Something-Something's ``labels.json``), or a text file with one name per line."""
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".txt"):
            return cls([line.strip() for line in text.splitlines() if line.strip()])
        data = json.loads(text)
        if isinstance(data, dict) and "classes" in data:
            return cls(list(data["classes"]))
        if isinstance(data, list):
            return cls([str(x) for x in data])
        if isinstance(data, dict):
            ordered = sorted(data.items(), key=lambda kv: int(kv[1]))
            return cls([k for k, _ in ordered])
        raise ValueError(f"{path}: not a class map")

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "ClassMap":
        """The sorted set of ``names`` (Kinetics' alphabetical order)."""
        return cls(sorted(set(names)))


@dataclass
class Annotations:
    """Records and the class map they were labelled with."""

    records: list[VideoRecord]
    classes: ClassMap
    source: str = ""
    format: str = ""

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def detect_format(path: str) -> str:
    """``"kinetics"``, ``"slowfast"`` or ``"ssv2"`` from a file's extension and first line."""
    if path.endswith(".json"):
        return "ssv2"
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip().lower()
    if path.endswith(".csv") and "youtube_id" in first:
        return "kinetics"
    if "youtube_id" in first and "label" in first:
        return "kinetics"
    return "slowfast"


def _index_files(root: str) -> dict[str, str]:
    """Maps each video file's stem (name without extension) under ``root`` to its path."""
    found: dict[str, str] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS and stem not in found:
                found[stem] = os.path.join(dirpath, name)
    return found


def _kinetics(path: str, root: str, split: str | None) -> tuple[list[dict], list[str]]:
    rows: list[dict] = []
    all_names: list[str] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        required = {"youtube_id", "time_start", "time_end"}
        if not required.issubset(reader.fieldnames or []):
            raise ValueError(f"{path}: Kinetics CSV needs columns label,youtube_id,time_start,time_end,split;"
                             f" found {reader.fieldnames}")
        for row in reader:
            all_names.append((row.get("label") or "").strip())
            if split is not None and row.get("split", split) != split:
                continue
            rows.append(row)
    files = _index_files(root) if any(not r.get("path") for r in rows) else {}
    items: list[dict] = []
    for row in rows:
        yid = row["youtube_id"].strip()
        start, end = float(row["time_start"]), float(row["time_end"])
        long = f"{yid}_{int(start):06d}_{int(end):06d}"
        if row.get("path"):
            file = row["path"] if os.path.isabs(row["path"]) else os.path.join(root, row["path"])
        else:
            file = files.get(long) or files.get(yid) or os.path.join(root, long + ".mp4")
        trimmed = os.path.splitext(os.path.basename(file))[0] == long  # already cut to the segment
        items.append({"path": file, "name": row.get("label", "").strip(), "video_id": yid,
                      "start": start, "end": end, "trimmed": trimmed})
    return items, [n for n in all_names if n]


def _slowfast(path: str, root: str) -> tuple[list[dict], list[str]]:
    items: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = re.split(r"[\s,]+", line)
            if len(parts) < 2:
                raise ValueError(f"{path}:{n}: expected 'path label', got {line!r}")
            file, label = " ".join(parts[:-1]), parts[-1]
            if not label.lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: label must be an integer, got {label!r}")
            file = file if os.path.isabs(file) else os.path.join(root, file)
            vid = os.path.splitext(os.path.basename(file))[0]
            items.append({"path": file, "label": int(label), "video_id": vid})
    return items, []


def ssv2_class_name(template: str) -> str:
    """``"Putting [something] on [something]"`` -> ``"Putting something on something"``."""
    return template.replace("[", "").replace("]", "").strip()


def _ssv2(path: str, root: str) -> tuple[list[dict], list[str]]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise ValueError(f"{path}: Something-Something JSON must be a list of objects")
    files = _index_files(root)
    items = []
    for entry in data:
        vid = str(entry["id"])
        file = files.get(vid) or os.path.join(root, f"{vid}.webm")
        name = ssv2_class_name(entry["template"]) if "template" in entry else ""
        items.append({"path": file, "name": name, "video_id": vid})
    return items, []


def load_annotations(
    path: str | os.PathLike,
    video_root: str | os.PathLike | None = None,
    format: str = "auto",
    split: str | None = None,
    classes: ClassMap | Sequence[str] | str | os.PathLike | None = None,
    class_map_path: str | os.PathLike | None = None,
    save_class_map: bool = True,
) -> Annotations:
    """Reads an annotation file into :class:`Annotations`.

    Args:
      path: a Kinetics CSV, a PySlowFast list or a Something-Something v2 JSON file.
      video_root: folder of the videos (default: the annotation file's folder).
      format: ``"kinetics"``, ``"slowfast"``, ``"ssv2"`` or ``"auto"`` (from extension and header).
      split: Kinetics only: keep rows whose ``split`` column equals this (``"train"``, ``"val"``...).
      classes: the class map to use (a :class:`ClassMap`, a list of names, or a path to one). By
        default it is read from ``class_map_path`` when that exists, else built from this file's
        class names and saved there.
      class_map_path: where the map lives (default: ``classes.json`` beside the annotation file).
      save_class_map: write a newly built map to ``class_map_path``.

    Records whose class name is not in an existing map raise ``ValueError``. Unlabelled records
    (a test split) get label -1. Missing files are not checked here: see :func:`check_videos_exist`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    root = os.fspath(video_root) if video_root is not None else os.path.dirname(os.path.abspath(path))
    fmt = detect_format(path) if format == "auto" else format
    all_names: list[str] = []
    if fmt == "kinetics":
        items, all_names = _kinetics(path, root, split)
    elif fmt == "slowfast":
        items, _ = _slowfast(path, root)
    elif fmt == "ssv2":
        items, _ = _ssv2(path, root)
    else:
        raise ValueError(f"unknown annotation format {format!r}: use kinetics, slowfast, ssv2 or auto")

    map_path = os.fspath(class_map_path) if class_map_path else os.path.join(
        os.path.dirname(os.path.abspath(path)), CLASS_MAP_FILENAME)
    if isinstance(classes, ClassMap):
        cmap = classes
    elif isinstance(classes, (str, os.PathLike)):
        cmap = ClassMap.load(classes)
    elif classes is not None:
        cmap = ClassMap(list(classes))
    elif os.path.exists(map_path):
        cmap = ClassMap.load(map_path)
    elif fmt == "slowfast":
        top = max((it["label"] for it in items), default=-1)
        cmap = ClassMap([str(i) for i in range(top + 1)])
    else:
        cmap = ClassMap.from_names(all_names or [it["name"] for it in items if it.get("name")])
        if save_class_map and len(cmap):
            cmap.save(map_path)

    index = cmap.index
    records = []
    unknown = set()
    for it in items:
        if "label" in it:
            label = it["label"]
            name = cmap.names[label] if 0 <= label < len(cmap) else str(label)
        else:
            name = it["name"]
            if not name:
                label = -1
            elif name in index:
                label = index[name]
            else:
                unknown.add(name)
                continue
        records.append(VideoRecord(path=it["path"], label=label, video_id=it["video_id"], label_name=name,
                                   start=it.get("start"), end=it.get("end"), trimmed=it.get("trimmed", False)))
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} class names are not in the class map {map_path}: "
                         f"{sorted(unknown)[:10]}")
    return Annotations(records=records, classes=cmap, source=path, format=fmt)


def check_videos_exist(records: Sequence[VideoRecord]) -> None:
    """Raises :class:`MissingVideosError` listing every record whose file does not exist."""
    missing = [r.path for r in records if not os.path.isfile(r.path)]
    if missing:
        raise MissingVideosError(missing, len(records))
