"""AutoX3D vs X3D CPU latency: each AutoX3D model against its X3D counterpart, same run, same threads.

    python benchmarks/bench_autox3d.py                       # XS, S, M; batch 1 and 8; 2 threads
    python benchmarks/bench_autox3d.py --models XS S M L --batch 1 --runs 9 --json out.json
    python benchmarks/bench_autox3d.py --spec-dir /tmp/candidates   # autox3d_{xs,s,m,l}.json from there

Method. Both models of a pair are built from their specs (random weights; latency does not depend on
them) at the X3D train clip, wrapped in ``tf.function(lambda x: model(x, training=False))`` and fed the
same random batch. After ``--warmup`` untimed calls each, the timed calls are interleaved (X3D, AutoX3D,
X3D, AutoX3D, ...), so that background load on a shared machine hits both sides alike. Reported: the
median and min of each side and the median of the per-round ratios AutoX3D / X3D (below 1: AutoX3D is
faster). A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from autox3d_tf.workflows import bench  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["XS", "S", "M"], help="variants (default XS S M; L is slow)")
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra/inter-op threads (default 2)")
    parser.add_argument("--runs", type=int, default=9, help="timed rounds per configuration (default 9)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per model first (default 2)")
    parser.add_argument("--spec-dir", help="read autox3d_<variant>.json from this folder instead of the package")
    parser.add_argument("--fused", action="store_true", help="time the inference-fused graphs (fuse_for_inference)")
    parser.add_argument("--json", metavar="PATH", help="write all timings to this JSON file")
    return parser.parse_args(argv)


def _specs(variant: str, spec_dir: str | None):
    from autox3d_tf.arch import ArchSpec, x3d_spec
    from autox3d_tf.zoo import get_spec

    x3d = x3d_spec(variant)
    if spec_dir:
        auto = ArchSpec.load(os.path.join(spec_dir, f"autox3d_{variant.lower()}.json"))
    else:
        auto = get_spec(f"AutoX3D_{variant}")
    return x3d, auto


def _callable(spec, input_shape, fused: bool):
    import tensorflow as tf

    from autox3d_tf.models.builder import build_model

    model = build_model(spec, input_shape=input_shape)
    if fused:
        from autox3d_tf.models.fuse import fuse_for_inference

        model = fuse_for_inference(model)
    fn = tf.function(lambda x: model(x, training=False))
    return model, fn


def main(argv=None) -> int:
    args = parse_args(argv)
    bench.configure_threads(args.threads)  # before TensorFlow initialises
    import tensorflow as tf

    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.flops import count_params

    rows = []
    start = time.time()
    for variant in [m.upper() for m in args.models]:
        x3d, auto = _specs(variant, args.spec_dir)
        shape = (x3d.input_frames, x3d.input_size, x3d.input_size, 3)
        (mx, fx), (ma, fa) = _callable(x3d, shape, args.fused), _callable(auto, shape, args.fused)
        for batch in args.batch:
            print(f"  {variant} batch {batch} ...", file=sys.stderr, flush=True)
            inputs = tf.constant(bench.make_inputs(batch, shape))
            for _ in range(args.warmup):
                fx(inputs).numpy()
                fa(inputs).numpy()
            tx, ta = [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fx(inputs).numpy()
                t1 = time.perf_counter()
                fa(inputs).numpy()
                t2 = time.perf_counter()
                tx.append(1000 * (t1 - t0))
                ta.append(1000 * (t2 - t1))
            rows.append(
                {
                    "variant": variant,
                    "batch": batch,
                    "input_shape": list(shape),
                    "threads": args.threads,
                    "x3d_gmacs": spec_macs(x3d) / 1e9,
                    "autox3d_gmacs": spec_macs(auto) / 1e9,
                    "x3d_params": int(count_params(mx)),
                    "autox3d_params": int(count_params(ma)),
                    "x3d_ms": tx,
                    "autox3d_ms": ta,
                    "x3d_median_ms": statistics.median(tx),
                    "autox3d_median_ms": statistics.median(ta),
                    "x3d_min_ms": min(tx),
                    "autox3d_min_ms": min(ta),
                    "ratio_median_of_rounds": statistics.median(a / x for a, x in zip(ta, tx)),
                }
            )
        del mx, ma, fx, fa
    elapsed = time.time() - start

    print(
        f"\nAutoX3D vs X3D, CPU inference, {args.threads} threads, {args.runs} interleaved rounds after "
        f"{args.warmup} warm-up calls, train clip of the X3D counterpart, random inputs"
        f"{', fused graphs' if args.fused else ''}; {platform.processor() or platform.machine()}, "
        f"{bench.default_threads()} cores visible, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| model | input | batch | X3D GMACs | AutoX3D GMACs | X3D ms (median / min) | AutoX3D ms (median / min) | AutoX3D / X3D (median of rounds) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, s = r["input_shape"][0], r["input_shape"][1]
        print(
            f"| {r['variant']} | {t}x{s}x{s} | {r['batch']} | {r['x3d_gmacs']:.3f} | {r['autox3d_gmacs']:.3f} | "
            f"{r['x3d_median_ms']:.1f} / {r['x3d_min_ms']:.1f} | {r['autox3d_median_ms']:.1f} / {r['autox3d_min_ms']:.1f} | "
            f"{r['ratio_median_of_rounds']:.3f} |"
        )
    print(f"\n({elapsed:.0f}s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "results": rows, "seconds": elapsed}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
