"""``train`` under ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``: two workers on loopback train the
same network in lock step (Keras 3's ``fit`` needs :class:`MultiWorkerModel` for that, see
keras-team/keras#20585), each decoding only its share of the training videos; the chief writes the
run folder and each other worker its own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.cluster import assert_decoded_own_share, free_ports, run_workers, worker_shares
from tests.helpers.train import tiny_spec

pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_two_workers_train_in_lock_step(tmp_path):
    from autox3d_tf.data import write_synthetic_dataset

    ds = write_synthetic_dataset(tmp_path / "data", num_classes=4, clips_per_class=6, size=64, frames=16, progress=False)
    spec = str(tmp_path / "tiny.json")
    tiny_spec().save(spec)
    out = tmp_path / "run"
    ports = free_ports(2)
    code = "from tests.helpers.train import run_train_worker; run_train_worker({i}, {ports}, {data!r}, {spec!r}, {out!r})"
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
