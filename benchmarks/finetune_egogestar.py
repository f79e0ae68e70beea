"""What fine-tuning from pretrained weights does on real video: X3D-XS on the EgoGestAR gesture clips.

    python benchmarks/finetune_egogestar.py --out_dir /tmp/ft_ego                 # 3 seeds, 6 epochs
    python benchmarks/finetune_egogestar.py --out_dir /tmp/ft_ego --seeds 0 1 --epochs 4
    python benchmarks/finetune_egogestar.py --out_dir /tmp/ft_ego_quick --quick  # toy size, minutes

No Kinetics weights can be downloaded where this was written, so the "pretrained" network is one this
script trains itself, on the package's synthetic motion dataset (``autox3d make-synthetic --classes 6``:
classes that differ only in the order of the frames, i.e. in vertical motion over time). The target task is
the real egocentric gesture clips of ``../shared/data/egogestar`` (11 classes, Kinetics CSV, split ``train``
132 clips / ``val`` 22 clips; read in place, never copied). Left / right and up / down are classes, so every
training run uses ``--noflip``.

All runs: X3D_XS at one clip (``--frames 8 --rate 6 --crop 96``: test crop 109, scale jitter [109, 137],
the model's ratios), batch 8, the same optimizer (``--optimizer adamw`` by default), the same epochs and
seeds:

 1. ``pretrain``: X3D_XS trained once on the synthetic data (6 classes, ``--clips_per_class`` each, 70% for
    training) at the same clip setting. The synthetic clips are rendered with 8 frames and every frame is
    written ``rate`` times (at ``rate`` x the frame rate, same duration), so that a clip of 8 frames every
    ``rate`` is exactly the 8 rendered frames in order: the classes are permutations of the rendered frames
    and would not survive a subsampling of a longer rendering. Scored on the synthetic ``val`` split.
 2. ``before``: the pretrained backbone with a fresh 11-class classifier (``X3D_XS(weights=PRETRAIN_RUN,
    classes=11)`` under ``keras.utils.set_random_seed(seed)``, saved as a ``.weights.h5``), no training,
    scored by ``autox3d evaluate --model X3D_XS --weights FILE`` with the same views as the others.
    Chance is 1/11 = 0.091 top-1, 5/11 = 0.455 top-5.
 3. ``frozen``: ``autox3d train --weights PRETRAIN_RUN --freeze_backbone --noflip`` (only the classifier).
 4. ``full``: ``autox3d train --weights PRETRAIN_RUN --noflip`` (everything; the fine-tuning default peak
    learning rate, a tenth of the from-scratch one, unless ``--finetune_lr``).
 5. ``scratch``: ``autox3d train --noflip`` without weights, the same recipe otherwise (from-scratch rate).

Each run of 3-5 is scored with ``autox3d evaluate --run_dir RUN --data EGOGESTAR --split val --num_clips 5
--num_crops 3 --json``. Writes into ``--out_dir``: ``results.json`` (after every run: per run the commands,
seed, val top-1 / top-5, train seconds; the summary), ``summary.md`` (mean and std per config) and
``finetune_egogestar.png`` (bar chart, error bars = std over seeds). Runs and the synthetic data go to
``--work_dir`` (default: the temp dir); a finished run found there is reused (a killed benchmark started again goes on).
Seeds are the outer loop, so a run stopped early still has every config on its first seeds.

A benchmark, not a test: about an hour of 2 CPU cores at the defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "egogestar", "annotations.csv"))
CONFIGS = ("before", "frozen", "full", "scratch")
LABELS = {"before": "pretrained,\nno training", "frozen": "fine-tune\nfrozen backbone",
          "full": "fine-tune\neverything", "scratch": "from scratch"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_dir", required=True, help="results.json, summary.md, finetune_egogestar.png")
    p.add_argument("--work_dir", help="runs and synthetic data (default: TMPDIR/finetune_egogestar)")
    p.add_argument("--data", default=DEFAULT_DATA, help="EgoGestAR annotations.csv (Kinetics CSV, train / val)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6, help="epochs of every egogestar run")
    p.add_argument("--pretrain_epochs", type=int, default=6)
    p.add_argument("--clips_per_class", type=int, default=80, help="synthetic clips per class (70%% train)")
    p.add_argument("--pretrain_seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--rate", type=int, default=6)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--optimizer", default="adamw", choices=["sgd", "adamw"])
    p.add_argument("--finetune_lr", type=float, help="peak learning rate of frozen / full (default: the "
                   "fine-tuning default, a tenth of the from-scratch one)")
    p.add_argument("--num_clips", type=int, default=5)
    p.add_argument("--num_crops", type=int, default=3, choices=[1, 3])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--steps_per_epoch", type=int, help="default: training videos // batch size")
    p.add_argument("--nice", type=int, default=10, help="niceness of the training / evaluation processes")
    p.add_argument("--quick", action="store_true", help="toy size: seed 0, 1 epoch of 2 steps, 4 synthetic clips "
                   "per class, 1 clip x 1 crop views; checks the plumbing only")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.pretrain_epochs = args.seeds[:1], 1, 1
        args.clips_per_class, args.steps_per_epoch, args.num_clips, args.num_crops = 4, 2, 1, 1
    args.work_dir = os.path.abspath(args.work_dir or os.path.join(tempfile.gettempdir(), "finetune_egogestar"))
    args.data = os.path.abspath(args.data)
    return args


def autox3d() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "autox3d")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "autox3d_tf.cli"]


def run(cmd: list[str], log: str, nice: int) -> float:
    """Runs ``cmd`` (under ``nice``), output to ``log``; returns wall seconds; raises on failure."""
    full = (["nice", "-n", str(nice)] if nice else []) + cmd
    print("$ " + shlex.join(cmd), flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(full, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.time() - t0
    if rc:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"exit {rc}: {shlex.join(cmd)}\n{tail}")
    return seconds


def run_done(run_dir: str) -> dict | None:
    path = os.path.join(run_dir, "run.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    return data if data.get("completed") else None


def read_metrics(eval_dir: str) -> dict:
    with open(os.path.join(eval_dir, "metrics.json")) as f:
        m = json.load(f)
    return {"top1": float(m["top1"]), "top5": float(m["top5"])}


def clip_flags(args) -> list[str]:
    return ["--frames", str(args.frames), "--rate", str(args.rate), "--crop", str(args.crop)]


# --- 1. the synthetic data and the pretrained network -------------------------------------------------


def make_synthetic(args) -> str:
    """``autox3d make-synthetic`` at 8 frames, then every frame repeated ``rate`` times (see the docstring)."""
    import av
    import numpy as np

    from autox3d_tf.data.synthetic import write_video

    root = os.path.join(args.work_dir, "synthetic")
    done = os.path.join(root, "STRETCHED")
    if os.path.exists(done):
        return os.path.join(root, "annotations.csv")
    fps = 12
    cmd = autox3d() + ["make-synthetic", root, "--classes", "6", "--clips-per-class", str(args.clips_per_class),
                       "--size", "128", "--frames", str(args.frames), "--fps", str(fps), "--seed",
                       str(args.pretrain_seed), "--quiet"]
    run(cmd, os.path.join(args.work_dir, "make_synthetic.log"), args.nice)
    videos = os.path.join(root, "videos")
    for name in sorted(os.listdir(videos)):
        path = os.path.join(videos, name)
        with av.open(path) as c:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        write_video(path, np.repeat(frames, args.rate, axis=0), fps=fps * args.rate)
    with open(done, "w") as f:
        f.write(f"every frame repeated {args.rate} times, written at {fps * args.rate} fps\n")
    with open(os.path.join(args.work_dir, "make_synthetic.cmd"), "w") as f:
        f.write(shlex.join(cmd) + "\n")
    return os.path.join(root, "annotations.csv")


def train_cmd(args, train_data: str, out_dir: str, seed: int, epochs: int, extra: list[str]) -> list[str]:
    cmd = autox3d() + ["train", "--train_data", train_data, "--train_split", "train", "--model", "X3D_XS",
                       *clip_flags(args), "--batch_size", str(args.batch_size), "--epochs", str(epochs),
                       "--optimizer", args.optimizer, "--noflip", "--seed", str(seed), "--verbose", "2",
                       "--out_dir", out_dir, *extra]
    if args.steps_per_epoch:
        cmd += ["--steps_per_epoch", str(args.steps_per_epoch)]
    return cmd


def pretrain(args, record: dict) -> str:
    synth = make_synthetic(args)
    run_dir = os.path.join(args.work_dir, "pretrain")
    cmd = train_cmd(args, synth, run_dir, args.pretrain_seed, args.pretrain_epochs, [])
    wall = None
    if run_done(run_dir) is None:
        wall = run(cmd, os.path.join(args.work_dir, "pretrain.log"), args.nice)
    info = run_done(run_dir)
    eval_dir = os.path.join(run_dir, "eval_synthetic_val")
    ecmd = autox3d() + ["evaluate", "--run_dir", run_dir, "--data", synth, "--split", "val", "--num_clips", "1",
                        "--num_crops", "1", "--json", "--out_dir", eval_dir]
    if not os.path.exists(os.path.join(eval_dir, "metrics.json")):
        run(ecmd, os.path.join(args.work_dir, "pretrain_eval.log"), args.nice)
    record["pretrain"] = {"command": shlex.join(cmd), "make_synthetic": open(
        os.path.join(args.work_dir, "make_synthetic.cmd")).read().strip(), "evaluate_command": shlex.join(ecmd),
        "synthetic_val": read_metrics(eval_dir), "train_seconds": info.get("seconds"),
        "wall_seconds": None if wall is None else round(wall, 1), "run_dir": run_dir,
        "synthetic_chance_top1": 1 / 6}
    return run_dir


# --- 2.-5. the egogestar runs --------------------------------------------------------------------------

BEFORE_SNIPPET = """
import sys, keras
from autox3d_tf.zoo import X3D_XS
pretrain, seed, classes, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keras.utils.set_random_seed(seed)
model = X3D_XS(weights=pretrain, classes=classes)
print(model.pretrained_report)
model.save_weights(out)
"""


def eval_cmd(args, eval_dir: str, source: list[str]) -> list[str]:
    return autox3d() + ["evaluate", *source, "--data", args.data, "--split", "val", "--num_clips",
                        str(args.num_clips), "--num_crops", str(args.num_crops), "--json", "--out_dir", eval_dir]


def class_file(args) -> str:
    return os.path.join(os.path.dirname(args.data), "classes.json")


def num_classes(args) -> int:
    with open(class_file(args)) as f:
        return len(json.load(f)["classes"])


def run_before(args, pretrain_dir: str, seed: int) -> dict:
    from autox3d_tf.data.clip import resolve_clip

    base = os.path.join(args.work_dir, f"before_seed{seed}")
    os.makedirs(base, exist_ok=True)
    weights = os.path.join(base, "fresh_head.weights.h5")
    make = [sys.executable, "-c", BEFORE_SNIPPET, pretrain_dir, str(seed), str(num_classes(args)), weights]
    if not os.path.exists(weights):
        run(make, os.path.join(base, "make_weights.log"), args.nice)
    test_crop = resolve_clip("X3D_XS", frames=args.frames, rate=args.rate, crop=args.crop).test_crop
    cmd = eval_cmd(args, os.path.join(base, "eval"), [
        "--model", "X3D_XS", "--weights", weights, "--classes", class_file(args), "--frames", str(args.frames),
        "--rate", str(args.rate), "--crop", str(test_crop)])
    if not os.path.exists(os.path.join(base, "eval", "metrics.json")):
        run(cmd, os.path.join(base, "eval.log"), args.nice)
    return {"config": "before", "seed": seed, "commands": [
        "python -c 'keras.utils.set_random_seed(SEED); X3D_XS(weights=PRETRAIN_RUN, classes=11).save_weights(FILE)'"
        f"  # {shlex.join(make[3:])}", shlex.join(cmd)],
        **read_metrics(os.path.join(base, "eval")), "train_seconds": 0.0, "epochs": 0}


def run_train(args, pretrain_dir: str, config: str, seed: int) -> dict:
    run_dir = os.path.join(args.work_dir, f"{config}_seed{seed}")
    extra = []
    if config in ("frozen", "full"):
        extra += ["--weights", pretrain_dir]
        if args.finetune_lr is not None:
            extra += ["--learning_rate", str(args.finetune_lr)]
    if config == "frozen":
        extra += ["--freeze_backbone"]
    cmd = train_cmd(args, args.data, run_dir, seed, args.epochs, extra)
    wall = None
    if run_done(run_dir) is None:
        os.makedirs(run_dir, exist_ok=True)
        wall = run(cmd, os.path.join(args.work_dir, f"{config}_seed{seed}.log"), args.nice)
    info = run_done(run_dir)
    eval_dir = os.path.join(run_dir, "eval_val")
    ecmd = eval_cmd(args, eval_dir, ["--run_dir", run_dir])
    if not os.path.exists(os.path.join(eval_dir, "metrics.json")):
        run(ecmd, os.path.join(args.work_dir, f"{config}_seed{seed}_eval.log"), args.nice)
    return {"config": config, "seed": seed, "commands": [shlex.join(cmd), shlex.join(ecmd)],
            **read_metrics(eval_dir), "train_seconds": info.get("seconds"),
            "wall_seconds": None if wall is None else round(wall, 1), "epochs": args.epochs,
            "learning_rate": info.get("learning_rate"), "final_train_metrics": info.get("final_metrics"),
            "frozen_layers": len(info.get("frozen_layers") or []), "run_dir": run_dir}


# --- summary ---------------------------------------------------------------------------------------------


def summarise(runs: list[dict]) -> dict:
    out = {}
    for config in CONFIGS:
        rs = [r for r in runs if r["config"] == config]
        if not rs:
            continue
        row = {"n": len(rs), "seeds": [r["seed"] for r in rs]}
        for key in ("top1", "top5", "train_seconds"):
            vals = [float(r[key] or 0.0) for r in rs]
            row[key + "_mean"] = statistics.fmean(vals)
            row[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out[config] = row
    return out


def summary_table(summary: dict) -> str:
    lines = ["| config | seeds | val top-1 (mean ± std) | val top-5 (mean ± std) | train s / run |",
             "|---|---|---|---|---|"]
    for config, s in summary.items():
        lines.append(f"| {config} | {','.join(map(str, s['seeds']))} | {s['top1_mean']:.3f} ± {s['top1_std']:.3f} | "
                     f"{s['top5_mean']:.3f} ± {s['top5_std']:.3f} | {s['train_seconds_mean']:.0f} |")
    return "\n".join(lines)


def plot(summary: dict, path: str, title: str, chance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(summary)
    x = range(len(configs))
    fig, ax = plt.subplots(figsize=(7, 4))
    w = 0.38
    for k, (key, colour) in enumerate((("top1", "tab:blue"), ("top5", "tab:orange"))):
        means = [summary[c][key + "_mean"] for c in configs]
        stds = [summary[c][key + "_std"] for c in configs]
        ax.bar([i + (k - 0.5) * w for i in x], means, w, yerr=stds, capsize=4, color=colour,
               label=f"val {key[:3]}-{key[3:]}")
    ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance top-1 (1/{round(1 / chance)})")
    ax.set_xticks(list(x), [LABELS[c] + f"\n(n={summary[c]['n']})" for c in configs], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (EgoGestAR val, 22 clips)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(args, record: dict) -> None:
    record["summary"] = summarise(record["runs"])
    path = os.path.join(args.out_dir, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)
    if not record["summary"]:
        return
    table = summary_table(record["summary"])
    with open(os.path.join(args.out_dir, "summary.md"), "w") as f:
        f.write(table + "\n")
    pre = record.get("pretrain", {}).get("synthetic_val", {}).get("top1")
    title = (f"X3D-XS {args.frames}x{args.rate}, crop {args.crop}, {args.optimizer}, {args.epochs} epochs"
             + (f"; pretrain synthetic val top-1 {pre:.2f}" if pre is not None else ""))
    plot(record["summary"], os.path.join(args.out_dir, "finetune_egogestar.png"), title, 1 / num_classes(args))


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)
    record = {"argv": sys.argv[1:], "settings": {k: v for k, v in vars(args).items()},
              "chance_top1": 1 / num_classes(args), "chance_top5": min(5, num_classes(args)) / num_classes(args),
              "runs": []}
    t0 = time.time()
    pretrain_dir = pretrain(args, record)
    print(f"pretrain: synthetic val {record['pretrain']['synthetic_val']} ({time.time() - t0:.0f} s)", flush=True)
    write_outputs(args, record)
    for seed in args.seeds:
        for config in args.configs:
            r = run_before(args, pretrain_dir, seed) if config == "before" else run_train(args, pretrain_dir, config, seed)
            record["runs"].append(r)
            print(f"{config} seed {seed}: top-1 {r['top1']:.3f} top-5 {r['top5']:.3f} "
                  f"train {r['train_seconds']} s ({time.time() - t0:.0f} s so far)", flush=True)
            write_outputs(args, record)
    record["total_seconds"] = round(time.time() - t0, 1)
    write_outputs(args, record)
    print(summary_table(record["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
