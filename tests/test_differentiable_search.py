"""The differentiable search's trainer: both orders of the architecture gradient (the second order
with xi = 0 is the first), fit, the MACs hinge, MirroredStrategy on 2 logical CPUs equal to one
replica with the global batch, a killed search resuming exactly, and `autox3d search --method
differentiable` writing its outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tests.helpers.cluster import ROOT  # noqa: E402
from tests.helpers.darts import EPOCHS, STEPS, make_darts, tiny_darts_dataset  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}


def _batch():
    return next(iter(tiny_darts_dataset(4)))


def _first_order_grads(m, x, y, xv, yv):
    with tf.GradientTape() as tape:
        normal, reduce = m.arch_weights.probs()
        held = m._loss(yv, m._forward(xv, normal, reduce, True))
        objective = m._arch_objective(m.arch_weights.normal, m.arch_weights.reduce, held)
    return tape.gradient(objective, m.arch_weights.normal)


def test_second_order_gradient_reduces_to_first_order_at_xi_zero():
    m = make_darts(second_order=True)
    batch = _batch()
    (x, y), (xv, yv) = batch["train"], batch["held_out"]
    first = _first_order_grads(m, x, y, xv, yv).numpy()
    m.xi = 0.0
    (normal, _), _ = m._second_order_grads(x, y, xv, yv, 1)
    np.testing.assert_allclose(normal.numpy(), first, rtol=1e-4, atol=1e-7)
    m.xi = 0.5
    (shifted, _), _ = m._second_order_grads(x, y, xv, yv, 1)
    assert np.abs(shifted.numpy() - first).max() > 1e-6 * max(np.abs(first).max(), 1e-12)


@pytest.mark.parametrize("second_order", [False, True])
def test_fit_moves_the_architecture_weights(second_order):
    m = make_darts(second_order=second_order)
    before = m.arch_weights.normal.numpy().copy()
    reduce_before = m.arch_weights.reduce.numpy().copy()
    history = m.fit(tiny_darts_dataset(4), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1]) and "expected_gmacs" in history and "held_out_loss" in history
    assert np.abs(m.arch_weights.normal.numpy() - before).max() > 1e-4
    np.testing.assert_array_equal(m.arch_weights.reduce.numpy(), reduce_before)  # one cell: no reduction cell
    genotype = m.derive()
    assert genotype.nodes == 1 and all(op != "zero" for op, _ in genotype.normal)


def test_macs_hinge_pushes_to_cheaper_operations():
    m = make_darts(macs_target=1.0)  # any network is over budget: the hinge dominates the held-out loss
    m.penalty = 100.0
    m.fit(tiny_darts_dataset(4), epochs=2, verbose=0)
    p = tf.nn.softmax(m.arch_weights.normal, -1).numpy().mean(axis=0)
    ops = m.space.ops
    costly = p[ops.index("p3d_a")] + p[ops.index("sep_conv_1x3x3")]
    free = p[ops.index("max_pool_1x3x3")] + p[ops.index("zero")]
    assert free > costly


@pytest.mark.slow
def test_mirrored_two_cpus_equal_one_replica(tmp_path):
    out = tmp_path / "mirrored.npz"
    code = f"from tests.helpers.darts import run_darts_mirrored; run_darts_mirrored({str(out)!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = np.load(out)
    assert int(r["replicas"]) == 2
    assert float(r["weight_change"]) > 1e-3  # the weights did train
    assert float(r["weight_diff"]) < 1e-4 * max(float(r["weight_change"]), 1.0)
    assert np.abs(r["logits_one"] - r["logits_init"]).max() > 1e-4
    np.testing.assert_allclose(r["logits_one"], r["logits_two"], atol=1e-5)


def _run(ckpt_dir, out, kill_at_step=0):
    code = (f"from tests.helpers.darts import run_darts_search; "
            f"run_darts_search({str(ckpt_dir)!r}, {str(out)!r}, {kill_at_step})")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_killed_and_resumed_search_equals_uninterrupted(tmp_path):
    full = _run(tmp_path / "full", tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr[-3000:]
    killed = _run(tmp_path / "resumed", tmp_path / "never.npz", kill_at_step=STEPS + 1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _run(tmp_path / "resumed", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert int(a["restored_epoch"]) == -1 and int(b["restored_epoch"]) == 1
    assert int(a["iterations"]) == int(b["iterations"]) == EPOCHS * STEPS
    for key in set(a.files) - {"restored_epoch"}:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    history = json.load(open(tmp_path / "resumed" / "history.json"))
    assert [r["step"] for r in history["records"]] == [0, 3, 6, 9]


@pytest.mark.slow
def test_cli_writes_the_genotype_history_and_plots(tmp_path):
    from autox3d_tf.arch.cells import CellNetSpec
    from autox3d_tf.data import write_synthetic_dataset

    ds = write_synthetic_dataset(tmp_path / "data", num_classes=2, clips_per_class=6, size=32, frames=8,
                                 progress=False)
    out = tmp_path / "darts"
    cmd = [sys.executable, "-m", "autox3d_tf.cli.main", "search", "--method", "differentiable",
           f"--data={ds.annotations}", "--space=cells-tiny", "--ops=p3d_a,sep_conv_1x3x3,max_pool_1x3x3,zero",
           "--nodes=1", "--layers=3", "--channels=4", "--frames=4", "--crop=32", "--epochs=2", "--steps_per_epoch=2",
           "--batch_size=4", "--macs_target=0.01", f"--out_dir={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    spec = CellNetSpec.load(str(out / "arch.json"))
    summary = json.loads((out / "search.json").read_text())
    assert summary["method"] == "differentiable" and summary["genotype"] == spec.genotype.to_dict()
    assert summary["derived_macs"] <= 0.01e9
    history = json.loads((out / "history.json").read_text())
    assert len(history["records"]) == 3 and np.asarray(history["records"][-1]["normal"]).shape == (2, 4)
    for png in ("arch_weights.png", "cells.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


@pytest.mark.slow
def test_block_space_mixture_over_types():
    """The same search on the autox3d-v1 block types (a mixture over each block's type of an ArchSpec
    skeleton): skip impossible at a stage's first block, the derived ArchSpec's MACs equal to its cost
    table and to the counter on the built network, a budget respected."""
    import keras

    from autox3d_tf.arch.spec import BlockSpec, StageSpec
    from autox3d_tf.flops import count_macs
    from autox3d_tf.models.builder import build_model
    from autox3d_tf.search import search_dataset
    from autox3d_tf.search.block_mixture import BlockMixtureSpace
    from autox3d_tf.search.differentiable import DifferentiableSearch
    from tests.helpers.train import tiny_spec

    skeleton = tiny_spec().replace(input_frames=4, input_size=32)
    skeleton = skeleton.replace(stages=tuple(StageSpec(st.width, (st.blocks[0], BlockSpec("3x3x3")), st.stride)
                                             for st in skeleton.stages))
    space = BlockMixtureSpace(skeleton, types=("3x3x3", "1x3x3", "2+1d"), classes=3)
    m = DifferentiableSearch(space, seed=1)
    m.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.SGD(1.0))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4, 32, 32, 3)).astype("float32"), np.arange(8) % 3
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    m.fit(search_dataset(data, data), epochs=1, verbose=0)
    probs, _ = m.probabilities()
    first_blocks = [k for k, (_, b) in enumerate(space.edges) if b == 0]
    assert np.all(probs[first_blocks, space.ops.index("skip")] == 0.0)
    spec = m.derive()
    table, _, fixed = space.cost_tables()
    choice = [space.ops.index(b.type) for stage in spec.stages for b in stage.blocks]
    assert fixed + sum(table[k, c] for k, c in enumerate(choice)) == space.macs(spec)
    assert count_macs(build_model(spec, classes=3, input_shape=(4, 32, 32, 3))) == space.macs(spec)
    budget = space.macs(spec) * 0.9
    assert space.macs(m.derive(macs_target=budget)) <= budget


def test_segments_fold_into_the_batch_and_average_the_logits():
    import keras

    from autox3d_tf.search import search_dataset
    from autox3d_tf.search.differentiable import DifferentiableSearch
    from tests.helpers.darts import tiny_cell_space

    m = DifferentiableSearch(tiny_cell_space(), segments=2, seed=2)
    m.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(1.0))
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(4, 8, 16, 16, 3)).astype("float32")  # 2 snippets of the space's 4 frames
    logits = np.asarray(m(clips))
    normal, reduce = m.arch_weights.probs()
    per_snippet = [np.asarray(m.supernet(clips[:, 4 * k: 4 * k + 4], normal, reduce)) for k in range(2)]
    np.testing.assert_allclose(logits, (per_snippet[0] + per_snippet[1]) / 2, rtol=1e-5, atol=1e-6)
    data = tf.data.Dataset.from_tensor_slices((clips, np.arange(4) % 3)).batch(2)
    assert np.isfinite(m.fit(search_dataset(data, data), epochs=1, verbose=0).history["loss"][-1])
