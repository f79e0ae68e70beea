"""Export a trained run (or a zoo model with weights) as a TF Serving SavedModel, plus TFLite for
X3D-XS / S.

    autox3d export --run_dir runs/xs --out_dir export/xs
    autox3d export --model X3D_S --weights x3d_s.weights.h5 --out_dir export/s   # Kinetics-400 labels
    autox3d export --run_dir runs/xs --json
    autox3d export --model X3D_XS --quantize int8,float16 --calibration_data data/val.csv --format onnx,openvino

Writes OUT/saved_model/1 (signature serving_default: uint8 `frames` [batch, frames, height, width, 3]
-> probabilities, top_k_indices, top_k_scores, top_k_labels), OUT/model.tflite, OUT/labels.txt and
OUT/export.json; --quantize adds OUT/model_{int8,float16,dynamic}.tflite (int8 calibrated on
--calibration_data, default synthetic clips; export.json reports each file's agreement with the float
one and the ops XNNPACK does not take), --format onnx / openvino adds OUT/model.onnx /
OUT/openvino/model.xml (uint8 frames [batch, T, crop, crop, 3] in). Serve with `tensorflow_model_server --model_name=NAME --model_base_path=OUT/saved_model`.
"""

from __future__ import annotations

import os

from absl import app

from autox3d_tf.workflows.flagset import FlagSet
from autox3d_tf.workflows.json_output import print_json

FLAGS = FlagSet("autox3d export", __doc__)

FLAGS.string("run_dir", None, "Training run folder (`autox3d train --out_dir`).")
FLAGS.string("model", None, "Zoo model (without --run_dir).")
FLAGS.string("spec", None, "ArchSpec JSON (without --run_dir).")
FLAGS.string("weights", None, "Weights: .weights.h5 or 'kinetics400' (without --run_dir: default random).")
FLAGS.string("classes", None, "Class-map file (without --run_dir; default: Kinetics-400 names).")
FLAGS.string("out_dir", None, "Export folder (default: RUN/export, or export/MODEL).")
FLAGS.enum("tflite", "auto", ["auto", "true", "false"], "Also write TFLite (auto: X3D-XS / S).")
FLAGS.integer("frames", None, "Frames the network sees (default: the run's / model's).")
FLAGS.integer("crop", None, "Crop the network sees (default: the test crop).")
FLAGS.integer("top_k", 5, "Labels returned per clip.")
FLAGS.boolean("fuse", True, "Fold BatchNorm into the convolutions (same outputs to ~1e-7).")
FLAGS.list("quantize", [], "Quantised TFLite files to write too: float16, dynamic, int8 (comma-separated).")
FLAGS.string("calibration_data", None, "int8 calibration clips: annotation file, folder of class sub-folders or "
             "TFRecords (default: synthetic clips).")
FLAGS.string("calibration_split", None, "Split of --calibration_data (Kinetics CSV).")
FLAGS.integer("calibration_clips", 32, "Clips used to calibrate int8.")
FLAGS.list("format", [], "Other formats to write too: onnx (tf2onnx), openvino (comma-separated).")
FLAGS.boolean("json", False, "Print export.json.")



def main(argv: list[str] | None = None) -> int:
    """``autox3d export``: parses ``argv`` (``argv[0]`` is the program name) and runs :func:`run`."""
    return FLAGS.main(argv, run)


def run() -> int:
    """Exports with :func:`autox3d_tf.export.export_run` / ``export_model``; prints what it wrote."""
    tflite = {"auto": "auto", "true": True, "false": False}[FLAGS.tflite]
    from autox3d_tf.export.formats import FORMATS, QUANTIZE_MODES

    for mode in FLAGS.quantize:
        if mode not in QUANTIZE_MODES:
            raise app.UsageError(f"--quantize {mode!r}: choose from {', '.join(QUANTIZE_MODES)}")
    for fmt in FLAGS.format:
        if fmt not in FORMATS:
            raise app.UsageError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    if FLAGS.quantize and FLAGS.tflite == "false":
        raise app.UsageError("--quantize writes TFLite files: drop --tflite=false")
    if FLAGS.calibration_clips < 1:
        raise app.UsageError("--calibration_clips must be >= 1")
    extra = dict(quantize=FLAGS.quantize, calibration_data=FLAGS.calibration_data,
                 calibration_split=FLAGS.calibration_split, calibration_steps=FLAGS.calibration_clips,
                 formats=FLAGS.format)
    if FLAGS.run_dir:
        from autox3d_tf.export.runs import export_run

        result = export_run(FLAGS.run_dir, FLAGS.out_dir, tflite=tflite, frames=FLAGS.frames, crop=FLAGS.crop,
                            top_k=FLAGS.top_k, fuse=FLAGS.fuse, weights=FLAGS.weights, **extra)
    else:
        if not (FLAGS.model or FLAGS.spec):
            raise app.UsageError("give --run_dir, or --model / --spec")
        from autox3d_tf.data.annotations import ClassMap
        from autox3d_tf.export.runs import export_architecture

        names = list(ClassMap.load(FLAGS.classes).names) if FLAGS.classes else None
        result = export_architecture(FLAGS.model or "X3D_XS", FLAGS.out_dir, spec=FLAGS.spec, weights=FLAGS.weights,
                                     class_names=names, tflite=tflite, frames=FLAGS.frames, crop=FLAGS.crop,
                                     top_k=FLAGS.top_k, fuse=FLAGS.fuse, **extra)
    if FLAGS.json:
        print_json({k: v for k, v in result.items() if k != "classes"})
    else:
        print(f"SavedModel: {result['saved_model']} (signature {result['signature']}, input uint8 'frames' "
              f"[batch, frames, height, width, 3]; network sees {result['network_input']['frames']} x "
              f"{result['network_input']['crop']}x{result['network_input']['crop']})")
        if "tflite" in result:
            print(f"TFLite: {result['tflite']} ({result['tflite_bytes'] / 1e6:.1f} MB, input uint8 "
                  f"{result['tflite_input']['shape']})")
        for mode, q in result.get("tflite_quantized", {}).items():
            check = q["vs_float_on_synthetic"]
            print(f"TFLite {mode}: {q['path']} ({q['bytes'] / 1e6:.1f} MB; vs float on {check['clips']} synthetic "
                  f"clips: top-1 agreement {check['top1_agreement']:.3f}, {check['output']} max abs error "
                  f"{check['max_abs_error']:.2g}; not on XNNPACK: {_ops(q['undelegated_ops'])})")
        for key, label in (("onnx", "ONNX"), ("openvino", "OpenVINO")):
            if key in result:
                print(f"{label}: {result[key]} (input uint8 'frames' [batch, frames, crop, crop, 3])")
        if "tflite_undelegated_ops" in result:
            print(f"TFLite ops not on XNNPACK: {_ops(result['tflite_undelegated_ops'])}")
        print(f"serve: tensorflow_model_server --rest_api_port=8501 --model_name={result['spec_name']} "
              f"--model_base_path={os.path.abspath(os.path.dirname(result['saved_model']))}")
    return 0


def _ops(counts: dict) -> str:
    return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "none"
