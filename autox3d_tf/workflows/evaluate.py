"""Multi-view evaluation (N clips x 3 crops per video): top-1 / top-5, per-class accuracy and a
confusion-matrix PNG.

    autox3d evaluate --run_dir runs/xs --data data/test.csv --num_clips 10 --num_crops 3
    autox3d evaluate --model X3D_S --weights x3d_s.weights.h5 --classes classes.json --data val.csv
    autox3d evaluate --run_dir runs/xs --data data/test.csv --json
"""

from __future__ import annotations

import os

from absl import app

from autox3d_tf.workflows.flagset import FlagSet
from autox3d_tf.workflows.json_output import print_json

FLAGS = FlagSet("autox3d evaluate", __doc__)

FLAGS.string("run_dir", None, "Training run folder (`autox3d train --out_dir`).")
FLAGS.string("data", None, "Evaluation data: annotation file (Kinetics CSV, PySlowFast list, SSv2 JSON), a folder "
             "with one sub-folder of videos or frame folders per class, or TFRecord shards.")
FLAGS.string("model", None, "Zoo model (without --run_dir).")
FLAGS.string("spec", None, "ArchSpec JSON (without --run_dir).")
FLAGS.string("weights", None, "Weights (.weights.h5); default: the run's final weights.")
FLAGS.string("classes", None, "Class-map file (without --run_dir; default: a folder's class sub-folders, else "
             "classes.json beside the data).")
FLAGS.integer("num_clips", 10, "Uniform temporal clips per video.")
FLAGS.enum("num_crops", "3", ["1", "3"], "Spatial crops per clip.")
FLAGS.integer("batch_size", 8, "Views per batch.")
FLAGS.integer("frames", None, "Frames per clip (default: the run's / model's).")
FLAGS.integer("rate", None, "Sampling rate (default: the run's / model's; 0: the frames spread over the whole video).",
              lower_bound=0)
FLAGS.integer("crop", None, "Test crop (default: the run's / model's).")
FLAGS.string("split", None, "Kinetics CSV: keep rows of this split.")
FLAGS.float("validation_split", None, "Score one subset of --data's videos (with --subset; default for a run "
            "trained with --validation_split on this data: its validation videos).")
FLAGS.enum("subset", None, ["training", "validation"], "The subset of --validation_split to score.")
FLAGS.integer("split_seed", None, "Seed of --validation_split's draw (default: the run's, else 0).")
FLAGS.boolean("shuffle_frames", None, "Permute frames in time (default: as the run was trained).")
FLAGS.string("out_dir", None, "Where metrics.json and confusion_matrix.png go (default: RUN/eval).")
FLAGS.boolean("json", False, "Print the metrics as JSON.")



def main(argv: list[str] | None = None) -> int:
    """``autox3d evaluate``: parses ``argv`` (``argv[0]`` is the program name) and runs :func:`run`."""
    return FLAGS.main(argv, run)


def run() -> int:
    """Runs :func:`autox3d_tf.training.evaluate` with the flags; prints the metrics."""
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
        validation_split=FLAGS.validation_split,
        subset=FLAGS.subset,
        split_seed=FLAGS.split_seed,
        progress=not FLAGS.json,
    )
    if FLAGS.json:
        keep = ("top1", "top5", "videos", "views", "per_class_accuracy", "confusion_matrix", "class_names",
                "confusion_matrix_png", "model", "spec_name", "num_clips", "num_crops", "shuffle_frames", "segments",
                "clip", "data", "subset", "bad_videos", "seconds")
        print_json({k: result[k] for k in keep if k in result})
    else:
        print(f"{result['spec_name']} on {result['data']}: {result['videos']} videos x "
              f"{result['num_clips']}x{result['num_crops']} views"
              + (f" of {result['segments']} segments" if result.get("segments", 1) > 1 else "")
              + (" (frames shuffled)" if result["shuffle_frames"] else ""))
        print(f"  top-1 {result['top1']:.4f}   top-5 {result['top5']:.4f}")
        for name, acc in result["per_class_accuracy"].items():
            print(f"  {name:>24s}: {'-' if acc is None else f'{acc:.3f}'}")
        print(f"confusion matrix: {result.get('confusion_matrix_png')}")
    return 0
