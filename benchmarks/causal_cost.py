"""The accuracy cost of causality on the synthetic motion set: X3D-XS against causal X3D-XS.

Both at equal MACs (the same network and weights; only the temporal padding and the
squeeze-excitation's average differ), under one recipe, over seeds, scored on the test split that
neither trained on (2 clips x 3 crops per video). Then what the non-causal weights are worth in the
causal model (the README's "Causal models" and the warning of
`autox3d_tf.weights.loading.NON_CAUSAL_WEIGHTS_WARNING`): scored as they are, and after a short
causal fine-tuning.

    python benchmarks/causal_cost.py --out_dir /tmp/causal_cost           # about 40 min here
    python benchmarks/causal_cost.py --out_dir /tmp/cc --quick            # a smoke run

Resumable: a finished run is reused. Writes ``results.json`` and ``summary.md`` into ``--out_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_dir", required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--clips_per_class", type=int, default=300)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--rate", type=int, default=2)
    p.add_argument("--crop", type=int, default=32)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--finetune_epochs", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=3e-3)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.clips_per_class, args.epochs, args.finetune_epochs = args.seeds[:1], 20, 1, 1
    return args


def log(message: str) -> None:
    print(f"[causal_cost] {message}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    from autox3d_tf.data.synthetic import write_synthetic_dataset
    from autox3d_tf.training import Recipe, evaluate, train
    from autox3d_tf.zoo import get_spec

    out = os.path.abspath(args.out_dir)
    data = os.path.join(out, "data")
    ann = os.path.join(data, "annotations.csv")
    if not os.path.exists(ann):
        write_synthetic_dataset(data, num_classes=args.classes, clips_per_class=args.clips_per_class, size=48, seed=0)
    names = json.load(open(os.path.join(data, "classes.json"), encoding="utf-8"))["classes"]
    clip = dict(frames=args.frames, rate=args.rate, crop=args.crop, test_crop=args.crop)
    recipe = Recipe(optimizer="adamw", dropout_rate=0.2)
    common = dict(train_split="train", val_data=ann, val_split="val", batch_size=args.batch_size,
                  learning_rate=args.learning_rate, recipe=recipe, verbose=2, **clip)

    def scored(run_dir: str, **kw) -> float:
        path = os.path.join(run_dir, "eval_test", "metrics.json")
        if not os.path.exists(path):
            evaluate(run_dir if not kw else None, ann, split="test", num_clips=2, num_crops=3,
                     out_dir=os.path.dirname(path), **kw)
        return float(json.load(open(path, encoding="utf-8"))["top1"])

    rows = []
    t_start = time.time()
    for seed in args.seeds:
        row = {"seed": seed}
        for arm, causal in (("x3d", False), ("causal", True)):
            run = os.path.join(out, f"seed{seed}", arm)
            t0 = time.time()
            if not os.path.exists(os.path.join(run, "final.weights.h5")):
                keras.backend.clear_session()
                train(ann, model="X3D_XS", out_dir=run, epochs=args.epochs, seed=seed, causal=causal, **common)
            row[f"{arm}_train_seconds"] = time.time() - t0
            row[arm] = scored(run)
            log(f"seed {seed}: {arm}: test top-1 {row[arm]:.3f} ({time.time() - t_start:.0f} s so far)")
        plain = os.path.join(out, f"seed{seed}", "x3d")
        causal_spec = get_spec("X3D_XS").replace(causal=True)
        as_is = os.path.join(out, f"seed{seed}", "x3d_weights_causal")
        row["x3d_weights_in_causal"] = scored(as_is, spec=causal_spec, weights=os.path.join(plain, "final.weights.h5"),
                                              classes=names, frames=args.frames, rate=args.rate, crop=args.crop)
        tuned = os.path.join(out, f"seed{seed}", "x3d_weights_causal_finetuned")
        if not os.path.exists(os.path.join(tuned, "final.weights.h5")):
            keras.backend.clear_session()
            train(ann, model="X3D_XS", out_dir=tuned, epochs=args.finetune_epochs, seed=seed, causal=True,
                  weights=plain, **{**common, "learning_rate": args.learning_rate / 10})
        row["x3d_weights_causal_finetuned"] = scored(tuned)
        log(f"seed {seed}: non-causal weights in the causal model {row['x3d_weights_in_causal']:.3f}, after "
            f"{args.finetune_epochs} epochs of causal fine-tuning {row['x3d_weights_causal_finetuned']:.3f}")
        rows.append(row)

    keys = ("x3d", "causal", "x3d_weights_in_causal", "x3d_weights_causal_finetuned")
    summary = {}
    for k in keys:
        values = [r[k] for r in rows]
        summary[k] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                      "values": values}
    payload = {"settings": vars(args), "chance": 1 / args.classes, "runs": rows, "summary": summary,
               "wall_seconds": time.time() - t_start}
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
    labels = {"x3d": "X3D-XS", "causal": "causal X3D-XS",
              "x3d_weights_in_causal": "X3D-XS weights in the causal model, as they are",
              "x3d_weights_causal_finetuned": f"the same after {args.finetune_epochs} epochs of causal fine-tuning"}
    lines = ["| model | test top-1, mean ± std | per seed |", "|---|---|---|"]
    for k in keys:
        s = summary[k]
        lines.append(f"| {labels[k]} | {100 * s['mean']:.1f}% ± {100 * s['std']:.1f} | "
                     f"{', '.join(f'{100 * v:.1f}' for v in s['values'])} |")
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
