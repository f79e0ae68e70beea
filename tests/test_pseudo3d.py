"""Pseudo-3D block types (issue 14.1): p3d-b (parallel), p3d-c (serial + residual), 2+1d-d2 (dilated).

Descriptors and `combine_pseudo3d`, the temporally dilated `DepthwiseConv3D` against a float64
NumPy reference, spec JSON round trip and validation, the built graph (names, wiring), the
analytic MACs against the counter on built models, BatchNorm folding, the search space and the
searchers that cannot handle the new types, and `autox3d info` on such a spec.
"""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest

from autox3d_tf import flops
from autox3d_tf.arch import naming
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.spec import (
    BLOCK_KERNELS,
    BLOCK_TYPES,
    PSEUDO3D_BLOCKS,
    V1_BLOCK_TYPES,
    ArchSpec,
    BlockSpec,
    Pseudo3D,
    SpecError,
    StageSpec,
)
from autox3d_tf.layers import DepthwiseConv3D
from autox3d_tf.models import build_model, fuse_for_inference
from autox3d_tf.models.pseudo3d import FOLD_PARTS, PSEUDO3D, combine_pseudo3d, pseudo3d_convs
from autox3d_tf.search.entropy_score import entropy_score
from autox3d_tf.search.space import SearchSpace

NEW_TYPES = ("p3d-b", "p3d-c", "2+1d-d2")
PSEUDO_TYPES = ("2+1d", *NEW_TYPES)


# --------------------------------------------------------------------------------------------
# Descriptors: one definition
# --------------------------------------------------------------------------------------------


def test_descriptors_are_the_spec_ones():
    assert PSEUDO3D is PSEUDO3D_BLOCKS
    assert set(PSEUDO3D) == set(PSEUDO_TYPES)
    topologies = {t: op.topology for t, op in PSEUDO3D.items()}
    assert topologies == {"2+1d": "serial", "p3d-b": "parallel", "p3d-c": "serial_residual", "2+1d-d2": "serial"}
    assert {t: op.temporal_dilation for t, op in PSEUDO3D.items()} == {"2+1d": 1, "p3d-b": 1, "p3d-c": 1, "2+1d-d2": 2}
    for t, op in PSEUDO3D.items():
        assert op.spatial_kernel == (1, 3, 3) and op.temporal_kernel == (3, 1, 1)
        assert BLOCK_KERNELS[t] == op.kernels == BlockSpec(t).kernels
        assert BlockSpec(t).pseudo3d is op
    assert BlockSpec("3x3x3").pseudo3d is None and BlockSpec("skip").pseudo3d is None
    assert set(FOLD_PARTS) == {"serial", "parallel", "serial_residual"}
    with pytest.raises(SpecError, match="topology"):
        Pseudo3D(topology="diagonal")


def test_v1_space_is_unchanged():
    assert V1_BLOCK_TYPES == ("3x3x3", "1x3x3", "5x3x3", "2+1d", "3x5x5")
    assert tuple(BLOCK_KERNELS)[:5] == V1_BLOCK_TYPES  # the old order, new types after it
    assert set(BLOCK_TYPES) == {*V1_BLOCK_TYPES, *NEW_TYPES, "1x5x5", "skip"}  # + E3D's first-stage type
    space = SearchSpace(stage_widths=((8,),), max_depths=(1,))
    assert space.block_types == V1_BLOCK_TYPES


def test_combine_pseudo3d_topologies():
    x = keras.ops.convert_to_tensor(np.full((1, 2), 3.0, np.float32))
    spatial = lambda v: v * 2.0  # noqa: E731
    temporal = lambda v: v + 1.0  # noqa: E731
    got = {t: float(np.asarray(combine_pseudo3d(x, spatial, temporal, t))[0, 0]) for t in ("serial", "parallel", "serial_residual")}
    assert got == {"serial": 7.0, "parallel": 10.0, "serial_residual": 13.0}
    with pytest.raises(ValueError, match="unknown"):
        combine_pseudo3d(x, spatial, temporal, "diagonal")


# --------------------------------------------------------------------------------------------
# Dilation in time
# --------------------------------------------------------------------------------------------


def _reference_temporal(x, kernel, bias, pads, stride, dilation):
    """float64 NumPy: y[f] = sum_i k[i] x[f * stride + i * dilation - pads[0]] + b."""
    k = np.asarray(kernel, np.float64)[:, 0, 0, :, 0]
    xp = np.pad(np.asarray(x, np.float64), [(0, 0), pads, (0, 0), (0, 0), (0, 0)])
    span = (k.shape[0] - 1) * dilation + 1
    frames = (xp.shape[1] - span) // stride + 1
    out = np.stack(
        [sum(k[i] * xp[:, f * stride + i * dilation] for i in range(k.shape[0])) for f in range(frames)], axis=1
    )
    return out + (0.0 if bias is None else np.asarray(bias, np.float64))


@pytest.mark.parametrize(
    "kt, dilation, padding, stride, use_bias",
    [
        (3, 2, (2, 0, 0), 1, False),  # the 2+1d-d2 block: length-preserving ("same")
        (3, 2, (2, 0, 0), 1, True),
        (3, 2, "same", 1, True),
        (3, 2, "valid", 1, False),
        (3, 2, (1, 0, 0), 1, True),  # explicit, not "same": the tensor is padded
        (3, 3, ((4, 1), (0, 0), (0, 0)), 2, True),  # asymmetric, temporal stride 2
        (2, 2, (1, 0, 0), 1, False),  # even kernel
        (3, 1, (1, 0, 0), 1, True),  # dilation 1: unchanged
    ],
)
def test_dilated_temporal_conv_matches_numpy(kt, dilation, padding, stride, use_bias):
    rng = np.random.default_rng(kt * 10 + dilation)
    x = rng.normal(size=(2, 7, 3, 5, 4)).astype(np.float32)
    layer = DepthwiseConv3D(
        (kt, 1, 1), strides=(stride, 1, 1), padding=padding, dilation_rate=(dilation, 1, 1), use_bias=use_bias,
        bias_initializer="random_normal",
    )
    y = np.asarray(layer(x))
    pads = layer._pads(x.shape)[0]
    ref = _reference_temporal(x, layer.kernel, layer.bias if use_bias else None, pads, stride, dilation)
    assert y.shape == ref.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, ref, atol=2e-5, rtol=1e-5)


def test_dilation_config_and_errors():
    layer = DepthwiseConv3D((3, 1, 1), padding=(2, 0, 0), dilation_rate=(2, 1, 1))
    assert layer.dilation_rate == (2, 1, 1)
    clone = DepthwiseConv3D.from_config(layer.get_config())
    assert clone.dilation_rate == (2, 1, 1)
    assert DepthwiseConv3D(3).dilation_rate == (1, 1, 1)
    with pytest.raises(ValueError, match="only dilate time"):
        DepthwiseConv3D((3, 1, 1), dilation_rate=(1, 2, 1))
    with pytest.raises(ValueError, match=r"\(kt, 1, 1\) kernel"):
        DepthwiseConv3D((3, 3, 3), dilation_rate=(2, 1, 1))
    with pytest.raises(ValueError, match="spatial strides 1"):
        DepthwiseConv3D((3, 1, 1), strides=(1, 2, 2), dilation_rate=(2, 1, 1))
    with pytest.raises(ValueError, match="pads only time"):
        DepthwiseConv3D((3, 1, 1), padding=(2, 1, 1), dilation_rate=(2, 1, 1))


def test_pseudo3d_convs_place_the_stride():
    x = np.random.default_rng(0).normal(size=(2, 4, 9, 9, 3)).astype(np.float32)
    for t, op in PSEUDO3D.items():
        spatial, temporal = pseudo3d_convs(op, 2)
        y = np.asarray(combine_pseudo3d(x, spatial, temporal, op.topology))
        assert y.shape == (2, 4, 5, 5, 3), t
        assert spatial.strides == (1, 2, 2)
        assert temporal.strides == ((1, 2, 2) if op.topology == "parallel" else (1, 1, 1))
        assert temporal.dilation_rate[0] == op.temporal_dilation
    # p3d-b at stride 2: the temporal branch is the temporal conv of the subsampled input
    _, temporal = pseudo3d_convs(PSEUDO3D["p3d-b"], 2)
    y = np.asarray(temporal(x))
    sub = DepthwiseConv3D((3, 1, 1), padding=(1, 0, 0))
    sub.build(x.shape)
    sub.set_weights(temporal.get_weights())
    np.testing.assert_allclose(y, np.asarray(sub(x[:, :, ::2, ::2])), atol=1e-5)


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


def tiny_spec(block_type: str, name: str = "p3d_tiny") -> ArchSpec:
    """Stride 1 and 2, with and without SE, in three stages."""
    return ArchSpec(
        name=name,
        stages=(
            StageSpec(8, (BlockSpec(block_type, 1.5), BlockSpec(block_type, 2.0, "se")), stride=1),
            StageSpec(16, (BlockSpec(block_type, 1.5, "se"),), stride=2),
            StageSpec(24, (BlockSpec(block_type, 2.25), BlockSpec("skip")), stride=2),
        ),
        input_frames=4,
        input_size=48,
        stem_width=8,
        stem_temporal_kernel=3,
        head_width=32,
        head_hidden=0,
    )


@pytest.mark.parametrize("block_type", NEW_TYPES)
def test_spec_json_round_trip(block_type, tmp_path):
    spec = tiny_spec(block_type)
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec
    assert again.stages[0].blocks[0].type == block_type
    path = tmp_path / "spec.json"
    spec.save(str(path))
    assert ArchSpec.load(str(path)) == spec
    data = json.loads(spec.to_json())
    data["stages"][0]["blocks"][0]["type"] = block_type.upper()
    with pytest.raises(SpecError, match=r"spec.stages\[0\].blocks\[0\].*block type") as err:
        ArchSpec.from_dict(data)
    assert all(t in str(err.value) for t in NEW_TYPES)  # the message lists the valid types


@pytest.mark.parametrize("block_type", NEW_TYPES)
def test_built_block_names_and_wiring(block_type):
    model = build_model(tiny_spec(block_type), classes=5)
    prefix = naming.block_prefix(2, 0)  # stride 2
    layer = lambda role: model.get_layer(naming.block_layer(prefix, role))  # noqa: E731
    spatial, temporal = layer("conv_b_0"), layer("conv_b_1")
    assert spatial.kernel_size == (1, 3, 3) and temporal.kernel_size == (3, 1, 1)
    op = PSEUDO3D[block_type]
    assert temporal.dilation_rate == (op.temporal_dilation, 1, 1)
    assert temporal.padding == ((op.temporal_dilation, op.temporal_dilation), (0, 0), (0, 0))
    relu_a = layer(naming.RELU_A).output
    if op.topology == "parallel":
        assert temporal.input is relu_a and temporal.strides == (1, 2, 2)
    else:
        assert temporal.input is spatial.output
    if op.topology == "serial":
        assert layer(naming.BN_B).input is temporal.output
        with pytest.raises(ValueError):
            layer(naming.CONV_B_ADD)
    else:
        add = layer(naming.CONV_B_ADD)
        assert layer(naming.BN_B).input is add.output
        inputs = add.input
        assert spatial.output in inputs and temporal.output in inputs
    assert naming.parse_block_layer(naming.block_layer(prefix, naming.BN_B)) == (2, 0, "bn_b")


# --------------------------------------------------------------------------------------------
# MACs and BatchNorm folding on built models
# --------------------------------------------------------------------------------------------


def _randomize_batch_norms(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)]
            )


@pytest.mark.parametrize("block_type", PSEUDO_TYPES)
def test_macs_and_folding(block_type):
    spec = tiny_spec(block_type)
    model = build_model(spec, classes=5, classifier_activation=None)
    # spec_macs counts every block (stride 1 and 2, with and without SE) as the built graph does
    assert spec_macs(spec, classes=5) == flops.count_macs(model)
    assert spec_macs(spec, frames=2, size=32, classes=5) == flops.count_macs(
        build_model(spec, classes=5, input_shape=(2, 32, 32, 3))
    )
    # same cost as "2+1d": the same two convolutions on maps of the same shapes
    assert spec_macs(spec, classes=5) == spec_macs(tiny_spec("2+1d"), classes=5)

    # folding: the feature map (O(1) values, unlike the tiny logits of a fresh head) is unchanged
    model = build_model(spec, include_top=False)
    _randomize_batch_norms(model)
    folded = fuse_for_inference(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    prefix = naming.block_prefix(2, 0)
    parts = FOLD_PARTS[PSEUDO3D[block_type].topology]
    for i, part in enumerate(parts):
        conv = folded.get_layer(naming.block_layer(prefix, f"conv_b_{i}"))
        assert conv.use_bias == ("bias" in part)
    x = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype(np.float32)
    ref = np.asarray(model(x, training=False))
    got = np.asarray(folded(x))
    assert got.shape == ref.shape == (2, 4, 6, 6, 32) and np.abs(ref).max() > 0.1
    np.testing.assert_allclose(got, ref, atol=1e-4 * np.abs(ref).max(), rtol=1e-4)
    assert flops.count_macs(folded) <= flops.count_macs(model)


# --------------------------------------------------------------------------------------------
# The search: the space takes the new types; the searchers that cannot, say so
# --------------------------------------------------------------------------------------------


def test_search_space_with_new_types():
    space = SearchSpace(
        stage_widths=((8, 16),), max_depths=(2,), block_types=("1x3x3", *NEW_TYPES), expansions=(1.5,),
        input_frames=4, input_size=32, stem_width=8, stem_temporal_kernel=3, head_width=16, head_hidden=0, classes=5,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        choices = [int(rng.integers(d.size)) for d in space.decisions]
        spec = space.decode(choices)
        seen |= {b.type for s in spec.stages for b in s.blocks}
        assert space.encode(spec) == choices or spec.stages[0].blocks[-1].is_skip
        assert space.arch_macs(choices) == spec_macs(spec, classes=5)
    assert seen >= set(NEW_TYPES)
    constant, head, blocks = space.macs_tables()  # the in-graph MACs tables take the new types
    assert all(np.all(t[..., : len(space.block_types), :, :] > 0) for t in blocks)
    with pytest.raises(SpecError, match="block type 'p3d-z'"):
        SearchSpace(stage_widths=((8,),), max_depths=(1,), block_types=("p3d-z",))


@pytest.mark.parametrize("block_type", NEW_TYPES)
def test_entropy_score_refuses_new_types(block_type):
    assert np.isfinite(entropy_score(tiny_spec("2+1d")))
    with pytest.raises(ValueError, match=re.escape(f"block type '{block_type}'")):
        entropy_score(tiny_spec(block_type))


@pytest.mark.parametrize("block_type", NEW_TYPES)
def test_supernet_refuses_new_types(block_type):
    from autox3d_tf.search.supernet import SuperNet

    space = SearchSpace(
        stage_widths=((8,),), max_depths=(1,), block_types=("1x3x3", block_type), expansions=(1.5,),
        input_frames=4, input_size=32, stem_width=8, stem_temporal_kernel=3, head_width=16, head_hidden=0, classes=5,
    )  # fmt: skip
    with pytest.raises(SpecError, match=re.escape(f"block type '{block_type}'") + ".*not supported by the probabilistic supernet"):
        SuperNet(space)


# --------------------------------------------------------------------------------------------
# autox3d info reads such a spec
# --------------------------------------------------------------------------------------------


def test_cli_info_on_pseudo3d_spec(tmp_path, capsys):
    from autox3d_tf.cli.main import main

    spec = tiny_spec("p3d-b").replace(
        stages=(
            StageSpec(8, (BlockSpec("p3d-b"), BlockSpec("p3d-c", attention="se")), stride=1),
            StageSpec(16, (BlockSpec("2+1d-d2"),), stride=2),
        )
    )
    path = tmp_path / "arch.json"
    spec.save(str(path))
    rc = main(["info", str(path), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    info = json.loads(out)
    assert info["macs"] == spec_macs(spec)


def test_keras_file_round_trip(tmp_path):
    spec = tiny_spec("p3d-b").replace(
        stages=(StageSpec(8, (BlockSpec("p3d-c"),), stride=1), StageSpec(16, (BlockSpec("p3d-b"), BlockSpec("2+1d-d2")))),
    )
    model = build_model(spec, classes=3, classifier_activation=None, include_top=False)
    _randomize_batch_norms(model)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.arch_spec == spec
    assert loaded.get_layer("stage2_block1_conv_b_1").dilation_rate == (2, 1, 1)
    x = np.random.default_rng(2).normal(size=(1, *model.input_shape[1:])).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)), atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TFLite export runs on TensorFlow")
def test_tflite_export_of_the_new_types(tmp_path):
    from autox3d_tf.export.tflite import export_tflite, run_tflite
    from autox3d_tf.layers import normalize_pixels

    spec = tiny_spec("p3d-b").replace(
        stages=(
            StageSpec(8, (BlockSpec("p3d-c"), BlockSpec("2+1d-d2", attention="se")), stride=1),
            StageSpec(16, (BlockSpec("p3d-b"),), stride=2),
        ),
        input_size=32,
    )
    model = build_model(spec, classes=3)
    _randomize_batch_norms(model)
    rng = np.random.default_rng(3)
    head = model.get_layer(naming.PREDICTIONS)
    head.set_weights([rng.normal(0, 3, head.kernel.shape), np.zeros(3)])  # logits of order 1
    path = export_tflite(model, tmp_path / "m.tflite", frames=4, crop=32)  # folded, builtin ops only
    frames = rng.integers(0, 256, size=(1, 4, 32, 32, 3)).astype(np.uint8)
    got = run_tflite(path, frames)["probabilities"]
    ref = np.asarray(model(normalize_pixels(frames.astype(np.float32)), training=False))
    np.testing.assert_allclose(got, ref, atol=1e-5)
