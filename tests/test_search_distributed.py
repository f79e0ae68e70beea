"""ArchitectureSearch under tf.distribute: MirroredStrategy on 2 logical CPU devices equals one
replica with the same global batch; MultiWorkerMirroredStrategy with 2 local workers runs on video
files, each worker decoding only its share of them (`search_input`).

Both need a fresh process (logical devices and collective ops are configured before TensorFlow
starts), so the work runs in subprocesses: ``python -c "from tests.test_search_distributed
import ...; ..."`` from the repository root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.cluster import assert_decoded_own_share, free_ports, record_decoded_videos, run_workers, worker_shares

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLOBAL_BATCH = 4
STEPS = 3


def tiny_space():
    """A 5-block space with every kind of decision (widths, types + skip, expansion, SE)."""
    from autox3d_tf.search import SearchSpace

    return SearchSpace(
        stage_widths=((8, 16), (16, 24), (24,), (24, 32)),
        max_depths=(1, 2, 1, 1),
        block_types=("3x3x3", "1x3x3"),
        expansions=(1.5, 2.25),
        attentions=("none", "se"),
        input_frames=4,
        input_size=32,
        stem_temporal_kernel=3,
        head_width=16,
        head_hidden=0,
        classes=4,
        name="tiny",
    )


def tiny_data(n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4, 32, 32, 3)).astype("float32")
    y = (np.arange(n) % 4).astype("int32")
    return x, y


def _dataset(batch: int):
    import tensorflow as tf

    from autox3d_tf.search import search_dataset

    x, y = tiny_data(GLOBAL_BATCH * STEPS, 0)
    xv, yv = tiny_data(GLOBAL_BATCH, 1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    held = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch, drop_remainder=True)
    return search_dataset(train, held)


def _make(strategy, group: int, init=None, check_replicas: bool = False, arch_sgd: bool = False):
    import keras

    from autox3d_tf.search import ArchitectureSearch

    with strategy.scope():
        m = ArchitectureSearch(
            tiny_space(), 2e6, num_samples=2, min_samples=2, seed=3, bn_group_size=group, check_replicas=check_replicas
        )
        # Adam divides by the gradient's running RMS: near-zero logit gradients (centered importance
        # weights of nearly equal losses) turn float-rounding differences into visible ones, so the
        # replica-equivalence check uses SGD on the logits (linear in the gradient).
        arch_opt = keras.optimizers.SGD(2.0) if arch_sgd else keras.optimizers.Adam(0.05)
        m.compile(keras.optimizers.SGD(0.1, momentum=0.9), arch_opt)
        if init is not None:
            for v, value in zip(m.supernet.weights + [m.distribution.logits], init):
                v.assign(value)
    return m


def run_mirrored(out: str) -> None:
    """Subprocess body: 2 logical CPUs; 1 replica x global batch vs 2 replicas x half batch."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    half = GLOBAL_BATCH // 2
    one = _make(tf.distribute.OneDeviceStrategy("/cpu:0"), half, arch_sgd=True)
    # Make the distribution non-uniform so sampling is not trivially symmetric.
    rng = np.random.default_rng(1)
    one.distribution.logits.assign(rng.normal(size=one.distribution.logits.shape).astype("float32"))
    init = [w.numpy() for w in one.supernet.weights + [one.distribution.logits]]
    h1 = one.fit(_dataset(GLOBAL_BATCH), epochs=1, verbose=0).history
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = _make(mirrored, half, init, check_replicas=True, arch_sgd=True)
    h2 = two.fit(_dataset(GLOBAL_BATCH), epochs=1, verbose=0).history
    w1 = [w.numpy() for w in one.supernet.weights]
    w2 = [w.numpy() for w in two.supernet.weights]
    result = {
        "replicas": mirrored.num_replicas_in_sync,
        "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
        "max_weight_change": max(float(np.abs(a - b).max()) for a, b in zip(w1, init)),
        "logit_diff": float(np.abs(one.distribution.logits.numpy() - two.distribution.logits.numpy()).max()),
        "logit_change": float(np.abs(one.distribution.logits.numpy() - init[-1]).max()),
        "steps": [int(one.optimizer.iterations.numpy()), int(two.optimizer.iterations.numpy())],
        "mismatch": [float(v) for v in h2["replica_mismatch"]],
        "loss": [h1["loss"][-1], h2["loss"][-1]],
    }
    with open(out, "w") as f:
        json.dump(result, f)


def _python(code: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_mirrored_two_replicas_equal_one_replica(tmp_path):
    out = str(tmp_path / "mirrored.json")
    proc = _python(f"from tests.test_search_distributed import run_mirrored; run_mirrored({out!r})")
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.load(open(out))
    assert r["replicas"] == 2
    assert r["steps"] == [STEPS, STEPS]
    assert r["max_weight_change"] > 1e-3 and r["logit_change"] > 1e-3  # something was trained
    assert r["max_weight_diff"] < 1e-4, r
    assert r["logit_diff"] < 1e-5, r
    assert r["mismatch"] == [0.0], r  # both replicas sampled the same architectures


def run_worker(index: int, ports: list[int], annotations: str, out: str) -> None:
    """Subprocess body: one MultiWorkerMirroredStrategy worker on loopback, searching on the
    ``train`` / ``val`` splits of ``annotations``."""
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )
    import tensorflow as tf

    from autox3d_tf.search import search_input

    decoded = record_decoded_videos()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    m = _make(strategy, GLOBAL_BATCH // 2, check_replicas=True)
    data = search_input(strategy, annotations, annotations, batch_size=GLOBAL_BATCH, frames=4, rate=2, crop=32,
                        train_split="train", held_out_split="val")
    h = m.fit(data, epochs=1, steps_per_epoch=STEPS, verbose=0).history
    with open(out, "w") as f:
        json.dump(
            {
                "replicas": strategy.num_replicas_in_sync,
                "steps": int(m.optimizer.iterations.numpy()),
                "logits": m.distribution.logits.numpy().tolist(),
                "mismatch": [float(v) for v in h["replica_mismatch"]],
                "decoded": list(decoded),
            },
            f,
        )


@pytest.mark.slow
def test_multi_worker_mirrored_two_local_workers(tmp_path):
    from autox3d_tf.data import write_synthetic_dataset

    ann = write_synthetic_dataset(tmp_path / "data", num_classes=4, clips_per_class=4, size=32, frames=12,
                                  progress=False).annotations
    ports = free_ports(2)
    run_workers([f"from tests.test_search_distributed import run_worker; "
                 f"run_worker({i}, {ports}, {str(ann)!r}, {str(tmp_path / f'w{i}.json')!r})" for i in range(2)])
    r = [json.load(open(tmp_path / f"w{i}.json")) for i in range(2)]
    assert r[0]["replicas"] == r[1]["replicas"] == 2
    assert r[0]["steps"] == r[1]["steps"] == STEPS
    assert r[0]["mismatch"] == [0.0]
    np.testing.assert_allclose(r[0]["logits"], r[1]["logits"], atol=1e-6)
    # Each worker decoded train and held-out clips of its own share only (STEPS x 2 of each at least).
    shares = [t | v for t, v in zip(worker_shares(ann, 2, "train"), worker_shares(ann, 2, "val"))]
    assert_decoded_own_share([w["decoded"] for w in r], shares, 2 * STEPS * GLOBAL_BATCH // 2)
