"""A tiny differentiable-search problem for the tests, and the bodies of their subprocesses
(``python -c "from tests.helpers.darts import ...; ..."`` from the repository root)."""

from __future__ import annotations

import os
import signal

import numpy as np

GLOBAL_BATCH = 4
STEPS = 3
EPOCHS = 3


def tiny_cell_space(layers: int = 1):
    """One cell of one node over three candidates and zero: traced in seconds."""
    from autox3d_tf.search.cell_space import CellSearchSpace

    return CellSearchSpace(ops=("p3d_a", "sep_conv_1x3x3", "max_pool_1x3x3", "zero"), nodes=1, channels=4,
                           layers=layers, stem_multiplier=2, input_frames=4, input_size=16, classes=3, name="tiny")


def tiny_darts_dataset(batch: int):
    """STEPS batches of random clips and a held-out batch, paired as `search_dataset` does."""
    import tensorflow as tf

    from autox3d_tf.search import search_dataset

    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 4, 16, 16, 3)).astype("float32")
    y = (np.arange(GLOBAL_BATCH * STEPS) % 3).astype("int32")
    xv = rng.normal(size=(GLOBAL_BATCH, 4, 16, 16, 3)).astype("float32")
    yv = (np.arange(GLOBAL_BATCH) % 3).astype("int32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    held = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch, drop_remainder=True)
    return search_dataset(train, held)


def make_darts(strategy=None, second_order: bool = False, layers: int = 1, macs_target: float | None = None):
    import keras
    import tensorflow as tf

    from autox3d_tf.search.differentiable import DifferentiableSearch

    with (strategy or tf.distribute.get_strategy()).scope():
        m = DifferentiableSearch(tiny_cell_space(layers), macs_target, second_order=second_order, seed=2)
        m.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.SGD(1.0))
    return m


def run_darts_mirrored(out: str) -> None:
    """Subprocess body: 2 logical CPUs; 1 replica x global batch vs 2 replicas x half batch."""
    import keras
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    keras.utils.set_random_seed(0)
    one = make_darts(tf.distribute.OneDeviceStrategy("/cpu:0"))
    init = [w.numpy() for w in one.supernet.weights + one.arch_weights.weights]
    one.fit(tiny_darts_dataset(GLOBAL_BATCH), epochs=1, verbose=0)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = make_darts(mirrored)
    for v, value in zip(two.supernet.weights + two.arch_weights.weights, init):
        v.assign(value)
    two.fit(tiny_darts_dataset(GLOBAL_BATCH), epochs=1, verbose=0)
    w1 = [w.numpy() for w in one.supernet.weights]
    w2 = [w.numpy() for w in two.supernet.weights]
    np.savez(out, replicas=mirrored.num_replicas_in_sync,
             weight_diff=max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
             weight_change=max(float(np.abs(a - b).max()) for a, b in zip(w1, init)),
             logits_one=one.arch_weights.normal.numpy(), logits_two=two.arch_weights.normal.numpy(),
             logits_init=init[len(w1)])


def run_darts_search(ckpt_dir: str, out: str, kill_at_step: int = 0) -> None:
    """Subprocess body: an EPOCHS-epoch search with `SearchCheckpoint`; SIGKILLs itself at ``kill_at_step``."""
    import keras

    from autox3d_tf.search.callbacks import ArchWeightsHistory, SearchCheckpoint

    keras.utils.set_random_seed(0)
    m = make_darts()

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if kill_at_step and int(self.model.optimizer.iterations.numpy()) == kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)

    ckpt = SearchCheckpoint(ckpt_dir)
    history = ArchWeightsHistory(os.path.join(ckpt_dir, "history.json"))
    m.fit(tiny_darts_dataset(GLOBAL_BATCH), epochs=EPOCHS, verbose=0, callbacks=[ckpt, history, Kill()])
    np.savez(out, logits=m.arch_weights.normal.numpy(),
             restored_epoch=-1 if ckpt.restored_epoch is None else ckpt.restored_epoch,
             iterations=m.optimizer.iterations.numpy(),
             **{f"w{i}": w.numpy() for i, w in enumerate(m.supernet.weights)},
             **{f"o{i}": v.numpy() for i, v in enumerate(m.optimizer.variables + m.arch_optimizer.variables)})


def motion_clips(n: int, seed: int, shuffle_frames: bool = False, frames: int = 8, size: int = 32):
    """``n`` normalised clips of the synthetic motion classes 0 (rising) / 1 (falling); with
    ``shuffle_frames`` each clip's frames are permuted (the control: no motion to see)."""
    from autox3d_tf.data.synthetic import render_clip

    y = np.arange(n) % 2
    x = np.stack([render_clip(int(c), np.random.default_rng([seed, i]), size=size, frames=frames)
                  for i, c in enumerate(y)])
    if shuffle_frames:
        rng = np.random.default_rng(seed + 99)
        x = np.stack([clip[rng.permutation(frames)] for clip in x])
    return ((x / 255.0 - 0.45) / 0.225).astype("float32"), y.astype("int32")


MOTION_OPS = ("p3d_a", "sep_conv_1x3x3", "max_pool_1x3x3")


def run_motion_darts(shuffle_frames: bool = False, epochs: int = 16, steps: int = 25, warmup_steps: int = 100):
    """The evidence search: one cell of one node whose two edges choose among a temporal operation
    (p3d_a) and two purely spatial ones, on motion classes, the stem blind to time. Returns the
    temporal operation's weight on each edge and the supernet's held-out accuracy."""
    import keras
    import tensorflow as tf

    from autox3d_tf.search import search_dataset
    from autox3d_tf.search.cell_space import CellSearchSpace
    from autox3d_tf.search.differentiable import DifferentiableSearch

    space = CellSearchSpace(ops=MOTION_OPS, nodes=1, channels=16, layers=1, stem_multiplier=1, stem_temporal_kernel=1,
                            input_frames=8, input_size=32, classes=2, name="motion")
    x, y = motion_clips(512, 0, shuffle_frames)
    xv, yv = motion_clips(128, 1, shuffle_frames)
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(512, seed=0).repeat().batch(16, drop_remainder=True)
    held = tf.data.Dataset.from_tensor_slices((xv, yv)).shuffle(128, seed=1).repeat().batch(16, drop_remainder=True)
    keras.utils.set_random_seed(0)
    m = DifferentiableSearch(space, warmup_steps=warmup_steps, seed=1)
    m.compile(keras.optimizers.Adam(3e-3), keras.optimizers.Adam(0.01))
    m.fit(search_dataset(train, held), epochs=epochs, steps_per_epoch=steps, verbose=0)
    normal, _ = m.probabilities()
    _, accuracy = m.evaluate(tf.data.Dataset.from_tensor_slices((xv, yv)).batch(16), verbose=0)
    temporal = [float(p) for p in normal[:, MOTION_OPS.index("p3d_a")]]
    print(f"shuffled frames {shuffle_frames}: P(p3d_a) per edge {np.round(temporal, 3)}, weights "
          f"{np.round(normal, 3).tolist()}, held-out accuracy {accuracy:.3f}", flush=True)
    return temporal, float(accuracy)
