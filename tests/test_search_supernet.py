"""The weight-sharing supernet: a sampled architecture is exactly the built network with the
selected channels' weights; one graph for every architecture; only the chosen branch trains."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from autox3d_tf.search import SearchSpace, SuperNet


def _space():
    return SearchSpace(
        stage_widths=((8, 16), (16, 24), (24, 32), (32, 48)), max_depths=(1, 2, 2, 1),
        block_types=("3x3x3", "1x3x3", "5x3x3", "2+1d", "3x5x5"), expansions=(1.5, 2.25, 3.0),
        attentions=("none", "se"), input_frames=4, input_size=32, stem_temporal_kernel=3,
        head_width=24, head_hidden=16, classes=5, name="test",
    )


def _net(space, group=None, seed=0):
    net = SuperNet(space, bn_group_size=group)
    net.build()
    rng = np.random.default_rng(seed)
    for v in net.trainable_variables:  # non-trivial BN / bias parameters
        if any(k in v.path for k in ("gamma", "beta", "bias")):
            v.assign((rng.normal(size=v.shape) * 0.5 + ("gamma" in v.path)).astype("float32"))
    net.classifier_kernel.assign(net.classifier_kernel * 100.0)
    return net


def test_sampled_architecture_equals_built_model_with_inherited_weights():
    space = _space()
    net = _net(space)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(3, 4, 32, 32, 3)).astype("float32"))
    seen_types = set()
    for trial in range(5):
        c = np.array([rng.integers(d.size) for d in space.decisions])
        if trial == 0:
            c[: space.num_stages] = 0  # narrowest widths
        seen_types.update(space.decisions[i].candidates[c[i]] for i in range(space.num_stages, space.num_decisions, 3))
        seed = tf.constant([trial, 9], tf.int64)
        y = net(x, tf.constant(c), seed).numpy()
        ref = net.subnet(c, seed.numpy())(x, training=True).numpy()
        assert np.abs(y).max() > 0.1
        np.testing.assert_allclose(y, ref, atol=2e-4 * np.abs(ref).max())
    assert len(seen_types) >= 4


def test_channel_masks_are_random_subsets_of_the_chosen_size():
    space = _space()
    net = _net(space)
    c = np.zeros(space.num_decisions, np.int32)
    c[0] = 1  # stage 1 width 16 of 16: all; stage 2 width 16 of 24
    m1 = net.masks(tf.constant(c), tf.constant([0, 1], tf.int64))
    m2 = net.masks(tf.constant(c), tf.constant([0, 2], tf.int64))
    assert m1["stage_masks"][0].numpy().sum() == 16
    assert m1["stage_masks"][1].numpy().sum() == 16 and m1["stage_masks"][1].shape[0] == 24
    inner = [m[1].numpy() for m in (m1["stage2_block0"], m2["stage2_block0"])]
    assert inner[0].sum() == inner[1].sum() == int(1.5 * 16)
    picks = [np.flatnonzero(m["stage_masks"][2].numpy()) for m in (m1, m2)]
    assert len(picks[0]) == 24
    all_masks = [np.flatnonzero(net.masks(tf.constant(c), tf.constant([0, s], tf.int64))["stage_masks"][2].numpy()) for s in range(8)]
    assert len({tuple(p) for p in all_masks}) > 1  # fair selection: not always the same prefix
    assert any(tuple(p) != tuple(range(24)) for p in all_masks)


def test_one_trace_for_all_architectures_and_only_chosen_branch_gets_gradients():
    space = _space()
    net = _net(space)
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 32, 32, 3)).astype("float32"))

    @tf.function
    def loss_and_grads(choices, seed):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(net(x, choices, seed)))
        return loss, tape.gradient(loss, net.trainable_variables)

    rng = np.random.default_rng(3)
    block = net.blocks[2][2]  # stage2_block1 (may be skipped)
    i = space.block_decision_index(1, 1)
    losses = []
    for t in range(3):
        c = np.array([rng.integers(d.size) for d in space.decisions])
        c[i], c[i + 2] = t, 0  # types 0, 1, 2 in stage2_block1, no SE
        loss, grads = loss_and_grads(tf.constant(c), tf.constant([t, 0], tf.int64))
        losses.append(float(loss))
        by_name = {v.path: g for v, g in zip(net.trainable_variables, grads)}
        for j, kernels in enumerate(block.branch_kernels):
            norm = sum(float(tf.reduce_sum(tf.abs(by_name[k.path]))) for k in kernels if by_name[k.path] is not None)
            assert (norm > 0) == (j == t), (t, j, norm)
        se = by_name[block.se_reduce_kernel.path]
        assert se is None or float(tf.reduce_sum(tf.abs(se))) == 0.0
    assert loss_and_grads.experimental_get_tracing_count() == 1
    assert len(set(losses)) == 3
    graph = loss_and_grads.get_concrete_function(tf.constant(c), tf.constant([0, 0], tf.int64)).graph
    ops = {op.type for op in graph.get_operations()}
    assert ops & {"Case", "StatelessCase"}  # the type switch
    assert ops & {"If", "StatelessIf"}  # skip


def test_skipped_block_is_identity():
    space = _space()
    net = _net(space)
    x = tf.constant(np.random.default_rng(4).normal(size=(2, 4, 32, 32, 3)).astype("float32"))
    c = np.zeros(space.num_decisions, np.int32)
    i = space.block_decision_index(1, 1)
    skip = c.copy()
    skip[i] = len(space.block_types)
    seed = tf.constant([0, 0], tf.int64)
    # With stage2_block1 skipped, the network is the one without that block.
    ref = net.subnet(skip, seed.numpy())
    assert not any(layer.name.startswith("stage2_block1") for layer in ref.layers)
    np.testing.assert_allclose(net(x, tf.constant(skip), seed).numpy(), ref(x, training=True).numpy(), rtol=1e-4, atol=1e-3)


def test_ghost_batch_norm_groups_equal_separate_batches():
    space = _space()
    grouped = _net(space, group=2)
    whole = SuperNet(space)
    whole.build()
    for a, b in zip(whole.weights, grouped.weights):
        a.assign(b)
    x = tf.constant(np.random.default_rng(5).normal(size=(4, 4, 32, 32, 3)).astype("float32"))
    c = tf.constant(np.ones(space.num_decisions, np.int32))
    seed = tf.constant([1, 1], tf.int64)
    y = grouped(x, c, seed).numpy()
    halves = np.concatenate([whole(x[:2], c, seed).numpy(), whole(x[2:], c, seed).numpy()])
    np.testing.assert_allclose(y, halves, rtol=1e-4, atol=1e-4 * np.abs(y).max())
