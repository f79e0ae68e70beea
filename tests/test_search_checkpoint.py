"""Checkpoint and resume of the search: a run killed mid-way (SIGKILL) and resumed ends with the
same distribution, weights and optimizer states as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.test_search_distributed import GLOBAL_BATCH, ROOT, STEPS

EPOCHS = 3
WARMUP = 2


def run_search(ckpt_dir: str, out: str, kill_at_step: int = 0) -> None:
    """Subprocess body: a 3-epoch search with `SearchCheckpoint`; SIGKILLs itself at ``kill_at_step``."""
    import keras
    import tensorflow as tf

    from autox3d_tf.search import ArchitectureSearch
    from autox3d_tf.search.callbacks import DistributionHistory, SearchCheckpoint
    from tests.test_search_distributed import _dataset, tiny_space

    keras.utils.set_random_seed(0)
    m = ArchitectureSearch(tiny_space(), 2e6, num_samples=2, warmup_steps=WARMUP, seed=5)
    m.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.Adam(0.05))

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if kill_at_step and int(self.model.optimizer.iterations.numpy()) == kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)

    history = DistributionHistory(os.path.join(ckpt_dir, "history.json"))
    ckpt = SearchCheckpoint(ckpt_dir)
    m.fit(_dataset(GLOBAL_BATCH), epochs=EPOCHS, verbose=0, callbacks=[ckpt, history, Kill()])
    np.savez(
        out,
        logits=m.distribution.logits.numpy(),
        restored_epoch=-1 if ckpt.restored_epoch is None else ckpt.restored_epoch,
        iterations=m.optimizer.iterations.numpy(),
        arch_iterations=m.arch_optimizer.iterations.numpy(),
        **{f"w{i}": w.numpy() for i, w in enumerate(m.supernet.weights)},
        **{f"o{i}": v.numpy() for i, v in enumerate(m.optimizer.variables + m.arch_optimizer.variables)},
    )
    del tf


def _run(ckpt_dir, out, kill_at_step=0) -> subprocess.CompletedProcess:
    code = f"from tests.test_search_checkpoint import run_search; run_search({str(ckpt_dir)!r}, {str(out)!r}, {kill_at_step})"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_killed_and_resumed_search_equals_uninterrupted(tmp_path):
    full = _run(tmp_path / "full", tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr[-3000:]
    kill_step = STEPS + 2  # in the middle of the second epoch, after the epoch-1 checkpoint
    killed = _run(tmp_path / "resumed", tmp_path / "never.npz", kill_at_step=kill_step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "never.npz").exists()
    resumed = _run(tmp_path / "resumed", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert int(a["restored_epoch"]) == -1 and int(b["restored_epoch"]) == 1
    assert int(a["iterations"]) == int(b["iterations"]) == EPOCHS * STEPS
    # Adam counts only the distribution updates (its counter is reset during the warm-up).
    assert int(a["arch_iterations"]) == int(b["arch_iterations"]) == EPOCHS * STEPS - WARMUP
    assert np.abs(a["logits"]).max() > 1e-3  # the distribution moved
    np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-6)
    for key in set(a.files) - {"restored_epoch"}:  # weights, SGD momentum, Adam moments
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)

    h_full = json.load(open(tmp_path / "full" / "history.json"))
    h_res = json.load(open(tmp_path / "resumed" / "history.json"))
    assert [r["step"] for r in h_full["records"]] == [0, 3, 6, 9] == [r["step"] for r in h_res["records"]]
    for r1, r2 in zip(h_full["records"], h_res["records"]):
        for name, p in r1["probabilities"].items():
            np.testing.assert_allclose(p, r2["probabilities"][name], atol=1e-6)
    assert [s["step"] for s in h_res["samples"]] == list(range(EPOCHS * STEPS))


def test_backup_and_restore_restores_both_optimizers(tmp_path):
    """keras.callbacks.BackupAndRestore also restores the logits, both optimizers and counters
    (compile() builds both optimizers, and save_weights stores them)."""
    import keras
    import tensorflow as tf

    from tests.test_search_distributed import _dataset, _make

    m1 = _make(tf.distribute.get_strategy(), None)
    m1.warmup_steps = 1
    m1.fit(_dataset(GLOBAL_BATCH), epochs=1, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    m2 = _make(tf.distribute.get_strategy(), None)
    cb = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    cb.set_model(m2)
    cb.on_train_begin()
    assert m2._initial_epoch == 1
    assert int(m2.optimizer.iterations.numpy()) == STEPS
    assert int(m2.arch_optimizer.iterations.numpy()) == STEPS - 1
    np.testing.assert_array_equal(m1.distribution.logits.numpy(), m2.distribution.logits.numpy())
    for v1, v2 in zip(m1.optimizer.variables + m1.arch_optimizer.variables, m2.optimizer.variables + m2.arch_optimizer.variables):
        np.testing.assert_array_equal(v1.numpy(), v2.numpy())
    for v1, v2 in zip(m1.supernet.weights, m2.supernet.weights):
        np.testing.assert_array_equal(v1.numpy(), v2.numpy())
