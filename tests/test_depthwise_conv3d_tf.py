"""`DepthwiseConv3D` / `PointwiseConv3D` in TensorFlow graphs (tf.function): the ops each
implementation traces, unknown batch, clip length and frame sizes, Grappler's fusions with a static
batch, no (grouped) Conv3D and no XLA. TensorFlow only; the backend-agnostic tests against the
float64 reference are in tests/test_depthwise_conv3d.py."""

from __future__ import annotations

import zlib

import keras
import numpy as np
import pytest

from autox3d_tf.layers import DepthwiseConv3D, PointwiseConv3D, depthwise_implementation
from tests.helpers.conv_reference import RTOL, explicit_pads, make_depthwise, ref_forward, rel_err, two_depthwise_model

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow graphs")
tf = pytest.importorskip("tensorflow")


def test_depthwise_implementation_changes_the_traced_graph():
    """"shift_conv": no Pad or slice of the clip in time; the context manager's switch shows in a
    graph traced inside it, and not after it."""
    model = two_depthwise_model(np.random.default_rng(8))
    spec = tf.TensorSpec((1, 4, 6, 6, 3), tf.float32)

    def op_counts():
        graph = tf.function(lambda v: model(v)).get_concrete_function(spec).graph
        types = [op.type for op in graph.get_operations()]
        return types.count("Pad"), types.count("DepthwiseConv2dNative")

    # dw1: a Pad and 3 taps; dw2: 3 taps and 2 one-hot shifts along the frame axis.
    assert op_counts() == (1, 3 + 5)
    with depthwise_implementation(model, "shift_conv"):
        assert op_counts() == (0, 5 + 5)
    assert op_counts() == (1, 3 + 5)


@pytest.mark.parametrize("batch,expected", [(1, "slices"), (4, "shift_conv"), (None, "shift_conv")])
def test_auto_implementation_by_batch(batch, expected):
    """"auto" takes the slices (a Pad of the clip, no one-hot shift) only for a static batch of 1,
    and never gathers rows."""
    layer = DepthwiseConv3D((3, 3, 3), padding="same", use_bias=True)
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((batch, 4, 6, 6, 2), tf.float32)).graph
    types = [op.type for op in graph.get_operations()]
    assert layer.implementation == "auto"
    assert ("Pad" in types) == (expected == "slices")
    assert types.count("DepthwiseConv2dNative") == (3 if expected == "slices" else 5)
    assert "GatherV2" not in types


@pytest.mark.parametrize("implementation", ["slices", "shift_conv"])
def test_unknown_frames_and_size_in_a_traced_graph(implementation):
    """Both implementations in a graph whose clip length and frame size are only known at run time."""
    rng = np.random.default_rng(12)
    layer, kernel, bias = make_depthwise((3, 3, 3), (1, 2, 2), (1, 1, 1), True, 3, rng, implementation=implementation)
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, None, 3), tf.float32)])
    for size in [(5, 9, 8), (3, 6, 7)]:
        x = rng.standard_normal((2, *size, 3)).astype("float32")
        ref = ref_forward(x, kernel, bias, (1, 2, 2), [(1, 1)] * 3)
        assert rel_err(fn(x), ref) < RTOL


@pytest.mark.parametrize(
    "kernel_size,strides,padding",
    [
        ((3, 3, 3), (1, 2, 2), "same"),
        ((5, 1, 1), (1, 1, 1), (2, 0, 0)),
        ((1, 3, 3), (1, 1, 1), "same"),
        ((3, 3, 3), (2, 2, 2), ((1, 1), (0, 1), (1, 0))),
    ],
)
def test_tf_function_unknown_batch_and_no_grouped_conv(kernel_size, strides, padding):
    rng = np.random.default_rng(6)
    channels = 4
    size = (6, 9, 10)
    layer, kernel, _ = make_depthwise(kernel_size, strides, padding, False, channels, rng)

    @tf.function(input_signature=[tf.TensorSpec((None, *size, channels), tf.float32)])
    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, [x, layer.kernel])

    concrete = fn.get_concrete_function()
    assert concrete.structured_outputs[0].shape.as_list()[0] is None
    pads = explicit_pads(padding, size, kernel_size, strides)
    expected_shape = ref_forward(np.zeros((1, *size, channels)), kernel, None, strides, pads).shape[1:]
    assert tuple(concrete.structured_outputs[0].shape.as_list()[1:]) == expected_shape

    for batch in (1, 3):
        x = rng.standard_normal((batch, *size, channels)).astype("float32")
        y, _ = fn(tf.constant(x))
        assert rel_err(y, ref_forward(x, kernel, None, strides, pads)) < RTOL

    # Neither the forward nor the backward pass may use (grouped) Conv3D or XLA.
    graph = concrete.graph.as_graph_def()
    op_types = {node.op for node in graph.node}
    for fdef in graph.library.function:
        op_types |= {node.op for node in fdef.node_def}
        assert "_XlaMustCompile" not in fdef.attr
    assert not {op for op in op_types if op.startswith("Conv3D")}, op_types
    assert not {op for op in op_types if "Xla" in op}, op_types
    assert not any(node.attr.get("_XlaMustCompile") and node.attr["_XlaMustCompile"].b for node in graph.node)


GRAPH_CASES = [
    ((3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ((3, 3, 3), (1, 2, 2), (1, 1, 1)),  # X3D's stride-2 blocks: explicit spatial pads
    ((3, 3, 3), (2, 2, 2), "same"),
    ((5, 1, 1), (1, 1, 1), (2, 0, 0)),  # the stem's temporal conv
    ((3, 1, 1), (2, 1, 1), ((1, 0), (0, 0), (0, 0))),
    ((4, 1, 1), (1, 1, 1), ((2, 1), (0, 0), (0, 0))),
    ((1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ((1, 3, 3), (1, 1, 1), "same"),
    ((3, 1, 1), (1, 2, 2), "valid"),
    ((2, 3, 3), (1, 1, 1), ((1, 0), (1, 1), (0, 2))),
]


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("kernel_size,strides,padding", GRAPH_CASES)
def test_graph_mode_static_batch_one_and_many(kernel_size, strides, padding, use_bias):
    """In a tf.function with a static batch (Grappler's fusions on; batch 1 takes no row gather)."""
    rng = np.random.default_rng(zlib.crc32(repr((kernel_size, strides, padding, use_bias)).encode()))
    channels = 5
    size = (6, 9, 8)
    layer, kernel, bias = make_depthwise(kernel_size, strides, padding, use_bias, channels, rng)
    pads = explicit_pads(padding, size, kernel_size, strides)
    fn = tf.function(layer.__call__)
    for batch in (1, 3):
        x = rng.standard_normal((batch, *size, channels)).astype("float32")
        got = fn(tf.constant(x))
        assert got.shape.as_list() == list(layer.compute_output_shape(x.shape))
        assert rel_err(got, ref_forward(x, kernel, bias, strides, pads)) < RTOL


def test_dynamic_spatial_sizes_with_explicit_and_same_stride1_padding():
    """Explicit padding and stride-1 'same' need no static sizes (the stem's temporal conv)."""
    rng = np.random.default_rng(8)
    for kernel_size, padding in (((5, 1, 1), (2, 0, 0)), ((3, 3, 3), "same"), ((3, 3, 3), (1, 1, 1))):
        layer, kernel, _ = make_depthwise(kernel_size, 1, padding, False, 2, rng)
        fn = tf.function(layer.__call__, input_signature=[tf.TensorSpec((None, None, None, None, 2), tf.float32)])
        for size in ((5, 6, 7), (4, 3, 3)):
            x = rng.standard_normal((2, *size, 2)).astype("float32")
            pads = explicit_pads(padding, size, kernel_size, (1, 1, 1))
            assert rel_err(fn(tf.constant(x)), ref_forward(x, kernel, None, (1, 1, 1), pads)) < RTOL


@pytest.mark.parametrize("batch", [1, None])
@pytest.mark.parametrize("strides", [(1, 1, 1), (1, 2, 2)])
def test_pointwise_conv3d_large_inputs_in_graph_mode(strides, batch):
    """Above CONV_MIN_ROWS pixels the layer runs a 1x1 Conv2D (fused with bias and ReLU)."""
    from autox3d_tf.layers.pointwise_conv3d import CONV_MIN_ROWS

    rng = np.random.default_rng(17)
    size = (3, 64, 72)
    assert size[0] * size[1] * size[2] >= CONV_MIN_ROWS
    layer = PointwiseConv3D(7, strides=strides, use_bias=True, activation="relu")
    layer.build((None, *size, 5))
    kernel = rng.standard_normal((5, 7))
    bias = rng.standard_normal(7)
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    fn = tf.function(layer.__call__, input_signature=[tf.TensorSpec((batch, *size, 5), tf.float32)])
    for n in (1,) if batch == 1 else (1, 2):
        x = rng.standard_normal((n, *size, 5))
        sub = x[:, :: strides[0], :: strides[1], :: strides[2]]
        ref = np.maximum(np.einsum("bthwi,io->bthwo", sub, kernel) + bias, 0.0)
        assert rel_err(fn(tf.constant(x.astype("float32"))), ref) < RTOL
