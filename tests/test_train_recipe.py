"""The X3D recipe (schedule, PyTorch-style weight decay without BN / biases), clip settings, the
time-shuffle control and strategy selection."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from autox3d_tf.training import data as tdata  # noqa: E402
from autox3d_tf.training import strategy as tstrategy  # noqa: E402
from autox3d_tf.training.recipe import (  # noqa: E402
    L2SGD,
    Recipe,
    build_optimizer,
    scaled_learning_rate,
    warmup_cosine_schedule,
    weight_decay_exclusions,
)
from autox3d_tf.zoo import X3D_XS  # noqa: E402


def test_warmup_cosine_schedule():
    schedule = warmup_cosine_schedule(1.0, total_steps=100, warmup_steps=10, warmup_start_factor=0.01)
    lr = [float(schedule(s)) for s in range(101)]
    assert lr[0] == pytest.approx(0.01)
    assert lr[5] == pytest.approx(0.01 + 0.99 * 0.5, rel=1e-5)  # linear warm-up
    assert lr[10] == pytest.approx(1.0)
    assert lr[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)), rel=1e-5)  # cosine
    assert lr[100] == pytest.approx(0.0, abs=1e-7)
    assert all(b <= a + 1e-7 for a, b in zip(lr[10:], lr[11:]))
    plain = warmup_cosine_schedule(0.5, total_steps=20, warmup_steps=0)
    assert float(plain(0)) == pytest.approx(0.5)
    # keras-serialisable (BackupAndRestore / model.save need it)
    assert keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))


def test_scaled_learning_rate():
    assert scaled_learning_rate(1024) == pytest.approx(1.6)
    assert scaled_learning_rate(64) == pytest.approx(0.1)


def test_l2sgd_matches_pytorch_sgd_with_weight_decay():
    """PyTorch: b = mu*b + (g + wd*w); w -= lr*b. Excluded variables: no decay."""
    lr, mu, wd = 0.1, 0.9, 0.05
    w0 = np.array([1.0, -2.0, 3.0], np.float32)
    decayed = keras.Variable(w0.copy(), name="kernel")
    plain = keras.Variable(w0.copy(), name="gamma")
    opt = L2SGD(learning_rate=lr, momentum=mu, weight_decay=wd)
    opt.exclude_from_weight_decay(var_list=[plain])
    grads = [np.array([0.5, 0.1, -0.3], np.float32), np.array([-0.2, 0.4, 0.0], np.float32)]
    ref_w, ref_b = w0.astype(np.float64).copy(), np.zeros(3)
    ref_p, ref_pb = w0.astype(np.float64).copy(), np.zeros(3)
    for g in grads:
        opt.apply([tf.constant(g), tf.constant(g)], [decayed, plain])
        ref_b = mu * ref_b + (g + wd * ref_w)
        ref_w = ref_w - lr * ref_b
        ref_pb = mu * ref_pb + g
        ref_p = ref_p - lr * ref_pb
    np.testing.assert_allclose(decayed.numpy(), ref_w, rtol=1e-6)
    np.testing.assert_allclose(plain.numpy(), ref_p, rtol=1e-6)


def test_weight_decay_skips_batch_norm_and_biases():
    model = X3D_XS(input_shape=(4, 32, 32, 3), classes=3)
    excluded = {v.path for v in weight_decay_exclusions(model)}
    assert "stem_bn/gamma" in excluded and "stem_bn/beta" in excluded
    assert "predictions/bias" in excluded
    assert all(p.endswith(("gamma", "beta", "bias")) for p in excluded)
    kernels = [v for v in model.trainable_variables if v.path.endswith("kernel")]
    assert kernels and not any(v.path in excluded for v in kernels)
    bn_params = sum(len(l.trainable_weights) for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    assert len(excluded) >= bn_params
    opt = build_optimizer(model, learning_rate=0.1, total_steps=100, warmup_steps=5)
    opt.build(model.trainable_variables)
    assert not opt._use_weight_decay(model.get_layer("stem_bn").gamma)
    assert opt._use_weight_decay(model.get_layer("stem_conv_spatial").kernel)
    assert opt.momentum == pytest.approx(0.9) and opt.weight_decay == pytest.approx(5e-5)
    assert Recipe().dropout_rate == 0.5


def test_resolve_clip_follows_a_changed_crop():
    default = tdata.resolve_clip("X3D_XS")
    assert (default.frames, default.rate, default.train_crop, default.test_crop) == (4, 12, 160, 182)
    assert default.scale_range == (182, 228)
    small = tdata.resolve_clip("X3D_XS", crop=64, frames=8, rate=2)
    assert (small.frames, small.rate, small.train_crop, small.test_crop) == (8, 2, 64, 73)
    assert small.scale_range == (73, 91)
    assert tdata.resolve_clip("X3D_S", crop=64, test_crop=64).test_crop == 64


@pytest.mark.parametrize("batched", [False, True])
def test_permute_frames_is_a_permutation_per_clip(batched):
    t = 8
    clip = np.arange(t, dtype=np.float32)[:, None, None, None] * np.ones((t, 2, 2, 3), np.float32)
    x = np.stack([clip, clip + 100]) if batched else clip
    out = tdata.permute_frames(tf.constant(x), tf.constant([3, 4], tf.int64)).numpy()
    assert out.shape == x.shape
    clips = out if batched else out[None]
    firsts = []
    for i, c in enumerate(clips):
        order = c[:, 0, 0, 0] - 100 * i
        assert sorted(order.tolist()) == list(range(t))  # a permutation, frames kept whole
        assert (c == c[:, :1, :1, :1]).all()
        firsts.append(order.tolist())
    assert any(f != list(range(t)) for f in firsts)
    if batched:
        assert firsts[0] != firsts[1]  # one permutation per clip


def test_shuffle_frames_dataset_keeps_labels_and_attributes():
    clips = np.arange(6, dtype=np.float32)[None, :, None, None, None] * np.ones((4, 6, 2, 2, 3), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((clips, np.arange(4, dtype=np.int32), np.array([b"a", b"b", b"c", b"d"])))
    ds = ds.batch(2)
    ds.clip_settings = "marker"
    out = tdata.shuffle_frames(ds, seed=1)
    assert out.clip_settings == "marker"
    first = [(x.numpy(), y.numpy(), v.numpy()) for x, y, v in out]
    again = [x.numpy() for x, _, _ in out]
    assert [y.tolist() for _, y, _ in first] == [[0, 1], [2, 3]]
    assert first[1][2].tolist() == [b"c", b"d"]
    orders = [x[i, :, 0, 0, 0].tolist() for x, _, _ in first for i in range(2)]
    assert all(sorted(o) == list(range(6)) for o in orders)
    assert any(o != list(range(6)) for o in orders)
    assert any(not np.array_equal(a, b[0]) for a, b in zip(again, first))  # new permutations each epoch


def test_pick_strategy_single_device(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tstrategy.cluster_spec() is None
    assert tstrategy.is_chief()
    if len(tf.config.list_logical_devices("CPU")) == 1 and not tf.config.list_logical_devices("GPU"):
        assert tstrategy.pick_strategy("auto").num_replicas_in_sync == 1
    assert isinstance(tstrategy.pick_strategy("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError):
        tstrategy.pick_strategy("tpu")


def test_tf_config_roles(monkeypatch, tmp_path):
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert tstrategy.cluster_spec() is not None
    assert not tstrategy.is_chief()
    assert tstrategy.task_dir(str(tmp_path)) == str(tmp_path / "workers" / "worker_1")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert tstrategy.is_chief() and tstrategy.task_dir(str(tmp_path)) == str(tmp_path)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}))
    assert tstrategy.cluster_spec() is None  # one task: no cluster
    monkeypatch.setenv("TF_CONFIG", "{oops")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        tstrategy.cluster_spec()
