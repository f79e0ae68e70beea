"""Export a trained run (or a zoo model with weights) as a TF Serving SavedModel, plus TFLite for
X3D-XS / S.

    autox3d export --run_dir runs/xs --out_dir export/xs
    autox3d export --model X3D_S --weights x3d_s.weights.h5 --out_dir export/s   # Kinetics-400 labels
    autox3d export --run_dir runs/xs --json

Writes OUT/saved_model/1 (signature serving_default: uint8 `frames` [batch, frames, height, width, 3]
-> probabilities, top_k_indices, top_k_scores, top_k_labels), OUT/model.tflite, OUT/labels.txt and
OUT/export.json. Serve with `tensorflow_model_server --model_name=NAME --model_base_path=OUT/saved_model`.
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
FLAGS.boolean("json", False, "Print export.json.")



def main(argv: list[str] | None = None) -> int:
    """``autox3d export``: parses ``argv`` (``argv[0]`` is the program name) and runs :func:`run`."""
    return FLAGS.main(argv, run)


def run() -> int:
    """Exports with :func:`autox3d_tf.export.export_run` / ``export_model``; prints what it wrote."""
    tflite = {"auto": "auto", "true": True, "false": False}[FLAGS.tflite]
    if FLAGS.run_dir:
        from autox3d_tf.export.runs import export_run

        result = export_run(FLAGS.run_dir, FLAGS.out_dir, tflite=tflite, frames=FLAGS.frames, crop=FLAGS.crop,
                            top_k=FLAGS.top_k, fuse=FLAGS.fuse, weights=FLAGS.weights)
    else:
        if not (FLAGS.model or FLAGS.spec):
            raise app.UsageError("give --run_dir, or --model / --spec")
        from autox3d_tf.data.annotations import ClassMap
        from autox3d_tf.export.runs import export_architecture

        names = list(ClassMap.load(FLAGS.classes).names) if FLAGS.classes else None
        result = export_architecture(FLAGS.model or "X3D_XS", FLAGS.out_dir, spec=FLAGS.spec, weights=FLAGS.weights,
                                     class_names=names, tflite=tflite, frames=FLAGS.frames, crop=FLAGS.crop,
                                     top_k=FLAGS.top_k, fuse=FLAGS.fuse)
    if FLAGS.json:
        print_json({k: v for k, v in result.items() if k != "classes"})
    else:
        print(f"SavedModel: {result['saved_model']} (signature {result['signature']}, input uint8 'frames' "
              f"[batch, frames, height, width, 3]; network sees {result['network_input']['frames']} x "
              f"{result['network_input']['crop']}x{result['network_input']['crop']})")
        if "tflite" in result:
            print(f"TFLite: {result['tflite']} ({result['tflite_bytes'] / 1e6:.1f} MB, input uint8 "
                  f"{result['tflite_input']['shape']})")
        print(f"serve: tensorflow_model_server --rest_api_port=8501 --model_name={result['spec_name']} "
              f"--model_base_path={os.path.abspath(os.path.dirname(result['saved_model']))}")
    return 0
