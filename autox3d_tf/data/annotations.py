"""Annotation formats and the class-index map.

Three formats and folders of videos, read into a list of :class:`VideoRecord`:

- Kinetics CSV: ``label,youtube_id,time_start,time_end,split``. Files are looked up under the video
  root by name: ``{youtube_id}_{time_start:06d}_{time_end:06d}.*`` or ``{youtube_id}.*``, in any
  sub-folder (``train/abseiling/...``); an optional ``path`` column names the file directly. A file
  with the long name is already cut to its segment (``trimmed``); in any other file, clips are
  sampled only from ``[time_start, time_end)`` of the file (see :mod:`autox3d_tf.data.sampling` for
  segments that reach or pass the end of the file).
- PySlowFast lists: one ``path label`` per line (space, tab or comma separated), paths relative to the
  video root; a path may name a frame folder (:mod:`~autox3d_tf.data.frame_folder`). Labels are all
  class indices, or all class names (mapped like Kinetics names, below).
- Something-Something v2 JSON: a list of ``{"id", "template", ...}``; the class is the template with
  its ``[something]`` brackets removed; files are ``{id}.webm`` (or any extension) under the root,
  or the frame folder ``{id}/`` in the root.
- A folder of class sub-folders (:mod:`~autox3d_tf.data.directory`): its class names are its
  sub-folders' (no ``classes.json`` is read or written there).

The class-index map (class name -> index) is built once, from the first annotation file loaded, as
the sorted list of names (the Kinetics order), and saved as ``classes.json`` beside the annotation
file; later loads (the validation split, the TFRecord converter) read it, so train and eval agree.

A malformed annotation file is a ``ValueError`` whose message starts with ``file:line:``.
"""

from __future__ import annotations

import csv
import io
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
        text = read_text(path)
        if path.endswith(".txt"):
            return cls([line.strip() for line in text.splitlines() if line.strip()])
        data = _parse_json(path, text)
        if isinstance(data, dict) and "classes" in data and isinstance(data["classes"], list):
            return cls([str(x) for x in data["classes"]])
        if isinstance(data, list):
            return cls([str(x) for x in data])
        if isinstance(data, dict) and all(str(v).lstrip("-").isdigit() for v in data.values()):
            ordered = sorted(data.items(), key=lambda kv: int(kv[1]))
            return cls([k for k, _ in ordered])
        raise ValueError(f"{path}:1: not a class map (a JSON list of names, {{\"classes\": [...]}} or "
                         f"{{name: index}})")

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


def read_text(path: str) -> str:
    """The UTF-8 text of an annotation file; a ``ValueError`` naming ``file:line`` for binary data
    (an unknown format, e.g. a video given as annotations) or bytes that are not UTF-8."""
    with open(path, "rb") as f:
        raw = f.read()
    if b"\0" in raw[:4096]:
        raise ValueError(f"{path}:1: unknown annotation format: binary data, not a Kinetics CSV, a PySlowFast "
                         "list or a Something-Something v2 JSON")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _parse_json(path: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON: {err.msg} (column {err.colno})") from None


def _detect(path: str, text: str) -> str:
    if path.endswith(".json"):
        return "ssv2"
    first = text.split("\n", 1)[0].strip().lower()
    if "youtube_id" in first and (path.endswith(".csv") or "label" in first):
        return "kinetics"
    return "slowfast"


def detect_format(path: str) -> str:
    """``"kinetics"``, ``"slowfast"`` or ``"ssv2"`` from a file's extension and first line."""
    return _detect(os.fspath(path), read_text(os.fspath(path)))


def _index_files(root: str) -> dict[str, str]:
    """Maps each video file's stem (name without extension) under ``root`` to its path."""
    found: dict[str, str] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS and stem not in found:
                found[stem] = os.path.join(dirpath, name)
    return found


_KINETICS_COLUMNS = ("youtube_id", "time_start", "time_end")


def _seconds(path: str, line: int, row: dict, column: str) -> float:
    value = (row.get(column) or "").strip()
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path}:{line}: {column} must be a number of seconds, got {value!r}") from None


def _kinetics(path: str, text: str, root: str, split: str | None) -> tuple[list[dict], list[str]]:
    rows: list[dict] = []
    all_names: list[str] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in _KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path}:1: Kinetics CSV needs columns label,youtube_id,time_start,time_end,split; "
                         f"missing {', '.join(missing)} in the header {reader.fieldnames}")
    for row in reader:
        line = reader.line_num
        if not (row.get("youtube_id") or "").strip():
            raise ValueError(f"{path}:{line}: no youtube_id (a row needs label,youtube_id,time_start,time_end,split)")
        row["_start"], row["_end"] = _seconds(path, line, row, "time_start"), _seconds(path, line, row, "time_end")
        all_names.append((row.get("label") or "").strip())
        if split is not None and row.get("split", split) != split:
            continue
        rows.append(row)
    if not all_names:
        raise ValueError(f"{path}:2: no rows after the header")
    files = _index_files(root) if any(not r.get("path") for r in rows) else {}
    items: list[dict] = []
    for row in rows:
        yid = row["youtube_id"].strip()
        start, end = row["_start"], row["_end"]
        long = f"{yid}_{int(start):06d}_{int(end):06d}"
        if row.get("path"):
            file = row["path"] if os.path.isabs(row["path"]) else os.path.join(root, row["path"])
        else:
            file = files.get(long) or files.get(yid) or os.path.join(root, long + ".mp4")
        trimmed = os.path.splitext(os.path.basename(file))[0] == long  # already cut to the segment
        items.append({"path": file, "name": (row.get("label") or "").strip(), "video_id": yid,
                      "start": start, "end": end, "trimmed": trimmed})
    return items, [n for n in all_names if n]


def _is_index(label: str) -> bool:
    return re.fullmatch(r"-?\d+", label) is not None


def _slowfast(path: str, text: str, root: str) -> tuple[list[dict], list[str]]:
    """Items with an integer ``label``, or with a class ``name`` when every label is a name."""
    items: list[dict] = []
    first: tuple[int, str] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[\s,]+", line)
        if len(parts) < 2:
            raise ValueError(f"{path}:{n}: expected 'path label', got {line!r}")
        file, label = " ".join(parts[:-1]), parts[-1]
        first = first or (n, label)
        if _is_index(label) != _is_index(first[1]):
            kind = "an integer" if _is_index(first[1]) else "a class name"
            raise ValueError(f"{path}:{n}: label must be {kind} like line {first[0]}'s {first[1]!r}, got {label!r} "
                             "(a PySlowFast list has integer labels or class names, not both)")
        file = file if os.path.isabs(file) else os.path.join(root, file)
        vid = os.path.splitext(os.path.basename(file.rstrip("/" + os.sep)))[0]
        items.append({"path": file, "video_id": vid,
                      **({"label": int(label)} if _is_index(label) else {"name": label})})
    if not items:
        raise ValueError(f"{path}:1: no 'path label' lines (only comments or blank lines)")
    return items, []


def ssv2_class_name(template: str) -> str:
    """``"Putting [something] on [something]"`` -> ``"Putting something on something"``."""
    return template.replace("[", "").replace("]", "").strip()


def _json_list(path: str, text: str) -> list[tuple[int, object]]:
    """The elements of the JSON list in ``text``, each with the line it starts on."""
    data = _parse_json(path, text)
    if not isinstance(data, list):
        raise ValueError(f"{path}:1: Something-Something JSON must be a list of objects, got a {type(data).__name__}")
    decoder, between = json.JSONDecoder(), re.compile(r"[\s,]*")
    pos, line, out = text.index("[") + 1, 1, []
    for _ in data:
        start = between.match(text, pos).end()
        line += text.count("\n", pos, start)
        value, end = decoder.raw_decode(text, start)
        out.append((line, value))
        line += text.count("\n", start, end)
        pos = end
    return out


def _ssv2(path: str, text: str, root: str) -> tuple[list[dict], list[str]]:
    entries = _json_list(path, text)
    if not entries:
        raise ValueError(f"{path}:1: empty list: no videos")
    files = _index_files(root)
    items = []
    for line, entry in entries:
        if not isinstance(entry, dict) or "id" not in entry:
            raise ValueError(f"{path}:{line}: a Something-Something entry needs an \"id\", got {entry!r:.80}")
        vid = str(entry["id"])
        folder = os.path.join(root, vid)
        file = files.get(vid) or (folder if os.path.isdir(folder) else os.path.join(root, f"{vid}.webm"))
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

    A folder (``path`` a directory) is read by
    :func:`~autox3d_tf.data.directory.directory_annotations`, its class names from its sub-folders
    unless ``classes`` is given (``video_root``, ``split`` and the class-map file do not apply).

    Records whose class name is not in an existing map raise ``ValueError``. Unlabelled records
    (a test split) get label -1. A malformed file raises ``ValueError`` naming ``file:line``.
    Missing files are not checked here: see :func:`check_videos_exist`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from autox3d_tf.data.directory import directory_annotations

        return directory_annotations(path, class_map=None if classes is None else _class_map(classes))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    root = os.fspath(video_root) if video_root is not None else os.path.dirname(os.path.abspath(path))
    if format not in ("auto", "kinetics", "slowfast", "ssv2"):
        raise ValueError(f"{path}: unknown annotation format {format!r}: use kinetics, slowfast, ssv2 or auto")
    text = read_text(path)
    if not text.strip():
        raise ValueError(f"{path}:1: empty annotation file")
    fmt = _detect(path, text) if format == "auto" else format
    all_names: list[str] = []
    if fmt == "kinetics":
        items, all_names = _kinetics(path, text, root, split)
    elif fmt == "slowfast":
        items, _ = _slowfast(path, text, root)
    else:
        items, _ = _ssv2(path, text, root)

    map_path = os.fspath(class_map_path) if class_map_path else os.path.join(
        os.path.dirname(os.path.abspath(path)), CLASS_MAP_FILENAME)
    if classes is not None:
        cmap = _class_map(classes)
    elif os.path.exists(map_path):
        cmap = ClassMap.load(map_path)
    elif items and "label" in items[0]:
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


def _class_map(classes: ClassMap | Sequence[str] | str | os.PathLike) -> ClassMap:
    if isinstance(classes, ClassMap):
        return classes
    if isinstance(classes, (str, os.PathLike)):
        return ClassMap.load(classes)
    return ClassMap(list(classes))


def check_videos_exist(records: Sequence[VideoRecord]) -> None:
    """Raises :class:`MissingVideosError` listing every record whose file (or frame folder) does not exist."""
    missing = [r.path for r in records if not (os.path.isfile(r.path) or os.path.isdir(r.path))]
    if missing:
        raise MissingVideosError(missing, len(records))
