"""Cost of the architecture search (issue 5, point 9).

Compares, at the same batch and clip:

- a plain training step (SGD, ``model.fit``'s compiled step) of the LARGEST architecture of the
  space (widest stages, costliest block type, largest expansion, SE everywhere);
- a search step of `ArchitectureSearch`: a weight step on one sampled architecture plus a
  distribution step that evaluates K sampled architectures on a held-out batch (K at its
  maximum, the uniform distribution's entropy), and the weight step alone (warm-up);

and the activation memory of each: the slope of the peak resident memory (a fresh process per
measurement) between the batch and ``--memory_factor`` times the batch, so that graph and weight
memory cancel out. The search should cost at most 1.5x
the plain step, and hold the memory of one sampled network, not of all candidates.

    python benchmarks/bench_search.py                       # autox3d-v1, 8x96x96 clips, batch 4
    python benchmarks/bench_search.py --space small --frames 8 --size 64 --batch 8 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _space(name: str, frames: int, size: int, classes: int):
    from autox3d_tf.search.space import space_preset

    return space_preset(name, input_frames=frames, input_size=size, classes=classes)


def measure(mode: str, space_name: str, frames: int, size: int, batch: int, steps: int, samples: int) -> dict:
    """One measurement in this process: mean step time (after 2 warm-up steps) and peak RSS."""
    import numpy as np
    import tensorflow as tf

    import keras

    base_rss = _rss_mb()
    base_peak = _peak_mb()
    space = _space(space_name, frames, size, 10)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, frames, size, size, 3)).astype("float32")
    y = (np.arange(batch) % 10).astype("int32")
    if mode == "plain":
        from autox3d_tf.flops import count_macs
        from autox3d_tf.models.builder import build_model

        spec = space.decode(space.extreme_choices(largest=True))
        model = build_model(spec, classes=space.classes, classifier_activation=None)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        run = lambda: model.train_on_batch(x, y)  # noqa: E731
        extra = {"gmacs_per_clip": count_macs(model) / 1e9, "params": model.count_params()}
    else:
        from autox3d_tf.search import ArchitectureSearch

        warm = mode == "weights_only"
        model = ArchitectureSearch(space, 1e15, num_samples=samples, min_samples=samples, warmup_steps=10**9 if warm else 0)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.optimizers.Adam(0.025))
        data = {"train": (tf.constant(x), tf.constant(y)), "held_out": (tf.constant(x), tf.constant(y))}
        step = tf.function(model.train_step)
        run = lambda: step(data)  # noqa: E731
        extra = {
            "expected_gmacs_per_clip": float(model.distribution.expected_macs()) / 1e9,
            "supernet_params": int(sum(np.prod(v.shape) for v in model.supernet.trainable_variables)),
        }
    t0 = time.time()
    run()
    first = time.time() - t0
    run()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = run()
        if isinstance(out, dict):
            [v.numpy() for v in out.values()]
        times.append(time.perf_counter() - t0)
    return {
        "mode": mode,
        "space": space.name,
        "clip": [frames, size, size],
        "batch": batch,
        "first_call_s": first,
        "step_ms_mean": 1000 * float(np.mean(times)),
        "step_ms_median": 1000 * float(np.median(times)),
        "peak_rss_growth_mb": _peak_mb() - base_peak if _peak_mb() > base_peak else _peak_mb() - base_rss,
        "peak_rss_mb": _peak_mb(),
        "rss_after_import_mb": base_rss,
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="autox3d-v1", choices=["autox3d-v1", "autox3d-v1-L", "small", "tiny"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--samples", type=int, default=4, help="K held-out architectures per distribution step")
    parser.add_argument("--memory_factor", type=int, default=4, help="memory: also run at this many times the batch")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--_mode", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._mode:
        print("RESULT " + json.dumps(measure(args._mode, args.space, args.frames, args.size, args.batch, args.steps, args.samples)))
        return 0
    results = {}
    big = args.batch * args.memory_factor
    for mode in ("plain", "search", "weights_only"):
        for batch, steps in ((args.batch, args.steps), (big, 2)):
            cmd = [sys.executable, os.path.abspath(__file__), "--_mode", mode, "--space", args.space, "--frames",
                   str(args.frames), "--size", str(args.size), "--batch", str(batch), "--steps", str(steps),
                   "--samples", str(args.samples)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            results[mode if batch == args.batch else f"{mode}_batch{big}"] = json.loads(line[0][7:])
    # Activation memory: growth of the peak RSS per extra clip (graphs and weights cancel out).
    per_clip = {
        mode: (results[f"{mode}_batch{big}"]["peak_rss_mb"] - results[mode]["peak_rss_mb"]) / (big - args.batch)
        for mode in ("plain", "search", "weights_only")
    }
    plain, search, weights = results["plain"], results["search"], results["weights_only"]
    summary = {
        "search_over_plain_time": search["step_ms_median"] / plain["step_ms_median"],
        "weight_step_over_plain_time": weights["step_ms_median"] / plain["step_ms_median"],
        "activation_mb_per_clip": per_clip,
        "search_over_plain_activation_memory": per_clip["search"] / per_clip["plain"],
        "results": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"space {args.space}, clip {args.frames}x{args.size}x{args.size}, batch {args.batch}, K={args.samples}")
        print(f"  plain step, largest arch ({plain['gmacs_per_clip']:.2f} GMACs/clip): "
              f"{plain['step_ms_median']:.0f} ms, peak RSS +{plain['peak_rss_growth_mb']:.0f} MB")
        print(f"  search step (1 weight step + {args.samples} held-out forwards; E[MACs] "
              f"{search['expected_gmacs_per_clip']:.2f} GMACs/clip): {search['step_ms_median']:.0f} ms "
              f"({summary['search_over_plain_time']:.2f}x), peak RSS +{search['peak_rss_growth_mb']:.0f} MB")
        print(f"  weight step alone (warm-up): {weights['step_ms_median']:.0f} ms "
              f"({summary['weight_step_over_plain_time']:.2f}x), peak RSS +{weights['peak_rss_growth_mb']:.0f} MB")
        print(f"  first call (trace + graph optimisation + run): plain {plain['first_call_s']:.1f} s, "
              f"search {search['first_call_s']:.1f} s, weight step {weights['first_call_s']:.1f} s")
        print(f"  activation memory (peak RSS slope, batch {args.batch} -> {big}): plain largest "
              f"{per_clip['plain']:.1f} MB/clip, search {per_clip['search']:.1f} MB/clip "
              f"({summary['search_over_plain_activation_memory']:.2f}x), weight step {per_clip['weights_only']:.1f} MB/clip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
