"""latency / throughput on this machine, optionally against pytorchvideo and other zoo models.

    autox3d bench X3D_S
    autox3d bench E3D_S --compare X3D_S,AutoX3D_S --batch 1 8 --engine tf,folded --json
    autox3d bench X3D_M --batch 1 8 --threads 2 --runs 10 --compare pytorchvideo --json
    autox3d bench X3D_XS --batch 1 --tflite --compare pytorchvideo
    autox3d bench X3D_S --engine tf,folded,tflite,tflite-int8,openvino,onnxruntime --compare pytorchvideo

Latency is the median over --runs calls of the compiled graph (tf.function, training=False)
after --warmup calls; throughput is batch / latency. With --compare pytorchvideo, the
reference X3D runs on the same values (transposed to channels first) with the same number of
threads, and the table adds its latency and the ratio ours / reference (below 1: ours faster).
--compare also takes zoo model names, comma-separated and mixed with pytorchvideo
(--compare pytorchvideo,X3D_S,AutoX3D_S): each is timed with the same engines, threads and batch
sizes on its own train clip (or --input-shape), interleaved in the same rounds as the model; the
table gets one row group per model, and a second table the ratio model / compared per engine.
With --tflite, the TFLite export (batch 1, XNNPACK, same threads) is timed too. --engine picks
the engines (tf, folded, tflite, tflite-float16, tflite-dynamic, tflite-int8, openvino, openvino-int8,
onnxruntime, or all): each gets the same clip and threads, and they run interleaved (one call
each per round); the TFLite files take batch 1 only. OpenVINO and ONNX Runtime need their
packages (pip install autox3d_tf[runtimes]).
"""

from __future__ import annotations

import argparse
import sys

from autox3d_tf.workflows.json_output import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from autox3d_tf.workflows.bench import REFERENCE_NAME, default_threads

    parser.add_argument("model", help="model name, e.g. X3D_S")
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8], metavar="B", help="batch sizes (default 1 8)")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="CPU threads for TensorFlow (intra- and inter-op) and torch (default: cores available, %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=10, help="timed calls per configuration (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument(
        "--input-shape",
        nargs=3,
        type=int,
        metavar=("FRAMES", "HEIGHT", "WIDTH"),
        help="clip shape (default: the model's train clip)",
    )
    parser.add_argument(
        "--compare",
        type=_compare_names,
        metavar="NAME[,NAME...]",
        help=f"also time these, comma-separated: {REFERENCE_NAME} (the reference X3D) and/or zoo models "
        "(e.g. X3D_S,AutoX3D_S), on the same engines, threads and batch sizes",
    )
    parser.add_argument("--tflite", action="store_true", help="also time the TFLite export at batch 1")
    parser.add_argument(
        "--engine",
        default=None,
        metavar="E[,E...]",
        help="engines to time, comma-separated: tf, folded, tflite, tflite-float16, tflite-dynamic, tflite-int8, "
        "openvino, openvino-int8, onnxruntime, or all (default: tf,folded, and tflite with --tflite)",
    )
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for torch's OpenMP threads (much fairer to torch on a loaded machine)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _compare_names(text: str) -> list[str]:
    """--compare's value: checked names (argparse reports a ValueError's message as a one-line error)."""
    from autox3d_tf.workflows.bench import parse_compare

    try:
        return parse_compare(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _error(message: str) -> int:
    print(f"autox3d bench: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from autox3d_tf.workflows import bench

    if any(b < 1 for b in args.batch) or args.threads < 1 or args.runs < 1 or args.warmup < 0:
        return _error("--batch and --threads must be >= 1, --runs >= 1 and --warmup >= 0.")
    if args.omp_passive:
        import os

        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read once, when torch loads libgomp
    try:
        from autox3d_tf.zoo import get_model_config

        engines = None
        if args.engine is not None:
            engines = bench.parse_engines(args.engine)
            if args.tflite and "tflite" not in engines:
                engines.append("tflite")
            bench.check_engines_available(engines)
        name = get_model_config(args.model).name
        compare = [n for n in args.compare or [] if n != name]
        if bench.REFERENCE_NAME in compare:
            bench.check_reference_available(name)
        # Threads before TensorFlow initialises (bench.benchmark would be too late for nothing).
        bench.configure_threads(args.threads)
        results = bench.benchmark(
            name,
            batches=args.batch,
            threads=args.threads,
            runs=args.runs,
            warmup=args.warmup,
            compare=compare,
            tflite=args.tflite,
            engines=engines,
            input_shape=args.input_shape,
            log=None if args.json else (lambda msg: print(f"  timing {msg} ...", file=sys.stderr, flush=True)),
        )
    except (ValueError, bench.ReferenceUnavailableError, RuntimeError) as err:
        return _error(str(err))

    if args.json:
        data = {"results": [r.to_dict() for r in results]}
        if args.compare is not None:
            data.update(model=name, compare=compare)
        print_json(data, indent=2)
        return 0
    first = results[0]
    shape = "x".join(str(d) for d in first.input_shape)
    print(
        f"{name}: input {shape}, {args.threads} threads, median of {args.runs} runs after {args.warmup} warm-up"
    )
    print(bench.format_table(results, markdown=False))
    ratios = bench.format_ratios(results, markdown=False)
    if ratios:
        shapes = ", ".join(f"{r.model} {'x'.join(str(d) for d in r.input_shape)}"
                           for r in results if r.batch == results[-1].batch and r.model != name)
        print(f"\n{name} / compared (median latency, below 1: {name} faster; compared clips: {shapes})")
        print(ratios)
    for r in results:
        best = bench.fastest(r)
        if best is not None and r.reference is not None:
            print(f"batch {r.batch}: fastest {best[0]}, {best[1].median_ms:.1f} ms, "
                  f"{best[1].median_ms / r.reference.median_ms:.3f}x {r.reference_name}")
    return 0
