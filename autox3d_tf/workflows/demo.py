"""The one-command demo: synthetic data -> search -> train -> evaluate -> export -> serve.

Each step runs the same tool a user would (`autox3d make-synthetic`, `search`, `train`,
`evaluate`, `export`) in its own process and writes into ``OUT/``; a step whose result is
already there is skipped, and the long steps resume from their checkpoints, so an interrupted
demo continues where it stopped. A control network, the same architecture trained on clips
whose frames are shuffled in time, shows how much of the accuracy comes from motion.

Layout of ``OUT/``::

    data/            the synthetic motion dataset (MP4 + annotations.csv)
    search/          arch.json, history.json, plots
    train/           the searched network, trained  (train_shuffled/: the control)
    export/          SavedModel (+ labels), served for the final prediction
    report/          summary.json and the plots, in one place
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class DemoConfig:
    """Sizes of the demo (defaults: about 10 minutes on 2 CPU cores).

    The synthetic clips are 48 px, 16 frames; the networks see 8 frames (every 2nd) at 32 x 32, in
    training (random crops of the clip scaled to 36-46 px) and in testing (the whole clip scaled to
    32 px). The test crop is not X3D's larger one: at these sizes a test input that is not a multiple
    of the network's stride of 32 adds a row of mostly-padding cells to a 1 x 1 final feature map,
    which changes the pooled features enough to confuse the two speed classes.
    Both the search (weights) and the training use AdamW at ``learning_rate``: on this small dataset
    the X3D recipe's SGD needs several times more epochs to start seeing motion.
    """

    out_dir: str = "demo_out"
    classes: int = 4
    clips_per_class: int = 500
    size: int = 48
    frames: int = 8
    rate: int = 2
    crop: int = 32
    test_crop: int = 32
    search_space: str = "tiny"
    search_epochs: int = 6
    search_warmup_epochs: float = 2.0
    macs_target_fraction: float = 0.9
    train_epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 3e-3
    dropout: float = 0.2
    eval_clips: int = 2
    seed: int = 0


def _step(name: str, done: str, argv: list[str], log) -> None:
    if os.path.exists(done):
        log(f"[demo] {name}: already done ({done})")
        return
    log(f"[demo] {name}: autox3d {' '.join(argv)}")
    t0 = time.time()
    cmd = [sys.executable, "-m", "autox3d_tf.cli.main", *argv]
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"demo step '{name}' failed (exit {result.returncode}): {' '.join(cmd)}")
    if not os.path.exists(done):
        raise RuntimeError(f"demo step '{name}' finished without writing {done}")
    log(f"[demo] {name}: {time.time() - t0:.0f} s")


def _serve_one(export_dir: str, video: str, frames: int, rate: int) -> dict:
    """Loads the exported SavedModel (as TF Serving would) and classifies one video."""
    import numpy as np
    import tensorflow as tf

    from autox3d_tf.data.decode import clip_indices, decode_frames, probe_video, whole_video_indices

    info = json.load(open(os.path.join(export_dir, "export.json"), encoding="utf-8"))
    loaded = tf.saved_model.load(info["saved_model"])
    serve = loaded.signatures[info["signature"]]
    n = probe_video(video).num_frames
    clip = decode_frames(video, whole_video_indices(n, frames) if rate == 0 else clip_indices(n, frames, rate))
    out = serve(frames=tf.constant(clip[None].astype(np.uint8)))
    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in out["top_k_labels"].numpy()[0]]
    scores = [float(v) for v in out["top_k_scores"].numpy()[0]]
    return {"video": video, "top_k": list(zip(labels, scores))}


def run_demo(config: DemoConfig = DemoConfig(), log=print) -> dict:
    """Runs (or resumes) the whole demo; returns the summary also written to report/summary.json."""
    t0 = time.time()
    out = os.path.abspath(config.out_dir)
    data = os.path.join(out, "data")
    ann = os.path.join(data, "annotations.csv")
    clip = ["--frames", str(config.frames), "--rate", str(config.rate), "--crop", str(config.crop)]

    _step("synthetic data", ann, ["make-synthetic", data, "--classes", str(config.classes), "--clips-per-class",
                                  str(config.clips_per_class), "--size", str(config.size), "--seed", str(config.seed)], log)  # fmt: skip
    search = os.path.join(out, "search")
    _step("architecture search", os.path.join(search, "search.json"), [
        "search", f"--data={ann}", f"--out_dir={search}", f"--space={config.search_space}",
        f"--epochs={config.search_epochs}", f"--batch_size={config.batch_size}", f"--seed={config.seed}",
        f"--warmup_epochs={config.search_warmup_epochs}", f"--macs_target_fraction={config.macs_target_fraction}",
        "--optimizer=adamw", f"--learning_rate={config.learning_rate}", *clip,
    ], log)  # fmt: skip
    arch = os.path.join(search, "arch.json")
    runs = {}
    for name, extra in (("train", []), ("train_shuffled", ["--shuffle_frames"])):
        run = os.path.join(out, name)
        runs[name] = run
        _step(f"train ({'frames shuffled in time' if extra else 'searched network'})", os.path.join(run, "final.weights.h5"), [
            "train", f"--train_data={ann}", "--train_split=train", f"--val_data={ann}", "--val_split=val",
            f"--spec={arch}", f"--out_dir={run}", f"--epochs={config.train_epochs}",
            f"--batch_size={config.batch_size}", f"--seed={config.seed}", "--verbose=2", "--optimizer=adamw",
            f"--learning_rate={config.learning_rate}", f"--dropout={config.dropout}",
            f"--test_crop={config.test_crop}", *clip, *extra,
        ], log)  # fmt: skip
        _step(f"evaluate ({name})", os.path.join(run, "eval", "metrics.json"), [
            "evaluate", f"--run_dir={run}", f"--data={ann}", "--split=test", f"--num_clips={config.eval_clips}",
        ], log)  # fmt: skip
    export = os.path.join(out, "export")
    _step("export", os.path.join(export, "export.json"), ["export", f"--run_dir={runs['train']}", f"--out_dir={export}"], log)

    metrics = {k: json.load(open(os.path.join(r, "eval", "metrics.json"), encoding="utf-8")) for k, r in runs.items()}
    test_rows = [line.split(",") for line in open(ann, encoding="utf-8").read().splitlines()[1:]]
    test_video = next(os.path.join(data, "videos", f"{row[1]}.mp4") for row in test_rows if row[-1] == "test")
    served = _serve_one(export, test_video, config.frames, config.rate)

    report = os.path.join(out, "report")
    os.makedirs(report, exist_ok=True)
    plots = []
    for folder in (search, os.path.join(runs["train"], "eval"), os.path.join(runs["train_shuffled"], "eval")):
        for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if f.endswith(".png"):
                prefix = os.path.basename(folder if not folder.endswith("eval") else os.path.dirname(folder))
                dst = os.path.join(report, f"{prefix}_{f}")
                shutil.copyfile(os.path.join(folder, f), dst)
                plots.append(dst)
    top1 = metrics["train"].get("top1")
    control = metrics["train_shuffled"].get("top1")
    summary = {
        "config": asdict(config),
        "search": json.load(open(os.path.join(search, "search.json"), encoding="utf-8")),
        "test_top1": top1,
        "test_top1_frames_shuffled": control,
        "motion_gain_points": None if top1 is None or control is None else 100 * (top1 - control),
        "metrics": metrics,
        "served_prediction": served,
        "plots": plots,
        "seconds": time.time() - t0,
    }
    with open(os.path.join(report, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, default=str)
    log("")
    log(f"[demo] searched network: {summary['search'].get('derived_macs', 0) / 1e9:.4f} GMACs "
        f"(target {summary['search'].get('macs_target', 0) / 1e9:.4f})")
    log(f"[demo] test top-1: {top1:.3f}; same network on time-shuffled frames: {control:.3f} "
        f"({summary['motion_gain_points']:+.1f} points from motion)")
    log(f"[demo] served by the exported SavedModel: {served['video']} -> {served['top_k'][0]}")
    log(f"[demo] report: {report} ({time.time() - t0:.0f} s)")
    return summary
