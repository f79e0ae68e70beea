"""Multi-view evaluation: average the softmax of every view of a video, then top-1 / top-5.

    views = video_eval_dataset("val.csv", model="X3D_S", num_clips=10, num_crops=3)
    result = evaluate_views(model, views)      # {"top1": 0.73, "top5": 0.91, "videos": 1000, ...}
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["aggregate_views", "evaluate_views", "softmax"]


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[N, classes]`` scores."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _as_probabilities(scores: np.ndarray, outputs: str) -> np.ndarray:
    if outputs == "probabilities":
        return np.asarray(scores, dtype=np.float64)
    if outputs == "logits":
        return softmax(scores)
    if outputs != "auto":
        raise ValueError(f"outputs must be 'auto', 'probabilities' or 'logits', got {outputs!r}")
    scores = np.asarray(scores, dtype=np.float64)
    looks_like_probs = (scores >= 0).all() and np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3)
    return scores if looks_like_probs else softmax(scores)


def aggregate_views(
    scores: np.ndarray,
    video_ids: Sequence,
    labels: Sequence[int],
    outputs: str = "auto",
    topk: tuple[int, ...] = (1, 5),
) -> dict:
    """Averages per-view softmax per video and scores it.

    Args:
      scores: ``[views, classes]`` model outputs (probabilities or logits, see ``outputs``).
      video_ids: the video of each view (strings or ints).
      labels: the label of each view (the same for every view of a video).
      outputs: ``"auto"`` (softmax applied unless rows already are probabilities), ``"logits"`` or
        ``"probabilities"``.

    Returns ``{"top1", "top5", "videos", "views", "video_ids", "probabilities", "labels"}`` with the
    per-video arrays in order of first appearance. Videos labelled -1 are averaged but not scored.
    """
    probs = _as_probabilities(scores, outputs)
    ids = np.asarray([v.decode() if isinstance(v, bytes) else v for v in video_ids])
    labels = np.asarray(labels).astype(np.int64)
    if not (len(probs) == len(ids) == len(labels)):
        raise ValueError(f"scores ({len(probs)}), video_ids ({len(ids)}) and labels ({len(labels)}) differ")
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep order of first appearance
    sums = np.zeros((len(unique), probs.shape[1]))
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(unique))
    mean = (sums / counts[:, None])[order]
    video_labels = labels[first][order]
    for i, vid in enumerate(unique[order]):
        if len(set(labels[ids == vid].tolist())) > 1:
            raise ValueError(f"video {vid!r} has views with different labels")
    result = {"videos": int(len(unique)), "views": int(len(probs)), "video_ids": unique[order].tolist(),
              "probabilities": mean, "labels": video_labels}
    scored = video_labels >= 0
    ranked = np.argsort(-mean[scored], axis=1)
    for k in topk:
        hits = (ranked[:, :k] == video_labels[scored][:, None]).any(axis=1)
        result[f"top{k}"] = float(hits.mean()) if hits.size else float("nan")
    return result


def evaluate_views(
    model: Callable,
    dataset,
    outputs: str = "auto",
    topk: tuple[int, ...] = (1, 5),
    progress: bool = False,
) -> dict:
    """Runs ``model`` over an evaluation dataset of ``(clip, label, video_id)`` batches (from
    :func:`~autox3d_tf.data.video_pipeline.video_eval_dataset` or ``tfrecord_eval_dataset``) and returns
    :func:`aggregate_views`'s result (``top1``, ``top5``, per-video probabilities)."""
    scores, ids, labels = [], [], []
    for n, (clips, label, vid) in enumerate(dataset, 1):
        out = model(clips, training=False) if hasattr(model, "trainable_variables") else model(clips)
        scores.append(np.asarray(out))
        labels.append(np.asarray(label))
        ids.append(np.asarray(vid))
        if progress:
            print(f"\r[evaluate] {sum(len(s) for s in scores)} views", end="", flush=True)
    if progress:
        print()
    if not scores:
        raise ValueError("evaluation dataset is empty")
    return aggregate_views(np.concatenate(scores), np.concatenate(ids), np.concatenate(labels), outputs, topk)
