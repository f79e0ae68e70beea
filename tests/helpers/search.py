"""A tiny search problem for the search tests, and the bodies of their subprocesses.

The distributed and checkpoint tests run these functions in fresh processes (logical devices and
collective ops are configured before TensorFlow starts; a search is SIGKILLed mid-way), as
``python -c "from tests.helpers.search import ...; ..."`` from the repository root."""

from __future__ import annotations

import json
import os
import signal

import numpy as np

from tests.helpers.cluster import record_decoded_videos

GLOBAL_BATCH = 4
STEPS = 3
# The checkpoint test's search (`run_search`).
EPOCHS = 3
WARMUP = 2


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


def tiny_search_dataset(batch: int):
    """STEPS batches of random clips (global batch GLOBAL_BATCH) and a held-out batch, as
    `search_dataset` pairs them, in batches of ``batch``."""
    import tensorflow as tf

    from autox3d_tf.search import search_dataset

    x, y = tiny_data(GLOBAL_BATCH * STEPS, 0)
    xv, yv = tiny_data(GLOBAL_BATCH, 1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    held = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch, drop_remainder=True)
    return search_dataset(train, held)


def make_search(strategy, group: int, init=None, check_replicas: bool = False, arch_sgd: bool = False):
    """A compiled `ArchitectureSearch` of `tiny_space` in ``strategy``'s scope (weights and logits
    set to ``init`` if given)."""
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
    one = make_search(tf.distribute.OneDeviceStrategy("/cpu:0"), half, arch_sgd=True)
    # Make the distribution non-uniform so sampling is not trivially symmetric.
    rng = np.random.default_rng(1)
    one.distribution.logits.assign(rng.normal(size=one.distribution.logits.shape).astype("float32"))
    init = [w.numpy() for w in one.supernet.weights + [one.distribution.logits]]
    h1 = one.fit(tiny_search_dataset(GLOBAL_BATCH), epochs=1, verbose=0).history
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = make_search(mirrored, half, init, check_replicas=True, arch_sgd=True)
    h2 = two.fit(tiny_search_dataset(GLOBAL_BATCH), epochs=1, verbose=0).history
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


def run_search_worker(index: int, ports: list[int], annotations: str, out: str) -> None:
    """Subprocess body: one MultiWorkerMirroredStrategy worker on loopback, searching on the
    ``train`` / ``val`` splits of ``annotations``."""
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )
    import tensorflow as tf

    from autox3d_tf.search import search_input

    decoded = record_decoded_videos()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    m = make_search(strategy, GLOBAL_BATCH // 2, check_replicas=True)
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


def run_search(ckpt_dir: str, out: str, kill_at_step: int = 0) -> None:
    """Subprocess body: an EPOCHS-epoch search with `SearchCheckpoint`; SIGKILLs itself at ``kill_at_step``."""
    import keras

    from autox3d_tf.search import ArchitectureSearch
    from autox3d_tf.search.callbacks import DistributionHistory, SearchCheckpoint

    keras.utils.set_random_seed(0)
    m = ArchitectureSearch(tiny_space(), 2e6, num_samples=2, warmup_steps=WARMUP, seed=5)
    m.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.Adam(0.05))

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if kill_at_step and int(self.model.optimizer.iterations.numpy()) == kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)

    history = DistributionHistory(os.path.join(ckpt_dir, "history.json"))
    ckpt = SearchCheckpoint(ckpt_dir)
    m.fit(tiny_search_dataset(GLOBAL_BATCH), epochs=EPOCHS, verbose=0, callbacks=[ckpt, history, Kill()])
    np.savez(
        out,
        logits=m.distribution.logits.numpy(),
        restored_epoch=-1 if ckpt.restored_epoch is None else ckpt.restored_epoch,
        iterations=m.optimizer.iterations.numpy(),
        arch_iterations=m.arch_optimizer.iterations.numpy(),
        **{f"w{i}": w.numpy() for i, w in enumerate(m.supernet.weights)},
        **{f"o{i}": v.numpy() for i, v in enumerate(m.optimizer.variables + m.arch_optimizer.variables)},
    )
