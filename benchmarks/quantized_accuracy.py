"""Accuracy of the quantised TFLite files of a trained run against its float file.

    python benchmarks/quantized_accuracy.py RUN_DIR --data data/annotations.csv --split test \
        --calibration_split train [--also ../shared/data/egogestar/annotations.csv:val]

Exports RUN_DIR (``autox3d export --quantize int8,float16,dynamic``, int8 calibrated on
``--calibration_split`` of ``--data``), then runs every file on the centre view (one clip, one
crop, the run's frames / rate / test crop) of each video of ``--split``: top-1 of each file, its
top-1 agreement with the float file, and the error of its logits. Prints a markdown table and
writes JSON with ``--json``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def evaluate(files: dict[str, str], views: list[tuple[np.ndarray, int]], threads: int) -> dict:
    import tensorflow as tf

    from autox3d_tf.export.saved_model import SIGNATURE

    logits = {}
    for name, path in files.items():
        runner = tf.lite.Interpreter(model_path=path, num_threads=threads).get_signature_runner(SIGNATURE)
        logits[name] = np.stack([runner(frames=clip)["logits"][0] for clip, _ in views])
    labels = np.asarray([y for _, y in views])
    ref = logits["float32"]
    out = {}
    for name, value in logits.items():
        err = np.abs(value - ref)
        out[name] = {"videos": int(len(labels)), "top1": float(np.mean(value.argmax(-1) == labels)),
                     "top1_agreement": float(np.mean(value.argmax(-1) == ref.argmax(-1))),
                     "logit_max_abs_error": float(err.max()), "logit_mean_abs_error": float(err.mean()),
                     "logit_std": float(ref.std())}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data", required=True, help="annotation file / folder of the evaluation videos")
    parser.add_argument("--split", default="test")
    parser.add_argument("--calibration_data", default=None,
                        help="annotation file / folder of the int8 calibration videos (default: --data)")
    parser.add_argument("--calibration_split", default="train")
    parser.add_argument("--calibration_clips", type=int, default=64)
    parser.add_argument("--modes", default="int8,float16,dynamic")
    parser.add_argument("--also", action="append", default=[], metavar="DATA[:SPLIT]",
                        help="other evaluation data (the same table), e.g. ../shared/data/egogestar/annotations.csv:val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out_dir", default=None, help="export folder (default RUN_DIR/export_quantized)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from autox3d_tf.export.runs import export_run
    from autox3d_tf.export.tflite import labelled_clips

    out_dir = args.out_dir or os.path.join(args.run_dir, "export_quantized")
    modes = [m for m in args.modes.split(",") if m]
    info = export_run(args.run_dir, out_dir, tflite=True, quantize=modes, calibration_data=args.calibration_data or args.data,
                      calibration_split=args.calibration_split, calibration_steps=args.calibration_clips)
    files = {"float32": info["tflite"], **{m: q["path"] for m, q in info["tflite_quantized"].items()}}
    with open(os.path.join(args.run_dir, "run.json"), encoding="utf-8") as f:
        clip = json.load(f)["clip"]
    frames, crop, rate = info["network_input"]["frames"], info["network_input"]["crop"], clip["rate"]
    results = {"run_dir": args.run_dir, "files": files, "undelegated_ops": {
        "float32": info["tflite_undelegated_ops"], **{m: q["undelegated_ops"] for m, q in info["tflite_quantized"].items()}},
        "bytes": {name: os.path.getsize(p) for name, p in files.items()}, "data": {}}
    for spec in [f"{args.data}:{args.split}", *args.also]:
        source, _, split = spec.rpartition(":") if ":" in spec else (spec, "", "")
        views = list(labelled_clips(source, frames, crop, rate=rate, split=split or None,
                                    class_names=info["classes"])())
        results["data"][spec] = evaluate(files, views, args.threads)

    print(f"\n{args.run_dir}: {frames} x {crop}x{crop}, rate {rate}; one centre view per video\n")
    print("| data | file | MB | top-1 | top-1 agreement with float | logit max abs error | logit mean abs error (logit std) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for spec, table in results["data"].items():
        for name, r in table.items():
            print(f"| {spec} ({r['videos']} videos) | {name} | {results['bytes'][name] / 1e6:.1f} | {100 * r['top1']:.1f} | "
                  f"{100 * r['top1_agreement']:.1f} | {r['logit_max_abs_error']:.3g} | "
                  f"{r['logit_mean_abs_error']:.3g} ({r['logit_std']:.3g}) |")
    print("\nops not on XNNPACK:", json.dumps(results["undelegated_ops"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
