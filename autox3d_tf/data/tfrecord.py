"""Writing video datasets as sharded ``SequenceExample`` TFRecords (TF Model Garden's layout).

Each video becomes one ``tf.train.SequenceExample``, one JPEG per stored frame, with its label, id,
stored frame rate and frame size; the feature keys, the record and the shard names are defined once
in :mod:`~autox3d_tf.data.tfrecord_format`, which the reader
(:mod:`~autox3d_tf.data.tfrecord_pipeline`) uses too.

Only a video's annotated segment is stored when it lies inside the video (Kinetics ``time_start`` /
``time_end``; :func:`~autox3d_tf.data.sampling.segment_frames`), so the TFRecord pipelines need no
segment of their own.

Shards are named ``{prefix}-{k:05d}-of-{n:05d}.tfrecord``; video ``i`` of the annotation file goes to
shard ``i % n``. A shard is written to a temporary name and renamed when complete, so after a kill a
rerun skips the complete shards and redoes only the others: no video is lost or duplicated. Shards
are written in parallel processes; each video is decoded once, sequentially. TensorFlow is imported
only inside the functions (the worker processes configure it first).

TensorFlow-only (TFRecord writing).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

from autox3d_tf.data.annotations import (
    CLASS_MAP_FILENAME,
    Annotations,
    VideoRecord,
    check_videos_exist,
    load_annotations,
)
from autox3d_tf.data.decode import VideoDecodeError, _FrameIndexer, _info_from, _open, decode_from
from autox3d_tf.data.frame_folder import frame_files, probe_frame_folder, read_frame
from autox3d_tf.data.orientation import display_transform
from autox3d_tf.data.sampling import segment_frames
from autox3d_tf.data.tfrecord_format import make_sequence_example, shard_paths

__all__ = [
    "video_to_jpegs",
    "write_shard",
    "convert_to_tfrecord",
    "ConversionReport",
]


def _target_size(h: int, w: int, short_side: int | None) -> tuple[int, int]:
    if not short_side or min(h, w) <= short_side:
        return h, w
    f = short_side / min(h, w)
    nh, nw = max(1, int(round(h * f))), max(1, int(round(w * f)))
    return nh - nh % 2, nw - nw % 2


def video_to_jpegs(
    path: str, fps: float | None = None, short_side: int | None = None, quality: int = 90,
    start: float | None = None, end: float | None = None, segment_info: dict | None = None,
) -> tuple[list[bytes], float, int, int]:
    """Decodes a video once and returns ``(jpegs, stored_fps, height, width)``.

    ``fps`` lowers the frame rate (frames are dropped evenly; never raised); ``short_side`` shrinks
    frames whose short side is larger. ``start`` / ``end`` (seconds) keep only that segment of the
    video when it lies inside it, by :func:`~autox3d_tf.data.sampling.segment_frames`' rules (a
    segment reaching the end means the whole video; one starting past the end gives the whole video
    and sets ``segment_info["past_end"]``). A directory is a frame folder (see
    :func:`frame_folder_to_jpegs`). Raises :class:`VideoDecodeError` naming the file.
    """
    import av
    import tensorflow as tf

    if os.path.isdir(path):
        return frame_folder_to_jpegs(path, fps, short_side, quality, start, end, segment_info)
    container, stream = _open(path)
    jpegs: list[bytes] = []
    try:
        info = _info_from(path, container, stream)
        seg = segment_frames(info.num_frames, info.fps, start, end)
        if segment_info is not None:
            segment_info.update(past_end=seg.past_end, first=seg.first, count=seg.count)
        restricted = (seg.first, seg.count) != (0, info.num_frames)
        indexer = _FrameIndexer.of(container, stream, info.fps)
        keep_fps = min(fps, info.fps) if fps else info.fps
        step = 1.0 / keep_fps
        next_t = seg.first / info.fps - 0.5 / info.fps if restricted else 0.0
        h = w = 0
        tb = float(stream.time_base) if stream.time_base else None
        start_pts = indexer.start
        n = -1
        index = -1
        reached_end = False
        orient = None
        first = seg.first if restricted else 0
        for frame in decode_from(container, stream, indexer, info.fps, first):
            n += 1
            t = (frame.pts - start_pts) * tb if (frame.pts is not None and tb) else n / info.fps
            if restricted:
                index = indexer(frame.pts) if frame.pts is not None else n
                if index < seg.first:
                    continue
                if index >= seg.first + seg.count:
                    reached_end = True
                    break
            if t + 1e-6 < next_t:
                continue
            next_t += step
            while next_t <= t:  # a gap in the source: don't emit bursts afterwards
                next_t += step
            h, w = _target_size(frame.height, frame.width, short_side)
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA") if (
                (h, w) != (frame.height, frame.width)) else frame.to_ndarray(format="rgb24")
            orient = orient or display_transform(frame)
            rgb = orient(rgb)
            h, w = rgb.shape[:2]
            jpegs.append(tf.io.encode_jpeg(rgb, quality=quality).numpy())
    except av.error.FFmpegError as err:
        raise VideoDecodeError(path, f"truncated or corrupt video ({err})") from err
    finally:
        container.close()
    if not jpegs:
        raise VideoDecodeError(path, "no decodable frames" + (" in the annotated segment" if restricted else ""))
    declared = int(stream.frames or 0)
    if restricted:  # decoding must reach the segment's end (or the declared frames, if fewer)
        shortfall = 0 if reached_end else min(declared, seg.first + seg.count) - (index + 1)
        if declared and shortfall > max(3, 0.05 * seg.count):
            raise VideoDecodeError(path, f"truncated video: container declares {declared} frames, decoding "
                                         f"stopped at {index + 1}, inside the annotated segment")
        return jpegs, keep_fps, h, w
    decoded = n + 1
    if declared and declared - decoded > max(3, 0.05 * declared):
        raise VideoDecodeError(path, f"truncated video: container declares {declared} frames, only {decoded} decodable")
    return jpegs, keep_fps, h, w


def frame_folder_to_jpegs(
    path: str, fps: float | None = None, short_side: int | None = None, quality: int = 90,
    start: float | None = None, end: float | None = None, segment_info: dict | None = None,
) -> tuple[list[bytes], float, int, int]:
    """:func:`video_to_jpegs` for a frame folder, whose frame rate is
    :data:`~autox3d_tf.data.frame_folder.FRAME_FOLDER_FPS`: the frames of the segment, evenly
    thinned to ``fps``, shrunk to ``short_side``, re-encoded as JPEG."""
    import tensorflow as tf

    files = frame_files(path)
    info = probe_frame_folder(path)
    seg = segment_frames(info.num_frames, info.fps, start, end)
    if segment_info is not None:
        segment_info.update(past_end=seg.past_end, first=seg.first, count=seg.count)
    keep_fps = min(fps, info.fps) if fps else info.fps
    step, last = info.fps / keep_fps, seg.first + seg.count - 1
    kept = [min(seg.first + int(k * step + 1e-6), last) for k in range(max(1, math.ceil(seg.count / step - 1e-6)))]
    jpegs: list[bytes] = []
    h = w = 0
    for i in kept:
        rgb = read_frame(path, files[i])
        h, w = _target_size(rgb.shape[0], rgb.shape[1], short_side)
        if (h, w) != rgb.shape[:2]:
            rgb = tf.cast(tf.round(tf.image.resize(rgb, (h, w), method="area")), tf.uint8)
        jpegs.append(tf.io.encode_jpeg(rgb, quality=quality).numpy())
    return jpegs, keep_fps, h, w


def write_shard(
    records: Sequence[VideoRecord], path: str, fps: float | None = None, short_side: int | None = None,
    quality: int = 90, counter=None,
) -> dict:
    """Writes one shard atomically (temporary file, then rename). Bad videos are skipped and listed.

    Each record's annotated segment (``VideoRecord.segment``) is stored, not the whole video, when it
    lies inside the video. Returns ``{"path", "videos", "errors": [[path, reason], ...],
    "segment_fallbacks": [[path, reason], ...]}`` (videos whose segment starts past their end,
    stored whole).
    """
    import tensorflow as tf

    tmp = f"{path}.tmp-{os.getpid()}"
    errors: list[list[str]] = []
    fallbacks: list[list[str]] = []
    written = 0
    with tf.io.TFRecordWriter(tmp) as writer:
        for rec in records:
            try:
                start, end = rec.segment
                seg: dict = {}
                jpegs, kept, h, w = video_to_jpegs(rec.path, fps, short_side, quality, start, end, seg)
                writer.write(make_sequence_example(jpegs, rec.label, rec.video_id, rec.label_name, kept, h, w))
                written += 1
                if seg.get("past_end"):
                    fallbacks.append([rec.path, f"{rec.path}: segment [{start}, {end}) s starts past the end of "
                                                "the video; whole video stored"])
            except VideoDecodeError as err:
                errors.append([rec.path, str(err)])
            if counter is not None:
                with counter.get_lock():
                    counter.value += 1
    os.replace(tmp, path)
    return {"path": path, "videos": written, "errors": errors, "segment_fallbacks": fallbacks}


_COUNTER = None


def _init_worker(counter) -> None:
    global _COUNTER
    _COUNTER = counter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from autox3d_tf.data.quiet_tf import import_tensorflow_quietly

    import_tensorflow_quietly()


def _shard_job(job: tuple) -> dict:
    records, path, fps, short_side, quality = job
    return write_shard(records, path, fps, short_side, quality, _COUNTER)


@dataclass
class ConversionReport:
    """What :func:`convert_to_tfrecord` did."""

    shards: list[str]
    written_shards: int
    skipped_shards: int
    videos: int
    errors: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    segment_fallbacks: list[list[str]] = field(default_factory=list)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _class_map_beside(annotations) -> str | None:
    """The ``classes.json`` beside an annotation file (None for a folder or loaded annotations)."""
    if isinstance(annotations, Annotations) or os.path.isdir(os.fspath(annotations)):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(annotations))), CLASS_MAP_FILENAME)


def inputs_fingerprint(ann: Annotations, settings: dict) -> str:
    """sha256 of what a shard set holds: every record (file, label, id, name, segment), the class
    names and the conversion settings."""
    records = [[r.path, r.label, r.video_id, r.label_name, r.start, r.end, r.trimmed] for r in ann.records]
    text = json.dumps({"records": records, "classes": list(ann.classes.names), "settings": settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _existing_shards(out_prefix: str) -> list[str]:
    pattern = re.compile(re.escape(os.path.basename(out_prefix)) + r"-\d{5,}-of-\d{5,}\.tfrecord$")
    folder = os.path.dirname(os.path.abspath(out_prefix))
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if pattern.match(n)) if os.path.isdir(folder) else []


def _check_resumable(out_prefix: str, paths: list[str], manifest_path: str, settings: dict,
                     fingerprint: str) -> dict | None:
    """The manifest of a run to resume (None when there is nothing yet); ValueError when the shards
    there hold other inputs or settings, or another shard count, or cannot be told apart."""
    existing = _existing_shards(out_prefix)
    wanted = {os.path.abspath(p) for p in paths}
    other = [p for p in existing if os.path.abspath(p) not in wanted]
    if other:
        raise ValueError(
            f"{out_prefix}: {len(other)} shard(s) of another shard count are there ({os.path.basename(other[0])}); "
            f"a reader would read both sets. Resume with the same --shards, or pass --overwrite to replace them.")
    manifest = None
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            manifest = {}
    if not existing:
        return manifest if manifest and manifest.get("inputs_sha256") == fingerprint else None
    if not manifest or not manifest.get("inputs_sha256"):
        raise ValueError(
            f"{out_prefix}: {len(existing)} shard(s) are there without a record of their inputs ({manifest_path}); "
            "they cannot be resumed safely. Pass --overwrite to replace them, or use another prefix.")
    if manifest["inputs_sha256"] != fingerprint:
        before = manifest.get("settings", {})
        changed = [f"{k} {before.get(k)} -> {v}" for k, v in settings.items() if before.get(k) != v]
        what = ", ".join(changed) if changed else f"other annotations (was {manifest.get('annotations')})"
        raise ValueError(
            f"{out_prefix}: the shards there were written from other inputs or settings ({what}). Pass "
            "--overwrite to replace them, or use another prefix.")
    return manifest


def _write_manifest(path: str, manifest: dict, ann: Annotations) -> None:
    """Writes ``{prefix}.manifest.json`` atomically, with the totals of every shard recorded."""
    manifest["classes"] = list(ann.classes.names)
    manifest.update({k: manifest["settings"][k] for k in ("fps", "short_side", "quality", "num_shards")})
    manifest["errors"] = [e for s in manifest["shards"].values() for e in s["errors"]]
    manifest["segment_fallbacks"] = [e for s in manifest["shards"].values() for e in s.get("segment_fallbacks", [])]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, path)


def convert_to_tfrecord(
    annotations: str | os.PathLike | Annotations,
    out_prefix: str | os.PathLike,
    shards: int = 8,
    fps: float | None = None,
    short_side: int | None = None,
    quality: int = 90,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    video_root: str | os.PathLike | None = None,
    split: str | None = None,
) -> ConversionReport:
    """Converts annotated videos to ``shards`` SequenceExample TFRecord files ``{out_prefix}-*``.

    ``annotations``: an annotation file, a folder of class sub-folders, or :class:`Annotations`;
    its videos may be frame folders.

    Resumable: complete shards are kept, partial ones are redone, but only when the inputs and
    settings are those the shards were written from (their sha256, :func:`inputs_fingerprint`, is in
    the manifest before any shard is written); other inputs, settings or shard count are a
    ``ValueError`` unless ``overwrite``, which removes every shard of the prefix first. Writes
    ``{out_prefix}.manifest.json`` (settings, shards, video counts, bad videos of every shard across
    resumes, segment fallbacks; updated as each shard completes) and, once the conversion succeeded,
    ``{out_prefix}.classes.json`` and a new class map beside the annotation file. Missing files raise :class:`MissingVideosError` before any
    work; videos that fail to decode are skipped and reported. Only the annotated segment of a video
    is stored when it lies inside the video (Kinetics ``time_start`` / ``time_end``; see
    :func:`video_to_jpegs`); a segment starting past the video's end stores the whole video and is
    reported in ``segment_fallbacks``.
    """
    t0 = time.time()
    if shards <= 0:
        raise ValueError(f"shards must be positive, got {shards}")
    beside = _class_map_beside(annotations)
    ann = annotations if isinstance(annotations, Annotations) else load_annotations(
        annotations, video_root=video_root, split=split, save_class_map=False)
    check_videos_exist(ann.records)
    out_prefix = os.fspath(out_prefix)
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    paths = shard_paths(out_prefix, shards)
    manifest_path = f"{out_prefix}.manifest.json"
    settings = {"num_shards": shards, "fps": fps, "short_side": short_side, "quality": quality}
    fingerprint = inputs_fingerprint(ann, settings)
    if overwrite:
        for old in _existing_shards(out_prefix) + [manifest_path, f"{out_prefix}.classes.json"]:
            _remove(old)
        previous = None
    else:
        previous = _check_resumable(out_prefix, paths, manifest_path, settings, fingerprint)
    manifest = {"annotations": getattr(ann, "source", None), "settings": settings, "inputs_sha256": fingerprint,
                "complete": False, "shards": dict((previous or {}).get("shards", {}))}
    jobs, done = [], 0
    for k, path in enumerate(paths):
        folder = os.path.dirname(os.path.abspath(path))
        base = os.path.basename(path)
        for stale in os.listdir(folder):  # temporaries of a killed run
            if stale.startswith(base + ".tmp"):
                os.remove(os.path.join(folder, stale))
        if os.path.exists(path):
            done += 1
            continue
        manifest["shards"].pop(base, None)
        jobs.append((ann.records[k::shards], path, fps, short_side, quality))
    _write_manifest(manifest_path, manifest, ann)  # the inputs are on record before any shard is
    total = sum(len(j[0]) for j in jobs)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    results: list[dict] = []
    if progress and done:
        print(f"[to-tfrecord] resuming: {done} of {shards} shards already complete", file=sys.stderr)
    ctx = mp.get_context("spawn")
    counter = ctx.Value("i", 0)
    if jobs:
        with ctx.Pool(workers, initializer=_init_worker, initargs=(counter,)) as pool:
            pending = pool.imap_unordered(_shard_job, jobs)
            while len(results) < len(jobs):
                try:
                    r = pending.next(timeout=0.5)
                    results.append(r)
                    # Each finished shard's record is kept at once, so a kill loses none of them.
                    manifest["shards"][os.path.basename(r["path"])] = {
                        "videos": r["videos"], "errors": r["errors"], "segment_fallbacks": r["segment_fallbacks"]}
                    _write_manifest(manifest_path, manifest, ann)
                except mp.TimeoutError:
                    pass
                if progress:
                    n, dt = counter.value, time.time() - t0
                    bad = sum(len(r["errors"]) for r in results)
                    print(f"\r[to-tfrecord] {n}/{total} videos, {len(results) + done}/{shards} shards, "
                          f"{bad} bad, {n / max(dt, 1e-9):.1f} videos/s", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    errors = [e for r in results for e in r["errors"]]
    manifest["complete"] = True
    _write_manifest(manifest_path, manifest, ann)
    # Class maps only once the conversion succeeded: a failed run leaves none that a later one reads.
    if len(ann.classes):
        ann.classes.save(f"{out_prefix}.classes.json")
        if beside is not None and not os.path.exists(beside):
            ann.classes.save(beside)
    return ConversionReport(shards=paths, written_shards=len(results), skipped_shards=done,
                            videos=sum(r["videos"] for r in results), errors=errors, seconds=time.time() - t0,
                            segment_fallbacks=[e for r in results for e in r["segment_fallbacks"]])
