"""The cell space of the differentiable search: genotype and network specs (validation, JSON), the
derived network's builder, MACs against the counter on built models, the supernet's mixture (one-hot
weights compute the derived network), and the discretisation within a MACs budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from autox3d_tf.arch.cells import CELL_OPS, CellNetSpec, Genotype, cell_net_macs, op_macs
from autox3d_tf.arch.spec import SpecError
from autox3d_tf.flops import count_macs
from autox3d_tf.models.cell_builder import build_cell_model
from autox3d_tf.search.cell_space import CellSearchSpace, cell_space_preset

USABLE = [op for op in CELL_OPS if op != "zero"]


def _genotype(offset: int = 0, nodes: int = 2) -> Genotype:
    """Every usable operation somewhere in the two cells (normal and reduce take different ones)."""
    ops = itertools.cycle(USABLE[offset:] + USABLE[:offset])
    pairs = lambda: tuple(p for node in range(nodes) for p in ((next(ops), node), (next(ops), node + 1)))  # noqa: E731
    return Genotype(normal=pairs(), reduce=pairs())


def test_genotype_and_spec_validate_and_round_trip(tmp_path):
    genotype = _genotype()
    spec = CellNetSpec("net", genotype, channels=8, layers=4, input_frames=4, input_size=32)
    assert CellNetSpec.from_json(spec.to_json()) == spec
    spec.save(str(tmp_path / "net.json"))
    assert CellNetSpec.load(str(tmp_path / "net.json")) == spec
    for bad, match in (
        (dict(normal=(("p3d_a", 0),), reduce=(("p3d_a", 0),)), "two"),
        (dict(normal=(("p3d_z", 0), ("p3d_a", 1)), reduce=genotype.reduce[:2]), "unknown"),
        (dict(normal=(("zero", 0), ("p3d_a", 1)), reduce=genotype.reduce[:2]), "zero"),
        (dict(normal=(("p3d_a", 0), ("p3d_a", 2)), reduce=genotype.reduce[:2]), "inputs 0..1"),
        (dict(normal=(("p3d_a", 1), ("p3d_b", 1)), reduce=genotype.reduce[:2]), "twice"),
    ):
        with pytest.raises(SpecError, match=match):
            Genotype(**bad)
    with pytest.raises(SpecError, match="unknown field"):
        CellNetSpec.from_dict({**spec.to_dict(), "width": 3})
    with pytest.raises(SpecError, match="total stride"):
        CellNetSpec("net", genotype, layers=4, input_size=4)


@pytest.mark.parametrize("offset,layers", [(0, 3), (4, 4), (7, 1)])
def test_analytic_macs_equal_the_counter_on_the_built_network(offset, layers):
    spec = CellNetSpec("net", _genotype(offset), channels=8, layers=layers, input_frames=4, input_size=32)
    model = build_cell_model(spec, classes=7)
    assert count_macs(model) == cell_net_macs(spec, classes=7)
    x = np.random.default_rng(0).normal(size=(2, 4, 32, 32, 3)).astype("float32")
    assert model(x).shape == (2, 7)


def test_cost_tables_sum_to_the_derived_networks_macs():
    space = cell_space_preset("cells-tiny", classes=5, input_frames=4)
    normal, reduce, fixed = space.cost_tables()
    rng = np.random.default_rng(1)
    for _ in range(3):
        genotype = space.derive(rng.normal(size=normal.shape), rng.normal(size=reduce.shape))
        total = fixed
        for table, pairs in ((normal, genotype.normal), (reduce, genotype.reduce)):
            for k, (op, index) in enumerate(pairs):
                total += table[space.edges.index((k // 2, index)), space.ops.index(op)]
        assert total == space.macs(genotype)
    assert op_macs("identity", 4, 8, 16, 1) == 0 and op_macs("max_pool_1x3x3", 4, 8, 16, 2) == 0


def test_derive_takes_each_nodes_two_strongest_edges_and_meets_a_budget():
    space = CellSearchSpace(ops=("p3d_a", "sep_conv_1x3x3", "max_pool_1x3x3", "zero"), nodes=2, channels=8, layers=3,
                            input_frames=4, input_size=32, classes=3)
    weights = np.full((space.num_edges, 4), -5.0)
    # node 0: edges (0, 0) and (0, 1); node 1: edges from inputs 0, 1 and node 0.
    weights[0, 0] = 3.0   # input 0 -> node 0: p3d_a
    weights[1, 1] = 2.0   # input 1 -> node 0: sep_conv_1x3x3
    weights[2, 3] = 9.0   # input 0 -> node 1: zero, strongest but never chosen: its best other op is weak
    weights[3, 0] = 1.0   # input 1 -> node 1: p3d_a
    weights[4, 2] = 4.0   # node 0 -> node 1: max pool
    genotype = space.derive(weights, weights)
    assert genotype.normal == (("p3d_a", 0), ("sep_conv_1x3x3", 1), ("p3d_a", 1), ("max_pool_1x3x3", 2))
    free = space.macs(genotype)
    budget = free * 0.8
    cheaper = space.derive(weights, weights, macs_target=budget)
    assert space.macs(cheaper) <= budget < free
    assert space.derive(weights, weights, macs_target=1.0) is not None  # unreachable: the cheapest it finds


def test_supernet_with_one_hot_weights_computes_the_derived_network():
    import keras

    from autox3d_tf.search.cell_supernet import CellSuperNet

    keras.utils.set_random_seed(0)
    space = CellSearchSpace(ops=("p3d_b", "sep_conv_3x3x3", "avg_pool_1x3x3", "identity", "zero"), nodes=2,
                            channels=4, layers=3, input_frames=4, input_size=16, classes=3)
    supernet = CellSuperNet(space)
    supernet.build_all()
    for variable in supernet.weights:  # random BatchNorm statistics too, so inference mode is tested
        if "moving_variance" in variable.path:
            variable.assign(np.random.default_rng(2).uniform(0.5, 2.0, variable.shape))
        elif "moving_mean" in variable.path:
            variable.assign(np.random.default_rng(3).normal(0, 0.3, variable.shape))
    supernet.classifier.kernel.assign(np.random.default_rng(4).normal(0, 1, supernet.classifier.kernel.shape))
    rng = np.random.default_rng(5)
    genotype = space.derive(rng.normal(size=(space.num_edges, 5)), rng.normal(size=(space.num_edges, 5)))
    derived = build_cell_model(space.spec(genotype), classes=3, classifier_activation=None)
    assert supernet.copy_weights_to(derived) == sum(1 for layer in derived.layers if layer.weights)
    one_hot = {}
    for kind, pairs in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        w = np.zeros((space.num_edges, 5), "float32")
        w[:, space.ops.index("zero")] = 1.0
        for k, (op, index) in enumerate(pairs):
            e = space.edges.index((k // 2, index))
            w[e] = 0.0
            w[e, space.ops.index(op)] = 1.0
        one_hot[kind] = w
    x = rng.normal(size=(2, 4, 16, 16, 3)).astype("float32")
    mixed = np.asarray(supernet(x, one_hot["normal"], one_hot["reduce"], training=False))
    plain = np.asarray(derived(x, training=False))
    assert np.abs(plain).max() > 1e-3
    np.testing.assert_allclose(mixed, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())


def test_derived_network_trains_and_round_trips_as_keras(tmp_path):
    import keras

    spec = CellNetSpec("net", _genotype(2), channels=4, layers=3, input_frames=4, input_size=16)
    model = build_cell_model(spec, classes=3, classifier_activation=None)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(4, 4, 16, 16, 3)).astype("float32")
    model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "net.keras")
    again = keras.saving.load_model(tmp_path / "net.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
