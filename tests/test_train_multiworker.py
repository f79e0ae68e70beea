"""``train`` under ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``: two workers on loopback train the
same network in lock step (Keras 3's ``fit`` needs :class:`MultiWorkerModel` for that, see
keras-team/keras#20585), each decoding only its share of the training videos; the chief writes the
run folder and each other worker its own."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.cluster import assert_decoded_own_share, free_ports, record_decoded_videos, run_workers, worker_shares

pytest.importorskip("tensorflow")


def run_worker(index: int, ports: list[int], data: str, spec: str, out: str) -> None:
    """Subprocess body: one worker of a 2-worker cluster, 2 steps of ``train``."""
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )
    from autox3d_tf.training import train

    decoded = record_decoded_videos()
    result = train(data, model="X3D_XS", spec=spec, out_dir=out, epochs=1, batch_size=4, steps_per_epoch=2,
                   crop=32, learning_rate=0.05, verbose=0, seed=0)
    with open(os.path.join(result.run_dir, "worker_result.json"), "w") as f:
        json.dump({"history": result.history, "strategy": result.config["strategy"], "run_dir": result.run_dir,
                   "trainable": [w.numpy().ravel().tolist() for w in result.model.trainable_weights],
                   "decoded": list(decoded)}, f)


@pytest.mark.slow
def test_two_workers_train_in_lock_step(tmp_path):
    from autox3d_tf.data import write_synthetic_dataset
    from tests.test_train_loop import tiny_spec

    ds = write_synthetic_dataset(tmp_path / "data", num_classes=4, clips_per_class=6, size=64, frames=16, progress=False)
    spec = str(tmp_path / "tiny.json")
    tiny_spec().save(spec)
    out = tmp_path / "run"
    ports = free_ports(2)
    code = "from tests.test_train_multiworker import run_worker; run_worker({i}, {ports}, {data!r}, {spec!r}, {out!r})"
    run_workers([code.format(i=i, ports=ports, data=ds.split_files["train"], spec=spec, out=str(out)) for i in range(2)])

    chief = json.load(open(out / "worker_result.json"))
    other = json.load(open(out / "workers" / "worker_1" / "worker_result.json"))
    assert "CollectiveAllReduceStrategy" in chief["strategy"] and "2 replica" in chief["strategy"]
    assert np.isfinite(chief["history"]["loss"]).all()
    assert chief["history"] == other["history"]  # one all-reduced step sequence, the same logs
    # (TF names MultiWorkerMirroredStrategy CollectiveAllReduceStrategy; 2 workers x 1 CPU replica)

    # Trainable weights stay identical (all-reduced gradients). BatchNorm's moving statistics are not
    # synchronised (Keras' BatchNormalization uses each worker's own batch), so they are not compared.
    assert len(chief["trainable"]) == len(other["trainable"]) > 10
    for x, y in zip(chief["trainable"], other["trainable"]):
        np.testing.assert_allclose(x, y, atol=1e-6)
    assert (out / "final.weights.h5").exists() and (out / "workers" / "worker_1" / "final.weights.h5").exists()
    assert json.load(open(out / "run.json"))["completed"] is True

    # Each worker's pipeline decoded only its half of the training videos (2 steps x 2 clips per
    # replica at least); without per-worker input pipelines both would decode every video.
    assert_decoded_own_share([chief["decoded"], other["decoded"]], worker_shares(ds.split_files["train"], 2), 4)
