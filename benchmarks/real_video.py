"""Real video: does a search find a network that beats X3D-XS at equal MACs on clips nobody here made?

    python benchmarks/real_video.py --out_dir /tmp/real_video                # the full comparison
    python benchmarks/real_video.py --out_dir /tmp/rv --arms x3d control     # some arms only
    python benchmarks/real_video.py --out_dir /tmp/rv_quick --quick          # the whole flow at toy size

Data: any annotation file the pipelines read (default: the EgoGestAR gesture clips of
``../shared/data/egogestar``, 11 classes, read in place). Its videos (every split) are cut into
``--folds`` folds by clip number: within each class the videos are sorted by name (natural order) and
cut into ``folds`` contiguous blocks (EgoGestAR, 14 clips a class, 3 folds: clips 1-5, 6-10, 11-14),
so every class is in every fold and neighbouring clips (often the same person or session) stay
together. Run ``r`` (of ``--seeds``, a multiple of ``--folds``) trains on every fold but
``r % folds`` with seed ``seeds[r]`` and is scored on that fold: with the default three seeds and
three folds, each video is scored once, by models that never trained on it.

Arms, all trained from scratch under one recipe (the same epochs, clip, augmentation, optimiser and
seeds), all at one MACs budget (default: X3D-XS's at the clip):

- ``x3d``: X3D-XS;
- ``control``: X3D-XS trained and scored on time-shuffled frames (no motion);
- ``causal``: causal X3D-XS (``autox3d train --causal``: the form that streams frame by frame), the
  accuracy cost of causality at equal MACs;
- ``random``: a uniformly random architecture of the autox3d-v1 space within [0.85, 1] x the budget
  (the standard NAS baseline), one per seed;
- ``entropy``: the training-free STEntr search's network at the budget (no data), one per seed;
- ``probabilistic``: the Auto-X3D supernet search run on the run's training folds only (its held-out
  batches are 20% of those videos, never the scored fold), its derived network;
- ``differentiable``: the DARTS-style cell search (``--cell_space``) on the same data under the same
  MACs penalty, its derived cell network (a cell network: its MACs are what the cell space allows,
  reported beside the budget, so it is not an equal-MACs comparison).

Every run records ``within_budget``. The summary gives, per arm, the mean and standard deviation
over the runs, and the paired difference to X3D-XS (run by run on the same fold and seed), which is
what "beats X3D by more than the spread" is judged on.

The clip: ``--frames`` frames at ``--rate 0`` (frames spread over the whole video: a gesture lasts 1 to
9 s, so a fixed-rate window would often miss it) and ``--crop`` pixels, for training and scoring alike
(so the MACs that are compared are those the searches were given); horizontal flips are off
(left / right are classes). Every model is scored with ``--num_clips`` x ``--num_crops`` views by
``autox3d_tf.training.evaluate`` (the same function as ``autox3d evaluate --run_dir``), and on
``--test_data`` too when given. Per arm it reports val top-1 / top-5 mean and standard deviation over
the runs, MACs, parameters, batch-1 CPU latency, training and search seconds.

Writes into ``--out_dir``: ``folds/`` (the fold lists), ``searches/`` (every search's folder),
``runs/fold<F>_seed<S>/<arm>/`` (every trained run folder, re-scorable with
``autox3d evaluate --run_dir``), ``results.json`` (after every run), ``summary.md`` and
``real_video.png`` (val top-1 against MACs, error bars = std over runs). A finished run or search
found there is reused, so a killed benchmark started again goes on where it stopped.

A benchmark, not a test (its ``--quick`` form runs in CI): it trains ``6 x len(seeds)`` networks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "egogestar", "annotations.csv"))
ARMS = ("x3d", "control", "causal", "random", "entropy", "probabilistic", "differentiable")
LABELS = {"x3d": "X3D-XS", "control": "X3D-XS, shuffled frames", "causal": "causal X3D-XS", "random": "random architecture",
          "entropy": "entropy search", "probabilistic": "probabilistic search",
          "differentiable": "differentiable search"}


SAME_SETTINGS = ("data", "test_data", "classes", "folds", "fold_videos", "clip", "macs_budget", "recipe", "search",
                 "quick")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_dir", required=True, help="folds, searches, runs, results.json, summary.md, PNG")
    p.add_argument("--data", default=DEFAULT_DATA, help="annotation file or folder (every split is used)")
    p.add_argument("--test_data", help="also score every final model on this annotation file")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--rate", type=int, default=0, help="0: the frames spread over the whole video")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--flip", action="store_true", help="random horizontal flips (off: left / right are classes)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--steps_per_epoch", type=int, help="default: training videos // batch size")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=2e-3, help="AdamW peak rate, cosine-decayed")
    p.add_argument("--weight_decay", type=float, default=0.05)
    p.add_argument("--macs_target", type=float, help="GMACs budget (default: X3D-XS's at the clip)")
    p.add_argument("--space", default="autox3d-v1", help="block space of the random and probabilistic arms")
    p.add_argument("--cell_space", default="cells-tiny", help="cell space of the differentiable arm")
    p.add_argument("--search_epochs", type=int, default=10)
    p.add_argument("--search_warmup_epochs", type=float, default=4)
    p.add_argument("--search_steps_per_epoch", type=int)
    p.add_argument("--num_clips", type=int, default=3)
    p.add_argument("--num_crops", type=int, default=3, choices=[1, 3])
    p.add_argument("--latency_runs", type=int, default=20)
    p.add_argument("--min_random_fraction", type=float, default=0.85,
                   help="the random arm's MACs lie in [this, 1] x the budget")
    p.add_argument("--quick", action="store_true", help="toy size: 3 classes x 4 clips, 2 folds, 1 epoch")
    args = p.parse_args(argv)
    if args.quick:
        args.folds, args.seeds, args.frames, args.crop = 2, args.seeds[:2], 4, 32
        args.epochs, args.steps_per_epoch, args.search_epochs, args.search_steps_per_epoch = 1, 2, 1, 2
        args.search_warmup_epochs, args.space, args.num_clips, args.num_crops = 0, "tiny", 1, 1
        args.batch_size, args.latency_runs = 2, 2
    if args.folds < 2:
        p.error("--folds must be at least 2")
    if len(args.seeds) % args.folds:
        p.error(f"give a multiple of --folds ({args.folds}) seeds, so that every fold is scored equally often")
    if args.quick:
        args.min_random_fraction = 0.0
    return args


def log(message: str) -> None:
    print(f"[real_video] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Folds
# --------------------------------------------------------------------------------------------


def natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def make_folds(records, num_folds: int, per_class: int | None = None, classes: int | None = None) -> list[list]:
    """Folds by clip number: within each class the videos in natural name order, cut into
    ``num_folds`` contiguous blocks (video ``i`` of ``n`` to fold ``i * num_folds // n``);
    ``per_class`` / ``classes`` keep only the first ones, for ``--quick``."""
    by_class: dict[int, list] = {}
    for rec in records:
        by_class.setdefault(rec.label, []).append(rec)
    folds: list[list] = [[] for _ in range(num_folds)]
    for label in sorted(by_class)[:classes]:
        videos = sorted(by_class[label], key=lambda r: natural_key(r.video_id))[:per_class]
        if len(videos) < num_folds:
            raise SystemExit(f"class {label} has {len(videos)} videos, fewer than --folds {num_folds}")
        for i, rec in enumerate(videos):
            folds[i * num_folds // len(videos)].append(rec)
    return folds


def write_list(path: str, records, names: list[str]) -> str:
    """A PySlowFast list (absolute path, class name), next to the class map the loader picks up."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.path.join(os.path.dirname(path), "classes.json"), "w", encoding="utf-8") as f:
        json.dump({"classes": names}, f, indent=1)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{os.path.abspath(r.path)} {names[r.label]}\n" for r in records)
    return path


# --------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------


def x3d_budget(args, num_classes: int) -> int:
    from autox3d_tf.arch.catalog import get_spec
    from autox3d_tf.arch.macs import spec_macs

    spec = get_spec("X3D_XS")
    return spec_macs(spec, frames=args.frames, size=args.crop, classes=num_classes)


def random_spec(args, budget: int, num_classes: int, seed: int, path: str) -> str:
    """A uniformly random architecture of ``--space`` with MACs in [0.85, 1] x ``budget``."""
    import numpy as np

    from autox3d_tf.search.evolution import random_choices
    from autox3d_tf.search.space import space_preset

    if os.path.exists(path):
        return path
    space = space_preset(args.space, input_frames=args.frames, input_size=args.crop, classes=num_classes)
    rng = np.random.default_rng([seed, 19])
    low = args.min_random_fraction
    for _ in range(200_000):
        choices = random_choices(space, rng)
        if low * budget <= space.arch_macs(choices) <= budget:
            break
    else:
        raise SystemExit(f"no random architecture of {args.space} within [{low}, 1] x {budget / 1e9:.3f} GMACs")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    space.decode(choices, name=f"random_seed{seed}").save(path)
    return path


def timed_search(folder: str, search) -> tuple[str, float]:
    """Runs ``search()`` unless ``folder/arch.json`` exists; returns the spec path and seconds."""
    done = os.path.join(folder, "search_seconds.json")
    spec = os.path.join(folder, "arch.json")
    if os.path.exists(done) and os.path.exists(spec):
        with open(done, encoding="utf-8") as f:
            return spec, json.load(f)["seconds"]
    os.makedirs(folder, exist_ok=True)
    t0 = time.time()
    search()
    seconds = time.time() - t0
    with open(done, "w", encoding="utf-8") as f:
        json.dump({"seconds": seconds}, f)
    return spec, seconds


def searched_spec(arm: str, args, budget: int, num_classes: int, train_list: str, seed: int,
                  folder: str) -> tuple[str, float]:
    common = dict(frames=args.frames, crop=args.crop)
    if arm == "entropy":
        from autox3d_tf.workflows.entropy_search import search_and_save

        # Its space has a 400-class head: the same budget with X3D-XS's 400-class head (the head's
        # cost does not depend on the architecture, so the constraint is the same).
        size = dict(population=16, generations=4) if args.quick else {}
        budget_400 = x3d_budget(args, 400) + budget - x3d_budget(args, num_classes)
        return timed_search(folder, lambda: search_and_save(
            macs_budget=budget_400, size=args.crop, frames=args.frames, seed=seed, quiet=True, **size,
            output=os.path.join(folder, "arch.json"), history_path=os.path.join(folder, "history.json")))
    data = dict(train_split=None, held_out_split=None, held_out_fraction=0.2, split_seed=seed, epochs=args.search_epochs,
                warmup_epochs=args.search_warmup_epochs, steps_per_epoch=args.search_steps_per_epoch,
                batch_size=args.batch_size, rate=args.rate, flip=args.flip, seed=seed, plots=not args.quick, **common)
    if arm == "probabilistic":
        from autox3d_tf.workflows.search import probabilistic_search

        return timed_search(folder, lambda: probabilistic_search(
            train_list, folder, space=args.space, macs_target=budget / 1e9, optimizer="adamw", **data))
    from autox3d_tf.workflows.differentiable_search import differentiable_search

    return timed_search(folder, lambda: differentiable_search(train_list, folder, space=args.cell_space,
                                                              macs_target=budget, **data))


# --------------------------------------------------------------------------------------------
# Training and scoring
# --------------------------------------------------------------------------------------------


def latency_ms(run_dir: str, runs: int) -> tuple[float, int]:
    """Median batch-1 latency (ms) of the run's model on one test clip, and its parameter count."""
    import numpy as np
    import tensorflow as tf

    from autox3d_tf.training.loops import load_trained_model

    model, _ = load_trained_model(run_dir)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, *model.input_shape[1:])).astype("float32"))
    call = tf.function(lambda clip: model(clip, training=False))
    for _ in range(3):
        call(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        np.asarray(call(x))
        times.append(1000 * (time.perf_counter() - t0))
    return float(statistics.median(times)), int(model.count_params())


def train_and_score(arm: str, args, spec: str | None, train_list: str, val_list: str, seed: int,
                    run_dir: str) -> dict:
    """Trains one arm (resumed or reused when ``run_dir`` holds it) and scores it."""
    import keras

    from autox3d_tf.training import Recipe, evaluate, train

    result_path = os.path.join(run_dir, "real_video_result.json")
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            return json.load(f)
    keras.backend.clear_session()
    recipe = Recipe(optimizer="adamw", weight_decay=args.weight_decay)
    t0 = time.time()
    train(train_list, model="X3D_XS", spec=spec, out_dir=run_dir, epochs=args.epochs, batch_size=args.batch_size,
          steps_per_epoch=args.steps_per_epoch, learning_rate=args.learning_rate, recipe=recipe,
          frames=args.frames, rate=args.rate, crop=args.crop, test_crop=args.crop, flip=args.flip, shuffle_frames=arm == "control",
          seed=seed, verbose=2, causal=arm == "causal")
    train_s = time.time() - t0
    views = dict(num_clips=args.num_clips, num_crops=args.num_crops)
    val = evaluate(run_dir, val_list, out_dir=os.path.join(run_dir, "eval_val"), **views)
    out = {"val_top1": float(val["top1"]), "val_top5": float(val["top5"]), "train_seconds": train_s}
    if args.test_data:
        test = evaluate(run_dir, args.test_data, out_dir=os.path.join(run_dir, "eval_test"), **views)
        out.update(test_top1=float(test["top1"]), test_top5=float(test["top5"]))
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
        out["macs"] = int(json.load(f)["macs"]["per_clip"])
    out["latency_ms"], out["params"] = latency_ms(run_dir, args.latency_runs)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict], arms: list[str]) -> dict:
    summary = {}
    for arm in arms:
        rows = [r for r in runs if r["arm"] == arm]
        if not rows:
            continue
        entry = {"runs": len(rows)}
        for key in ("val_top1", "val_top5", "test_top1", "macs", "params", "latency_ms", "train_seconds",
                    "search_seconds"):
            values = [r[key] for r in rows if r.get(key) is not None]
            if values:
                entry[key], entry[key + "_std"] = mean_std(values)
        base = {(r["fold"], r["seed"]): r["val_top1"] for r in runs if r["arm"] == "x3d"}
        diffs = [r["val_top1"] - base[(r["fold"], r["seed"])] for r in rows if (r["fold"], r["seed"]) in base]
        if arm != "x3d" and diffs:
            entry["vs_x3d"], entry["vs_x3d_std"] = mean_std(diffs)
        entry["within_budget"] = all(r["within_budget"] for r in rows)
        summary[arm] = entry
    return summary


def write_report(out_dir: str, payload: dict) -> None:
    tmp = os.path.join(out_dir, "results.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "results.json"))
    chance = 1.0 / payload["classes"]
    lines = [f"# Real video: {payload['data']}", "",
             f"{payload['folds']} folds, runs (fold, seed): {payload['run_pairs']}; clip {payload['clip']}; "
             f"budget {payload['macs_budget'] / 1e9:.3f} GMACs; chance {chance:.3f}", "",
             "| arm | runs | val top-1 | paired vs X3D-XS | val top-5 | GMACs | params | batch-1 ms | train s | search s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, e in payload["summary"].items():
        def f(key, fmt="{:.3f}"):
            return (fmt.format(e[key]) + " ± " + "{:.3f}".format(e[key + "_std"])) if key in e else "-"
        over = "" if e["within_budget"] else " (over budget)"
        search = f"{e['search_seconds']:.0f}" if "search_seconds" in e else "-"
        lines.append(f"| {LABELS[arm]} | {e['runs']} | {f('val_top1')} | {f('vs_x3d', '{:+.3f}')} | {f('val_top5')} | "
                     f"{e['macs'] / 1e9:.3f}{over} | {e['params'] / 1e6:.2f} M | {e['latency_ms']:.1f} | "
                     f"{e['train_seconds']:.0f} | {search} |")
    lines += ["", "| arm | fold | seed | val top-1 | GMACs |", "|---|---|---|---|---|"]
    lines += [f"| {LABELS[r['arm']]} | {r['fold']} | {r['seed']} | {r['val_top1']:.3f} | {r['macs'] / 1e9:.3f} |"
              for r in payload["runs"]]
    with open(os.path.join(out_dir, "summary.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    plot(out_dir, payload, chance)


def plot(out_dir: str, payload: dict, chance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (arm, e) in enumerate(payload["summary"].items()):
        shift = 1 + 0.01 * (i - len(payload["summary"]) / 2)  # X3D-XS and its control share their MACs
        ax.errorbar(e["macs"] / 1e9 * shift, e["val_top1"], yerr=e["val_top1_std"], fmt="o", capsize=4,
                    label=f"{LABELS[arm]} ({e['runs']} runs)")
    ax.axhline(chance, color="grey", linestyle=":", label="chance")
    ax.axvline(payload["macs_budget"] / 1e9, color="grey", linestyle="--", linewidth=0.8, label="budget")
    ax.set_xlabel("GMACs per clip")
    ax.set_ylabel("val top-1 (multi-view), mean ± std")
    ax.set_title(f"Real video ({os.path.basename(os.path.dirname(payload['data']))}), {payload['folds']}-fold")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "real_video.png"), dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    from autox3d_tf.data.annotations import load_annotations

    out = os.path.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)
    ann = load_annotations(args.data, save_class_map=False)
    names = list(ann.classes.names)
    folds = make_folds(ann.records, args.folds, *((4, 3) if args.quick else (None, None)))
    if args.quick:
        names = names[:3]
    budget = int(args.macs_target * 1e9) if args.macs_target else x3d_budget(args, len(names))
    pairs = [(r % args.folds, seed) for r, seed in enumerate(args.seeds)]
    payload = {"data": os.path.abspath(args.data), "test_data": args.test_data, "classes": len(names),
               "folds": args.folds, "fold_sizes": [len(f) for f in folds], "run_pairs": pairs,
               "fold_videos": [[r.video_id for r in f] for f in folds],
               "clip": {"frames": args.frames, "rate": args.rate, "crop": args.crop}, "macs_budget": budget,
               "recipe": {k: getattr(args, k) for k in ("epochs", "steps_per_epoch", "batch_size", "learning_rate",
                                                         "weight_decay", "flip", "num_clips", "num_crops")},
               "search": {k: getattr(args, k) for k in ("space", "cell_space", "search_epochs",
                                                         "search_warmup_epochs", "search_steps_per_epoch")},
               "quick": args.quick, "runs": []}
    previous = os.path.join(out, "results.json")
    if os.path.exists(previous):
        with open(previous, encoding="utf-8") as f:
            old = json.load(f)
        same = [k for k in SAME_SETTINGS if old.get(k) != json.loads(json.dumps(payload[k]))]
        if same:
            raise SystemExit(f"{previous}: holds runs with other settings ({', '.join(same)}); use another --out_dir")
        payload["runs"] = old.get("runs", [])
    log(f"{len(ann.records)} videos, {len(names)} classes, folds of {payload['fold_sizes']}; "
        f"budget {budget / 1e9:.3f} GMACs; runs (fold, seed) {pairs}; arms {args.arms}")
    t_start = time.time()
    for fold, seed in pairs:
        train_recs = [r for i, f in enumerate(folds) if i != fold for r in f]
        train_list = write_list(os.path.join(out, "folds", f"fold{fold}", "train.txt"), train_recs, names)
        val_list = write_list(os.path.join(out, "folds", f"fold{fold}", "val.txt"), folds[fold], names)
        for arm in args.arms:
            run_dir = os.path.join(out, "runs", f"fold{fold}_seed{seed}", arm)
            log(f"fold {fold} seed {seed}: {arm} ({time.time() - t_start:.0f} s so far)")
            spec, search_s = None, None
            if arm == "random":
                spec = random_spec(args, budget, len(names), seed, os.path.join(out, "specs", f"random_seed{seed}.json"))
            elif arm in ("entropy", "probabilistic", "differentiable"):
                folder = os.path.join(out, "searches", arm if arm == "entropy" else f"{arm}_fold{fold}",
                                      f"seed{seed}")
                spec, search_s = searched_spec(arm, args, budget, len(names), train_list, seed, folder)
            result = train_and_score(arm, args, spec, train_list, val_list, seed, run_dir)
            row = {"arm": arm, "fold": fold, "seed": seed, "run_dir": run_dir, "spec": spec,
                   "search_seconds": search_s, **result, "within_budget": result["macs"] <= budget}
            payload["runs"] = [r for r in payload["runs"] if (r["arm"], r["fold"], r["seed"]) != (arm, fold, seed)]
            payload["runs"].append(row)
            payload["summary"] = summarise(payload["runs"], [a for a in ARMS if any(r["arm"] == a for r in payload["runs"])])
            payload["wall_seconds"] = time.time() - t_start
            write_report(out, payload)
            log(f"fold {fold} seed {seed}: {arm}: val top-1 {result['val_top1']:.3f}, "
                f"{result['macs'] / 1e9:.3f} GMACs")
    print(json.dumps(payload["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
