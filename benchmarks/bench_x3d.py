"""X3D speed: autox3d_tf against pytorchvideo on this CPU, same input, same threads.

    python benchmarks/bench_x3d.py                      # XS, S, M; batch 1 and 8; 2 threads
    python benchmarks/bench_x3d.py --large --json out.json
    python benchmarks/bench_x3d.py --models XS --batch 1 --runs 20 --no-compare
    python benchmarks/bench_x3d.py --models XS S --tflite   # also the TFLite export at batch 1
    python benchmarks/bench_x3d.py --models XS S --engine all --omp-passive   # every engine, interleaved

Prints a markdown table (model, batch, ours ms, pytorchvideo ms, ratio ours / pytorchvideo) and
optionally writes every timing as JSON. A benchmark, not a test: run it on an otherwise idle
machine. The target for the models is ratio <= 0.5 for XS, S and M.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from autox3d_tf.workflows import bench  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["XS", "S", "M"], help="X3D variants (default XS S M)")
    parser.add_argument("--large", action="store_true", help="also X3D-L (slow)")
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    parser.add_argument("--runs", type=int, default=7, help="timed calls per configuration (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--no-compare", action="store_true", help="ours only")
    parser.add_argument("--tflite", action="store_true", help="also time the TFLite export (XNNPACK) at batch 1")
    parser.add_argument("--engine", default=None, help="engines, comma-separated (see `autox3d bench --help`), "
                        "or all; default tf,folded (+ tflite with --tflite)")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for torch's OpenMP threads: on a loaded (shared) machine the default "
        "spin-waiting makes pytorchvideo 10-50x slower with 2 threads; on an idle machine leave it off",
    )
    parser.add_argument("--json", metavar="PATH", help="write all timings to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.upper() for m in args.models]
    if args.large and "L" not in models:
        models.append("L")
    compare = not args.no_compare
    if args.omp_passive:
        if "torch" in sys.modules:  # pragma: no cover - libgomp reads it once, at load
            print("bench_x3d: --omp-passive must take effect before torch is imported", file=sys.stderr)
            return 2
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    engines = None
    if args.engine is not None:
        try:
            engines = bench.parse_engines(args.engine)
            if args.tflite and "tflite" not in engines:
                engines.append("tflite")
            bench.check_engines_available(engines)
        except ValueError as err:
            print(f"bench_x3d: {err}", file=sys.stderr)
            return 2
    bench.configure_threads(args.threads)  # before TensorFlow initialises
    if compare:
        try:
            bench.check_reference_available(f"X3D_{models[0]}")
        except bench.ReferenceUnavailableError as err:
            print(f"bench_x3d: {err} (or pass --no-compare)", file=sys.stderr)
            return 2

    results = []
    start = time.time()
    for variant in models:
        results += bench.benchmark(
            f"X3D_{variant}",
            batches=args.batch,
            threads=args.threads,
            runs=args.runs,
            warmup=args.warmup,
            compare=compare,
            tflite=args.tflite,
            engines=engines,
            log=lambda msg: print(f"  {msg} ...", file=sys.stderr, flush=True),
        )
    elapsed = time.time() - start

    print(
        f"\nX3D CPU inference, {args.threads} threads, median of {args.runs} runs after {args.warmup} warm-up, "
        f"train clip of each model, random inputs; {platform.processor() or platform.machine()}, "
        f"{bench.default_threads()} cores visible, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}\n"
    )
    print(bench.format_table(results, markdown=True))
    for r in results:
        best = bench.fastest(r)
        if best is not None and r.reference is not None:
            print(f"{r.model} batch {r.batch}: fastest {best[0]} {best[1].median_ms:.1f} ms = "
                  f"{best[1].median_ms / r.reference.median_ms:.3f}x {r.reference_name}")
    if args.json:
        import keras
        import tensorflow as tf

        meta = {
            "threads": args.threads,
            "runs": args.runs,
            "warmup": args.warmup,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "elapsed_s": elapsed,
            "platform": platform.platform(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "load_average_after": os.getloadavg()[0],
        }
        if compare:
            import torch

            meta["torch"] = torch.__version__
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "results": [r.to_dict() for r in results]}, f, indent=2)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
