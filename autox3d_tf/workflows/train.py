r"""Train a zoo model or an ArchSpec JSON on a video dataset with the X3D recipe, from scratch or
fine-tuning pretrained weights.

    autox3d train --train_data data/train.csv --val_data data/val.csv \
        --model X3D_XS --out_dir runs/xs --epochs 30 --batch_size 16
    autox3d train --train_data my_videos/ --model X3D_S --weights kinetics400 \
        --freeze_backbone --noflip --out_dir runs/mine      # fine-tune on a folder of class subfolders
    autox3d train --train_data data/train.csv --model X3D_XS --frames 2 --segments 4 \
        --out_dir runs/tsn                                  # 4 segments x 2 frames, logits averaged
    python training/train.py ... (the same flags, from a source checkout)

Fine-tuning (--weights): every pretrained tensor is loaded but the classifier when the number of
classes differs (said in one line); the peak learning rate defaults to a tenth of the from-scratch
one and the warm-up to 5% of the run; --freeze_backbone trains only the classifier, --unfreeze_from
trains from a given stage on (frozen BatchNorm layers run in inference mode).

SGD momentum 0.9, cosine learning rate with linear warm-up, L2 weight decay 5e-5 (not on BatchNorm
or biases), dropout 0.5, optional label smoothing; MirroredStrategy when several devices are
visible, MultiWorkerMirroredStrategy from TF_CONFIG; checkpoints every epoch (a killed run started
again with the same --out_dir resumes where it stopped); TensorBoard and CSV logs in --out_dir.
"""

from __future__ import annotations

from absl import app

from autox3d_tf.workflows.augmentation_flags import define_augmentation_flags, parse_scale_jitter
from autox3d_tf.workflows.flagset import FlagSet
from autox3d_tf.workflows.json_output import print_json

FLAGS = FlagSet("autox3d train", __doc__)

FLAGS.string("train_data", None, "Training data: annotation file (Kinetics CSV, PySlowFast list, SSv2 JSON), "
             "a folder of class subfolders (videos or frame folders), or TFRecord shards (glob or to-tfrecord "
             "prefix).")
FLAGS.string("val_data", None, "Optional validation data, in any of --train_data's forms (one centre view per "
             "video, every epoch).")
FLAGS.float("validation_split", None, "Instead of --val_data: hold this fraction of --train_data's videos out of "
            "training and validate on them (by video, drawn with --split_seed; recorded in run.json, and "
            "`autox3d evaluate --run_dir RUN --data TRAIN_DATA` scores the same videos).")
FLAGS.integer("split_seed", 0, "Seed of --validation_split's draw.")
FLAGS.string("model", "X3D_XS", "Zoo model: the architecture (unless --spec) and the default clip settings.")
FLAGS.string("spec", None, "ArchSpec JSON to train instead of --model's architecture (e.g. a search result).")
FLAGS.string("out_dir", "runs/train", "Run folder: weights, run.json, logs, checkpoints.")
FLAGS.integer("epochs", 10, "Epochs.")
FLAGS.integer("batch_size", 8, "Global batch size (split over replicas).")
FLAGS.integer("steps_per_epoch", None, "Steps per epoch (default: training videos // batch size).")
FLAGS.float("learning_rate", None, "Peak learning rate (default: 1.6 x batch / 1024, the X3D recipe; AdamW: 2e-3; "
            "a tenth of it with --weights).")
FLAGS.float("warmup_epochs", None, "Linear warm-up epochs (default: 35/300 of the run; 5% with --weights).")
FLAGS.enum("optimizer", "sgd", ["sgd", "adamw"], "sgd: the X3D recipe (SGD momentum, L2 weight decay); "
           "adamw: AdamW (decoupled weight decay, --momentum as beta_1), quicker on small data.")
FLAGS.float("momentum", 0.9, "SGD momentum (AdamW: beta_1).")
FLAGS.float("weight_decay", 5e-5, "L2 weight decay (not applied to BatchNorm parameters and biases).")
FLAGS.float("dropout", 0.5, "Dropout before the classifier.")
FLAGS.float("label_smoothing", 0.0, "Label smoothing.")
FLAGS.integer("frames", None, "Frames per clip (default: the model's).")
FLAGS.integer("rate", None, "Frame sampling rate (default: the model's; 0: the frames spread over the whole "
              "video, for actions whose length varies).", lower_bound=0)
FLAGS.integer("crop", None, "Training crop (default: the model's; test crop and scale jitter follow).")
FLAGS.integer("test_crop", None, "Validation / test crop.")
define_augmentation_flags(FLAGS)
FLAGS.string("classes", None, "Class-map file (default: a folder's class sub-folders, else PREFIX.classes.json "
             "beside to-tfrecord shards, else classes.json beside the data).")
FLAGS.string("train_split", None, "Kinetics CSV: keep rows of this split for training (other sources ignore it).")
FLAGS.string("val_split", None, "Kinetics CSV: keep rows of this split for validation (other sources ignore it).")
FLAGS.boolean("causal", False, "Train the causal form of the network (outputs at frame t from frames up to t: "
              "it streams frame by frame, `autox3d stream`); recorded in the run's spec.")
FLAGS.boolean("shuffle_frames", False, "Permute every clip's frames in time (train and validation): no motion.")
FLAGS.integer("segments", 1, "Temporal segments (TSN-style): every clip is K snippets of --frames x --rate, one per "
              "equal part of the video, and the network runs on each, its logits reduced by "
              "--segment_consensus (recorded in run.json; evaluate and export follow the run).")
FLAGS.enum("segment_consensus", "avg", ["avg", "max"], "How --segments' snippet logits are reduced.")
FLAGS.boolean("mixed_precision", False, "Mixed precision (float16 on GPU, bfloat16 on CPU).")
FLAGS.enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
           "Distribution strategy (auto: TF_CONFIG -> multi-worker; several devices -> mirrored).")
FLAGS.integer("cpu_devices", 0, "Split the CPU into this many logical devices (MirroredStrategy without GPUs).")
FLAGS.string("weights", None, "Pretrained weights to fine-tune: a registered dataset (kinetics400), a PyTorch "
             "checkpoint, a .weights.h5 file or a run folder. Strict: only the classifier is left out when the "
             "number of classes differs.")
FLAGS.alias("init_weights", "weights")
FLAGS.boolean("freeze_backbone", False, "With --weights: train only the classifier (BatchNorm in inference mode).")
FLAGS.string("unfreeze_from", None, "With --weights: freeze the layers before this group and train the rest: stem, "
             "stage1 ... stage4, head or classifier.")
FLAGS.integer("seed", 0, "Random seed (weights and data).")
FLAGS.integer("verbose", 1, "0: silent, 1: progress bar, 2: one line per epoch.")
FLAGS.boolean("json", False, "Print the result as JSON.")


def main(argv: list[str] | None = None) -> int:
    """``autox3d train``: parses ``argv`` (``argv[0]`` is the program name) and runs :func:`run`."""
    return FLAGS.main(argv, run)


def run() -> int:
    """Runs :func:`autox3d_tf.training.train` with the parsed flags; prints a summary."""
    if not FLAGS.train_data:
        raise app.UsageError("--train_data is required")
    from autox3d_tf.training.strategy import split_cpu

    if FLAGS.cpu_devices:
        split_cpu(FLAGS.cpu_devices)
    from autox3d_tf.training.loops import train
    from autox3d_tf.training.recipe import Recipe

    recipe = Recipe(optimizer=FLAGS.optimizer, momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay, dropout_rate=FLAGS.dropout,
                    label_smoothing=FLAGS.label_smoothing)
    result = train(
        FLAGS.train_data,
        model=FLAGS.model,
        spec=FLAGS.spec,
        out_dir=FLAGS.out_dir,
        val_data=FLAGS.val_data,
        validation_split=FLAGS.validation_split,
        split_seed=FLAGS.split_seed,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        steps_per_epoch=FLAGS.steps_per_epoch,
        learning_rate=FLAGS.learning_rate,
        warmup_epochs=FLAGS.warmup_epochs,
        recipe=recipe,
        frames=FLAGS.frames,
        rate=FLAGS.rate,
        crop=FLAGS.crop,
        test_crop=FLAGS.test_crop,
        classes=FLAGS.classes,
        train_split=FLAGS.train_split,
        val_split=FLAGS.val_split,
        scale_range=parse_scale_jitter(FLAGS.scale_jitter),
        flip=FLAGS.flip,
        shuffle_frames=FLAGS.shuffle_frames,
        segments=FLAGS.segments,
        segment_consensus=FLAGS.segment_consensus,
        mixed_precision=FLAGS.mixed_precision,
        strategy=FLAGS.strategy,
        weights=FLAGS.weights,
        freeze_backbone=FLAGS.freeze_backbone,
        unfreeze_from=FLAGS.unfreeze_from,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
        causal=FLAGS.causal,
    )
    summary = {
        "run_dir": result.run_dir,
        "weights": result.weights_path,
        "initial_epoch": result.initial_epoch,
        "epochs_run": len(next(iter(result.history.values()), [])),
        "final_metrics": {k: v[-1] for k, v in result.history.items() if v},
        "strategy": result.config["strategy"],
        "precision": result.config["precision"],
        "seconds": round(result.seconds, 1),
        "pretrained": result.extra.get("pretrained"),
        "frozen_layers": len(result.extra.get("frozen_layers", [])),
    }
    if FLAGS.json:
        print_json(summary)
    else:
        print(f"trained {result.config['spec']['name']} ({summary['strategy']}, {summary['precision']}) "
              f"in {summary['seconds']} s; resumed at epoch {result.initial_epoch}" if result.initial_epoch
              else f"trained {result.config['spec']['name']} ({summary['strategy']}, {summary['precision']}) "
              f"in {summary['seconds']} s")
        if summary["pretrained"]:
            print(f"  {result.extra['pretrained_summary']}; {summary['frozen_layers']} layers frozen")
        for k, v in summary["final_metrics"].items():
            print(f"  {k}: {v:.4f}")
        print(f"weights: {result.weights_path}")
    return 0
