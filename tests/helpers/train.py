"""A tiny architecture for the training tests, and the body of the multi-worker training subprocess
(run as ``python -c "from tests.helpers.train import run_train_worker; ..."`` from the repository root)."""

from __future__ import annotations

import json
import os

from tests.helpers.cluster import record_decoded_videos


def tiny_spec():
    """X3D-XS with one narrow block per stage: the same graph structure, traced in seconds."""
    from autox3d_tf.arch.spec import StageSpec
    from autox3d_tf.zoo import get_spec

    xs = get_spec("X3D_XS")
    stages = tuple(StageSpec(width=w, blocks=s.blocks[:1], stride=s.stride) for s, w in zip(xs.stages, (8, 16, 24, 32)))
    return xs.replace(name="tiny", stages=stages, stem_width=8, head_width=48, head_hidden=32)


def run_train_worker(index: int, ports: list[int], data: str, spec: str, out: str) -> None:
    """Subprocess body: one worker of a 2-worker cluster on loopback, 2 steps of ``train``."""
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
