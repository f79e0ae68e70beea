"""Multi-view evaluation (N clips x 3 crops per video): top-1 / top-5, per-class accuracy and a
confusion-matrix PNG.

    python training/evaluate.py --run_dir runs/xs --data data/test.csv --num_clips 10 --num_crops 3
    python training/evaluate.py --model X3D_S --weights x3d_s.weights.h5 --classes classes.json --data val.csv
    autox3d evaluate --run_dir runs/xs --data data/test.csv --json
"""

from __future__ import annotations

import json
import os

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_string("run_dir", None, "Training run folder (training/train.py --out_dir).")
flags.DEFINE_string("data", None, "Evaluation data: annotation file or TFRecord shards.")
flags.DEFINE_string("model", None, "Zoo model (without --run_dir).")
flags.DEFINE_string("spec", None, "ArchSpec JSON (without --run_dir).")
flags.DEFINE_string("weights", None, "Weights (.weights.h5); default: the run's final weights.")
flags.DEFINE_string("classes", None, "Class-map file (without --run_dir; default: classes.json beside the data).")
flags.DEFINE_integer("num_clips", 10, "Uniform temporal clips per video.")
flags.DEFINE_enum("num_crops", "3", ["1", "3"], "Spatial crops per clip.")
flags.DEFINE_integer("batch_size", 8, "Views per batch.")
flags.DEFINE_integer("frames", None, "Frames per clip (default: the run's / model's).")
flags.DEFINE_integer("rate", None, "Sampling rate (default: the run's / model's).")
flags.DEFINE_integer("crop", None, "Test crop (default: the run's / model's).")
flags.DEFINE_string("split", None, "Kinetics CSV: keep rows of this split.")
flags.DEFINE_bool("shuffle_frames", None, "Permute frames in time (default: as the run was trained).")
flags.DEFINE_string("out_dir", None, "Where metrics.json and confusion_matrix.png go (default: RUN/eval).")
flags.DEFINE_bool("json", False, "Print the metrics as JSON.")


def main(argv: list[str]) -> int:
    """Runs :func:`autox3d_tf.training.evaluate` with the flags; prints the metrics."""
    if not FLAGS.is_parsed():  # called directly, not through app.run: argv[0] is the program name
        argv = FLAGS(list(argv))
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.data:
        raise app.UsageError("--data is required")
    if not FLAGS.run_dir and not (FLAGS.model or FLAGS.spec):
        raise app.UsageError("give --run_dir, or --model / --spec with --weights")
    from autox3d_tf.training.evaluation import evaluate

    out_dir = FLAGS.out_dir or (os.path.join(FLAGS.run_dir, "eval") if FLAGS.run_dir else "eval")
    result = evaluate(
        FLAGS.run_dir,
        FLAGS.data,
        num_clips=FLAGS.num_clips,
        num_crops=int(FLAGS.num_crops),
        batch_size=FLAGS.batch_size,
        out_dir=out_dir,
        model=FLAGS.model,
        spec=FLAGS.spec,
        weights=FLAGS.weights,
        classes=FLAGS.classes,
        frames=FLAGS.frames,
        rate=FLAGS.rate,
        crop=FLAGS.crop,
        split=FLAGS.split,
        shuffle_frames=FLAGS.shuffle_frames,
        progress=not FLAGS.json,
    )
    if FLAGS.json:
        keep = ("top1", "top5", "videos", "views", "per_class_accuracy", "confusion_matrix", "class_names",
                "confusion_matrix_png", "model", "spec_name", "num_clips", "num_crops", "shuffle_frames",
                "clip", "data", "bad_videos", "seconds")
        print(json.dumps({k: result[k] for k in keep if k in result}, indent=1))
    else:
        print(f"{result['spec_name']} on {result['data']}: {result['videos']} videos x "
              f"{result['num_clips']}x{result['num_crops']} views"
              + (" (frames shuffled)" if result["shuffle_frames"] else ""))
        print(f"  top-1 {result['top1']:.4f}   top-5 {result['top5']:.4f}")
        for name, acc in result["per_class_accuracy"].items():
            print(f"  {name:>24s}: {'-' if acc is None else f'{acc:.3f}'}")
        print(f"confusion matrix: {result.get('confusion_matrix_png')}")
    return 0


if __name__ == "__main__":
    app.run(main)
