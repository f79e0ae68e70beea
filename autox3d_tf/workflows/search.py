r"""Probabilistic architecture search (Auto-X3D / PARSEC style) over the autox3d-v1 space.

    autox3d search --data synthetic/annotations.csv --out_dir runs/search \
        --space tiny --macs_target 0.05 --epochs 6 --warmup_epochs 2 --batch_size 8
    autox3d search --method entropy --variant XS --out_dir runs/entropy_xs
    python training/search.py ... (the same flags, from a source checkout)

Weights of the weight-sharing supernet by SGD (momentum 0.9, cosine learning rate) on the train
split, the architecture distribution by Adam on the held-out split, alternating in every step
(`autox3d_tf.search.ArchitectureSearch`). Writes to ``--out_dir``:

- ``arch.json``: the derived `ArchSpec` (most probable architecture, within the MACs target),
- ``search.json``: the run's configuration and final numbers,
- ``history.json``: the distribution over time and the sampled architectures' MACs / accuracy,
- ``distribution.png``, ``distribution_final.png``, ``macs_accuracy.png`` (`autox3d_tf.search.plots`),
- ``metrics.csv`` and ``ckpt/`` (a killed search started again with the same ``--out_dir``
  resumes exactly where its last epoch ended).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

from absl import app

from autox3d_tf.search.cell_space import CELL_SPACE_PRESETS
from autox3d_tf.search.space import SPACE_PRESETS
from autox3d_tf.workflows.augmentation_flags import define_augmentation_flags, parse_scale_jitter
from autox3d_tf.workflows.flagset import FlagSet
from autox3d_tf.workflows.search_data import prepare_search_data

__all__ = ["main", "probabilistic_search", "resolve_macs_target"]

FLAGS = FlagSet("autox3d search", __doc__)

FLAGS.enum("method", "probabilistic", ["probabilistic", "differentiable", "entropy"],
           "probabilistic: the weight-sharing supernet search on --data (Auto-X3D); differentiable: the "
           "DARTS-style search of a cell network with pseudo-3D operators on --data (--space cells or "
           "cells-tiny); entropy: the training-free STEntr search (no data) under --macs_target or an X3D "
           "--variant budget.")
FLAGS.string("variant", None, "With --method entropy: search under the MACs of this X3D variant (XS, S, M, L) at its clip.")
FLAGS.string("data", None, "Annotation file (Kinetics CSV such as `autox3d make-synthetic`'s annotations.csv, "
             "PySlowFast list, SSv2 JSON), a folder with one sub-folder of videos or frame folders per class, "
             "or TFRecord shards (glob).")
FLAGS.string("held_out_data", None, "Held-out data for the distribution step, in the same forms as --data "
             "(default: --data).")
FLAGS.string("train_split", "train", "Kinetics CSV split for the weight step ('' for all rows; other sources "
             "ignore it).")
FLAGS.string("held_out_split", "val", "Kinetics CSV split for the distribution step ('' for all rows; other "
             "sources ignore it).")
FLAGS.float("held_out_fraction", None, "Hold this share of --data's training videos out for the distribution step "
            "(by video, --split_seed) instead of --held_out_data / --held_out_split (default: 0.2 when those "
            "would share videos with the training data, e.g. a folder).")
FLAGS.integer("split_seed", 0, "Seed of --held_out_fraction's draw.")
FLAGS.string("out_dir", "runs/search", "Output folder.")
FLAGS.enum("space", None, [*SPACE_PRESETS, *CELL_SPACE_PRESETS],
           "Search space. Block spaces (probabilistic): autox3d-v1 (the default; up to [3,5,11,7] blocks), "
           "autox3d-v1-L (up to [5,10,25,15]), small (all candidates, up to [1,2,3,2] blocks, 192-wide "
           "head), tiny (2 types, 2 widths, [1,2,2,1] blocks: minutes on a CPU). Cell spaces "
           "(differentiable): cells (4 nodes, 16 channels, 5 cells; the default), cells-tiny (2 nodes, 8 "
           "channels, 3 cells).")
FLAGS.list("ops", None, "Differentiable: the candidate operations of every edge (default: all of "
           "p3d_a,p3d_b,p3d_c,p3d_a_d2,sep_conv_1x3x3,sep_conv_3x3x3,max_pool_1x3x3,avg_pool_1x3x3,identity,zero).")
FLAGS.integer("nodes", None, "Differentiable: intermediate nodes per cell (default: the space's).")
FLAGS.integer("channels", None, "Differentiable: channels of the first cells (default: the space's).")
FLAGS.integer("layers", None, "Differentiable: number of cells (default: the space's).")
FLAGS.boolean("second_order", False, "Differentiable: DARTS' second-order approximation (default first order).")
FLAGS.integer("segments", 1, "Differentiable: temporal segments per clip (TSN-style; --frames per segment).")
FLAGS.float("macs_target", None, "MACs budget in GMACs at the searched clip (default: halfway between "
            "the space's smallest architecture and the uniform distribution's expectation).")
FLAGS.float("macs_target_fraction", None, "Instead of --macs_target: this fraction (0-1] of the space's "
            "largest architecture's MACs.")
FLAGS.float("penalty", 5.0, "Weight lambda of the MACs hinge max(0, F / F_target - 1).")
FLAGS.integer("epochs", 10, "Epochs (weight + distribution steps).")
FLAGS.float("warmup_epochs", None, "Epochs with the distribution frozen (default: a third of --epochs).")
FLAGS.integer("steps_per_epoch", None, "Steps per epoch (default: training videos // batch size).")
FLAGS.integer("batch_size", 8, "Global batch size (split over replicas), for both steps.")
FLAGS.enum("optimizer", "sgd", ["sgd", "adamw"], "Optimizer of the supernet weights: sgd (momentum 0.9, "
           "the paper's) or adamw (quicker on small data).")
FLAGS.float("learning_rate", None, "Peak learning rate of the weights, cosine-decayed (default: SGD 1.6 x batch "
            "/ 192, the paper's; AdamW 2e-3).")
FLAGS.float("arch_learning_rate", 0.025, "Adam learning rate of the logits.")
FLAGS.integer("num_samples", 4, "K: architectures per distribution step at maximum entropy.")
FLAGS.integer("min_samples", 2, "K never falls below this as the entropy drops.")
FLAGS.integer("frames", 8, "Frames per clip (the MACs refer to this clip).")
FLAGS.integer("rate", 2, "Frame sampling rate (0: the frames spread over the whole video).", lower_bound=0)
FLAGS.integer("crop", 64, "Crop size (the MACs refer to this size).")
define_augmentation_flags(FLAGS)
FLAGS.enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
           "tf.distribute strategy (auto: TF_CONFIG -> multi-worker; several devices -> mirrored).")
FLAGS.integer("cpu_devices", 0, "Split the CPU into this many logical devices (MirroredStrategy without GPUs).")
FLAGS.integer("seed", 0, "Seed of the search (weights, data order, every sampled architecture).")
FLAGS.integer("history_every", 0, "Also record the distribution every this many steps (0: per epoch).")
FLAGS.boolean("plots", True, "Write PNG plots (needs matplotlib).")


def resolve_macs_target(space, macs_target: float | None = None, macs_target_fraction: float | None = None) -> float:
    """The MACs budget: ``macs_target`` GMACs, or that fraction of the space's largest architecture,
    or (neither) halfway between the smallest architecture and the uniform distribution's expectation."""
    from autox3d_tf.search import ArchDistribution

    if macs_target and macs_target_fraction:
        raise ValueError("give --macs_target or --macs_target_fraction, not both")
    if macs_target_fraction is not None and not 0 < macs_target_fraction <= 1:
        raise ValueError(f"--macs_target_fraction must be in (0, 1], got {macs_target_fraction}")
    if macs_target:
        return macs_target * 1e9
    if macs_target_fraction:
        return macs_target_fraction * space.arch_macs(space.extreme_choices(largest=True))
    smallest = space.arch_macs(space.extreme_choices(largest=False))
    return (smallest + float(ArchDistribution(space).expected_macs().numpy())) / 2


def probabilistic_search(
    data: str,
    out_dir: str = "runs/search",
    *,
    held_out_data: str | None = None,
    train_split: str | None = "train",
    held_out_split: str | None = "val",
    held_out_fraction: float | None = None,
    split_seed: int = 0,
    space: str = "autox3d-v1",
    macs_target: float | None = None,
    macs_target_fraction: float | None = None,
    penalty: float = 5.0,
    epochs: int = 10,
    warmup_epochs: float | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int = 8,
    optimizer: str = "sgd",
    learning_rate: float | None = None,
    arch_learning_rate: float = 0.025,
    num_samples: int = 4,
    min_samples: int = 2,
    frames: int = 8,
    rate: int = 2,
    crop: int = 64,
    flip: bool | None = None,
    scale_range: tuple[int, int] | None = None,
    strategy: str = "auto",
    cpu_devices: int = 0,
    seed: int = 0,
    history_every: int = 0,
    plots: bool = True,
) -> dict:
    """The probabilistic (Auto-X3D) search on ``data``; writes ``out_dir`` (see the module docstring).

    ``space`` is a preset of :data:`autox3d_tf.search.space.SPACE_PRESETS`; the MACs budget is
    :func:`resolve_macs_target`'s. Weights train on ``train_split``, the distribution on
    ``held_out_data`` / ``held_out_split`` (default: the same file's ``val`` rows), or, with
    ``held_out_fraction``, on that share of the training videos (by video, ``split_seed``), the
    weights on the rest; when the held-out source would share videos with the training one (a
    folder, a list without splits), 20% of the training videos are held out. ``flip`` (default:
    on, off for Something-Something) and ``scale_range`` augment the clips of both; turn flips off
    when a class names a direction. Returns the summary written to ``search.json``.
    """
    import keras

    from autox3d_tf.search import ArchDistribution, ArchitectureSearch
    from autox3d_tf.search.callbacks import DistributionHistory, SearchCheckpoint
    from autox3d_tf.search.space import space_preset
    from autox3d_tf.search.trainer import build_weight_optimizer
    from autox3d_tf.training.recipe import ADAMW_LEARNING_RATE
    from autox3d_tf.training.strategy import is_chief

    os.makedirs(out_dir, exist_ok=True)
    prepared = prepare_search_data(
        data, held_out_data=held_out_data, train_split=train_split, held_out_split=held_out_split,
        held_out_fraction=held_out_fraction, split_seed=split_seed, batch_size=batch_size, frames=frames, rate=rate,
        crop=crop, seed=seed, flip=flip, scale_range=scale_range, strategy=strategy, cpu_devices=cpu_devices)
    dist, replicas, dataset = prepared.strategy, prepared.replicas, prepared.dataset
    held_out_fraction = prepared.held_out_fraction
    classes = len(prepared.class_names)
    search_space = space_preset(space, input_frames=frames, input_size=crop, classes=classes)
    expected_uniform = float(ArchDistribution(search_space).expected_macs().numpy())
    target = resolve_macs_target(search_space, macs_target, macs_target_fraction)
    steps = steps_per_epoch or max(1, prepared.num_train_videos // batch_size)
    warmup_steps = int(round((warmup_epochs if warmup_epochs is not None else epochs / 3) * steps))
    lr = learning_rate or (ADAMW_LEARNING_RATE if optimizer == "adamw" else 1.6 * batch_size / 192)

    keras.utils.set_random_seed(seed)
    with dist.scope():
        model = ArchitectureSearch(
            search_space, target, penalty=penalty, num_samples=num_samples, min_samples=min_samples,
            warmup_steps=warmup_steps, seed=seed, bn_group_size=batch_size // replicas,
        )
        schedule = keras.optimizers.schedules.CosineDecay(lr, epochs * steps)
        model.compile(build_weight_optimizer(model, optimizer, schedule), keras.optimizers.Adam(arch_learning_rate))

    history = DistributionHistory(os.path.join(out_dir, "history.json"), every_n_steps=history_every or None)
    callbacks = [
        SearchCheckpoint(os.path.join(out_dir, "ckpt")),
        history,
        keras.callbacks.CSVLogger(os.path.join(out_dir, "metrics.csv"), append=True),
    ]
    print(f"[search] space {search_space.name}: {search_space.num_decisions} decisions, "
          f"10^{search_space.log10_size():.1f} architectures; clip {frames}x{crop}x{crop}, {classes} classes; "
          f"target {target / 1e9:.4f} GMACs (uniform expectation {expected_uniform / 1e9:.4f}); {epochs} epochs x "
          f"{steps} steps, warm-up {warmup_steps} steps; {replicas} replica(s)", flush=True)
    t0 = time.time()
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=2)
    seconds = time.time() - t0

    choices, macs = model.derive()
    spec = search_space.decode(choices, name="autox3d_searched").replace(
        notes=f"searched with autox3d search: space {search_space.name}, target {target / 1e9:.4f} GMACs"
    )
    argmax = model.distribution.argmax().numpy()
    summary = {
        "space": search_space.name,
        "classes": classes,
        "clip": [frames, crop, crop],
        "held_out": ({"fraction": held_out_fraction, "seed": split_seed} if held_out_fraction
                     else {"data": held_out_data or data, "split": held_out_split}),
        "augmentation": {"flip": flip, "scale_range": None if scale_range is None else list(scale_range)},
        "macs_target": target,
        "derived_macs": macs,
        "derived_within_target": bool(macs <= target),
        "argmax_macs": float(model.distribution.numpy_macs(argmax[None])[0]),
        "expected_macs": float(model.distribution.expected_macs().numpy()),
        "entropy": float(model.distribution.entropy().numpy()),
        "max_entropy": model.distribution.max_entropy(),
        "epochs": epochs,
        "steps_per_epoch": steps,
        "warmup_steps": warmup_steps,
        "replicas": replicas,
        "seconds": seconds,
        "choices": [int(c) for c in choices],
    }
    if is_chief():
        spec.save(os.path.join(out_dir, "arch.json"))
        if plots:
            summary["plots"] = _plots(history.to_dict(), out_dir)
        tmp = os.path.join(out_dir, "search.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(out_dir, "search.json"))
    print(f"[search] derived architecture: {macs / 1e9:.4f} GMACs (target {target / 1e9:.4f}), "
          f"widths {spec.widths}, depths {spec.depths} -> {os.path.join(out_dir, 'arch.json')}", flush=True)
    return summary


def _plots(history: dict, out_dir: str) -> list[str]:
    """The search plots, or none with one line on stderr when drawing fails (the result is kept)."""
    from autox3d_tf.search.plots import plot_history

    try:
        return plot_history(history, out_dir)
    except Exception as err:  # noqa: BLE001 - a picture is never worth the search
        print(f"[search] plots not drawn ({type(err).__name__}: {err})", file=sys.stderr)
        return []


def main(argv: Sequence[str] | None = None) -> int:
    """``autox3d search``: parses ``argv`` (``argv[0]`` is the program name) and runs :func:`run`."""
    return FLAGS.main(argv, run)


def run() -> int:
    """Runs the search the parsed flags ask for."""
    if FLAGS.method == "entropy":
        from autox3d_tf.workflows.entropy_search import search_and_save

        os.makedirs(FLAGS.out_dir, exist_ok=True)
        kwargs = {"variant": FLAGS.variant} if FLAGS.variant else {
            "macs_budget": int(FLAGS.macs_target * 1e9) if FLAGS.macs_target else None,
            "frames": FLAGS.frames,
            "size": FLAGS.crop,
        }
        search_and_save(**kwargs, seed=FLAGS.seed, output=os.path.join(FLAGS.out_dir, "arch.json"),
                        history_path=os.path.join(FLAGS.out_dir, "history.json"))
        return 0
    if not FLAGS.data:
        raise app.UsageError("--data is required (e.g. the annotations.csv of `autox3d make-synthetic`)")
    if FLAGS.method == "differentiable":
        return _run_differentiable()
    if FLAGS.space in CELL_SPACE_PRESETS:
        raise app.UsageError(f"--space {FLAGS.space} is a cell space: use it with --method differentiable")
    probabilistic_search(
        FLAGS.data, FLAGS.out_dir, held_out_data=FLAGS.held_out_data, train_split=FLAGS.train_split or None,
        held_out_split=FLAGS.held_out_split or None, held_out_fraction=FLAGS.held_out_fraction,
        split_seed=FLAGS.split_seed, space=FLAGS.space or "autox3d-v1", macs_target=FLAGS.macs_target,
        macs_target_fraction=FLAGS.macs_target_fraction, penalty=FLAGS.penalty, epochs=FLAGS.epochs,
        warmup_epochs=FLAGS.warmup_epochs, steps_per_epoch=FLAGS.steps_per_epoch, batch_size=FLAGS.batch_size,
        optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate, arch_learning_rate=FLAGS.arch_learning_rate,
        num_samples=FLAGS.num_samples, min_samples=FLAGS.min_samples, frames=FLAGS.frames, rate=FLAGS.rate,
        crop=FLAGS.crop, flip=FLAGS.flip, scale_range=parse_scale_jitter(FLAGS.scale_jitter), strategy=FLAGS.strategy, cpu_devices=FLAGS.cpu_devices, seed=FLAGS.seed,
        history_every=FLAGS.history_every, plots=FLAGS.plots,
    )
    return 0


def _run_differentiable() -> int:
    from autox3d_tf.workflows.differentiable_search import differentiable_search

    space = FLAGS.space or "cells"
    if FLAGS.macs_target_fraction:
        raise app.UsageError("--method differentiable takes --macs_target (GMACs per segment), not --macs_target_fraction")
    if space not in (*CELL_SPACE_PRESETS, "autox3d-v1"):
        raise app.UsageError(f"--method differentiable searches a cell space ({', '.join(CELL_SPACE_PRESETS)}) or the "
                             f"autox3d-v1 block types, not {space}")
    differentiable_search(
        FLAGS.data, FLAGS.out_dir, held_out_data=FLAGS.held_out_data, train_split=FLAGS.train_split or None,
        held_out_split=FLAGS.held_out_split or None, held_out_fraction=FLAGS.held_out_fraction,
        split_seed=FLAGS.split_seed, space=space, ops=FLAGS.ops, nodes=FLAGS.nodes, channels=FLAGS.channels,
        layers=FLAGS.layers, macs_target=FLAGS.macs_target * 1e9 if FLAGS.macs_target else None,
        penalty=FLAGS.penalty, second_order=FLAGS.second_order, epochs=FLAGS.epochs,
        warmup_epochs=FLAGS.warmup_epochs, steps_per_epoch=FLAGS.steps_per_epoch, batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate, arch_learning_rate=FLAGS.arch_learning_rate, frames=FLAGS.frames,
        rate=FLAGS.rate, crop=FLAGS.crop, segments=FLAGS.segments, flip=FLAGS.flip,
        scale_range=parse_scale_jitter(FLAGS.scale_jitter), strategy=FLAGS.strategy, cpu_devices=FLAGS.cpu_devices,
        seed=FLAGS.seed, history_every=FLAGS.history_every, plots=FLAGS.plots,
    )
    return 0
