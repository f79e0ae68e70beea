"""The autox3d-v1 search space as data: decisions, encode/decode, exact MACs tables."""

from __future__ import annotations

import numpy as np
import pytest

from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.spec import SpecError
from autox3d_tf.search import ArchDistribution, autox3d_v1


def _random_choices(space, rng):
    return [int(rng.integers(d.size)) for d in space.decisions]


def test_autox3d_v1_decisions():
    space = autox3d_v1()
    assert space.max_depths == (3, 5, 11, 7)
    assert [len(w) for w in space.stage_widths] == [4, 5, 5, 5]  # 24 x {.5,.75,1,1.25,1.5} -> 8,16,24,32,32
    assert space.stage_widths[3] == (96, 144, 192, 240, 288)
    assert space.num_decisions == 4 + 3 * 26
    first = space.decisions[space.block_decision_index(0, 0)]
    later = space.decisions[space.block_decision_index(0, 1)]
    assert first.candidates == ("3x3x3", "1x3x3", "5x3x3", "2+1d", "3x5x5")
    assert later.candidates == first.candidates + ("skip",)
    assert autox3d_v1("L").max_depths == (5, 10, 25, 15)
    # 4*5^3 widths x 26 blocks of (5 or 6 types) x 4 expansions x 2 attentions
    expected = np.log10(4 * 5**3) + 4 * np.log10(40) + 22 * np.log10(48)
    assert space.log10_size() == pytest.approx(expected)


def test_decode_encode_round_trip_and_errors():
    space = autox3d_v1()
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = _random_choices(space, rng)
        spec = space.decode(c)
        back = space.encode(spec)
        assert space.decode(back) == spec
    with pytest.raises(ValueError):
        space.decode([0] * (space.num_decisions - 1))
    spec = space.decode([0] * space.num_decisions)
    with pytest.raises(SpecError, match="width"):
        space.encode(spec.replace(stages=(spec.stages[0].__class__(width=40, blocks=spec.stages[0].blocks),) + spec.stages[1:]))


def test_x3d_m_is_a_point_of_the_space():
    from autox3d_tf.arch.x3d import x3d_spec

    spec = x3d_spec("M")
    space = autox3d_v1(input_frames=spec.input_frames, input_size=spec.input_size)
    c = space.encode(spec)
    assert space.arch_macs(c) == spec_macs(spec)


def test_table_macs_equal_spec_macs_exactly():
    space = autox3d_v1()
    dist = ArchDistribution(space)
    rng = np.random.default_rng(1)
    choices = np.array([_random_choices(space, rng) for _ in range(200)])
    table = dist.numpy_macs(choices)
    graph = dist.macs(choices).numpy()
    exact = np.array([space.arch_macs(c) for c in choices])
    np.testing.assert_array_equal(table, exact)
    np.testing.assert_array_equal(graph, exact)
    lo, hi = space.arch_macs(space.extreme_choices(False)), space.arch_macs(space.extreme_choices(True))
    assert lo <= exact.min() and exact.max() <= hi
    assert lo < 0.5e9 and hi > 15e9


@pytest.mark.parametrize("index", range(4))
def test_space_macs_match_counter_of_built_model_within_1_percent(index):
    """MACs from the space's tables agree with autox3d_tf.flops.count_macs of the built network."""
    from autox3d_tf.flops import count_macs
    from autox3d_tf.models.builder import build_model

    space = autox3d_v1(input_frames=8, input_size=160)
    rng = np.random.default_rng(100 + index)
    c = _random_choices(space, rng)
    if index == 3:
        c = space.extreme_choices(largest=True)
    predicted = float(ArchDistribution(space).numpy_macs(np.array([c]))[0])
    model = build_model(space.decode(c), classes=space.classes)
    counted = count_macs(model)
    assert abs(predicted - counted) / counted < 0.01, (predicted, counted)
