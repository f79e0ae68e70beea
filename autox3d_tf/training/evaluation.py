"""Multi-view evaluation of a trained model: top-1 / top-5, per-class accuracy, confusion matrix.

    from autox3d_tf.training import evaluate
    result = evaluate("runs/xs", "data/test.csv", num_clips=10, num_crops=3, out_dir="runs/xs/eval")
    result["top1"], result["top5"], result["confusion_matrix_png"]

Each video gives ``num_clips`` uniformly spaced clips x ``num_crops`` spatial crops at the test crop;
the softmax of its views is averaged (PySlowFast's 30-view protocol is 10 x 3).

TensorFlow-only (its input is a tf.data pipeline).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

import keras
import numpy as np

from autox3d_tf.data.evaluation import evaluate_views
from autox3d_tf.data.clip import ClipSettings, resolve_clip

__all__ = ["confusion_matrix", "plot_confusion_matrix", "evaluate", "evaluate_model"]


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """``[true, predicted]`` counts (int64); labels < 0 (unlabelled) are ignored."""
    labels = np.asarray(labels, np.int64)
    predictions = np.asarray(predictions, np.int64)
    keep = labels >= 0
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels[keep], predictions[keep]), 1)
    return cm


def plot_confusion_matrix(
    cm: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
    normalize: bool = True,
) -> str:
    """Writes the confusion matrix as a PNG (rows: true class, normalised per row by default, with
    the counts printed when there are at most 30 classes). Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    n = len(cm)
    rows = cm.sum(axis=1, keepdims=True)
    shown = cm / np.maximum(rows, 1) if normalize else cm
    size = min(4 + 0.45 * n, 40)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class" if normalize else "videos")
    labels = [str(c) for c in class_names] if len(class_names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=90 if n > 8 else 45, ha="right" if n <= 8 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                colour = "white" if shown[i, j] > (0.5 if normalize else shown.max() / 2) else "black"
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", color=colour, fontsize=8)
    fig.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _summary(result: dict, class_names: Sequence[str]) -> dict:
    probs = np.asarray(result["probabilities"])
    labels = np.asarray(result["labels"])
    n = len(class_names) if class_names else probs.shape[1]
    predicted = probs.argmax(axis=1)
    cm = confusion_matrix(labels, predicted, n)
    support = cm.sum(axis=1)
    per_class = {
        (class_names[i] if class_names else str(i)): (float(cm[i, i] / support[i]) if support[i] else None)
        for i in range(n)
    }
    return {
        "top1": result["top1"],
        "top5": result.get("top5", float("nan")),
        "videos": result["videos"],
        "views": result["views"],
        "per_class_accuracy": per_class,
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
        "predictions": [int(p) for p in predicted],
        "labels": [int(v) for v in labels],
        "video_ids": list(result["video_ids"]),
    }


def evaluate_model(
    model: keras.Model | object,
    dataset,
    class_names: Sequence[str],
    out_dir: str | os.PathLike | None = None,
    title: str = "Confusion matrix",
    progress: bool = False,
) -> dict:
    """Scores ``model`` on an evaluation dataset of ``(clip, label, video_id)`` batches (softmax
    averaged per video). With ``out_dir``: writes ``metrics.json`` and ``confusion_matrix.png``."""
    top = (1, min(5, len(class_names))) if class_names else (1, 5)
    raw = evaluate_views(model, dataset, topk=top, progress=progress)
    if top[1] != 5:
        raw["top5"] = raw.pop(f"top{top[1]}")
    result = _summary(raw, class_names)
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        metrics_path = os.path.join(out_dir, "metrics.json")
        _write_json(result, metrics_path)  # the metrics are kept whatever happens to the plot
        try:
            result["confusion_matrix_png"] = plot_confusion_matrix(
                np.asarray(result["confusion_matrix"]), class_names, os.path.join(out_dir, "confusion_matrix.png"),
                title=f"{title}: top-1 {result['top1']:.3f}")
        except Exception as err:  # noqa: BLE001 - a picture is never worth the result
            print(f"[evaluate] confusion matrix not drawn ({type(err).__name__}: {err}); metrics in {metrics_path}",
                  file=sys.stderr)
        else:
            _write_json(result, metrics_path)
    return result


def _write_json(data: dict, path: str) -> None:
    """Writes ``data`` to ``path`` through a temporary file, so ``path`` is never half-written."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def evaluate(
    run_dir: str | os.PathLike | None,
    data: str | os.PathLike,
    *,
    num_clips: int = 10,
    num_crops: int = 3,
    batch_size: int = 8,
    out_dir: str | os.PathLike | None = None,
    model: str | None = None,
    spec=None,
    weights: str | os.PathLike | None = None,
    classes: Sequence[str] | str | None = None,
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    split: str | None = None,
    shuffle_frames: bool | None = None,
    seed: int | None = 0,
    validation_split: float | None = None,
    subset: str | None = None,
    split_seed: int | None = None,
    segments: int | None = None,
    segment_consensus: str | None = None,
    progress: bool = False,
) -> dict:
    """Multi-view evaluation of a training run (``run_dir``) or of a model given by ``model`` /
    ``spec`` and ``weights`` (a ``.weights.h5`` whose classes are ``classes`` or the data's).

    ``frames`` / ``rate`` / ``crop`` (the test crop) default to the run's clip settings;
    ``shuffle_frames`` defaults to the run's (a model trained without motion is scored without
    motion). ``validation_split`` / ``subset`` ("validation" or "training") / ``split_seed`` score
    one subset of ``data``'s videos (see `autox3d_tf.training.train`); for a run trained with a
    validation split, on its own training data, they default to the run's validation subset.
    ``segments`` / ``segment_consensus`` default to the run's (1 / "avg" without a run): with K
    segments every view is K snippets (`autox3d_tf.data.video_eval_dataset`) scored by the
    consensus model (`autox3d_tf.models.segment_consensus`, softmax of the reduced logits).
    Weights are loaded strictly. Returns top1, top5, per-class accuracy, confusion matrix (and its
    PNG with ``out_dir``).
    """
    from autox3d_tf.models.networks import build_network, spec_from_dict
    from autox3d_tf.models.consensus import segment_consensus as consensus_model
    from autox3d_tf.training.data import HoldOut, eval_dataset, load_class_names
    from autox3d_tf.weights.loading import load_keras_weights
    from autox3d_tf.training.loops import WEIGHTS_FILE, load_run, resolve_spec

    t0 = time.time()
    if run_dir is not None:
        config = load_run(run_dir)
        weights = weights or os.path.join(os.fspath(run_dir), WEIGHTS_FILE)
        zoo_name, names = config["model"], list(config["classes"])
        c = config["clip"]
        clip = ClipSettings(frames or c["frames"], c["rate"] if rate is None else rate, c["train_crop"], crop or c["test_crop"],
                            tuple(c["scale_range"]), tuple(c["mean"]), tuple(c["std"]))
        if shuffle_frames is None:
            shuffle_frames = bool(config.get("shuffle_frames", False))
        segments = segments or int(config.get("segments", 1))
        segment_consensus = segment_consensus or config.get("segment_consensus", "avg")
        arch = spec_from_dict(config["spec"])
        held = config.get("validation_split")
        same_data = os.path.realpath(os.fspath(data)) == os.path.realpath(config.get("train_data") or "")
        if held and validation_split is None and same_data:
            validation_split, split_seed = held["fraction"], held["seed"]
            subset = subset or "validation"
    else:
        if model is None and spec is None:
            raise ValueError("give a run folder, or a model / spec with weights")
        arch, zoo_name = resolve_spec(model or "X3D_XS", spec)
        names = load_class_names(os.fspath(data), classes)
        if not names:
            raise ValueError(f"no class names for {data}: pass classes")
        clip = resolve_clip(zoo_name, arch if spec is not None else None, frames, rate, None, crop)
    segments, segment_consensus = int(segments or 1), segment_consensus or "avg"
    if (validation_split is None) != (subset is None):
        raise ValueError("give validation_split and subset together")
    hold_out = None if validation_split is None else HoldOut(float(validation_split), subset, int(split_seed or 0))
    views, info = eval_dataset(data, zoo_name, clip, batch_size=batch_size, num_clips=num_clips,
                               num_crops=num_crops, class_names=names, split=split,
                               shuffle_time=bool(shuffle_frames), seed=seed, hold_out=hold_out, segments=segments)
    net = build_network(arch, input_shape=(clip.frames, clip.test_crop, clip.test_crop, 3), classes=len(names),
                        classifier_activation="softmax" if segments == 1 else None, name=arch.name)
    if weights is not None:
        load_keras_weights(net, weights)
    if segments > 1:
        net = consensus_model(net, segments, segment_consensus, activation="softmax")
    title = (f"{arch.name}, {num_clips}x{num_crops} views" + (f" of {segments} segments" if segments > 1 else "")
             + (", frames shuffled" if shuffle_frames else ""))
    result = evaluate_model(net, views, names, out_dir=out_dir, title=title, progress=progress)
    result.update({
        "model": zoo_name,
        "spec_name": arch.name,
        "num_clips": num_clips,
        "num_crops": num_crops,
        "shuffle_frames": bool(shuffle_frames),
        "segments": segments,
        "segment_consensus": segment_consensus,
        "clip": {"frames": clip.frames, "rate": clip.rate, "crop": clip.test_crop},
        "data": os.fspath(data),
        "subset": None if hold_out is None else {"validation_split": hold_out.fraction, "subset": hold_out.subset,
                                                 "seed": hold_out.seed},
        "bad_videos": int(getattr(getattr(views, "error_log", None), "count", 0)),
        "seconds": round(time.time() - t0, 1),
    })
    if out_dir is not None:
        with open(os.path.join(os.fspath(out_dir), "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return result
