"""ArchitectureSearch under tf.distribute: MirroredStrategy on 2 logical CPU devices equals one
replica with the same global batch; MultiWorkerMirroredStrategy with 2 local workers runs on video
files, each worker decoding only its share of them (`search_input`).

Both need a fresh process (logical devices and collective ops are configured before TensorFlow
starts), so the work runs in subprocesses: ``python -c "from tests.helpers.search
import ...; ..."`` from the repository root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers.cluster import assert_decoded_own_share, free_ports, run_workers, worker_shares
from tests.helpers.search import GLOBAL_BATCH, STEPS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_mirrored_two_replicas_equal_one_replica(tmp_path):
    out = str(tmp_path / "mirrored.json")
    proc = _python(f"from tests.helpers.search import run_mirrored; run_mirrored({out!r})")
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.load(open(out))
    assert r["replicas"] == 2
    assert r["steps"] == [STEPS, STEPS]
    assert r["max_weight_change"] > 1e-3 and r["logit_change"] > 1e-3  # something was trained
    assert r["max_weight_diff"] < 1e-4, r
    assert r["logit_diff"] < 1e-5, r
    assert r["mismatch"] == [0.0], r  # both replicas sampled the same architectures


@pytest.mark.slow
def test_multi_worker_mirrored_two_local_workers(tmp_path):
    from autox3d_tf.data import write_synthetic_dataset

    ann = write_synthetic_dataset(tmp_path / "data", num_classes=4, clips_per_class=4, size=32, frames=12,
                                  progress=False).annotations
    ports = free_ports(2)
    run_workers([f"from tests.helpers.search import run_search_worker; "
                 f"run_search_worker({i}, {ports}, {str(ann)!r}, {str(tmp_path / f'w{i}.json')!r})" for i in range(2)])
    r = [json.load(open(tmp_path / f"w{i}.json")) for i in range(2)]
    assert r[0]["replicas"] == r[1]["replicas"] == 2
    assert r[0]["steps"] == r[1]["steps"] == STEPS
    assert r[0]["mismatch"] == [0.0]
    np.testing.assert_allclose(r[0]["logits"], r[1]["logits"], atol=1e-6)
    # Each worker decoded train and held-out clips of its own share only (STEPS x 2 of each at least).
    shares = [t | v for t, v in zip(worker_shares(ann, 2, "train"), worker_shares(ann, 2, "val"))]
    assert_decoded_own_share([w["decoded"] for w in r], shares, 2 * STEPS * GLOBAL_BATCH // 2)
