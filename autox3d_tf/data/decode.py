"""Video decoding through PyAV: probe a file, decode only the frames a clip needs.

    info = probe_video("clip.mp4")                     # frames, fps, width, height, duration
    idx = clip_indices(info.num_frames, frames=16, rate=5, start=0)
    frames = decode_frames("clip.mp4", idx)            # uint8 [16, H, W, 3]
    clip = center_crop(resize_short_side(frames, 256), 256)

``decode_frames`` seeks to the key frame before the first wanted frame and decodes forward only as far
as the last wanted frame; a seek that lands after it (MPEG-TS) or inside an open GOP seeks again
further back (:func:`decode_from`), so every container gives the frames of a full decode. Frames are
turned upright by the container's display matrix (rotated phone videos,
:mod:`~autox3d_tf.data.orientation`). Non-reference frames that no index needs are skipped inside the decoder
(``skip_frame``), and only the wanted frames are converted to RGB. Indices past the end of the video
loop (``index % num_frames``). Every failure (missing, empty, truncated, corrupt or non-video file) is
a :class:`VideoDecodeError` whose message names the file.

A directory is a frame folder (numbered JPEG / PNG frames, :mod:`~autox3d_tf.data.frame_folder`):
``probe_video``, ``decode_frames``, ``decode_frames_for``, ``decode_all_frames`` and ``load_clip``
read it like a video, at ``frame_rate`` (default
:data:`~autox3d_tf.data.frame_folder.FRAME_FOLDER_FPS`), which only frame folders use.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Sequence

import numpy as np

from autox3d_tf.data.orientation import Orientation, display_transform

__all__ = [
    "VideoDecodeError",
    "VideoInfo",
    "probe_video",
    "decode_frames",
    "decode_frames_for",
    "decode_all_frames",
    "decode_from",
    "clip_indices",
    "whole_video_indices",
    "resize_short_side",
    "center_crop",
    "load_clip",
]

# Seek only when the first wanted frame is at least this many seconds in; below that, decoding from the
# start is as cheap as a seek.
_SEEK_MIN_SECONDS = 1.0
# A video whose decodable frames fall short of the container's frame count by more than this fraction
# (and at least _TRUNCATION_MIN_FRAMES frames) is reported as truncated.
_TRUNCATION_FRACTION = 0.05
_TRUNCATION_MIN_FRAMES = 3
# Packets read at the start of a file for its first frame's pts (a few GOPs' worth of reordering).
_START_PACKETS = 16


class VideoDecodeError(Exception):
    """A video file could not be read: missing, empty, truncated, corrupt or not a video.

    ``path`` is the file; the message always names it.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as its container states it.

    ``num_frames`` is the container's frame count when it has one, else ``round(duration * fps)``
    (an estimate). ``fps`` is the stream's average frame rate.
    """

    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    duration: float
    codec: str


def _check_file(path: str) -> None:
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VideoDecodeError(path, "file not found") from None
    except OSError as err:
        raise VideoDecodeError(path, f"cannot be read ({err.strerror or err})") from None
    if stat.S_ISDIR(mode):
        raise VideoDecodeError(path, "is a directory, not a video file")
    if not stat.S_ISREG(mode):
        # A FIFO, /dev/stdin or a device: decoding seeks and opens the file twice, which a stream cannot do.
        raise VideoDecodeError(path, "not a regular file (a pipe, FIFO or device): save the video to a file first")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")


def _open(path: str):
    """Opens ``path`` with PyAV and returns ``(container, video_stream)``."""
    import av

    _check_file(path)
    try:
        container = av.open(path, metadata_errors="ignore")
    except Exception as err:  # av.error.* (InvalidDataError, EOFError, ...) and OSError
        raise VideoDecodeError(path, f"not a readable video ({type(err).__name__}: {err})") from err
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "no video stream in file")
    return container, container.streams.video[0]


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if value > 0:
                return value
    return 30.0


def _count_packets(path: str) -> int:
    """The number of video packets (one per frame) of ``path``, read without decoding, from a
    second open (a raw stream cannot be rewound)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)
    except (av.error.FFmpegError, IndexError, OSError):
        return 0


def _info_from(path: str, container, stream) -> VideoInfo:
    fps = _stream_fps(stream)
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    num_frames = int(stream.frames or 0)
    if num_frames <= 0:
        num_frames = int(round(duration * fps))
    if num_frames <= 0:  # a raw stream (.h264, .hevc): no container to say, so count its packets
        num_frames = _count_packets(path)
    if duration <= 0 and num_frames > 0:
        duration = num_frames / fps
    ctx = stream.codec_context
    return VideoInfo(
        path=path,
        num_frames=num_frames,
        fps=fps,
        width=int(ctx.width or 0),
        height=int(ctx.height or 0),
        duration=duration,
        codec=str(ctx.name),
    )


def probe_video(path: str | os.PathLike, frame_rate: float | None = None) -> VideoInfo:
    """Reads a video's frame count, frame rate, size and duration without decoding it.

    Raises :class:`VideoDecodeError` for a missing, empty or unreadable file, or one without a video
    stream or frames. A frame folder's rate is ``frame_rate`` (see the module docstring).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from autox3d_tf.data.frame_folder import probe_frame_folder

        return probe_frame_folder(path, frame_rate)
    container, stream = _open(path)
    try:
        info = _info_from(path, container, stream)
    finally:
        container.close()
    if info.num_frames <= 0 or info.width <= 0 or info.height <= 0:
        raise VideoDecodeError(path, "video stream has no frames or no size")
    return info


def clip_indices(num_frames: int, frames: int, rate: int, start: int = 0) -> np.ndarray:
    """Frame indices of a clip: ``frames`` frames ``rate`` apart from ``start``, looping past the end.

    ``clip_indices(300, 16, 5, 10)`` is ``[10, 15, ..., 85]``; in a 50-frame video, indices 50 and on
    wrap to 0, 1, ... (short videos loop).
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if frames <= 0 or rate <= 0:
        raise ValueError(f"frames and rate must be positive, got frames={frames}, rate={rate}")
    idx = int(start) + np.arange(frames, dtype=np.int64) * int(rate)
    return np.mod(idx, num_frames)


def whole_video_indices(num_frames: int, frames: int) -> np.ndarray:
    """``frames`` indices spread over the whole video: the centre frame of each of ``frames`` equal
    parts (the evaluation clip of sampling rate 0, :data:`~autox3d_tf.data.sampling.WHOLE_VIDEO`);
    a video shorter than ``frames`` repeats frames."""
    if num_frames <= 0 or frames <= 0:
        raise ValueError(f"num_frames and frames must be positive, got {num_frames} and {frames}")
    bounds = (np.arange(frames + 1, dtype=np.int64) * int(num_frames)) // int(frames)
    count = np.diff(bounds)
    return np.mod(bounds[:-1] + np.maximum(count - 1, 0) // 2, num_frames)


class _FrameIndexer:
    """Maps a packet's or frame's pts to a frame index at the stream's nominal frame rate."""

    def __init__(self, stream, fps: float, start: int | None = None):
        self.time_base = Fraction(stream.time_base) if stream.time_base else None
        self.start = (stream.start_time or 0) if start is None else start
        self.fps = Fraction(fps).limit_denominator(100000)

    @classmethod
    def of(cls, container, stream, fps: float) -> "_FrameIndexer":
        """The indexer whose frame 0 is the first frame a full decode gives.

        A container's start time can be earlier than its first frame's pts (AVI with B-frames starts
        at pts 1): the first packets are read (not decoded) for their smallest pts, then the file is
        rewound."""
        import av

        first = None
        if stream.start_time is None or not stream.time_base:
            return cls(stream, fps)  # no timestamps to read (a raw stream, which cannot be rewound either)
        try:
            for n, packet in enumerate(container.demux(stream)):
                if n >= _START_PACKETS:
                    break
                if packet.pts is not None and not packet.is_discard and packet.size:
                    first = packet.pts if first is None else min(first, packet.pts)
            container.seek(0, stream=stream)
        except av.error.FFmpegError:
            first = None
        stream.codec_context.flush_buffers()
        start = stream.start_time
        if first is not None and (start is None or first > start):
            start = first
        return cls(stream, fps, start)

    def __call__(self, pts: int | None) -> int | None:
        if pts is None or self.time_base is None:
            return None
        return int(math.floor((pts - self.start) * self.time_base * self.fps + Fraction(1, 2)))

    def to_pts(self, index: int) -> int:
        return int(self.start + Fraction(index) / self.fps / self.time_base)


def decode_from(container, stream, indexer: _FrameIndexer, fps: float, first: int,
                on_packet: Callable[[object], None] | None = None) -> Iterator:
    """Decoded frames of ``stream`` in display order, starting at or before frame ``first``.

    When ``first`` is far enough in, the container seeks to a key frame before it. A seek may land
    after the wanted frame (MPEG-TS and other containers index inexactly) or on an open GOP whose
    leading frames reference the previous GOP: frames before the first decoded key frame are
    dropped, and a key frame after ``first`` means seeking again, further back, down to the start of
    the file. So the first frame yielded is never later than ``first`` and always decodes cleanly,
    as in a full decode. ``on_packet(packet)`` runs before each packet is decoded (e.g. to set
    ``skip_frame``). FFmpeg errors propagate.
    """
    import av

    ctx = stream.codec_context
    back = 1  # how far before ``first`` to seek: a second, then doubled, on each retry
    # A raw stream (.h264) has no timestamps to seek by: it is decoded from the start.
    seek = indexer.time_base is not None and stream.start_time is not None and first / fps >= _SEEK_MIN_SECONDS
    attempt = 0
    while True:
        target = first - back if seek else -1
        if target > 0:
            try:
                container.seek(indexer.to_pts(target), stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                target = -1
        if target <= 0 and attempt:
            container.seek(0, stream=stream)
        if attempt:
            ctx.flush_buffers()
        attempt += 1
        checked = target <= 0  # decoding from the start needs no check
        overshot = False

        def frames(packets):
            nonlocal checked, overshot
            for packet in packets:
                if packet is not None and packet.size == 0 and packet.dts is None:
                    continue  # the demuxer's flush packet: the decoder is flushed below
                if on_packet is not None and packet is not None:
                    on_packet(packet)
                for frame in ctx.decode(packet):
                    if not checked:
                        if not frame.key_frame:
                            continue  # an open GOP's leading frame, or before the seek point
                        idx = indexer(frame.pts)
                        if idx is None or idx > first:
                            overshot = True
                            return
                        checked = True
                    yield frame

        yield from frames(container.demux(stream))
        if not overshot:
            ctx.skip_frame = "DEFAULT"
            yield from frames([None])
        if checked and not overshot:
            return
        back = max(2 * back, int(round(fps)))  # landed after ``first`` (or on no key frame): further back
        if target <= 0:
            return


def _decode_sorted(path: str, container, stream, info: VideoInfo, wanted: list[int],
                   skip: bool = True) -> tuple[dict, int, bool]:
    """Decodes the sorted unique ``wanted`` indices. Returns ``({index: array}, frames_seen_end, gaps)``.

    ``frames_seen_end`` is one past the last frame index the decoder produced when it reached the end
    of the file, or -1 when it stopped early (all wanted frames found). ``gaps`` says that a wanted
    index had no frame of its own (variable frame rate) while non-reference frames were skipped, so
    the frame repeated in its place may be the wrong one: decode again with ``skip=False``.
    """
    import av

    indexer = _FrameIndexer.of(container, stream, info.fps)
    ctx = stream.codec_context
    wanted_set = set(wanted)
    last_wanted = wanted[-1]
    out: dict[int, np.ndarray] = {}
    pending = list(wanted)  # ascending, not yet filled
    prev_frame = None  # last decoded frame (kept unconverted) to fill gaps in variable-rate videos
    counter = -1  # fallback index when frames carry no pts
    orient: Orientation | None = None
    gaps = False

    def rgb(frame) -> np.ndarray:
        nonlocal orient
        if orient is None:
            orient = display_transform(frame)
        return orient(frame.to_ndarray(format="rgb24"))

    def take(frame) -> bool:
        """Files a decoded frame; returns True when every wanted frame is filled."""
        nonlocal prev_frame, counter, gaps
        counter += 1
        idx = indexer(frame.pts)
        if idx is None:
            idx = counter
        while pending and pending[0] < idx:  # a gap (variable frame rate): repeat the previous frame
            gap = pending.pop(0)
            src = prev_frame if prev_frame is not None else frame
            out[gap] = rgb(src)
            gaps = gaps or skip
        if pending and pending[0] == idx:
            pending.pop(0)
            out[idx] = rgb(frame)
        prev_frame = frame
        return not pending

    def on_packet(packet) -> None:
        p_idx = indexer(packet.pts)
        skipped = skip and p_idx is not None and p_idx not in wanted_set and p_idx < last_wanted
        ctx.skip_frame = "NONREF" if skipped else "DEFAULT"

    try:
        for frame in decode_from(container, stream, indexer, info.fps, wanted[0], on_packet):
            if take(frame):
                ctx.skip_frame = "DEFAULT"
                return out, -1, gaps
    except av.error.FFmpegError as err:
        if not out and prev_frame is None:
            raise VideoDecodeError(path, f"corrupt video data ({type(err).__name__}: {err})") from err
        raise VideoDecodeError(path, f"truncated or corrupt video: decoding stopped ({err})") from err
    finally:
        ctx.skip_frame = "DEFAULT"
    end = (indexer(prev_frame.pts) if prev_frame is not None and prev_frame.pts is not None else counter) + 1
    return out, end, gaps


def _restart(container, stream) -> None:
    container.seek(0, stream=stream)
    stream.codec_context.flush_buffers()


def decode_frames(path: str | os.PathLike, indices: Sequence[int], frame_rate: float | None = None) -> np.ndarray:
    """Decodes the frames at ``indices`` (any order, repeats allowed) as uint8 ``[N, H, W, 3]`` RGB.

    Indices are frame numbers at the stream's average frame rate. Indices at or past the end loop
    (``index % num_frames``); negative indices are an error. The decoder seeks to the key frame before
    the first wanted frame and stops after the last one.

    Raises :class:`VideoDecodeError` (naming the file) for a missing, empty, non-video, corrupt or
    truncated file, or a bad frame folder.
    """
    indices = np.asarray(indices, dtype=np.int64)
    return decode_frames_for(path, lambda info: indices, frame_rate)[0]


def decode_frames_for(
    path: str | os.PathLike, choose: Callable[[VideoInfo], Sequence[int]], frame_rate: float | None = None
) -> tuple[np.ndarray, VideoInfo]:
    """Opens a video once, asks ``choose(info)`` for the frame indices, and decodes them.

    Returns ``(frames uint8 [N, H, W, 3], info)``; ``frames`` keeps the shape of the chosen indices
    (e.g. ``[clips, T]`` indices give ``[clips, T, H, W, 3]``). Same semantics and errors as
    :func:`decode_frames`; this saves a second open when the indices depend on the frame count.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from autox3d_tf.data.frame_folder import decode_frame_folder_for

        return decode_frame_folder_for(path, choose, frame_rate)
    container, stream = _open(path)
    try:
        info = _info_from(path, container, stream)
        if info.num_frames <= 0:
            raise VideoDecodeError(path, "video stream has no frames")
        shape, mapped = chosen_indices(choose, info)
        wanted = sorted(set(mapped.tolist()))
        found, end, gaps = _decode_sorted(path, container, stream, info, wanted)
        if gaps:  # variable frame rate: the frame before a gap may have been skipped
            _restart(container, stream)
            found, end, _ = _decode_sorted(path, container, stream, info, wanted, skip=False)
        missing = [i for i in wanted if i not in found]
        if missing:
            declared = int(stream.frames or 0)
            shortfall = declared - end
            if declared and shortfall > max(_TRUNCATION_MIN_FRAMES, _TRUNCATION_FRACTION * declared):
                raise VideoDecodeError(
                    path, f"truncated video: container declares {declared} frames, only {end} decodable"
                )
            if end <= 0:
                raise VideoDecodeError(path, "no decodable frames")
            # The frame count was an estimate a little too high: loop over the frames that exist.
            remap = {i: i % end for i in missing}
            _restart(container, stream)
            extra, _, _ = _decode_sorted(path, container, stream, info, sorted(set(remap.values())), skip=False)
            for i, j in remap.items():
                if j not in extra:
                    raise VideoDecodeError(path, f"frame {j} could not be decoded")
                found[i] = extra[j]
    finally:
        container.close()
    return assemble_frames(found, shape, mapped), info


def chosen_indices(choose: Callable[[VideoInfo], Sequence[int]], info: VideoInfo) -> tuple[tuple[int, ...], np.ndarray]:
    """``(shape, flat indices modulo the frame count)`` of ``choose(info)``; at least one index,
    none negative."""
    chosen = np.asarray(choose(info), dtype=np.int64)
    indices = chosen.reshape(-1)
    if indices.size == 0:
        raise ValueError("decode_frames needs at least one index")
    if (indices < 0).any():
        raise ValueError(f"negative frame index in {indices.tolist()}")
    return chosen.shape, np.mod(indices, info.num_frames)


def assemble_frames(found: dict[int, np.ndarray], shape: tuple[int, ...], mapped: np.ndarray) -> np.ndarray:
    """The frames ``found[i]`` for ``i`` in ``mapped``, as ``shape + [H, W, 3]``; frames of another
    size (a resolution change mid-stream) are resized to the first one's."""
    h, w = found[int(mapped[0])].shape[:2]
    if any(a.shape[:2] != (h, w) for a in found.values()):
        found = {k: v if v.shape[:2] == (h, w) else _resize_np(v, h, w) for k, v in found.items()}
    out = np.stack([found[int(i)] for i in mapped])
    return out.reshape(shape + out.shape[1:])


def decode_all_frames(path: str | os.PathLike) -> np.ndarray:
    """Decodes every frame of a video (or frame folder) as uint8 ``[N, H, W, 3]`` (the naive
    approach; small files only)."""
    import av

    path = os.fspath(path)
    if os.path.isdir(path):
        from autox3d_tf.data.frame_folder import decode_frame_folder_for

        return decode_frame_folder_for(path, lambda info: np.arange(info.num_frames))[0]
    container, stream = _open(path)
    try:
        orient: Orientation | None = None
        frames = []
        for frame in container.decode(stream):
            orient = orient or display_transform(frame)
            frames.append(orient(frame.to_ndarray(format="rgb24")))
    except av.error.FFmpegError as err:
        raise VideoDecodeError(path, f"truncated or corrupt video ({err})") from err
    finally:
        container.close()
    if not frames:
        raise VideoDecodeError(path, "no decodable frames")
    return np.stack(frames)


def _resize_np(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of uint8 ``[..., H, W, 3]`` frames with TensorFlow (antialiased when shrinking)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(frames)
    squeeze = x.shape.rank == 3
    if squeeze:
        x = x[None]
    y = tf.image.resize(tf.cast(x, tf.float32), (height, width), method="bilinear", antialias=True)
    y = tf.cast(tf.clip_by_value(tf.round(y), 0, 255), tf.uint8).numpy()
    return y[0] if squeeze else y


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """Resizes uint8 frames ``[..., H, W, 3]`` so that their shorter side is ``size`` (aspect kept)."""
    h, w = frames.shape[-3], frames.shape[-2]
    if min(h, w) == size:
        return frames
    if h <= w:
        nh, nw = size, max(1, int(round(w * size / h)))
    else:
        nh, nw = max(1, int(round(h * size / w))), size
    return _resize_np(frames, nh, nw)


def center_crop(frames: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """The centred ``size`` x ``size`` (or ``(height, width)``) crop of frames ``[..., H, W, C]``."""
    ch, cw = (size, size) if isinstance(size, int) else size
    h, w = frames.shape[-3], frames.shape[-2]
    if ch > h or cw > w:
        raise ValueError(f"crop {ch}x{cw} larger than frames {h}x{w}; resize first")
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[..., top : top + ch, left : left + cw, :]


def load_clip(
    path: str | os.PathLike,
    frames: int,
    rate: int,
    crop: int,
    short_side: int | None = None,
    start: int | None = None,
    frame_rate: float | None = None,
) -> np.ndarray:
    """One centred uint8 clip ``[frames, crop, crop, 3]`` for prediction (from a video or a frame folder).

    The clip is taken from the middle of the video (or from ``start``; with ``rate`` 0, the frames are
    spread over the whole video, :func:`whole_video_indices`), resized so its short side is
    ``short_side`` (default ``crop``) and centre-cropped. Normalisation is left to the caller/model.
    """
    info = probe_video(path, frame_rate)
    if rate == 0:  # WHOLE_VIDEO: frames spread over the whole video
        idx = whole_video_indices(info.num_frames, frames)
    else:
        if start is None:
            start = max(0, (info.num_frames - frames * rate) // 2)
        idx = clip_indices(info.num_frames, frames, rate, start)
    clip = decode_frames(path, idx, frame_rate)
    return center_crop(resize_short_side(clip, short_side or crop), crop)
