"""Streaming inference: a video source scored window by window as it plays (``autox3d stream``).

    scorer = KerasScorer(model, frames=4, sampling_rate=12, crop=182, labels=names)
    with open_source("clip.mp4") as source:
        summary = stream_windows(source, scorer, StreamOptions(stride=8, average=3),
                                 on_window=lambda w: print(w.end, w.predictions[0]))

A decoder thread reads the source, resamples it to the model's timeline
(:class:`~autox3d_tf.data.live.Resampler`, 30 fps by default) and prepares the frames the model
sees (upright, short side resized, centre crop); a bounded queue carries them to the calling thread,
which keeps the clip (:class:`~autox3d_tf.data.live.ClipRing`) and scores a window every ``stride``
slots: the clip of ``frames`` slots ``sampling_rate`` apart ending at that slot. Scores are averaged
over the last ``average`` windows.

Real-time mode (live sources, cameras and URLs, by default; files with ``realtime=True``): frames are
taken at their timestamps (a file or an HTTP download plays at its own speed, a camera is
not slowed down), and the decoder never waits for the model. When the queue is full the oldest frame is
dropped (counted in ``frames_dropped``), and a window that falls due while newer frames are already
waiting is skipped for the newer one (``windows_skipped``), so the results stay close to the
stream instead of falling further behind. Otherwise (files by default) every frame and window is
processed, as fast as the machine allows.

The scorer is pluggable: anything with the :class:`WindowScorer` interface (its clip settings and
``__call__(clip) -> probabilities``), e.g. a causal model that takes ``frames=1`` clips and keeps
its state between calls.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

from autox3d_tf.data.live import (
    NOMINAL_FPS,
    ClipRing,
    Resampler,
    SourceError,
    SourceFrame,
    VideoSource,
    prepare_frame,
)

__all__ = [
    "WindowScorer",
    "KerasScorer",
    "StreamOptions",
    "WindowResult",
    "StreamSummary",
    "AnnotatedWriter",
    "stream_windows",
    "expected_windows",
    "class_names_for",
    "CausalScorer",
]


class WindowScorer:
    """The inference step of a stream: clip settings, and ``__call__(clip) -> probabilities``.

    Attributes:
        frames: frames per clip.
        sampling_rate: slots between clip frames (slots of the stream's timeline, 30 fps by default).
        crop: the clip's height and width (centre crop).
        short_side: the short side frames are resized to before the crop (default ``crop``).
        labels: class names (empty: Kinetics-400 names for 400 classes, else the class numbers).
        name: what the results call the model.

    ``__call__`` gets a uint8 ``[frames, crop, crop, 3]`` RGB clip (oldest frame first) and returns
    the class probabilities ``[classes]``. ``reset()`` runs before each stream; a stateful (causal)
    scorer clears its state there.
    """

    frames: int = 1
    sampling_rate: int = 1
    crop: int = 224
    short_side: int | None = None
    labels: tuple[str, ...] = ()
    name: str = "model"

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        """Clears any state kept between windows (nothing for a clip model)."""

    def warmup(self) -> None:
        """Runs once before a stream (compiling, allocating), so that the first window's latency is
        the model's; the default scores a black clip, then :meth:`reset` clears what it left."""
        self(np.zeros((self.frames, self.crop, self.crop, 3), np.uint8))
        self.reset()


def _probabilities(out: np.ndarray) -> np.ndarray:
    """A scorer's ``[classes]`` output as probabilities: a non-finite output raises
    ``FloatingPointError``; logits (a model without a softmax) get one."""
    if not np.isfinite(out).all():
        raise FloatingPointError("the model's output is not finite (NaN / Inf): its weights or input are broken")
    if out.min() < 0 or abs(out.sum() - 1.0) > 1e-3:  # logits
        out = np.exp(out - out.max())
        out /= out.sum()
    return out


class KerasScorer(WindowScorer):
    """A Keras clip classifier (softmax output) as a :class:`WindowScorer`.

    Clips are normalised with :func:`~autox3d_tf.preprocessing.preprocess_input` (as ``autox3d
    predict`` does) and run through one compiled ``tf.function`` call per window. A non-finite output
    raises ``FloatingPointError``; logits (a model without a softmax) are turned into probabilities.
    """

    def __init__(self, model, frames: int, sampling_rate: int, crop: int, short_side: int | None = None,
                 labels: Sequence[str] = (), name: str | None = None):
        import tensorflow as tf

        self.model = model
        self.frames, self.sampling_rate, self.crop = int(frames), int(sampling_rate), int(crop)
        self.short_side = int(short_side or crop)
        self.labels = tuple(labels)
        self.name = name or getattr(model, "name", "model")
        spec = tf.TensorSpec((1, self.frames, self.crop, self.crop, 3), tf.float32)
        self._call = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        from autox3d_tf.preprocessing import preprocess_input

        return _probabilities(np.asarray(self._call(preprocess_input(np.asarray(clip)[None])), dtype=np.float64)[0])


class CausalScorer(WindowScorer):
    """A causal model (``causal=True``) streamed frame by frame: each call feeds one new frame to
    its streaming form (`autox3d_tf.models.streaming`, BatchNorm folded) and returns the
    probabilities after it, which equal the full-clip causal model's at that frame. The states
    (temporal buffers, running averages) carry everything seen since the last :meth:`reset`.

    Streamed with ``stride == sampling_rate`` (what `autox3d stream` does for a causal model), every
    ``sampling_rate``-th frame of the timeline is fed once, as the model saw its training clips.
    """

    def __init__(self, model, sampling_rate: int, crop: int, short_side: int | None = None,
                 labels: Sequence[str] = (), name: str | None = None):
        from autox3d_tf.export.streaming import streaming_form

        self.frames, self.sampling_rate, self.crop = 1, int(sampling_rate), int(crop)
        self.short_side = int(short_side or crop)
        self.labels = tuple(labels)
        self.name = name or getattr(model, "name", "model")
        self.stream = streaming_form(model, crop=self.crop, batch_size=1, chunk_frames=1)
        self.reset()

    def reset(self) -> None:
        self.states = self.stream.init_states(1)
        self.frames_seen = 0

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        from autox3d_tf.preprocessing import preprocess_input

        frame = preprocess_input(np.asarray(clip)[-1:][None])
        out, self.states = self.stream(frame, self.states)
        self.frames_seen += 1
        return _probabilities(np.asarray(out, np.float64)[0, -1])


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is scored.

    Attributes:
        stride: slots between windows (at 30 fps, 8 slots are 0.27 s of stream time).
        average: windows averaged into each reported score (1: none).
        top: labels reported per window.
        realtime: never wait for the model (drop frames, skip windows); None: for live sources only.
        model_fps: the rate of the model's timeline (:data:`~autox3d_tf.data.live.NOMINAL_FPS`); None:
            the source's own frames are the slots (the training / ``predict`` rule).
        queue_seconds: stream time the decoder may buffer ahead of the model (at least 8 frames).
        max_seconds: stop after this much stream time (None: the whole stream).
    """

    stride: int = 8
    average: int = 3
    top: int = 5
    realtime: bool | None = None
    model_fps: float | None = NOMINAL_FPS
    queue_seconds: float = 2.0
    max_seconds: float | None = None

    def __post_init__(self):
        for name in ("stride", "average", "top"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.model_fps is not None and not self.model_fps > 0:
            raise ValueError(f"model_fps must be positive (or None), got {self.model_fps!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive (or None), got {self.max_seconds!r}")


@dataclass
class WindowResult:
    """One scored window.

    ``start`` / ``end`` are the stream times (s) of its first and last frames; ``predictions`` the
    top-k of the scores averaged over ``averaged`` windows, as ``{"index", "label", "probability"}``;
    ``latency_ms`` the scorer's time on this window; ``lag_s`` (real-time mode) how far behind the
    stream the result came out; ``frames_dropped`` the drops so far.
    """

    window: int
    start: float
    end: float
    predictions: list[dict[str, Any]]
    latency_ms: float
    averaged: int
    frames_dropped: int = 0
    lag_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of this window."""
        return {"type": "window", **dataclasses.asdict(self)}


@dataclass
class StreamSummary:
    """What a stream amounted to.

    ``realtime_factor`` is stream seconds processed per wall-clock second (above 1: faster than real
    time); ``model_load`` the fraction of the stream's duration the scorer was busy (above 1: the
    model alone is slower than real time, so a live stream must drop). ``error`` is the one-line
    reason a stream stopped mid-way (None when it ended normally).
    """

    source: str
    model: str
    windows: int = 0
    windows_skipped: int = 0
    frames_read: int = 0
    frames_dropped: int = 0
    slots: int = 0
    stream_seconds: float = 0.0
    wall_seconds: float = 0.0
    mean_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    realtime_factor: float | None = None
    model_load: float | None = None
    realtime: bool = False
    model_fps: float | None = NOMINAL_FPS
    source_fps: float = 0.0
    error: str | None = None
    interrupted: bool = False
    output: str | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The final JSON line (without the per-window latencies)."""
        data = dataclasses.asdict(self)
        data.pop("latencies_ms")
        return {"type": "summary", **data}


def class_names_for(classes: int, labels: Sequence[str]) -> list[str] | None:
    """The class names of a ``classes``-way output: ``labels`` when they fit, None (Kinetics-400
    names) for 400 classes, else the class numbers (``predict``'s rule)."""
    if len(labels) == classes:
        return list(labels)
    return None if classes == 400 else [str(i) for i in range(classes)]


def expected_windows(slots: int, frames: int, sampling_rate: int, stride: int) -> int:
    """Windows of a stream of ``slots`` timeline slots: the first once a clip is held, then one every ``stride``."""
    span = (frames - 1) * sampling_rate + 1
    return 0 if slots < span else 1 + (slots - span) // stride


class AnnotatedWriter:
    """Writes the stream's frames with the current label drawn on them (PyAV encoder, Pillow text).

    The file is opened at once (a bad path or container fails before the stream starts); its video
    stream is added at the first frame, whose size (upright, rounded down to even) it keeps. The
    codec is libx264 where PyAV has it (else MPEG-4 Part 2); the frame times are the source's, so
    dropped frames leave the timing intact. ``close()`` flushes the encoder, so the file is playable
    after a stream that stopped mid-way; a file that got no frame is removed.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        import av

        self.path = os.fspath(path)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(30)
        self._container = av.open(self.path, "w")
        self._stream = None
        self._time_base = Fraction(1, 90000)
        self._last_pts = -1
        self.frames_written = 0
        self._font = None
        self.width = self.height = 0

    def _open_stream(self, height: int, width: int) -> None:
        import av

        self.width, self.height = width - width % 2, height - height % 2
        if self.width < 2 or self.height < 2:
            raise ValueError(f"frames of {width} x {height} are too small to encode")
        codec = "mpeg4"
        for name in ("libx264", "h264", "mpeg4"):
            try:
                av.codec.Codec(name, "w")
                codec = name
                break
            except Exception:  # not in this FFmpeg build
                continue
        stream = self._container.add_stream(codec, rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = self._time_base
        if stream.codec_context.name == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23"}
        self._stream = stream

    def _font_for(self):
        if self._font is None:
            from PIL import ImageFont

            size = max(10, min(self.width, self.height) // 16)
            try:
                self._font = ImageFont.load_default(size=size)
            except TypeError:  # Pillow < 10.1: the bitmap font, one size
                self._font = ImageFont.load_default()
        return self._font

    def write(self, image: np.ndarray, time_s: float, text: str) -> None:
        """Encodes one uint8 RGB frame at stream time ``time_s`` with ``text`` in a banner at the top."""
        import av
        from PIL import Image, ImageDraw

        if self._stream is None:
            self._open_stream(*image.shape[:2])
        picture = Image.fromarray(np.ascontiguousarray(image[: self.height, : self.width]))
        if text:
            draw = ImageDraw.Draw(picture, "RGBA")
            font = self._font_for()
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            pad = max(2, (bottom - top) // 4)
            draw.rectangle((0, 0, min(self.width, right - left + 2 * pad), bottom + 2 * pad), fill=(0, 0, 0, 160))
            draw.text((pad - left, pad), text, fill=(255, 255, 255, 255), font=font)
        frame = av.VideoFrame.from_image(picture)
        pts = max(int(round(time_s / self._time_base)), self._last_pts + 1)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flushes the encoder and closes the file (idempotent); removes a file that got no frame."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    container.mux(packet)
        finally:
            try:
                container.close()
            finally:
                if self._stream is None and os.path.exists(self.path):
                    os.remove(self.path)


@dataclass
class _Item:
    """A frame on its way from the decoder thread to the model."""

    index: int
    time: float
    slots: range
    image: np.ndarray | None  # the model's view (None when it fills no slot)
    display: np.ndarray | None  # the full upright frame, for the annotated output


@dataclass
class _End:
    error: BaseException | None = None


class _Decoder(threading.Thread):
    """Reads ``source`` into ``out``; in real-time mode drops the oldest queued frame when full."""

    def __init__(self, source: VideoSource, scorer: WindowScorer, resampler: Resampler, out: queue.Queue,
                 realtime: bool, pace: bool, keep_display: bool, max_seconds: float | None):
        super().__init__(name="autox3d-stream-decoder", daemon=True)
        self.source, self.scorer, self.resampler, self.out = source, scorer, resampler, out
        self.realtime, self.pace, self.keep_display, self.max_seconds = realtime, pace, keep_display, max_seconds
        self.stop = threading.Event()
        self.dropped = 0
        self.read = 0
        self.started_at: float | None = None  # wall clock of the first frame

    def _put(self, item) -> None:
        if self.realtime and isinstance(item, _Item):
            while not self.stop.is_set():
                try:
                    self.out.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        old = self.out.get_nowait()
                    except queue.Empty:
                        continue
                    if isinstance(old, _Item):
                        self.dropped += 1
            return
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        end = _End()
        short_side = self.scorer.short_side or self.scorer.crop
        last: SourceFrame | None = None
        try:
            for frame in self.source:
                if self.stop.is_set():
                    break
                if self.max_seconds is not None and frame.time >= self.max_seconds:
                    break
                now = time.perf_counter()
                if self.started_at is None:
                    self.started_at = now
                elif self.pace:  # frames taken at their timestamps (a file, or a download, plays at its speed)
                    wait = self.started_at + frame.time - now
                    if wait > 0:
                        self.stop.wait(wait)
                self.read += 1
                last = frame
                slots = self.resampler.push(frame.time)
                image = prepare_frame(frame, short_side, self.scorer.crop) if len(slots) else None
                display = frame.rgb() if self.keep_display else None
                self._put(_Item(frame.index, frame.time, slots, image, display))
            if last is not None and not self.stop.is_set():  # the last frame lasts until the stream's end
                slots = self.resampler.finish(last.time)
                if len(slots):
                    image = prepare_frame(last, short_side, self.scorer.crop)
                    self._put(_Item(last.index, last.time, slots, image, None))
        except BaseException as err:  # StreamInterrupted, or anything unexpected: reported by the consumer
            end = _End(err)
        self._put(end)


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def _banner(result: WindowResult | None) -> str:
    if result is None:
        return ""
    best = result.predictions[0]
    return f"{best['label']}  {best['probability']:.2f}   t={result.end:.1f}s"


def stream_windows(
    source: VideoSource,
    scorer: WindowScorer,
    options: StreamOptions = StreamOptions(),
    on_window: Callable[[WindowResult], None] | None = None,
    writer: AnnotatedWriter | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> StreamSummary:
    """Scores ``source`` window by window (see the module docstring) and returns the summary.

    ``on_window(result)`` runs for each window as it is scored; ``writer`` receives every frame that
    reached the model's side, with the latest label; ``on_notice(text)`` gets one-off remarks (the
    first dropped frames). A stream that stops mid-way (:class:`~autox3d_tf.data.live.StreamInterrupted`)
    ends the loop: the summary has its message in ``error`` and the windows before it stand. Any other
    error is raised after the decoder thread stopped. ``writer`` is not closed here.
    """
    realtime = bool(source.info.live) if options.realtime is None else bool(options.realtime)
    resampler = Resampler(source.info.fps, options.model_fps)
    ring = ClipRing(scorer.frames, scorer.sampling_rate)
    capacity = max(8, int(round(options.queue_seconds * source.info.fps)))
    frames_queue: queue.Queue = queue.Queue(maxsize=capacity)
    decoder = _Decoder(source, scorer, resampler, frames_queue, realtime, pace=realtime,
                       keep_display=writer is not None, max_seconds=options.max_seconds)
    summary = StreamSummary(source=source.name, model=scorer.name, realtime=realtime, model_fps=options.model_fps,
                            source_fps=source.info.fps, output=writer.path if writer is not None else None)
    history: deque = deque(maxlen=options.average)
    class_list: list[str] | None = None
    latest: WindowResult | None = None
    pending: tuple[int, list[np.ndarray]] | None = None  # (end slot, clip) of a window due
    next_end = ring.span - 1
    last_time = 0.0
    warned = False

    from autox3d_tf.preprocessing import decode_predictions

    def score(end_slot: int, clip: list[np.ndarray]) -> None:
        nonlocal class_list, latest
        began = time.perf_counter()
        probs = np.asarray(scorer(np.stack(clip)), dtype=np.float64).reshape(-1)
        latency = (time.perf_counter() - began) * 1000.0
        history.append(probs)
        mean = np.mean(np.stack(history), axis=0)
        if class_list is None:
            class_list = class_names_for(mean.shape[0], scorer.labels)
        top = decode_predictions(mean[None], top=options.top, class_list=class_list)[0]
        end_t = resampler.slot_time(end_slot)
        lag = None
        if realtime and decoder.started_at is not None:
            lag = max(0.0, time.perf_counter() - (decoder.started_at + end_t))
        latest = WindowResult(
            window=summary.windows, start=resampler.slot_time(end_slot - ring.span + 1), end=end_t,
            predictions=[{"index": i, "label": label, "probability": p} for i, label, p in top],
            latency_ms=latency, averaged=len(history), frames_dropped=decoder.dropped, lag_s=lag)
        summary.windows += 1
        summary.latencies_ms.append(latency)
        if on_window is not None:
            on_window(latest)

    scorer.warmup()
    scorer.reset()
    began = time.perf_counter()
    decoder.start()
    error: BaseException | None = None
    try:
        while True:
            item = frames_queue.get()
            if isinstance(item, _End):
                error = item.error
                break
            last_time = item.time
            for slot in item.slots:
                ring.push(slot, item.image)
                if slot >= next_end and ring.ready:
                    if pending is not None:
                        summary.windows_skipped += 1
                    pending = (slot, ring.clip())
                    next_end = slot + options.stride
            if writer is not None and item.display is not None:
                writer.write(item.display, item.time, _banner(latest))
            if decoder.dropped and not warned:
                warned = True
                if on_notice is not None:
                    on_notice("the model is slower than real time: dropping frames to keep up "
                              "(counted in the summary)")
            if pending is not None and not (realtime and not frames_queue.empty()):
                score(*pending)
                pending = None
        if pending is not None:
            score(*pending)
            pending = None
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        decoder.stop.set()
        while decoder.is_alive():  # unblock a decoder waiting on a full queue
            try:
                frames_queue.get(timeout=0.05)
            except queue.Empty:
                pass
        decoder.join()
    summary.wall_seconds = time.perf_counter() - began
    summary.frames_read = decoder.read
    summary.frames_dropped = decoder.dropped
    summary.slots = resampler.slots
    summary.stream_seconds = last_time + 1.0 / source.info.fps if decoder.read else 0.0
    summary.mean_latency_ms = float(np.mean(summary.latencies_ms)) if summary.latencies_ms else None
    summary.p95_latency_ms = _percentile(summary.latencies_ms, 95)
    if summary.wall_seconds > 0 and decoder.read:
        summary.realtime_factor = summary.stream_seconds / summary.wall_seconds
    if summary.stream_seconds > 0 and summary.latencies_ms:
        summary.model_load = float(np.sum(summary.latencies_ms)) / 1000.0 / summary.stream_seconds
    if error is not None:
        if isinstance(error, SourceError):
            summary.error = str(error)
        else:
            raise error
    return summary
