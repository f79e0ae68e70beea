"""Per-frame cost of a live label: streaming a causal model one frame at a time against recomputing
the model's whole window at every new frame.

For each model (causal form, random weights, BatchNorm folded), one batch-1 call per new frame:

- ``stream``: the streaming form (`autox3d_tf.models.streaming`), one frame in, states carried;
- ``window``: the full-clip model on the last ``T`` frames (what a sliding window costs when it
  slides by one frame).

Both in TensorFlow (one traced ``tf.function`` each) and in TFLite (the one-frame stream file of
`autox3d_tf.export.streaming.export_stream_tflite` against the float clip file of
`autox3d_tf.export.tflite.export_tflite`), interleaved in rounds, on ``--threads`` threads.

    python benchmarks/stream_cost.py                       # X3D-XS and X3D-S at their clips
    python benchmarks/stream_cost.py --models X3D_XS --rounds 3 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["X3D_XS", "X3D_S"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=10, help="timed calls per engine per round")
    p.add_argument("--no-tflite", dest="tflite", action="store_false")
    p.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    return p.parse_args(argv)


def _timer(fn, calls: int):
    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) * 1000 / calls
    return run


def measure(name: str, args) -> dict:
    import numpy as np
    import tensorflow as tf

    from autox3d_tf.export.streaming import TFLiteStream, export_stream_tflite, streaming_form
    from autox3d_tf.export.saved_model import inference_model
    from autox3d_tf.export.tflite import export_tflite
    from autox3d_tf.zoo import get_config, get_model

    config = get_config(name)
    frames, crop = config.frames, config.test_crop
    model = get_model(name, causal=True, input_shape=(frames, crop, crop, 3))
    stream = streaming_form(model, crop=crop, batch_size=1, chunk_frames=1)
    window = inference_model(model, frames=frames, crop=crop)
    rng = np.random.default_rng(0)
    frame = rng.normal(size=(1, 1, crop, crop, 3)).astype(np.float32)
    clip = rng.normal(size=(1, frames, crop, crop, 3)).astype(np.float32)
    states = {k: tf.constant(v) for k, v in stream.init_states(1).items()}
    step = tf.function(lambda x, s: stream.graph({"frames": x, **s}, training=False))
    full = tf.function(lambda x: window(x, training=False))
    holder = {"states": states}

    def stream_call():
        out = step(tf.constant(frame), holder["states"])
        holder["states"] = {k: out[k] for k in states}
        out["outputs"].numpy()

    engines = {"tf stream": _timer(stream_call, args.calls),
               "tf window": _timer(lambda: full(tf.constant(clip)).numpy(), args.calls)}
    tmp = tempfile.mkdtemp()
    if args.tflite:
        stream_path = export_stream_tflite(model, os.path.join(tmp, "stream.tflite"), crop=crop)
        clip_path = export_tflite(model, os.path.join(tmp, "clip.tflite"), frames=frames, crop=crop)
        runner = TFLiteStream(stream_path, num_threads=args.threads)
        pixel = (rng.uniform(0, 255, size=(crop, crop, 3))).astype(np.float32)
        clip_runner = tf.lite.Interpreter(model_path=clip_path, num_threads=args.threads).get_signature_runner()
        pixels = rng.integers(0, 256, size=(1, frames, crop, crop, 3), dtype=np.uint8)
        engines["tflite stream"] = _timer(lambda: runner.step(pixel), args.calls)
        engines["tflite window"] = _timer(lambda: clip_runner(frames=pixels), args.calls)
    for run in engines.values():  # warm-up
        run()
    times: dict[str, list[float]] = {k: [] for k in engines}
    for r in range(args.rounds):
        for k, run in engines.items():
            times[k].append(run())
        print(f"[stream_cost] {name} round {r + 1}/{args.rounds}: "
              + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in times.items()), file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"model": name, "frames": frames, "crop": crop, "ms_per_frame": med,
              "tf_stream_over_window": med["tf stream"] / med["tf window"]}
    if args.tflite:
        result["tflite_stream_over_window"] = med["tflite stream"] / med["tflite window"]
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    results = [measure(name, args) for name in args.models]
    if args.json:
        print(json.dumps({"threads": args.threads, "rounds": args.rounds, "results": results}))
        return 0
    engines = list(results[0]["ms_per_frame"])
    print("| model | clip | " + " | ".join(f"{e} (ms/frame)" for e in engines) + " | stream / window |")
    print("|---|---|" + "---:|" * (len(engines) + 1))
    for r in results:
        ratios = f"TF {r['tf_stream_over_window']:.2f}x" + (
            f", TFLite {r['tflite_stream_over_window']:.2f}x" if "tflite_stream_over_window" in r else "")
        print(f"| {r['model']} | {r['frames']} x {r['crop']} | "
              + " | ".join(f"{r['ms_per_frame'][e]:.1f}" for e in engines) + f" | {ratios} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
