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

from tests.helpers.cluster import ROOT
from tests.helpers.search import EPOCHS, GLOBAL_BATCH, STEPS, WARMUP, make_search, tiny_search_dataset


def _run(ckpt_dir, out, kill_at_step=0) -> subprocess.CompletedProcess:
    code = f"from tests.helpers.search import run_search; run_search({str(ckpt_dir)!r}, {str(out)!r}, {kill_at_step})"
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

    m1 = make_search(tf.distribute.get_strategy(), None)
    m1.warmup_steps = 1
    m1.fit(tiny_search_dataset(GLOBAL_BATCH), epochs=1, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    m2 = make_search(tf.distribute.get_strategy(), None)
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
