"""Export a trained run (or a zoo model with weights) as a TF Serving SavedModel, plus TFLite for
X3D-XS / S.

    python training/export.py --run_dir runs/xs --out_dir export/xs
    python training/export.py --model X3D_S --weights x3d_s.weights.h5 --out_dir export/s   # Kinetics-400 labels
    autox3d export --run_dir runs/xs --json

Writes OUT/saved_model/1 (signature serving_default: uint8 `frames` [batch, frames, height, width, 3]
-> probabilities, top_k_indices, top_k_scores, top_k_labels), OUT/model.tflite, OUT/labels.txt and
OUT/export.json. Serve with `tensorflow_model_server --model_name=NAME --model_base_path=OUT/saved_model`.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_string("run_dir", None, "Training run folder (training/train.py --out_dir).")
flags.DEFINE_string("model", None, "Zoo model (without --run_dir).")
flags.DEFINE_string("spec", None, "ArchSpec JSON (without --run_dir).")
flags.DEFINE_string("weights", None, "Weights: .weights.h5 or 'kinetics400' (without --run_dir: default random).")
flags.DEFINE_string("classes", None, "Class-map file (without --run_dir; default: Kinetics-400 names).")
flags.DEFINE_string("out_dir", None, "Export folder (default: RUN/export, or export/MODEL).")
flags.DEFINE_enum("tflite", "auto", ["auto", "true", "false"], "Also write TFLite (auto: X3D-XS / S).")
flags.DEFINE_integer("frames", None, "Frames the network sees (default: the run's / model's).")
flags.DEFINE_integer("crop", None, "Crop the network sees (default: the test crop).")
flags.DEFINE_integer("top_k", 5, "Labels returned per clip.")
flags.DEFINE_bool("fuse", True, "Fold BatchNorm into the convolutions (same outputs to ~1e-7).")
flags.DEFINE_bool("json", False, "Print export.json.")


def main(argv: list[str]) -> int:
    """Exports with :func:`autox3d_tf.export.export_run` / ``export_model``; prints what it wrote."""
    if not FLAGS.is_parsed():  # called directly, not through app.run: argv[0] is the program name
        argv = FLAGS(list(argv))
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    tflite = {"auto": "auto", "true": True, "false": False}[FLAGS.tflite]
    if FLAGS.run_dir:
        from autox3d_tf.export.runs import export_run

        result = export_run(FLAGS.run_dir, FLAGS.out_dir, tflite=tflite, frames=FLAGS.frames, crop=FLAGS.crop,
                            top_k=FLAGS.top_k, fuse=FLAGS.fuse, weights=FLAGS.weights)
    else:
        if not (FLAGS.model or FLAGS.spec):
            raise app.UsageError("give --run_dir, or --model / --spec")
        from autox3d_tf.arch.spec import ArchSpec
        from autox3d_tf.data.annotations import ClassMap
        from autox3d_tf.export.runs import export_model
        from autox3d_tf.export.tflite import TFLITE_MODELS
        from autox3d_tf.models.builder import build_model
        from autox3d_tf.preprocessing import kinetics400_classes
        from autox3d_tf.zoo import canonical_name, get_config, get_model, get_spec

        name = canonical_name(FLAGS.model or "X3D_XS")
        cfg = get_config(name)
        names = list(ClassMap.load(FLAGS.classes).names) if FLAGS.classes else list(kinetics400_classes())
        frames = FLAGS.frames or cfg.frames
        crop = FLAGS.crop or cfg.test_crop
        if FLAGS.spec:
            spec = ArchSpec.load(FLAGS.spec)
            model = build_model(spec, input_shape=(frames, crop, crop, 3), classes=len(names), name=spec.name)
            if FLAGS.weights:
                model.load_weights(FLAGS.weights)
        else:
            spec = get_spec(name)
            model = get_model(name, weights=FLAGS.weights, classes=len(names), input_shape=(frames, crop, crop, 3))
        if tflite == "auto":
            tflite = name in TFLITE_MODELS and not FLAGS.spec
        out_dir = FLAGS.out_dir or os.path.join("export", spec.name)
        result = export_model(model, out_dir, names, spec=spec, frames=frames, crop=crop, top_k=FLAGS.top_k,
                              fuse=FLAGS.fuse, tflite=bool(tflite), info={"model": name, "spec_name": spec.name,
                                                                         "weights": FLAGS.weights})
    if FLAGS.json:
        print(json.dumps({k: v for k, v in result.items() if k != "classes"}, indent=1))
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


if __name__ == "__main__":
    app.run(main)
