"""The differentiable (DARTS-style) search of a video cell network, as `autox3d search --method
differentiable` runs it.

    autox3d search --method differentiable --data data/train.csv --space cells-tiny \\
        --frames 8 --crop 32 --epochs 10 --out_dir runs/darts

Writes to ``out_dir``: ``arch.json`` (the derived `CellNetSpec`: genotype and widths; train it with
`autox3d_tf.models.cell_builder.build_cell_model`), ``genotype.json``, ``search.json`` (the
configuration and final numbers), ``history.json`` (the architecture weights over time),
``arch_weights.png`` and ``cells.png`` (the derived cells drawn as graphs), ``metrics.csv`` and
``ckpt/`` (a killed search started again with the same ``out_dir`` resumes at its last epoch).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

from autox3d_tf.workflows.search_data import prepare_search_data

__all__ = ["BLOCK_SPACE", "differentiable_search"]

BLOCK_SPACE = "autox3d-v1"  # the block types of the autox3d-v1 space on an X3D-XS skeleton


def differentiable_search(
    data: str,
    out_dir: str = "runs/darts",
    *,
    held_out_data: str | None = None,
    train_split: str | None = "train",
    held_out_split: str | None = "val",
    held_out_fraction: float | None = None,
    split_seed: int = 0,
    space: str = "cells-tiny",
    ops: Sequence[str] | None = None,
    nodes: int | None = None,
    channels: int | None = None,
    layers: int | None = None,
    macs_target: float | None = None,
    penalty: float = 5.0,
    second_order: bool = False,
    epochs: int = 10,
    warmup_epochs: float | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int = 8,
    learning_rate: float | None = None,
    arch_learning_rate: float = 3e-3,
    frames: int = 8,
    rate: int = 2,
    crop: int = 64,
    segments: int = 1,
    flip: bool | None = None,
    scale_range: tuple[int, int] | None = None,
    strategy: str = "auto",
    cpu_devices: int = 0,
    seed: int = 0,
    history_every: int = 0,
    plots: bool = True,
) -> dict:
    """Runs the differentiable search on ``data`` and writes ``out_dir`` (see the module docstring).

    ``space`` is a preset of `autox3d_tf.search.cell_space.CELL_SPACE_PRESETS`, or "autox3d-v1": the
    block types of the v1 space relaxed on every block of an X3D-XS skeleton at the clip
    (`BlockMixtureSpace`; ``ops`` then lists the block types); ``ops``, ``nodes``, ``channels`` and
    ``layers`` override a cell space; ``frames`` x ``crop`` is the clip of one segment (the
    MACs are per segment; a clip of ``segments`` snippets costs ``segments`` times more). The weights
    train with SGD (momentum 0.9, cosine learning rate, DARTS' 0.025 x batch / 64 by default), the
    architecture logits with Adam on the held-out batches (see `prepare_search_data` for where they
    come from); ``macs_target`` (MACs per segment) adds the hinge on the expected MACs. Returns the
    summary written to ``search.json``.
    """
    import keras

    from autox3d_tf.search.callbacks import ArchWeightsHistory, SearchCheckpoint
    from autox3d_tf.arch.x3d import x3d_spec
    from autox3d_tf.search.block_mixture import BlockMixtureSpace
    from autox3d_tf.search.cell_space import cell_space_preset
    from autox3d_tf.search.differentiable import DifferentiableSearch
    from autox3d_tf.training.strategy import is_chief

    os.makedirs(out_dir, exist_ok=True)
    prepared = prepare_search_data(
        data, held_out_data=held_out_data, train_split=train_split, held_out_split=held_out_split,
        held_out_fraction=held_out_fraction, split_seed=split_seed, batch_size=batch_size,
        frames=frames, rate=rate, crop=crop, seed=seed, flip=flip, scale_range=scale_range, strategy=strategy,
        cpu_devices=cpu_devices, segments=segments)
    overrides = {k: v for k, v in dict(ops=tuple(ops) if ops else None, nodes=nodes, channels=channels,
                                       layers=layers).items() if v is not None}
    classes = len(prepared.class_names)
    if space == BLOCK_SPACE:
        skeleton = x3d_spec("XS").replace(input_frames=frames, input_size=crop)
        cell_space = BlockMixtureSpace(skeleton, **({"types": tuple(ops)} if ops else {}), classes=classes)
    else:
        cell_space = cell_space_preset(space, input_frames=frames, input_size=crop, classes=classes, **overrides)
    steps = steps_per_epoch or max(1, prepared.num_train_videos // batch_size)
    warmup_steps = int(round((warmup_epochs if warmup_epochs is not None else 0) * steps))
    lr = learning_rate or 0.025 * batch_size / 64
    keras.utils.set_random_seed(seed)
    with prepared.strategy.scope():
        model = DifferentiableSearch(cell_space, macs_target, penalty=penalty, second_order=second_order,
                                     warmup_steps=warmup_steps, segments=segments, seed=seed)
        schedule = keras.optimizers.schedules.CosineDecay(lr, epochs * steps, alpha=0.001 / 0.025)
        model.compile(keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=3e-4),
                      keras.optimizers.Adam(arch_learning_rate, beta_1=0.5, beta_2=0.999))

    history = ArchWeightsHistory(os.path.join(out_dir, "history.json"), every_n_steps=history_every or None)
    callbacks = [SearchCheckpoint(os.path.join(out_dir, "ckpt")), history,
                 keras.callbacks.CSVLogger(os.path.join(out_dir, "metrics.csv"), append=True)]
    print(f"[search] differentiable, space {cell_space.name}: {cell_space.num_edges} edges x {len(cell_space.ops)} "
          f"operations ({len(cell_space.reductions)} reduction cells); clip "
          f"{segments} x {frames}x{crop}x{crop}, {len(prepared.class_names)} classes; target "
          f"{'none' if macs_target is None else f'{macs_target / 1e9:.4f} GMACs'}; {epochs} epochs x {steps} steps, "
          f"{'second' if second_order else 'first'} order; {prepared.replicas} replica(s)", flush=True)
    t0 = time.time()
    model.fit(prepared.dataset, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=2)
    seconds = time.time() - t0

    genotype = model.derive()
    spec = cell_space.spec(genotype, name="cells_searched" if space != BLOCK_SPACE else "autox3d_searched",
                           notes=f"autox3d search --method differentiable: space {cell_space.name}")
    probs_normal, probs_reduce = model.probabilities()
    summary = {
        "method": "differentiable",
        "space": cell_space.name,
        "ops": list(cell_space.ops),
        "classes": prepared.class_names,
        "clip": [frames, crop, crop],
        "segments": segments,
        "held_out": ({"fraction": prepared.held_out_fraction, "seed": split_seed} if prepared.held_out_fraction
                     else {"data": held_out_data or data, "split": held_out_split}),
        "augmentation": {"flip": flip, "scale_range": None if scale_range is None else list(scale_range)},
        "macs_target": macs_target,
        "derived_macs": cell_space.macs(genotype),
        "expected_macs": float(model.expected_macs(probs_normal, probs_reduce)),
        "second_order": second_order,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "replicas": prepared.replicas,
        "seconds": seconds,
        "genotype": genotype.to_dict(),
    }
    if is_chief():
        spec.save(os.path.join(out_dir, "arch.json"))
        with open(os.path.join(out_dir, "genotype.json"), "w", encoding="utf-8") as f:
            json.dump(genotype.to_dict(), f, indent=1)
        if plots:
            summary["plots"] = _plots(history.to_dict(), genotype.to_dict() if space != BLOCK_SPACE else None, out_dir)
        tmp = os.path.join(out_dir, "search.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(out_dir, "search.json"))
    print(f"[search] derived genotype: {genotype.to_dict()}; {summary['derived_macs'] / 1e9:.4f} GMACs per segment; "
          f"{seconds:.0f} s", flush=True)
    return summary


def _plots(history: dict, genotype: dict | None, out_dir: str) -> list[str]:
    from autox3d_tf.search.plots import plot_arch_weights, plot_genotype

    try:
        written = plot_arch_weights(history, out_dir)
        if genotype is not None:
            written.append(plot_genotype(genotype, os.path.join(out_dir, "cells.png")))
        return written
    except Exception as err:  # noqa: BLE001 - a picture is never worth the search
        print(f"[search] plots not drawn ({type(err).__name__}: {err})", file=sys.stderr)
        return []
