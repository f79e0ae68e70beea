"""ArchDistribution: stateless sampling keyed by (seed, step), log-probabilities, entropy, MACs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.search import ArchDistribution, SearchSpace, autox3d_v1


def _tiny_space():
    return SearchSpace(
        stage_widths=((8, 16), (16, 24)), max_depths=(1, 2), block_types=("3x3x3", "1x3x3"),
        expansions=(1.5, 3.0), attentions=("none", "se"), input_frames=4, input_size=32,
        head_width=16, head_hidden=0, classes=3, name="tiny",
    )


def _logsoftmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def dist():
    d = ArchDistribution(autox3d_v1())
    d.logits.assign(np.random.default_rng(0).normal(size=d.logits.shape).astype("float32"))
    return d


def test_sampling_is_a_function_of_seed_and_step(dist):
    a = dist.sample(tf.constant([7, 3], tf.int64)).numpy()
    b = dist.sample(tf.constant([7, 3], tf.int64)).numpy()
    c = dist.sample(tf.constant([7, 4], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    for i, d in enumerate(dist.space.decisions):
        assert 0 <= a[i] < d.size  # padded candidates are never drawn


def test_sample_frequencies_follow_probabilities(dist):
    draws = np.stack([dist.sample(tf.constant([1, s], tf.int64)).numpy() for s in range(1500)])
    p = dist.probs().numpy()
    i = dist.space.block_decision_index(1, 1)  # a 6-candidate type decision
    freq = np.bincount(draws[:, i], minlength=6) / len(draws)
    np.testing.assert_allclose(freq, p[i, :6], atol=4 * np.sqrt(0.25 / len(draws)))


def test_log_prob_and_entropy_match_numpy(dist):
    mask = dist.space.candidate_mask()
    logits = np.where(mask, dist.logits.numpy(), -np.inf)
    logp = _logsoftmax(logits)
    choices = np.stack([dist.sample(tf.constant([2, s], tf.int64)).numpy() for s in range(5)])
    expected = logp[np.arange(len(mask))[None], choices].sum(-1)
    np.testing.assert_allclose(dist.log_prob(choices).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(dist.log_prob(choices[0]).numpy(), expected[0], rtol=1e-5)
    p = np.exp(logp)
    entropy = -np.nansum(np.where(mask, p * logp, 0.0))
    np.testing.assert_allclose(dist.entropy().numpy(), entropy, rtol=1e-5)
    uniform = ArchDistribution(dist.space)
    np.testing.assert_allclose(uniform.entropy().numpy(), uniform.max_entropy(), rtol=1e-6)


def test_expected_macs_exact_by_enumeration():
    space = _tiny_space()
    d = ArchDistribution(space)
    d.logits.assign(np.random.default_rng(3).normal(size=d.logits.shape).astype("float32"))
    p = d.probs().numpy().astype(np.float64)  # the reference sums in float64
    total = 0.0
    all_choices = list(itertools.product(*[range(x.size) for x in space.decisions]))
    macs = d.numpy_macs(np.array(all_choices))
    for c, m in zip(all_choices, macs):
        total += np.prod([p[i, ci] for i, ci in enumerate(c)]) * m
    # exact up to the rounding of float32 probabilities (a wrong MACs table is off by far more)
    assert d.expected_macs().numpy() == pytest.approx(total, rel=1e-6)
    for c in all_choices[:: max(1, len(all_choices) // 40)]:
        assert macs[all_choices.index(c)] == space.arch_macs(c)


def test_expected_macs_agree_with_monte_carlo(dist):
    draws = np.stack([dist.sample(tf.constant([5, s], tf.int64)).numpy() for s in range(1500)])
    m = dist.macs(draws).numpy()
    assert abs(dist.expected_macs().numpy() - m.mean()) < 4 * m.std() / np.sqrt(len(m))


def test_argmax_spec(dist):
    spec = dist.argmax_spec()
    assert dist.space.encode(spec) == [int(c) for c in dist.argmax().numpy()] or spec == dist.space.decode(dist.argmax().numpy())
    assert dist.space.arch_macs(dist.argmax().numpy()) == dist.macs(dist.argmax()).numpy()
    probs = dist.probabilities_by_decision()
    assert len(probs) == dist.space.num_decisions
    for d in dist.space.decisions:
        assert len(probs[d.name]) == d.size and sum(probs[d.name]) == pytest.approx(1.0, abs=1e-5)
