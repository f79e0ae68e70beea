"""Probabilistic architecture search (Auto-X3D / PARSEC style) over the autox3d-v1 space.

    python training/search.py --data synthetic/annotations.csv --out_dir runs/search \
        --space tiny --macs_target 0.05 --epochs 6 --warmup_epochs 2 --batch_size 8
    autox3d search --data ... (same flags)

Weights of the weight-sharing supernet by SGD (momentum 0.9, cosine learning rate) on the train
split, the architecture distribution by Adam on the held-out split, alternating in every step
(`autox3d_tf.search.ArchitectureSearch`). Writes to ``--out_dir``:

- ``arch.json``: the derived `ArchSpec` (most probable architecture, within the MACs target),
- ``search.json``: the run's configuration and final numbers,
- ``history.json``: the distribution over time and the sampled architectures' MACs / accuracy,
- ``distribution.png``, ``distribution_final.png``, ``macs_accuracy.png`` (with matplotlib),
- ``metrics.csv`` and ``ckpt/`` (a killed search started again with the same ``--out_dir``
  resumes exactly where its last epoch ended).
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_enum("method", "probabilistic", ["probabilistic", "entropy"],
                  "probabilistic: the weight-sharing supernet search on --data (DESIGN.md section 6); entropy: "
                  "the training-free STEntr search (section 7, no data) under --macs_target or an X3D --variant budget.")
flags.DEFINE_string("variant", None, "With --method entropy: search under the MACs of this X3D variant (XS, S, M, L) at its clip.")
flags.DEFINE_string("data", None, "Annotation file (Kinetics CSV such as `autox3d make-synthetic`'s annotations.csv, "
                    "PySlowFast list, SSv2 JSON) or TFRecord shards (glob).")
flags.DEFINE_string("held_out_data", None, "Held-out data for the distribution step (default: --data).")
flags.DEFINE_string("train_split", "train", "Kinetics CSV split for the weight step ('' for all rows).")
flags.DEFINE_string("held_out_split", "val", "Kinetics CSV split for the distribution step ('' for all rows).")
flags.DEFINE_string("out_dir", "runs/search", "Output folder.")
flags.DEFINE_enum("space", "autox3d-v1", ["autox3d-v1", "autox3d-v1-L", "small", "tiny"],
                  "Search space: autox3d-v1 (up to [3,5,11,7] blocks), autox3d-v1-L (up to [5,10,25,15]), "
                  "small (all candidates, up to [1,2,3,2] blocks, 192-wide head), tiny (2 types, 2 widths, "
                  "[1,2,2,1] blocks: minutes on a CPU).")
flags.DEFINE_float("macs_target", None, "MACs budget in GMACs at the searched clip (default: halfway between "
                   "the space's smallest architecture and the uniform distribution's expectation).")
flags.DEFINE_float("macs_target_fraction", None, "Instead of --macs_target: this fraction (0-1] of the space's "
                   "largest architecture's MACs.")
flags.DEFINE_float("penalty", 5.0, "Weight lambda of the MACs hinge max(0, F / F_target - 1).")
flags.DEFINE_integer("epochs", 10, "Epochs (weight + distribution steps).")
flags.DEFINE_float("warmup_epochs", None, "Epochs with the distribution frozen (default: a third of --epochs).")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: training videos // batch size).")
flags.DEFINE_integer("batch_size", 8, "Global batch size (split over replicas), for both steps.")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adamw"], "Optimizer of the supernet weights: sgd (momentum 0.9, "
                  "the paper's) or adamw (quicker on small data).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate of the weights, cosine-decayed (default: SGD 1.6 x batch "
                   "/ 192, the paper's; AdamW 2e-3).")
flags.DEFINE_float("arch_learning_rate", 0.025, "Adam learning rate of the logits.")
flags.DEFINE_integer("num_samples", 4, "K: architectures per distribution step at maximum entropy.")
flags.DEFINE_integer("min_samples", 2, "K never falls below this as the entropy drops.")
flags.DEFINE_integer("frames", 8, "Frames per clip (the MACs refer to this clip).")
flags.DEFINE_integer("rate", 2, "Frame sampling rate.")
flags.DEFINE_integer("crop", 64, "Crop size (the MACs refer to this size).")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
                  "tf.distribute strategy (auto: TF_CONFIG -> multi-worker; several devices -> mirrored).")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (MirroredStrategy without GPUs).")
flags.DEFINE_integer("seed", 0, "Seed of the search (weights, data order, every sampled architecture).")
flags.DEFINE_integer("history_every", 0, "Also record the distribution every this many steps (0: per epoch).")
flags.DEFINE_bool("plots", True, "Write PNG plots (needs matplotlib).")


def make_space(name: str, frames: int, crop: int, classes: int):
    """The named search space at the given clip and class count."""
    from autox3d_tf.search import autox3d_v1

    if name == "autox3d-v1":
        return autox3d_v1(input_frames=frames, input_size=crop, classes=classes)
    if name == "autox3d-v1-L":
        return autox3d_v1("L", input_frames=frames, input_size=crop, classes=classes, name="autox3d-v1-L")
    if name == "small":
        return autox3d_v1(input_frames=frames, input_size=crop, classes=classes, max_depths=(1, 2, 3, 2),
                          head_width=192, head_hidden=256, name="autox3d-v1-small")
    return autox3d_v1(input_frames=frames, input_size=crop, classes=classes, max_depths=(1, 2, 2, 1),
                      stage_widths=((8, 16), (16, 32), (32, 48), (48, 64)), block_types=("3x3x3", "1x3x3"),
                      expansions=(1.5, 2.25), head_width=64, head_hidden=0, name="autox3d-v1-tiny")


def make_strategy(kind: str, cpu_devices: int = 0):
    """A tf.distribute strategy (``auto``: multi-worker with TF_CONFIG, mirrored on >1 device)."""
    import tensorflow as tf

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    if kind == "auto":
        if json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster"):
            kind = "multi_worker"
        else:
            gpus = tf.config.list_logical_devices("GPU")
            kind = "mirrored" if len(gpus) > 1 or cpu_devices > 1 else "default"
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def plot_history(history: dict, out_dir: str) -> list[str]:
    """PNG plots of a `DistributionHistory` dict; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    records, decisions = history["records"], history["decisions"]
    steps = [r["step"] for r in records]
    kinds = [k for k in ("width", "type", "expansion", "attention") if any(d["kind"] == k for d in decisions)]
    written = []

    fig, axes = plt.subplots(1 + len(kinds), 1, figsize=(8, 2.6 * (1 + len(kinds))), sharex=True)
    ax = axes[0]
    ax.plot(steps, [r["expected_gmacs"] for r in records], label="expected GMACs")
    ax.plot(steps, [r["argmax_gmacs"] for r in records], label="most probable arch GMACs")
    ax.set_ylabel("GMACs")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["entropy"] for r in records], "k--", label="entropy")
    ax2.set_ylabel("entropy (nats)")
    ax.legend(loc="upper left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    for ax, kind in zip(axes[1:], kinds):
        names = [d["name"] for d in decisions if d["kind"] == kind]
        labels = max((d["candidates"] for d in decisions if d["kind"] == kind), key=len)
        size = len(labels)
        mean = np.zeros((len(records), size))
        for j, r in enumerate(records):
            for n in names:
                p = r["probabilities"][n]
                mean[j, : len(p)] += np.asarray(p) / len(names)
        tags = labels
        if kind == "width":
            tags = [f"width option {i}" for i in range(size)]
        ax.stackplot(steps, mean.T, labels=tags)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"P({kind})\nmean of {len(names)}")
        ax.legend(loc="upper left", fontsize=6, ncol=3)
    axes[-1].set_xlabel("step")
    fig.suptitle("architecture distribution over the search")
    fig.tight_layout()
    path = os.path.join(out_dir, "distribution.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    final = records[-1]["probabilities"]
    size = max(len(d["candidates"]) for d in decisions)
    grid = np.full((len(decisions), size), np.nan)
    for i, d in enumerate(decisions):
        grid[i, : len(final[d["name"]])] = final[d["name"]]
    fig, ax = plt.subplots(figsize=(6, max(3, 0.16 * len(decisions))))
    im = ax.imshow(grid, aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_yticks(range(len(decisions)))
    ax.set_yticklabels([d["name"] for d in decisions], fontsize=5)
    ax.set_xlabel("candidate index")
    fig.colorbar(im, ax=ax, label="probability")
    ax.set_title("final distribution")
    fig.tight_layout()
    path = os.path.join(out_dir, "distribution_final.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    samples = history.get("samples", [])
    if samples:
        fig, ax = plt.subplots(figsize=(6, 4))
        sc = ax.scatter([s["gmacs"] for s in samples], [s["accuracy"] for s in samples],
                        c=[s["step"] for s in samples], s=8, cmap="plasma")
        fig.colorbar(sc, ax=ax, label="step")
        ax.set_xlabel("GMACs of the sampled architecture")
        ax.set_ylabel("train-batch accuracy")
        ax.set_title("sampled architectures: accuracy against MACs")
        fig.tight_layout()
        path = os.path.join(out_dir, "macs_accuracy.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def run_search() -> dict:
    """Runs the search with the parsed flags; returns the summary written to search.json."""
    import keras

    from autox3d_tf.data.annotations import load_annotations
    from autox3d_tf.search import ArchitectureSearch, ArchDistribution, search_input
    from autox3d_tf.search.callbacks import DistributionHistory, SearchCheckpoint
    from autox3d_tf.search.trainer import build_weight_optimizer
    from autox3d_tf.training.recipe import ADAMW_LEARNING_RATE

    os.makedirs(FLAGS.out_dir, exist_ok=True)
    strategy = make_strategy(FLAGS.strategy, FLAGS.cpu_devices)
    replicas = strategy.num_replicas_in_sync
    if FLAGS.batch_size % replicas:
        raise app.UsageError(f"--batch_size {FLAGS.batch_size} must be a multiple of the {replicas} replicas")
    held_source = FLAGS.held_out_data or FLAGS.data
    train_ann = load_annotations(FLAGS.data, split=FLAGS.train_split or None) if not FLAGS.data.endswith("*") else None
    classes = len(train_ann.classes) if train_ann is not None else None
    if classes is None:
        raise app.UsageError("TFRecord input needs an annotation file to count classes; give --data as a CSV")
    space = make_space(FLAGS.space, FLAGS.frames, FLAGS.crop, classes)
    uniform = ArchDistribution(space)
    expected_uniform = float(uniform.expected_macs().numpy())
    smallest = space.arch_macs(space.extreme_choices(largest=False))
    if FLAGS.macs_target and FLAGS.macs_target_fraction:
        raise app.UsageError("give --macs_target or --macs_target_fraction, not both")
    if FLAGS.macs_target_fraction is not None and not 0 < FLAGS.macs_target_fraction <= 1:
        raise app.UsageError(f"--macs_target_fraction must be in (0, 1], got {FLAGS.macs_target_fraction}")
    if FLAGS.macs_target:
        target = FLAGS.macs_target * 1e9
    elif FLAGS.macs_target_fraction:
        target = FLAGS.macs_target_fraction * space.arch_macs(space.extreme_choices(largest=True))
    else:
        target = (smallest + expected_uniform) / 2
    steps = FLAGS.steps_per_epoch or max(1, len(train_ann.records) // FLAGS.batch_size)
    warmup_epochs = FLAGS.warmup_epochs if FLAGS.warmup_epochs is not None else FLAGS.epochs / 3
    warmup_steps = int(round(warmup_epochs * steps))
    lr = FLAGS.learning_rate or (ADAMW_LEARNING_RATE if FLAGS.optimizer == "adamw" else 1.6 * FLAGS.batch_size / 192)

    dataset = search_input(strategy, FLAGS.data, held_source, batch_size=FLAGS.batch_size, frames=FLAGS.frames,
                           rate=FLAGS.rate, crop=FLAGS.crop, seed=FLAGS.seed, train_split=FLAGS.train_split,
                           held_out_split=FLAGS.held_out_split)

    keras.utils.set_random_seed(FLAGS.seed)
    with strategy.scope():
        model = ArchitectureSearch(
            space, target, penalty=FLAGS.penalty, num_samples=FLAGS.num_samples, min_samples=FLAGS.min_samples,
            warmup_steps=warmup_steps, seed=FLAGS.seed, bn_group_size=FLAGS.batch_size // replicas,
        )
        schedule = keras.optimizers.schedules.CosineDecay(lr, FLAGS.epochs * steps)
        model.compile(build_weight_optimizer(model, FLAGS.optimizer, schedule),
                      keras.optimizers.Adam(FLAGS.arch_learning_rate))

    history = DistributionHistory(os.path.join(FLAGS.out_dir, "history.json"), every_n_steps=FLAGS.history_every or None)
    callbacks = [
        SearchCheckpoint(os.path.join(FLAGS.out_dir, "ckpt")),
        history,
        keras.callbacks.CSVLogger(os.path.join(FLAGS.out_dir, "metrics.csv"), append=True),
    ]
    print(f"[search] space {space.name}: {space.num_decisions} decisions, 10^{space.log10_size():.1f} architectures; "
          f"clip {FLAGS.frames}x{FLAGS.crop}x{FLAGS.crop}, {classes} classes; target {target / 1e9:.4f} GMACs "
          f"(uniform expectation {expected_uniform / 1e9:.4f}); {FLAGS.epochs} epochs x {steps} steps, "
          f"warm-up {warmup_steps} steps; {replicas} replica(s)", flush=True)
    t0 = time.time()
    model.fit(dataset, epochs=FLAGS.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=2)
    seconds = time.time() - t0

    choices, macs = model.derive()
    spec = space.decode(choices, name="autox3d_searched").replace(
        notes=f"searched with training/search.py: space {space.name}, target {target / 1e9:.4f} GMACs"
    )
    argmax = model.distribution.argmax().numpy()
    summary = {
        "space": space.name,
        "classes": classes,
        "clip": [FLAGS.frames, FLAGS.crop, FLAGS.crop],
        "macs_target": target,
        "derived_macs": macs,
        "derived_within_target": bool(macs <= target),
        "argmax_macs": float(model.distribution.numpy_macs(argmax[None])[0]),
        "expected_macs": float(model.distribution.expected_macs().numpy()),
        "entropy": float(model.distribution.entropy().numpy()),
        "max_entropy": model.distribution.max_entropy(),
        "epochs": FLAGS.epochs,
        "steps_per_epoch": steps,
        "warmup_steps": warmup_steps,
        "replicas": replicas,
        "seconds": seconds,
        "choices": [int(c) for c in choices],
    }
    if _is_chief():
        spec.save(os.path.join(FLAGS.out_dir, "arch.json"))
        with open(os.path.join(FLAGS.out_dir, "search.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
        if FLAGS.plots:
            try:
                summary["plots"] = plot_history(history.to_dict(), FLAGS.out_dir)
            except ImportError:
                print("[search] matplotlib is not installed: no plots", file=sys.stderr)
    print(f"[search] derived architecture: {macs / 1e9:.4f} GMACs (target {target / 1e9:.4f}), "
          f"widths {spec.widths}, depths {spec.depths} -> {os.path.join(FLAGS.out_dir, 'arch.json')}", flush=True)
    return summary


def _is_chief() -> bool:
    from autox3d_tf.search.callbacks import _is_chief as chief

    return chief()


def main(argv: list[str]) -> int:
    """Entry point for ``app.run`` and for ``autox3d search`` (``argv[0]`` is the program name)."""
    if not FLAGS.is_parsed():
        argv = FLAGS(list(argv))
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.method == "entropy":
        run_entropy_search()
        return 0
    if not FLAGS.data:
        raise app.UsageError("--data is required (e.g. the annotations.csv of `autox3d make-synthetic`)")
    run_search()
    return 0


def run_entropy_search() -> None:
    """``--method entropy``: training/search_entropy.py's search, written to --out_dir/arch.json."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "search_entropy.py")
    spec = importlib.util.spec_from_file_location("autox3d_search_entropy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    kwargs = {"variant": FLAGS.variant} if FLAGS.variant else {
        "macs_budget": int(FLAGS.macs_target * 1e9) if FLAGS.macs_target else None,
        "frames": FLAGS.frames,
        "size": FLAGS.crop,
    }
    module.search_and_save(
        **kwargs,
        seed=FLAGS.seed,
        output=os.path.join(FLAGS.out_dir, "arch.json"),
        history_path=os.path.join(FLAGS.out_dir, "history.json"),
    )


if __name__ == "__main__":
    app.run(main)
