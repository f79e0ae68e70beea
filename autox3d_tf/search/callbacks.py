"""Callbacks of the search: the distribution's history and a full checkpoint / resume.

``DistributionHistory`` records the probabilities of every decision (with entropy, expected
MACs and the argmax architecture) at the start, every ``every_n_steps`` steps and at every
epoch end, plus per step the MACs, loss and accuracy of the architecture the weight step
sampled; it writes them as JSON.

``SearchCheckpoint`` saves everything a search needs to continue exactly where it stopped: the
supernet weights, the logits, both optimizers' states (momentum, Adam moments and their
iteration counters; the weight optimizer's counter is also the RNG step that keys every random
draw) and the epoch, with ``tf.train.Checkpoint``. At ``on_train_begin`` it restores the latest
checkpoint and makes ``fit`` start at the saved epoch.

``keras.callbacks.BackupAndRestore`` works too (tested): `ArchitectureSearch.compile` builds both
optimizers, and ``Model.save_weights`` stores every tracked optimizer's variables, iteration
counters included. `SearchCheckpoint` adds step-based saving with an explicit epoch counter,
keeps several checkpoints, and follows the MultiWorkerMirroredStrategy convention (every
worker saves, only the chief into ``directory``).

TensorFlow-only (``tf.train.Checkpoint``, tf.distribute).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.training.strategy import is_chief


def _float(value) -> float:
    return float(np.asarray(value))


class DistributionHistory(keras.callbacks.Callback):
    """Records the architecture distribution during ``fit`` (see the module docstring).

    Args:
        path: JSON file written at every epoch end and at the end of training (optional).
        every_n_steps: also record every this many steps (``None``: epochs only).
        resume: if ``path`` exists, load it first and drop records after the current step
            (for a search resumed from a checkpoint).
    """

    def __init__(self, path: str | None = None, every_n_steps: int | None = None, resume: bool = True):
        super().__init__()
        self.path = path
        self.every_n_steps = every_n_steps
        self.resume = resume
        self.records: list[dict] = []
        self.samples: list[dict] = []
        self._epoch = 0

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def record(self, epoch: int | None = None) -> dict:
        """Appends (and returns) the distribution's state now."""
        d = self.model.distribution
        argmax = d.argmax().numpy()
        rec = {
            "step": self._step(),
            "epoch": self._epoch if epoch is None else epoch,
            "entropy": _float(d.entropy()),
            "expected_gmacs": _float(d.expected_macs()) / 1e9,
            "argmax_gmacs": _float(d.macs(argmax)) / 1e9,
            "argmax": [int(c) for c in argmax],
            "probabilities": d.probabilities_by_decision(),
        }
        if self.records and self.records[-1]["step"] == rec["step"]:
            self.records[-1] = rec
        else:
            self.records.append(rec)
        return rec

    def on_train_begin(self, logs=None):
        step = self._step()
        if self.resume and self.path and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            self.records = [r for r in data.get("records", []) if r["step"] <= step]
            self.samples = [s for s in data.get("samples", []) if s["step"] < step]
        self.record()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        step = self._step()
        if "sample_gmacs" in logs:
            self.samples.append(
                {
                    "step": step - 1,
                    "gmacs": _float(logs["sample_gmacs"]),
                    "loss": _float(logs.get("sample_loss", np.nan)),
                    "accuracy": _float(logs.get("sample_accuracy", np.nan)),
                }
            )
        if self.every_n_steps and step % self.every_n_steps == 0:
            self.record()

    def on_epoch_end(self, epoch, logs=None):
        self.record(epoch + 1)
        self.save()

    def on_train_end(self, logs=None):
        self.save()

    def to_dict(self) -> dict:
        space = self.model.space
        return {
            "space": space.name,
            "decisions": [{"name": d.name, "kind": d.kind, "candidates": list(map(str, d.candidates))} for d in space.decisions],
            "records": self.records,
            "samples": self.samples,
        }

    def save(self, path: str | None = None) -> None:
        path = path or self.path
        if not path or not is_chief():
            return
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f)
        os.replace(tmp, path)


class ArchWeightsHistory(DistributionHistory):
    """`DistributionHistory` for the differentiable search: the softmax of the normal and reduction
    cells' architecture weights per edge, the expected MACs and the derived genotype, over time."""

    def record(self, epoch: int | None = None) -> dict:
        model = self.model
        normal, reduce = model.probabilities()
        rec = {
            "step": self._step(),
            "epoch": self._epoch if epoch is None else epoch,
            "expected_gmacs": _float(model.expected_macs(normal, reduce)) / 1e9,
            "normal": np.round(normal, 6).tolist(),
            "reduce": np.round(reduce, 6).tolist(),
            "genotype": model.derive().to_dict(),
        }
        if self.records and self.records[-1]["step"] == rec["step"]:
            self.records[-1] = rec
        else:
            self.records.append(rec)
        return rec

    def to_dict(self) -> dict:
        space = self.model.space
        return {"space": space.name, "ops": list(space.ops), "edges": [list(e) for e in space.edges],
                "records": self.records, "samples": self.samples}


class SearchCheckpoint(keras.callbacks.Callback):
    """Saves and restores the whole search state with ``tf.train.Checkpoint``.

    Args:
        directory: where checkpoints go (the chief's; other workers write to a temporary
            directory that is removed, as tf.distribute requires every worker to save).
        save_freq: ``"epoch"`` or a number of steps.
        max_to_keep: checkpoints kept.

    On ``on_train_begin`` the latest checkpoint, if any, is restored and ``fit`` continues from
    its epoch (``initial_epoch``). Save at epoch ends for an exact resume: a restart replays the
    dataset from the start of an epoch.
    """

    def __init__(self, directory: str, save_freq: str | int = "epoch", max_to_keep: int = 2):
        super().__init__()
        if save_freq != "epoch" and (not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}.")
        self.directory = directory
        self.save_freq = save_freq
        self.max_to_keep = max_to_keep
        self._checkpoint = None
        self._manager = None
        self._epoch_var = None
        self.restored_epoch: int | None = None

    def _make(self) -> None:
        if self._checkpoint is not None:
            return
        model = self.model
        if model.arch_optimizer is None:
            raise ValueError("compile() the search model before fit().")
        with tf.distribute.get_strategy().scope() if tf.distribute.has_strategy() else _null():
            self._epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        if hasattr(model, "checkpoint_items"):
            items = model.checkpoint_items()
        else:
            items = {"supernet": model.supernet, "distribution": model.distribution, "optimizer": model.optimizer,
                     "arch_optimizer": model.arch_optimizer}
        self._checkpoint = tf.train.Checkpoint(**items, epoch=self._epoch_var)
        directory = self.directory if is_chief() else tempfile.mkdtemp(prefix="search_ckpt_worker_")
        self._write_dir = directory
        self._manager = tf.train.CheckpointManager(self._checkpoint, directory, max_to_keep=self.max_to_keep)

    def on_train_begin(self, logs=None):
        self._make()
        latest = tf.train.latest_checkpoint(self.directory)
        if latest:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
            self.restored_epoch = int(self._epoch_var.numpy())
            self.model._initial_epoch = self.restored_epoch

    def _save(self, epoch: int) -> None:
        self._epoch_var.assign(epoch)
        self._manager.save(checkpoint_number=int(self.model.optimizer.iterations.numpy()))
        if self._write_dir != self.directory:
            shutil.rmtree(self._write_dir, ignore_errors=True)
            os.makedirs(self._write_dir, exist_ok=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and int(self.model.optimizer.iterations.numpy()) % self.save_freq == 0:
            self._save(self._current_epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch + 1)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


__all__ = ["ArchWeightsHistory", "DistributionHistory", "SearchCheckpoint"]
