"""Live video for streaming inference: a frame source, a resampler to the model's frame rate, a clip ring.

    with open_source("clip.mp4") as source:          # a file, an FFmpeg URL, or open_source(camera=0)
        resampler = Resampler(source.info.fps)        # stream time -> slots of the nominal 30 fps timeline
        ring = ClipRing(frames=4, rate=12)
        for frame in source:                          # SourceFrame: index, time (s), upright pixels
            for slot in resampler.push(frame.time):
                ring.push(slot, prepare_frame(frame, short_side=182, crop=182))
                if ring.ready: clip = np.stack(ring.clip())   # [4, 182, 182, 3], 12 slots apart

A source is a video file, a URL FFmpeg opens (``rtsp://``, ``http://``, ``udp://``...) or a V4L2
camera (``/dev/videoN`` through PyAV's ``v4l2`` input). Frames are turned upright by the container's
display matrix (:mod:`~autox3d_tf.data.orientation`), as :mod:`~autox3d_tf.data.decode` does. Every
failure is a :class:`SourceError` naming the source: one that cannot be opened (missing file, not a
video, no such camera, connection refused), or a stream that stops mid-way
(:class:`StreamInterrupted`, raised by the iteration after the frames it did deliver).

Resampling is by stream time, not frame count: the models' sampling rates count frames of a
nominal rate (:data:`NOMINAL_FPS`, 30 fps, the rate of the Kinetics videos the zoo was trained on), so
slot ``k`` of the timeline is at ``k / 30`` s from the first frame, and it holds the source frame
nearest to that time. A 60 fps source fills every other slot from every other frame; a 15 fps source
fills two slots with each frame; a variable-rate source or one with gaps holds its last frame. With
``Resampler(fps, target_fps=None)`` the slots are the source's own frames (the training and
``predict`` rule: indices count the file's frames).
"""

from __future__ import annotations

import math
import os
import stat
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from autox3d_tf.data.decode import VideoDecodeError, center_crop
from autox3d_tf.data.orientation import Orientation, display_transform

__all__ = [
    "NOMINAL_FPS",
    "SourceError",
    "StreamInterrupted",
    "SourceInfo",
    "SourceFrame",
    "VideoSource",
    "open_source",
    "is_url",
    "short_side_size",
    "prepare_frame",
    "Resampler",
    "ClipRing",
]

NOMINAL_FPS = 30.0
"""The frame rate the models' sampling rates count in (Kinetics videos are ~30 fps)."""

# Schemes whose sources deliver frames at their own pace (live by default).
_LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp", "http", "https", "hls", "mms")
# A file that ends more than this fraction short of its declared frame count stopped mid-way.
_TRUNCATION_FRACTION = 0.05
_TRUNCATION_MIN_FRAMES = 3


class SourceError(VideoDecodeError):
    """A video source could not be read; the message names the source (a file, a URL, ``camera N``)."""


class StreamInterrupted(SourceError):
    """A source that stopped delivering frames mid-way (a dropped connection, a truncated file).

    ``frames`` is how many frames it delivered before it stopped.
    """

    def __init__(self, path: str, reason: str, frames: int = 0):
        self.frames = frames
        super().__init__(path, reason)


@dataclass(frozen=True)
class SourceInfo:
    """What a source says about itself when it is opened.

    ``width`` / ``height`` are the coded size (before a display matrix turns the frames upright:
    :attr:`SourceFrame.size` is the upright one); ``fps`` the stream's average (or
    guessed) rate; ``num_frames`` the container's declared frame count (0 when unknown: live
    streams, MPEG-TS); ``duration`` in seconds (0.0 when unknown); ``live`` is True for cameras and
    network URLs (their frames come at their own pace).
    """

    source: str
    fps: float
    width: int
    height: int
    num_frames: int
    duration: float
    codec: str
    live: bool


@dataclass
class SourceFrame:
    """One decoded frame: its position in the source (``index``, 0-based), its stream time in seconds
    from the first frame, and the decoded ``av.VideoFrame`` with the orientation that turns it upright."""

    index: int
    time: float
    frame: Any
    orient: Orientation

    @property
    def size(self) -> tuple[int, int]:
        """The upright ``(height, width)``."""
        h, w = int(self.frame.height), int(self.frame.width)
        return self.orient(np.empty((h, w, 0), np.uint8)).shape[:2]

    def rgb(self, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The upright frame as uint8 RGB ``[H, W, 3]``, resized (area) to ``height`` x ``width`` (upright
        sizes) when given."""
        h, w = self.size
        if height is None or width is None or (height, width) == (h, w):
            return self.orient(self.frame.to_ndarray(format="rgb24"))
        coded_h, coded_w = (width, height) if (h, w) != (int(self.frame.height), int(self.frame.width)) else (height, width)
        array = self.frame.to_ndarray(format="rgb24", width=coded_w, height=coded_h, interpolation="AREA")
        return self.orient(array)


def is_url(source: str) -> bool:
    """True for ``scheme://...`` sources (FFmpeg protocols), False for file paths."""
    head, sep, _ = str(source).partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").replace("-", "").isalnum() and len(head) > 1


def _redact(url: str) -> str:
    """The URL without a ``user:password@`` part (the name printed in messages)."""
    head, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{head}{sep}{rest}"


def _first_line(err: BaseException) -> str:
    """``Class: message`` of an error, the first line only; FFmpeg's errors without the file name they
    repeat (the caller names the source)."""
    strerror = getattr(err, "strerror", None)
    if strerror and type(err).__module__.startswith("av"):
        return f"{type(err).__name__}: {strerror}"
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


class VideoSource:
    """An opened source: ``info``, iteration over :class:`SourceFrame` s, ``close()`` (a context manager).

    Iterating decodes the first video stream in order. Frame times come from the frames' timestamps
    (relative to the first frame), or ``index / fps`` where there are none. A decoding or network
    error after the first frames, or a file that ends well short of its declared frame count, raises
    :class:`StreamInterrupted` once the frames before it were delivered.
    """

    def __init__(self, container, name: str, live: bool):
        self._container = container
        self.name = name
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.frames_delivered = 0
        self.info = self._probe(live)

    def _probe(self, live: bool) -> SourceInfo:
        stream = self._stream
        fps = 0.0
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            if rate and float(rate) > 0:
                fps = float(rate)
                break
        fps = fps if 0 < fps < 1000 else NOMINAL_FPS
        duration = 0.0
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None and not live:
            duration = self._container.duration / 1_000_000
        ctx = stream.codec_context
        return SourceInfo(source=self.name, fps=fps, width=int(ctx.width or 0), height=int(ctx.height or 0),
                          num_frames=int(stream.frames or 0), duration=max(0.0, duration), codec=str(ctx.name),
                          live=live)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Closes the container (idempotent)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # a broken connection can fail to close; nothing left to release
                pass
            self._container = None

    def __iter__(self) -> Iterator[SourceFrame]:
        import av

        stream = self._stream
        time_base = float(stream.time_base) if stream.time_base else None
        fps = self.info.fps
        first_pts = None
        orient: Orientation | None = None
        last_time = -math.inf
        index = -1
        try:
            for frame in self._container.decode(stream):
                index += 1
                if orient is None:
                    orient = display_transform(frame)
                if frame.pts is not None and time_base is not None:
                    if first_pts is None:
                        first_pts = frame.pts
                    t = (frame.pts - first_pts) * time_base
                else:
                    t = index / fps
                if t <= last_time:  # a repeated or out-of-order timestamp: keep time increasing
                    t = last_time + 1e-6
                last_time = t
                self.frames_delivered = index + 1
                yield SourceFrame(index, t, frame, orient)
        except av.error.FFmpegError as err:
            where = f"after {index + 1} frames ({max(last_time, 0.0):.2f} s)"
            raise StreamInterrupted(self.name, f"stream stopped {where}: {_first_line(err)}", index + 1) from err
        except OSError as err:  # a socket error the demuxer did not wrap
            raise StreamInterrupted(self.name, f"stream stopped after {index + 1} frames: {_first_line(err)}",
                                    index + 1) from err
        declared = self.info.num_frames
        delivered = index + 1
        if delivered == 0:
            raise StreamInterrupted(self.name, "no decodable frames", 0)
        if declared and declared - delivered > max(_TRUNCATION_MIN_FRAMES, _TRUNCATION_FRACTION * declared):
            raise StreamInterrupted(self.name, f"stream ended after {delivered} of the {declared} frames its "
                                               "container declares (truncated file or dropped connection)",
                                    delivered)


def _check_path(path: str) -> None:
    """:func:`~autox3d_tf.data.decode`'s checks of a file (missing, a directory, empty); a pipe or
    FIFO is fine here (a stream is read once, in order)."""
    from autox3d_tf.data.decode import _check_file

    try:
        special = not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        special = False
    if special:
        return
    try:
        _check_file(path)
    except VideoDecodeError as err:
        raise SourceError(path, err.reason) from None


def open_source(source: str | os.PathLike | None = None, camera: int | None = None, timeout: float = 10.0,
                options: dict[str, str] | None = None) -> VideoSource:
    """Opens a video file, an FFmpeg URL, or camera ``camera`` (``/dev/video<N>``, V4L2).

    ``timeout`` (seconds) bounds opening a URL and each read from it, so a stalled network stream
    ends with :class:`StreamInterrupted` instead of hanging. ``options`` go to FFmpeg (demuxer /
    protocol options, e.g. ``{"rtsp_transport": "udp"}``; RTSP defaults to TCP). Raises
    :class:`SourceError` naming the source when it cannot be opened or has no video stream.
    """
    import av

    if (source is None) == (camera is None):
        raise ValueError("give a source or a camera, not both")
    opts = dict(options or {})
    kwargs: dict[str, Any] = {"metadata_errors": "ignore"}
    if camera is not None:
        if isinstance(camera, bool) or int(camera) < 0:
            raise ValueError(f"camera must be a device number >= 0, got {camera!r}")
        device = f"/dev/video{int(camera)}"
        name = f"camera {int(camera)} ({device})"
        if not any(f in av.formats_available for f in ("video4linux2,v4l2", "v4l2", "video4linux2")):
            raise SourceError(name, "this FFmpeg build has no V4L2 input (cameras are read through V4L2, Linux only)")
        if not os.path.exists(device):
            raise SourceError(name, "no such camera (the device does not exist)")
        target, live = device, True
        kwargs["format"] = "v4l2"
    else:
        target = os.fspath(source)
        if is_url(target):
            name = _redact(target)
            scheme = target.split("://", 1)[0].lower()
            live = scheme in _LIVE_SCHEMES
            kwargs["timeout"] = (float(timeout), float(timeout))
            if scheme.startswith("rtsp"):
                opts.setdefault("rtsp_transport", "tcp")
        else:
            name, live = target, False
            _check_path(target)
    if opts:
        kwargs["options"] = opts
    try:
        container = av.open(target, **kwargs)
    except Exception as err:  # av.error.* (InvalidDataError, HTTPError, ConnectionRefusedError...), OSError
        what = "cannot open the camera" if camera is not None else (
            "cannot open the stream" if is_url(target) else "not a readable video")
        raise SourceError(name, f"{what} ({_first_line(err)})") from None
    if not container.streams.video:
        container.close()
        raise SourceError(name, "no video stream in it")
    return VideoSource(container, name, live)


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the shorter side is ``size`` (aspect kept), with the rounding
    of :func:`~autox3d_tf.data.decode.resize_short_side`."""
    if min(height, width) == size:
        return height, width
    if height <= width:
        return size, max(1, int(round(width * size / height)))
    return max(1, int(round(height * size / width))), size


def prepare_frame(frame: SourceFrame, short_side: int, crop: int) -> np.ndarray:
    """The model's view of a frame: upright, short side resized to ``short_side`` (FFmpeg's area
    filter), centre crop ``crop`` x ``crop``; uint8 ``[crop, crop, 3]``."""
    h, w = frame.size
    nh, nw = short_side_size(h, w, short_side)
    return np.ascontiguousarray(center_crop(frame.rgb(nh, nw), crop))


class Resampler:
    """Maps source frame times to the slots of a fixed-rate timeline (see the module docstring).

    ``push(time)`` returns the slots (a ``range``) the frame at ``time`` seconds fills: every slot
    not yet filled whose time is before ``time + 0.5 / source_fps`` (nearest frame at a constant
    rate; after a gap, the slots of the gap); ``finish(time)`` those the last frame fills up to the
    end of the stream. With ``target_fps=None`` each frame is one slot.
    """

    def __init__(self, source_fps: float, target_fps: float | None = NOMINAL_FPS):
        if not source_fps or source_fps <= 0:
            raise ValueError(f"source_fps must be positive, got {source_fps!r}")
        if target_fps is not None and target_fps <= 0:
            raise ValueError(f"target_fps must be positive (or None), got {target_fps!r}")
        self.source_fps = float(source_fps)
        self.target_fps = None if target_fps is None else float(target_fps)
        self._half = 0.5 / self.source_fps
        self._next = 0  # the first slot not yet filled
        self._times: dict[int, float] = {}  # recent frame times (target_fps=None)

    @property
    def fps(self) -> float:
        """The timeline's rate (the source's when ``target_fps`` is None)."""
        return self.source_fps if self.target_fps is None else self.target_fps

    @property
    def slots(self) -> int:
        """Slots filled so far."""
        return self._next

    def slot_time(self, slot: int) -> float:
        """The stream time of ``slot`` in seconds (for ``target_fps=None``, the time of that frame)."""
        if self.target_fps is None:
            return self._times.get(slot, slot / self.source_fps)
        return slot / self.target_fps

    def push(self, time: float) -> range:
        """The slots the frame at ``time`` (seconds from the first frame) fills; possibly none."""
        if self.target_fps is None:
            slot = self._next
            self._times[slot] = float(time)
            self._times.pop(slot - 4096, None)
            self._next += 1
            return range(slot, slot + 1)
        return self._fill_until(float(time) + self._half)

    def finish(self, time: float) -> range:
        """At the end of the stream: the slots the last frame (at ``time``) fills until its end,
        ``1 / source_fps`` after it, so that a stream of ``d`` seconds fills ``d * target_fps`` slots."""
        if self.target_fps is None:
            return range(self._next, self._next)
        return self._fill_until(float(time) + 2 * self._half)

    def _fill_until(self, until: float) -> range:
        end = int(math.ceil(until * self.target_fps - 1e-9))
        start = self._next
        self._next = max(start, end)
        return range(start, self._next)


class ClipRing:
    """The last ``(frames - 1) * rate + 1`` slots of the timeline; a clip is ``frames`` of them ``rate`` apart.

    ``push(slot, image)`` stores a slot's image (references, not copies: the slots a frame fills share
    it); a slot after a gap (dropped frames) fills the missing slots with the last image, so the clip
    keeps its spacing in stream time. ``clip()`` is the clip ending at the newest slot.
    """

    def __init__(self, frames: int, rate: int):
        if frames < 1 or rate < 1:
            raise ValueError(f"frames and rate must be >= 1, got frames={frames}, rate={rate}")
        self.frames, self.rate = int(frames), int(rate)
        self.span = (self.frames - 1) * self.rate + 1
        self._items: deque = deque(maxlen=self.span)
        self.newest = -1  # the newest slot stored
        self.filled = 0  # slots filled from a gap (repeats of the last image)

    @property
    def ready(self) -> bool:
        """True once a whole clip is held."""
        return len(self._items) == self.span

    def push(self, slot: int, image: np.ndarray) -> None:
        """Stores ``image`` as ``slot`` (slots arrive in increasing order)."""
        if slot <= self.newest:
            raise ValueError(f"slot {slot} is not after the newest slot {self.newest}")
        if self._items and slot > self.newest + 1:
            gap = min(slot - self.newest - 1, self.span)
            self._items.extend([self._items[-1]] * gap)
            self.filled += slot - self.newest - 1
        self._items.append(image)
        self.newest = slot

    def clip(self) -> list[np.ndarray]:
        """The ``frames`` images of the clip ending at the newest slot (oldest first)."""
        if not self.ready:
            raise ValueError(f"the ring holds {len(self._items)} of the {self.span} slots of a clip")
        return [self._items[i] for i in range(0, self.span, self.rate)]

    def clip_slots(self) -> Sequence[int]:
        """The slot numbers of :meth:`clip`."""
        return range(self.newest - self.span + 1, self.newest + 1, self.rate)
