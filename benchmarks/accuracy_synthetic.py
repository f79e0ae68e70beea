"""A short accuracy check on this machine: X3D-XS vs AutoX3D-XS architectures on the synthetic dataset.

    python benchmarks/accuracy_synthetic.py                          # 3 seeds, 6 epochs each
    python benchmarks/accuracy_synthetic.py --seeds 0 1 --epochs 4 --json out.json

Both architectures (`x3d_spec("XS")` and the frozen `autox3d_spec("XS")`) are built at the same reduced
clip, ``build_model(spec, input_shape=(8, 48, 48, 3), classes=4)`` (same stages, blocks and widths as at
4x160x160; only the input differs), and trained with the same recipe, data order and seed: AdamW
(lr 3e-3, weight decay 5e-5, cosine decay), batch 16, sparse cross-entropy, on the built-in synthetic
motion dataset (`autox3d_tf.data.synthetic` defaults: 4 classes that show the same frames in different
orders, 48x48 px, 16 frames, 200 clips per class; 70/15/15 split). Training clips: 8 frames every 2,
scale jitter [48, 60], random 48 crop, horizontal flip (the motion is vertical). Evaluation: validation
and test videos, 2 uniform clips x 1 centre crop each, softmax averaged per video, top-1.

This is a sanity check of trainability at equal MACs on a tiny task, not a Kinetics result. A benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FRAMES, RATE, CROP, CLASSES = 8, 2, 48, 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="synthetic dataset folder (written there if missing; default: a temp dir)")
    p.add_argument("--clips-per-class", type=int, default=200)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: TensorFlow's default)")
    p.add_argument("--models", nargs="+", default=["X3D_XS", "AutoX3D_XS"])
    p.add_argument("--json", metavar="PATH")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        from autox3d_tf.workflows import bench

        bench.configure_threads(args.threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.data.evaluation import evaluate_views
    from autox3d_tf.data.video_pipeline import video_dataset, video_eval_dataset
    from autox3d_tf.data.synthetic import write_synthetic_dataset
    from autox3d_tf.flops import count_params
    from autox3d_tf.models.builder import build_model
    from autox3d_tf.zoo import get_spec

    data_dir = args.data_dir or os.path.join(tempfile.gettempdir(), "autox3d_synthetic_accuracy")
    if not os.path.exists(os.path.join(data_dir, "train.csv")):
        write_synthetic_dataset(data_dir, num_classes=CLASSES, clips_per_class=args.clips_per_class, seed=0)
    train_csv, val_csv, test_csv = (os.path.join(data_dir, f"{s}.csv") for s in ("train", "val", "test"))

    def evaluate(model, csv):
        ds = video_eval_dataset(csv, None, num_clips=2, num_crops=1, batch_size=16, frames=FRAMES, rate=RATE, crop=CROP)
        return float(evaluate_views(model, ds, topk=(1,))["top1"])

    results = []
    for seed in args.seeds:
        for name in args.models:
            spec = get_spec(name)
            keras.utils.set_random_seed(seed)
            train = video_dataset(
                train_csv, None, batch_size=args.batch, frames=FRAMES, rate=RATE, crop=CROP,
                scale_range=(CROP, CROP * 5 // 4), seed=seed, shuffle=True, repeat=False, drop_remainder=True,
            )
            steps = sum(1 for _ in train)
            model = build_model(spec, input_shape=(FRAMES, CROP, CROP, 3), classes=CLASSES, name=name.lower())
            schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=max(1, steps * args.epochs))
            model.compile(
                optimizer=keras.optimizers.AdamW(schedule, weight_decay=5e-5),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            t0 = time.time()
            hist = model.fit(train, epochs=args.epochs, verbose=0)
            seconds = time.time() - t0
            row = {
                "model": name,
                "seed": seed,
                "epochs": args.epochs,
                "params": int(count_params(model)),
                "gmacs_at_clip": spec_macs(spec, FRAMES, CROP, classes=CLASSES) / 1e9,
                "final_train_loss": float(hist.history["loss"][-1]),
                "final_train_acc": float(hist.history["accuracy"][-1]),
                "val_top1": evaluate(model, val_csv),
                "test_top1": evaluate(model, test_csv),
                "train_seconds": seconds,
            }
            results.append(row)
            print(
                f"{name:>11} seed {seed}: train loss {row['final_train_loss']:.3f} acc {row['final_train_acc']:.3f}, "
                f"val top-1 {row['val_top1']:.3f}, test top-1 {row['test_top1']:.3f} ({seconds:.0f}s)",
                flush=True,
            )
            del model
            keras.backend.clear_session()

    print(f"\nSynthetic motion dataset ({CLASSES} classes, {args.clips_per_class} clips/class), clip {FRAMES}x{RATE} at "
          f"{CROP}x{CROP}, {args.epochs} epochs, seeds {args.seeds}; top-1 in %, mean (min-max) over seeds\n")
    print(f"| model | params | GMACs at {FRAMES}x{CROP}x{CROP} | val top-1 | test top-1 | final train acc |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        rows = [r for r in results if r["model"] == name]

        def agg(key):
            vals = [100 * r[key] for r in rows]
            return f"{statistics.mean(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"

        print(f"| {name} | {rows[0]['params']:,} | {rows[0]['gmacs_at_clip']:.3f} | {agg('val_top1')} | "
              f"{agg('test_top1')} | {agg('final_train_acc')} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "clip": f"{FRAMES}x{CROP}x{CROP}", "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
