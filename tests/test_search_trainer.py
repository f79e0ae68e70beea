"""ArchitectureSearch driven by model.fit: warm-up, metrics, and the MACs target (issue 5, 7b)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.search import ArchDistribution, ArchitectureSearch, SearchSpace, search_dataset
from autox3d_tf.search.trainer import build_weight_optimizer
from autox3d_tf.search.callbacks import DistributionHistory
from autox3d_tf.training.recipe import weight_decay_exclusions


def budget_space():
    return SearchSpace(
        stage_widths=((8, 16, 24), (16, 24, 32), (24, 32, 48), (32, 48, 64)), max_depths=(1, 2, 2, 1),
        block_types=("3x3x3", "1x3x3", "5x3x3"), expansions=(1.5, 2.25, 3.0), attentions=("none", "se"),
        input_frames=4, input_size=32, stem_temporal_kernel=3, head_width=32, head_hidden=0, classes=4, name="budget",
    )


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4, 32, 32, 3)).astype("float32")
    y = (np.arange(64) % 4).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(8, drop_remainder=True)
    return search_dataset(ds, ds)


def test_search_dataset_format_is_checked():
    m = ArchitectureSearch(budget_space(), 1e6)
    m.compile("sgd")
    with pytest.raises(ValueError, match="search_dataset"):
        m.train_step((tf.zeros((2, 4, 32, 32, 3)), tf.zeros((2,), tf.int32)))
    with pytest.raises(ValueError):
        ArchitectureSearch(budget_space(), 1e6, num_samples=2, min_samples=3)


def test_adamw_does_not_decay_batch_norm_parameters_and_biases():
    m = ArchitectureSearch(budget_space(), 1e6)
    opt = build_weight_optimizer(m, "adamw", learning_rate=0.1, weight_decay=0.5)
    m.compile(opt)
    weights = m.supernet.trainable_variables
    excluded = {id(v) for v in weight_decay_exclusions(m)}
    norm_or_bias = {id(v) for v in weights if v.path.endswith(("_gamma", "_beta", "_bias"))}
    assert excluded == norm_or_bias and any(v.path.endswith("se_reduce_bias") for v in weights)
    assert len(excluded) < len(weights)
    # A step with zero gradients only applies the decoupled decay: to the kernels, not to the others.
    for v in weights:
        v.assign(tf.ones_like(v))
    opt.apply([tf.zeros_like(v) for v in weights], weights)
    for v in weights:
        expected = 1.0 if id(v) in excluded else 1.0 - 0.1 * 0.5
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)
    assert build_weight_optimizer(m, "sgd").weight_decay is None
    with pytest.raises(ValueError, match="optimizer must be one of"):
        build_weight_optimizer(m, "adam")


@pytest.mark.slow
def test_macs_target_binds_and_derived_architecture_is_within_5_percent_under(tmp_path):
    import keras

    space = budget_space()
    lo = space.arch_macs(space.extreme_choices(largest=False))
    expected0 = float(ArchDistribution(space).expected_macs())
    target = lo + 0.4 * (expected0 - lo)  # binds: well below the uniform distribution's expectation
    keras.utils.set_random_seed(0)
    m = ArchitectureSearch(space, target, penalty=5.0, num_samples=4, min_samples=4, warmup_steps=5, seed=0)
    m.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.optimizers.Adam(0.1))
    history = DistributionHistory(str(tmp_path / "history.json"), every_n_steps=5)
    logs = m.fit(_data(), epochs=1, steps_per_epoch=5, verbose=0, callbacks=[history]).history
    for key in ("loss", "accuracy", "entropy", "expected_gmacs", "argmax_gmacs", "held_out_loss", "sample_gmacs", "samples"):
        assert key in logs, key
    # Warm-up: the distribution did not move and Adam has not counted a step.
    np.testing.assert_array_equal(m.distribution.logits.numpy(), 0.0)
    assert int(m.arch_optimizer.iterations.numpy()) == 0
    assert logs["samples"][-1] == 0
    logs = m.fit(_data(), epochs=4, initial_epoch=1, steps_per_epoch=10, verbose=0, callbacks=[history]).history
    assert logs["samples"][-1] >= 4
    expected = float(m.distribution.expected_macs())
    argmax = float(m.distribution.macs(m.distribution.argmax()))
    choices, derived = m.derive()
    print(f"target {target / 1e6:.3f} MMACs: uniform E {expected0 / 1e6:.3f} -> E {expected / 1e6:.3f}, "
          f"argmax {argmax / 1e6:.3f}, derived {derived / 1e6:.3f}")
    assert expected0 > 1.3 * target
    assert expected < 1.05 * target  # the hinge pulled the distribution to the budget
    assert argmax <= 1.05 * target
    assert 0.95 * target <= derived <= target
    assert derived == space.arch_macs(choices)
    assert [r["step"] for r in history.records][:3] == [0, 5, 10]
    assert len(history.samples) == 35
