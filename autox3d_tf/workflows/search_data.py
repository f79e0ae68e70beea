"""The data half of every search that trains: strategy, class map, held-out share, `search_input`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

DEFAULT_HELD_OUT_FRACTION = 0.2

__all__ = ["DEFAULT_HELD_OUT_FRACTION", "SearchData", "prepare_search_data"]


@dataclass
class SearchData:
    """What a search trains on: the strategy, the training class names and video count, the
    held-out share of the training videos (or None: a separate held-out source), the dataset."""

    strategy: Any
    replicas: int
    class_names: list[str]
    num_train_videos: int
    held_out_fraction: float | None
    dataset: Any


def prepare_search_data(
    data: str,
    *,
    held_out_data: str | None,
    train_split: str | None,
    held_out_split: str | None,
    held_out_fraction: float | None,
    split_seed: int,
    batch_size: int,
    frames: int,
    rate: int,
    crop: int,
    seed: int,
    flip: bool | None,
    scale_range: Sequence[int] | None,
    strategy: str,
    cpu_devices: int,
    segments: int = 1,
) -> SearchData:
    """Picks the strategy, reads the class map and builds `search_input`'s dataset.

    When the held-out source would share videos with the training one (a folder, a list without
    splits) and no ``held_out_fraction`` is given, 20% of the training videos are held out. With
    ``segments=K`` a clip is K snippets of ``frames`` (one per segment of the video).
    """
    from autox3d_tf.data.annotations import load_annotations
    from autox3d_tf.data.directory import split_annotations
    from autox3d_tf.search import search_input
    from autox3d_tf.training.strategy import pick_strategy, split_cpu

    if data.endswith("*"):
        raise ValueError("TFRecord input needs an annotation file to count classes; give --data as a CSV")
    split_cpu(cpu_devices)
    dist = pick_strategy(strategy)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"--batch_size {batch_size} must be a multiple of the {replicas} replicas")
    train_ann = load_annotations(data, split=train_split or None)
    if held_out_fraction is None:
        held_ann = load_annotations(held_out_data or data, split=held_out_split or None,
                                    classes=train_ann.classes, save_class_map=False)
        shared = {r.path for r in train_ann.records} & {r.path for r in held_ann.records}
        if shared:
            held_out_fraction = DEFAULT_HELD_OUT_FRACTION
            print(f"[search] the held-out data shares {len(shared)} videos with the training data: holding out "
                  f"{held_out_fraction:.0%} of the training videos instead (--held_out_fraction)", flush=True)
    if held_out_fraction:
        train_ann = split_annotations(train_ann, held_out_fraction, "training", split_seed)
    dataset = search_input(dist, data, held_out_data or data, batch_size=batch_size, frames=frames, rate=rate,
                           crop=crop, seed=seed, train_split=train_split, held_out_split=held_out_split,
                           class_names=train_ann.classes.names, flip=flip, scale_range=scale_range,
                           held_out_fraction=held_out_fraction, split_seed=split_seed, segments=segments)
    return SearchData(dist, replicas, list(train_ann.classes.names), len(train_ann.records), held_out_fraction or None,
                      dataset)
