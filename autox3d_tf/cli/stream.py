"""Top-k labels of a video stream as it plays: a file, an FFmpeg URL (RTSP / HTTP) or a camera.

    autox3d stream clip.mp4 --model X3D_XS [--weights kinetics400] [--stride 8] [--average 3] [--top 3]
    autox3d stream rtsp://camera.local/live --model X3D_S --json        # JSON lines on stdout
    autox3d stream --camera 0 --model X3D_XS --output annotated.mp4      # /dev/video0, label drawn on it
    autox3d stream clip.mp4 --run_dir runs/mine --realtime               # a file played at its own speed

The model's clip (``frames`` x ``sampling rate``, counted at 30 fps: the source is resampled by stream
time) is kept in a ring buffer; every ``--stride`` frames of that 30 fps timeline a window is scored,
the scores are averaged over the last ``--average`` windows, and the top-k is printed with the stream
time of the window's last frame. A decoder thread reads the source while the model runs. Live
sources (cameras, URLs) and files with ``--realtime`` never wait for the model: when it is slower than
real time, frames are dropped and windows skipped, and the summary says how many. The summary
(stderr; with ``--json`` also the last line on stdout): windows, frames read / dropped, mean / p95
latency per window, real-time factor.

A causal model (a run trained with ``--causal``) is streamed frame by frame instead: every
``sampling rate``-th frame of the timeline goes into its streaming form once, with its states, and
each output equals the causal model's on the whole stream so far (``--stride`` is the sampling rate).

A source that cannot be read (missing, not a video, no such camera, unreachable) is a one-line
error (exit status 1). A stream that stops mid-way is too, after the windows scored before it,
the summary, and a properly closed ``--output`` file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from autox3d_tf.workflows.json_output import print_json

_PROG = "autox3d stream"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``autox3d stream``."""
    parser.add_argument("source", nargs="?", metavar="SOURCE",
                        help="a video file or a URL FFmpeg opens (rtsp://, http://, udp://...)")
    parser.add_argument("--camera", type=int, metavar="N", help="read the camera /dev/videoN (V4L2) instead of SOURCE")
    parser.add_argument("--model", help="zoo model name, e.g. X3D_XS")
    parser.add_argument("--run_dir", help="a training run folder (instead of --model): its weights, clip and classes")
    parser.add_argument("--weights", default="kinetics400",
                        help="'kinetics400' (default), a .weights.h5 file or a PyTorch checkpoint")
    parser.add_argument("--top", type=int, default=5, help="labels per window (default 5)")
    parser.add_argument("--stride", type=int, default=8,
                        help="frames of the model's 30 fps timeline between windows (default 8: 0.27 s)")
    parser.add_argument("--average", type=int, default=3, help="windows whose scores are averaged (default 3; 1: none)")
    parser.add_argument("--model_fps", type=float, default=30.0,
                        help="the rate the model's sampling rate counts frames in (default 30, Kinetics); "
                             "0: the source's own frames, as training and predict count them")
    parser.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                        help="never wait for the model: drop frames when it is slower than real time (a file "
                             "plays at its own speed). Default: on for cameras and URLs, off for files")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much stream time")
    parser.add_argument("--output", metavar="VIDEO", help="write the video with the label drawn on it (e.g. out.mp4)")
    parser.add_argument("--threads", type=int,
                        help="TensorFlow threads (default: the CPU cores less one, for the decoder)")
    parser.add_argument("--ffmpeg_option", action="append", default=[], metavar="KEY=VALUE",
                        help="an FFmpeg input option, repeatable: e.g. video_size=640x480, framerate=30, "
                             "input_format=mjpeg (a camera), rtsp_transport=udp")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for a network source to open or send data (default 10)")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout: one per window, then the summary")


def _error(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr)


def _check(args: argparse.Namespace) -> str | None:
    if (args.source is None) == (args.camera is None):
        return "give a SOURCE (file or URL) or --camera N, not both"
    if (args.model is None) == (args.run_dir is None):
        return "give --model or --run_dir"
    if args.run_dir is None and str(args.weights).strip().lower() in ("", "none", "null"):
        return (f"--weights {args.weights!r}: streaming needs trained weights ('kinetics400', a .weights.h5 file, "
                "a PyTorch checkpoint, or --run_dir)")
    for name in ("top", "stride", "average"):
        if getattr(args, name) < 1:
            return f"--{name} must be >= 1"
    if args.camera is not None and args.camera < 0:
        return "--camera must be >= 0"
    if args.model_fps < 0:
        return "--model_fps must be > 0 (or 0: the source's frames)"
    if args.duration is not None and args.duration <= 0:
        return "--duration must be > 0"
    if args.threads is not None and args.threads < 1:
        return "--threads must be >= 1"
    if args.timeout <= 0:
        return "--timeout must be > 0"
    bad = [o for o in args.ffmpeg_option if "=" not in o or not o.split("=", 1)[0]]
    if bad:
        return f"--ffmpeg_option {bad[0]!r}: expected KEY=VALUE"
    return None


def _configure_threads(threads: int | None) -> None:
    from autox3d_tf.workflows.bench import configure_threads, default_threads

    wanted = threads if threads is not None else max(1, default_threads() - 1)
    try:
        configure_threads(wanted, 1 if threads is None else None)
    except RuntimeError as err:  # TensorFlow already running (in-process use): keep its threads
        if threads is not None:
            _error(f"--threads {threads} not applied: {str(err).splitlines()[0]}")


def _open(args: argparse.Namespace):
    from autox3d_tf.data.live import open_source

    options = dict(o.split("=", 1) for o in args.ffmpeg_option)
    return open_source(args.source, camera=args.camera, timeout=args.timeout, options=options)


def _format_window(result) -> str:
    labels = " | ".join(f"{p['label']} {p['probability']:.3f}" for p in result.predictions)
    extra = f", lag {result.lag_s:.2f} s" if result.lag_s is not None else ""
    return f"{result.end:8.2f} s  {labels}  ({result.latency_ms:.0f} ms{extra})"


def _print_summary(summary) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    skipped = f" ({summary.windows_skipped} skipped while the model was busy)" if summary.windows_skipped else ""
    _error(f"{summary.windows} windows{skipped} over {summary.stream_seconds:.2f} s of stream; "
           f"{summary.frames_read} frames read, {summary.frames_dropped} dropped")
    rtf = "-" if summary.realtime_factor is None else f"{summary.realtime_factor:.2f}x"
    load = "" if summary.model_load is None else f" (the model busy {100 * summary.model_load:.0f}% of the stream time)"
    _error(f"latency per window: mean {ms(summary.mean_latency_ms)}, p95 {ms(summary.p95_latency_ms)}; "
           f"real-time factor {rtf}{load}")
    if summary.output:
        _error(f"annotated video: {summary.output}")


def run(args: argparse.Namespace) -> int:
    """Runs ``autox3d stream``; 0 when the stream was read to its end, 1 when it could not be read or
    stopped mid-way, 2 for bad arguments or a model that cannot be built, 130 on Ctrl-C."""
    from autox3d_tf.data.live import SourceError

    problem = _check(args)
    if problem:
        _error(problem)
        return 2
    try:  # a bad source fails before the model is built
        source = _open(args)
    except SourceError as err:
        _error(str(err))
        return 1
    if source.info.live:  # don't let a live source buffer while the model builds
        source.close()
    _configure_threads(args.threads)
    try:
        from autox3d_tf.cli.predict import build_predictor
        from autox3d_tf.workflows.stream import KerasScorer

        model, settings = build_predictor(args.model, args.weights, args.run_dir)
        if settings.sampling_rate < 1:
            raise ValueError(f"{settings.name} was trained on whole videos (sampling rate 0): it cannot be streamed")
        if getattr(getattr(model, "arch_spec", None), "causal", False):
            from autox3d_tf.workflows.stream import CausalScorer

            # Frame by frame: every sampling_rate-th frame of the timeline goes in once.
            scorer = CausalScorer(model, settings.sampling_rate, settings.test_crop, labels=settings.labels,
                                  name=settings.name)
            args.stride = settings.sampling_rate
        else:
            scorer = KerasScorer(model, settings.frames, settings.sampling_rate, settings.test_crop,
                                 labels=settings.labels, name=settings.name)
    except Exception as err:  # unknown model, missing weights, mismatched file
        source.close()
        _error(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return 2
    if source.info.live:
        try:
            source = _open(args)
        except SourceError as err:
            _error(str(err))
            return 1
    return _stream(args, source, scorer)


def _stream(args: argparse.Namespace, source, scorer) -> int:
    from autox3d_tf.workflows.stream import AnnotatedWriter, StreamOptions, stream_windows

    options = StreamOptions(stride=args.stride, average=args.average, top=args.top, realtime=args.realtime,
                            model_fps=args.model_fps or None, max_seconds=args.duration)
    info = source.info
    realtime = info.live if args.realtime is None else args.realtime
    span = (scorer.frames - 1) * scorer.sampling_rate + 1
    rate = options.model_fps or info.fps
    _error(f"{source.name}: {info.width} x {info.height} at {info.fps:.3g} fps; {scorer.name}: a clip of "
           f"{scorer.frames} frames {scorer.sampling_rate} apart at {rate:.3g} fps ({span / rate:.2f} s), "
           f"a window every {options.stride} frames ({options.stride / rate:.2f} s), averaged over "
           f"{options.average}{', real time' if realtime else ''}")
    header: dict[str, Any] = {"type": "stream", "source": source.name, "model": scorer.name,
                              "fps": info.fps, "width": info.width, "height": info.height,
                              "clip": {"frames": scorer.frames, "sampling_rate": scorer.sampling_rate,
                                       "crop": scorer.crop, "model_fps": options.model_fps},
                              "stride": options.stride, "average": options.average, "realtime": realtime}
    if args.json:
        print_json(header, indent=None)

    def on_window(result) -> None:
        if args.json:
            print_json(result.to_dict(), indent=None)
        else:
            print(_format_window(result), flush=True)

    writer = None
    try:
        if args.output:
            try:
                writer = AnnotatedWriter(args.output, info.fps)
            except Exception as err:  # a missing folder, an unknown container
                _error(f"--output {args.output}: cannot be written ({type(err).__name__}: {err})")
                return 2
        try:
            summary = stream_windows(source, scorer, options, on_window=on_window, writer=writer,
                                     on_notice=_error)
        except Exception as err:  # the scorer failed (non-finite output...), an encoder error
            _error(f"{source.name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            return 1
    finally:
        source.close()
        if writer is not None:
            writer.close()
    if summary.windows == 0 and summary.error is None:
        _error(f"{source.name}: {summary.stream_seconds:.2f} s of stream is shorter than one clip "
               f"({span / rate:.2f} s): no window")
    _print_summary(summary)
    if args.json:
        print_json(summary.to_dict(), indent=None)
    if summary.error is not None:
        _error(summary.error)
        return 1
    return 130 if summary.interrupted else 0
