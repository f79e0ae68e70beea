"""Picking a ``tf.distribute`` strategy, and the chief / worker bookkeeping that goes with it.

- ``TF_CONFIG`` with a cluster of more than one task: ``MultiWorkerMirroredStrategy`` (each worker
  runs the same script; the chief writes the logs and the final weights).
- otherwise, several visible accelerators (or, without any, several logical CPU devices, see
  :func:`split_cpu`): ``MirroredStrategy`` over them.
- otherwise: the default strategy (one device).

:func:`dataset_per_worker` builds the input pipelines: one per worker, each reading its share of the
data, under a multi-worker ``MultiWorkerMirroredStrategy``; one plain dataset otherwise.

TensorFlow-only (tf.distribute).
"""

from __future__ import annotations

import json
import os
from typing import Callable

import tensorflow as tf

__all__ = [
    "STRATEGIES", "pick_strategy", "split_cpu", "cluster_spec", "is_chief", "task_dir", "describe",
    "in_multi_worker_mode", "keras_logs", "dataset_per_worker",
]

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def cluster_spec() -> dict | None:
    """The parsed ``TF_CONFIG`` when it describes a cluster of more than one task, else None."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    cluster = config.get("cluster") or {}
    tasks = sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))
    return config if tasks > 1 else None


def split_cpu(count: int) -> None:
    """Splits the host CPU into ``count`` logical devices (for MirroredStrategy without GPUs, e.g.
    tests). Must run before TensorFlow initialises its devices; a no-op when already so split."""
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise RuntimeError(
                f"cannot split the CPU into {count} devices: TensorFlow is already initialised with {have}"
            ) from None


def _replica_devices() -> list[str]:
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return [d.name for d in gpus]
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def pick_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """The strategy to train under.

    Args:
      kind: ``"auto"`` (multi-worker from ``TF_CONFIG``, else mirrored when several devices are
        visible, else default), ``"default"``, ``"mirrored"`` (all visible GPUs, else all logical
        CPUs) or ``"multi_worker"``.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {kind!r}")
    if kind == "multi_worker" or (kind == "auto" and cluster_spec() is not None):
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = _replica_devices()
    if kind == "mirrored" or (kind == "auto" and len(devices) > 1):
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True except on the non-chief workers of a multi-worker cluster."""
    config = cluster_spec()
    if config is None:
        return True
    task = config.get("task") or {}
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    has_chief = bool((config.get("cluster") or {}).get("chief"))
    return kind == "worker" and index == 0 and not has_chief


def task_dir(path: str) -> str:
    """``path`` on the chief; a private ``path/workers/<type>_<index>`` folder on other workers, so
    that workers never write the same files (Keras' callbacks are not multi-worker aware)."""
    if is_chief():
        return path
    task = (cluster_spec() or {}).get("task") or {}
    return os.path.join(path, "workers", f"{task.get('type', 'worker')}_{task.get('index', 0)}")


def describe(strategy: tf.distribute.Strategy) -> str:
    """``"MirroredStrategy, 2 replicas"``-style one-liner."""
    return f"{type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s)"


def in_multi_worker_mode(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True when ``strategy`` (default: the one in scope) is a ``MultiWorkerMirroredStrategy``
    running on more than one worker."""
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def keras_logs(logs: dict) -> dict:
    """A ``train_step`` / ``test_step`` result as Keras' ``fit`` can reduce it: float32 values, of shape
    (1,) in multi-worker mode, where Keras reduces logs with ``strategy.reduce(MEAN, axis=0)``, which
    rejects scalars (keras-team/keras#20585)."""
    logs = {k: tf.cast(v, tf.float32) for k, v in logs.items()}
    if in_multi_worker_mode():
        logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs


def dataset_per_worker(
    strategy: tf.distribute.Strategy,
    global_batch_size: int,
    make: Callable[[int, tf.distribute.InputContext | None], tf.data.Dataset],
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """The input of ``model.fit`` for ``strategy``, from ``make(batch_size, input_context)``.

    Under a ``MultiWorkerMirroredStrategy`` on more than one worker, every worker calls ``make`` with
    its ``InputContext`` and the per-replica batch (``global_batch_size`` // replicas), through
    ``strategy.distribute_datasets_from_function``: the pipeline reads only that worker's share of
    the data (tf.data's auto-sharding would have every worker decode everything and drop the others'
    share). Otherwise ``make(global_batch_size, None)``, a plain dataset that Keras distributes.
    """
    if not in_multi_worker_mode(strategy):
        return make(global_batch_size, None)
    return strategy.distribute_datasets_from_function(
        lambda ctx: make(ctx.get_per_replica_batch_size(global_batch_size), ctx))
