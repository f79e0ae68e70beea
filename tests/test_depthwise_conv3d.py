"""Independent tests of `DepthwiseConv3D` (issue 2, point 1).

The reference below is written from the definition of a depthwise 3D convolution (zero padding,
strides, one kernel per channel) in float64 NumPy, sharing no code with the layer. Its adjoint
gives the exact input and kernel gradients of a linear functional of the output. Two further,
independent references are used: `tf.nn.conv3d` with a block-diagonal dense kernel (TensorFlow's
own 'SAME' / 'VALID' semantics) and `torch.nn.functional.conv3d(groups=C)` (PyTorch padding).
"""

from __future__ import annotations

import itertools
import json
import math
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.layers import DepthwiseConv3D, PointwiseConv3D
from tests.reference import require

RTOL = 1e-5  # max |layer - reference| / max |reference|


# --------------------------------------------------------------------------------------------
# float64 NumPy reference, from the definition
# --------------------------------------------------------------------------------------------


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME': output ceil(size / stride); the extra pad goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, spatial, kernel, strides):
    """((before, after),) * 3 for any padding form the layer accepts."""
    if padding == "valid":
        return [(0, 0)] * 3
    if padding == "same":
        return [tf_same_pads(n, k, s) for n, k, s in zip(spatial, kernel, strides)]
    if isinstance(padding, int):
        return [(padding, padding)] * 3
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def ref_forward(x, kernel, bias, strides, pads):
    """y[b,t,h,w,c] = sum_{i,j,k} xpad[b, t*st+i, h*sh+j, w*sw+k, c] * kernel[i,j,k,c] (+ bias[c])."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)[..., 0]  # (kt, kh, kw, C)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    kt, kh, kw, channels = kernel.shape
    st, sh, sw = strides
    ot = (xp.shape[1] - kt) // st + 1
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], ot, oh, ow, channels))
    for b, t, h, w in itertools.product(range(x.shape[0]), range(ot), range(oh), range(ow)):
        window = xp[b, t * st : t * st + kt, h * sh : h * sh + kh, w * sw : w * sw + kw, :]
        y[b, t, h, w] = np.einsum("ijkc,ijkc->c", window, kernel)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y


def ref_adjoint(x, kernel, g, strides, pads):
    """Gradients of sum(g * y) w.r.t. x, kernel and bias (the transpose of ref_forward)."""
    x = np.asarray(x, np.float64)
    k = np.asarray(kernel, np.float64)[..., 0]
    g = np.asarray(g, np.float64)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    gxp = np.zeros_like(xp)
    gk = np.zeros_like(k)
    kt, kh, kw, _ = k.shape
    st, sh, sw = strides
    _, ot, oh, ow, _ = g.shape
    for b, t, h, w in itertools.product(range(x.shape[0]), range(ot), range(oh), range(ow)):
        sl = (b, slice(t * st, t * st + kt), slice(h * sh, h * sh + kh), slice(w * sw, w * sw + kw))
        gxp[sl] += k * g[b, t, h, w]
        gk += xp[sl] * g[b, t, h, w]
    (t0, t1), (h0, h1), (w0, w1) = pads
    gx = gxp[:, t0 : gxp.shape[1] - t1, h0 : gxp.shape[2] - h1, w0 : gxp.shape[3] - w1, :]
    gb = g.sum(axis=(0, 1, 2, 3))
    return gx, gk[..., None], gb


def rel_err(got, ref) -> float:
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


def make_layer(kernel_size, strides, padding, use_bias, channels, rng, dtype="float32", implementation="slices"):
    layer = DepthwiseConv3D(
        kernel_size, strides=strides, padding=padding, use_bias=use_bias, dtype=dtype, implementation=implementation
    )
    layer.build((None, None, None, None, channels))
    kernel = rng.standard_normal(layer.kernel.shape)
    layer.kernel.assign(kernel.astype(dtype))
    bias = None
    if use_bias:
        bias = rng.standard_normal((channels,))
        layer.bias.assign(bias.astype(dtype))
    return layer, kernel.astype(dtype).astype(np.float64), None if bias is None else bias.astype(dtype)


# --------------------------------------------------------------------------------------------
# Forward and gradients against the reference
# --------------------------------------------------------------------------------------------

KERNELS = [(3, 3, 3), (1, 3, 3), (5, 3, 3), (3, 1, 1), (5, 1, 1), (3, 5, 5), (2, 2, 2)]
STRIDES = [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 1, 1)]


def _paddings(kernel):
    """'same', 'valid', PyTorch-style symmetric ints and asymmetric (before, after) pairs."""
    return [
        "same",
        "valid",
        tuple(k // 2 for k in kernel),  # PyTorch "same-size" padding for odd kernels
        1,
        ((2, 0), (0, 1), (1, 2)),
        ((0, 1), (1, 0), (0, 0)),
    ]


# Input sizes (T, H, W): odd and even, some not multiples of the stride, always >= kernel.
INPUT_SIZES = [(7, 9, 11), (6, 8, 10)]

FORWARD_CASES = [
    pytest.param(k, s, p, n, bias, id=f"k{''.join(map(str, k))}-s{''.join(map(str, s))}-p{pi}-n{ni}-b{int(bias)}")
    for k in KERNELS
    for s in STRIDES
    for pi, p in enumerate(_paddings(k))
    for ni, n in enumerate(INPUT_SIZES)
    for bias in ([False, True] if (pi + ni) % 2 == 0 else [False])
]


@pytest.mark.parametrize("implementation", ["slices", "shift_conv"])
@pytest.mark.parametrize("kernel_size,strides,padding,size,use_bias", FORWARD_CASES)
def test_forward_matches_numpy_reference(kernel_size, strides, padding, size, use_bias, implementation):
    rng = np.random.default_rng(zlib.crc32(repr((kernel_size, strides, padding, size, use_bias)).encode()))
    channels = 3
    layer, kernel, bias = make_layer(kernel_size, strides, padding, use_bias, channels, rng, implementation=implementation)
    # Batch 1 and 2: the "slices" implementation has a batch-1 path without row selection.
    x = rng.standard_normal((1 + sum(size) % 2, *size, channels)).astype("float32")
    pads = explicit_pads(padding, size, kernel_size, strides)
    ref = ref_forward(x, kernel, bias, strides, pads)
    got = keras.ops.convert_to_numpy(layer(x))
    assert rel_err(got, ref) < RTOL
    # The static shape inference agrees with the computed output.
    assert tuple(layer.compute_output_shape(x.shape)) == ref.shape


GRAD_CASES = [
    ((3, 3, 3), (1, 1, 1), "same", (5, 6, 7)),
    ((3, 3, 3), (1, 2, 2), (1, 1, 1), (5, 7, 8)),
    ((5, 3, 3), (2, 2, 2), "same", (7, 8, 9)),
    ((1, 3, 3), (1, 2, 2), "same", (4, 8, 8)),
    ((3, 1, 1), (2, 1, 1), "valid", (8, 5, 5)),
    ((5, 1, 1), (1, 1, 1), (2, 0, 0), (6, 4, 4)),
    ((3, 5, 5), (1, 2, 2), ((1, 2), (2, 1), (0, 3)), (5, 9, 8)),
    ((2, 2, 2), (1, 1, 1), "same", (4, 5, 6)),
    ((2, 2, 2), (2, 2, 2), "valid", (5, 7, 6)),
]


@pytest.mark.parametrize("implementation", ["slices", "shift_conv"])
@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("kernel_size,strides,padding,size", GRAD_CASES)
def test_gradients_match_numpy_adjoint(kernel_size, strides, padding, size, use_bias, implementation):
    rng = np.random.default_rng(7)
    channels = 4
    layer, kernel, bias = make_layer(kernel_size, strides, padding, use_bias, channels, rng, implementation=implementation)
    x = rng.standard_normal((2, *size, channels)).astype("float32")
    pads = explicit_pads(padding, size, kernel_size, strides)
    out_shape = ref_forward(x, kernel, bias, strides, pads).shape
    g = rng.standard_normal(out_shape)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt) * tf.constant(g, tf.float32))
    grads = tape.gradient(loss, [xt, layer.kernel] + ([layer.bias] if use_bias else []))

    gx, gk, gb = ref_adjoint(x, kernel, g, strides, pads)
    assert rel_err(grads[0], gx) < RTOL
    assert rel_err(grads[1], gk) < RTOL
    if use_bias:
        assert rel_err(grads[2], gb) < RTOL


def test_numpy_adjoint_is_the_transpose_of_the_forward():
    """Sanity check of the reference itself: <g, A x> == <A^T g, x> and <g, A(k)> == <grad_k, k>."""
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 2, 3, 2, 1))
    x = rng.standard_normal((1, 5, 6, 7, 2))
    strides, pads = (2, 1, 2), [(1, 0), (0, 2), (1, 1)]
    y = ref_forward(x, kernel, None, strides, pads)
    g = rng.standard_normal(y.shape)
    gx, gk, _ = ref_adjoint(x, kernel, g, strides, pads)
    assert np.isclose(np.sum(g * y), np.sum(gx * x), rtol=1e-12)
    assert np.isclose(np.sum(g * y), np.sum(gk * kernel), rtol=1e-12)
    # Finite differences on one input entry and one kernel entry (the map is linear: exact).
    e = np.zeros_like(x)
    e[0, 2, 3, 4, 1] = 1.0
    fd = np.sum(g * (ref_forward(x + e, kernel, None, strides, pads) - y))
    assert np.isclose(fd, gx[0, 2, 3, 4, 1], rtol=1e-9, atol=1e-12)


def test_float64_layer_is_exact():
    rng = np.random.default_rng(11)
    layer, kernel, bias = make_layer((3, 3, 3), (1, 2, 2), "same", True, 3, rng, dtype="float64")
    x = rng.standard_normal((2, 5, 9, 8, 3))
    ref = ref_forward(x, kernel, bias, (1, 2, 2), explicit_pads("same", (5, 9, 8), (3, 3, 3), (1, 2, 2)))
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.dtype == np.float64
    assert rel_err(got, ref) < 1e-12


# --------------------------------------------------------------------------------------------
# Independent library references
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kernel_size,strides,padding,size",
    [
        ((3, 3, 3), (1, 1, 1), "same", (5, 8, 9)),
        ((3, 3, 3), (1, 2, 2), "same", (6, 9, 8)),
        ((5, 3, 3), (2, 2, 2), "same", (7, 8, 8)),
        ((2, 2, 2), (1, 2, 2), "same", (5, 7, 6)),
        ((3, 5, 5), (2, 1, 1), "same", (6, 7, 7)),
        ((3, 3, 3), (2, 2, 2), "valid", (7, 9, 8)),
        ((1, 3, 3), (1, 2, 2), "valid", (3, 8, 9)),
    ],
)
def test_matches_tf_conv3d_with_diagonal_kernel(kernel_size, strides, padding, size):
    """TensorFlow's own conv3d (dense, block-diagonal kernel) defines 'same' and 'valid'."""
    rng = np.random.default_rng(5)
    channels = 3
    layer, kernel, _ = make_layer(kernel_size, strides, padding, False, channels, rng)
    dense = np.zeros((*kernel_size, channels, channels), np.float64)
    for c in range(channels):
        dense[..., c, c] = kernel[..., c, 0]
    x = rng.standard_normal((2, *size, channels))
    ref = tf.nn.conv3d(x, dense, strides=(1, *strides, 1), padding=padding.upper()).numpy()
    got = keras.ops.convert_to_numpy(layer(x.astype("float32")))
    assert rel_err(got, ref) < RTOL


@pytest.mark.parametrize(
    "kernel_size,strides,padding,size",
    [
        ((3, 3, 3), (1, 1, 1), (1, 1, 1), (5, 8, 9)),
        ((3, 3, 3), (1, 2, 2), (1, 1, 1), (6, 9, 8)),
        ((5, 3, 3), (2, 2, 2), (2, 1, 1), (7, 8, 8)),
        ((5, 1, 1), (1, 1, 1), (2, 0, 0), (6, 5, 5)),
        ((3, 1, 1), (2, 1, 1), (1, 0, 0), (7, 4, 4)),
        ((1, 3, 3), (1, 2, 2), (0, 1, 1), (3, 7, 9)),
        ((3, 5, 5), (1, 2, 2), (1, 2, 2), (4, 9, 10)),
        ((2, 2, 2), (2, 2, 2), (1, 1, 1), (5, 6, 7)),
        ((3, 3, 3), (2, 1, 1), 0, (6, 5, 6)),
    ],
)
def test_matches_torch_grouped_conv3d(kernel_size, strides, padding, size):
    torch = require("torch")
    rng = np.random.default_rng(9)
    channels = 5
    layer, kernel, bias = make_layer(kernel_size, strides, padding, True, channels, rng)
    x = rng.standard_normal((2, *size, channels))
    weight = torch.from_numpy(np.transpose(kernel[..., 0], (3, 0, 1, 2))[:, None])  # (C, 1, t, h, w)
    ref = torch.nn.functional.conv3d(
        torch.from_numpy(np.transpose(x, (0, 4, 1, 2, 3))),
        weight,
        bias=torch.from_numpy(np.asarray(bias, np.float64)),
        stride=strides,
        padding=padding,
        groups=channels,
    )
    ref = np.transpose(ref.numpy(), (0, 2, 3, 4, 1))
    got = keras.ops.convert_to_numpy(layer(x.astype("float32")))
    assert rel_err(got, ref) < RTOL


# --------------------------------------------------------------------------------------------
# Keras integration
# --------------------------------------------------------------------------------------------


def test_weights_shapes_and_default_init():
    layer = DepthwiseConv3D((5, 3, 1), use_bias=True)
    y = layer(np.zeros((1, 6, 4, 4, 7), "float32"))
    assert y.shape == (1, 2, 2, 4, 7)
    assert tuple(layer.kernel.shape) == (5, 3, 1, 7, 1)
    assert tuple(layer.bias.shape) == (7,)
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"]
    assert not np.allclose(layer.kernel.numpy(), 0.0)
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
    assert DepthwiseConv3D(3).use_bias is False  # bias off by default (BN follows in X3D)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=(3, 3, 3), strides=(1, 2, 2), padding="same", use_bias=True),
        dict(kernel_size=(5, 1, 1), padding=(2, 0, 0)),
        dict(kernel_size=3, strides=2, padding=((1, 0), (0, 1), (2, 2)), use_bias=True),
        dict(kernel_size=(2, 2, 2), padding="valid", kernel_regularizer="l2"),
        dict(kernel_size=(3, 3, 3), strides=(2, 2, 2), padding=1, use_bias=True, implementation="shift_conv"),
    ],
)
def test_get_config_round_trip(kwargs):
    rng = np.random.default_rng(1)
    layer = DepthwiseConv3D(**kwargs)
    x = rng.standard_normal((2, 6, 9, 8, 3)).astype("float32")
    y = layer(x)
    config = layer.get_config()
    # The config survives JSON (as in a .keras file).
    config = json.loads(json.dumps(config))
    clone = DepthwiseConv3D.from_config(config)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(y))
    assert clone.kernel_size == layer.kernel_size
    assert clone.strides == layer.strides
    assert clone.get_config() == layer.get_config() | {"name": clone.name}


def test_depthwise_implementation_switches_and_restores():
    """The context manager changes the traced graph ("shift_conv": no Pad or slice of the clip
    in time) and the outputs stay those of the default implementation."""
    from autox3d_tf.layers import depthwise_implementation

    rng = np.random.default_rng(8)
    inputs = keras.Input((4, 6, 6, 3), batch_size=1)
    x = DepthwiseConv3D((3, 3, 3), padding=1, use_bias=True, name="dw1")(inputs)
    x = DepthwiseConv3D((3, 3, 3), padding="same", name="dw2", implementation="shift_conv")(x)
    model = keras.Model(inputs, x)
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    data = rng.standard_normal((1, 4, 6, 6, 3)).astype("float32")
    spec = tf.TensorSpec((1, 4, 6, 6, 3), tf.float32)

    def op_counts():
        graph = tf.function(lambda v: model(v)).get_concrete_function(spec).graph
        types = [op.type for op in graph.get_operations()]
        return types.count("Pad"), types.count("DepthwiseConv2dNative")

    default = model(data)
    # dw1: a Pad and 3 taps; dw2: 3 taps and 2 one-hot shifts along the frame axis.
    assert op_counts() == (1, 3 + 5)
    with depthwise_implementation(model, "shift_conv"):
        assert [layer.implementation for layer in model.layers[1:]] == ["shift_conv", "shift_conv"]
        assert op_counts() == (0, 5 + 5)
        shift_conv = model(data)
    assert [layer.implementation for layer in model.layers[1:]] == ["auto", "shift_conv"]
    assert rel_err(shift_conv, default) < RTOL
    with pytest.raises(ValueError, match="implementation"):
        with depthwise_implementation(model, "grouped"):
            pass


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
    layer, kernel, bias = make_layer((3, 3, 3), (1, 2, 2), (1, 1, 1), True, 3, rng, implementation=implementation)
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, None, 3), tf.float32)])
    for size in [(5, 9, 8), (3, 6, 7)]:
        x = rng.standard_normal((2, *size, 3)).astype("float32")
        ref = ref_forward(x, kernel, bias, (1, 2, 2), [(1, 1)] * 3)
        assert rel_err(fn(x), ref) < RTOL


def test_saved_keras_model_reloads_with_identical_outputs(tmp_path):
    rng = np.random.default_rng(2)
    inputs = keras.Input((6, 10, 10, 4))
    x = DepthwiseConv3D((3, 3, 3), strides=(1, 2, 2), padding="same", use_bias=True, name="dw1")(inputs)
    x = DepthwiseConv3D((5, 1, 1), padding=(2, 0, 0), name="dw2")(x)
    x = DepthwiseConv3D((2, 3, 3), padding=((1, 0), (1, 1), (0, 2)), name="dw3")(x)
    model = keras.Model(inputs, x)
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    data = rng.standard_normal((3, 6, 10, 10, 4)).astype("float32")
    expected = model.predict(data, verbose=0)
    path = tmp_path / "dw.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("dw1"), DepthwiseConv3D)
    assert loaded.get_layer("dw3").padding == ((1, 0), (1, 1), (0, 2))
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), expected)


def test_trainable_sgd_reduces_loss():
    rng = np.random.default_rng(4)
    teacher, _, _ = make_layer((3, 3, 3), (1, 2, 2), "same", True, 3, rng)
    x = rng.standard_normal((4, 5, 8, 8, 3)).astype("float32")
    target = keras.ops.convert_to_numpy(teacher(x))

    student = keras.Sequential(
        [keras.Input((5, 8, 8, 3)), DepthwiseConv3D((3, 3, 3), strides=(1, 2, 2), padding="same", use_bias=True)]
    )
    student.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = student.evaluate(x, target, verbose=0)
    kernel_before = student.layers[0].kernel.numpy().copy()
    student.fit(x, target, epochs=40, batch_size=4, verbose=0)
    after = student.evaluate(x, target, verbose=0)
    assert after < 0.5 * before
    assert not np.allclose(student.layers[0].kernel.numpy(), kernel_before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(kernel_size=3, padding="full"), "padding"),
        (dict(kernel_size=3, padding="SAME-ish"), "padding"),
        (dict(kernel_size=3, strides=0), "strides"),
        (dict(kernel_size=3, strides=(1, 0, 1)), "strides"),
        (dict(kernel_size=3, strides=(1, -2, 1)), "strides"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(kernel_size=(3, 3)), "kernel_size"),
        (dict(kernel_size=(3, 3, 3, 3)), "kernel_size"),
        (dict(kernel_size=3, padding=(1, 1)), "padding"),
        (dict(kernel_size=3, padding=-1), "padding"),
        (dict(kernel_size=3, padding=((1, 2, 3), 0, 0)), "padding"),
        (dict(kernel_size=3, padding=((1, -1), 0, 0)), "padding"),
        (dict(kernel_size=3, implementation="grouped"), "implementation"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DepthwiseConv3D(**kwargs)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 4, 8, 8, 3, 1), (8, 8, 3)])
def test_rejects_wrong_rank_input(shape):
    layer = DepthwiseConv3D(3, padding="same")
    with pytest.raises(ValueError):
        layer(np.zeros(shape, "float32"))


def test_rejects_channel_change_after_build():
    layer = DepthwiseConv3D(3, padding="same")
    layer(np.zeros((1, 4, 6, 6, 3), "float32"))
    with pytest.raises(ValueError):
        layer(np.zeros((1, 4, 6, 6, 5), "float32"))


@pytest.mark.parametrize(
    "kernel_size,padding,shape",
    [
        ((3, 1, 1), "valid", (1, 2, 6, 6, 2)),  # would give 0 frames
        ((5, 1, 1), "valid", (1, 1, 6, 6, 2)),  # would give -3 frames
        ((1, 3, 3), "valid", (1, 4, 2, 6, 2)),  # height too small
        ((3, 3, 3), ((0, 0), (0, 0), (0, 0)), (1, 4, 6, 2, 2)),  # width too small
    ],
)
def test_input_smaller_than_kernel_raises(kernel_size, padding, shape):
    """As keras.layers.Conv3D: a clear ValueError, not an empty or garbled output."""
    layer = DepthwiseConv3D(kernel_size, padding=padding)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        layer(np.zeros(shape, "float32"))


def test_input_smaller_than_kernel_is_fine_with_padding():
    rng = np.random.default_rng(12)
    layer, kernel, _ = make_layer((5, 3, 3), 1, (2, 1, 1), False, 2, rng)
    x = rng.standard_normal((1, 1, 2, 2, 2)).astype("float32")
    ref = ref_forward(x, kernel, None, (1, 1, 1), [(2, 2), (1, 1), (1, 1)])
    assert rel_err(layer(x), ref) < RTOL


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
    layer, kernel, _ = make_layer(kernel_size, strides, padding, False, channels, rng)

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
    layer, kernel, bias = make_layer(kernel_size, strides, padding, use_bias, channels, rng)
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
        layer, kernel, _ = make_layer(kernel_size, 1, padding, False, 2, rng)
        fn = tf.function(layer.__call__, input_signature=[tf.TensorSpec((None, None, None, None, 2), tf.float32)])
        for size in ((5, 6, 7), (4, 3, 3)):
            x = rng.standard_normal((2, *size, 2)).astype("float32")
            pads = explicit_pads(padding, size, kernel_size, (1, 1, 1))
            assert rel_err(fn(tf.constant(x)), ref_forward(x, kernel, None, (1, 1, 1), pads)) < RTOL


def test_same_padding_with_stride_and_unknown_size_is_a_clear_error():
    layer = DepthwiseConv3D(3, strides=2, padding="same")
    with pytest.raises(ValueError, match="static"):
        layer.compute_output_shape((None, None, 8, 8, 3))


def test_symbolic_keras_input_shapes():
    inputs = keras.Input((None, None, None, 6))
    y = DepthwiseConv3D((3, 3, 3), padding=(1, 1, 1))(inputs)
    assert tuple(y.shape) == (None, None, None, None, 6)
    inputs = keras.Input((13, 160, 160, 24))
    y = DepthwiseConv3D((3, 3, 3), strides=(1, 2, 2), padding=(1, 1, 1))(inputs)
    assert tuple(y.shape) == (None, 13, 80, 80, 24)


# --------------------------------------------------------------------------------------------
# PointwiseConv3D (the 1x1x1 convolutions of every X3D block) against the definition
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize(
    "strides,size",
    [((1, 1, 1), (3, 5, 6)), ((1, 2, 2), (3, 7, 8)), ((1, 2, 2), (2, 8, 9)), ((2, 2, 2), (5, 5, 4)), ((2, 1, 3), (4, 6, 7))],
)
def test_pointwise_conv3d_matches_definition(strides, size, use_bias):
    rng = np.random.default_rng(13)
    layer = PointwiseConv3D(6, strides=strides, use_bias=use_bias)
    x = rng.standard_normal((2, *size, 5))
    layer.build(x.shape)
    kernel = rng.standard_normal((5, 6))
    layer.kernel.assign(kernel.astype("float32"))
    ref = np.einsum("bthwi,io->bthwo", x[:, :: strides[0], :: strides[1], :: strides[2]], kernel)
    if use_bias:
        bias = rng.standard_normal(6)
        layer.bias.assign(bias.astype("float32"))
        ref = ref + bias
    xt = tf.constant(x.astype("float32"))
    g = rng.standard_normal(ref.shape)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        loss = tf.reduce_sum(y * tf.constant(g, tf.float32))
    gx, gk = tape.gradient(loss, [xt, layer.kernel])
    assert tuple(layer.compute_output_shape(x.shape)) == ref.shape
    assert rel_err(y, ref) < RTOL
    ref_gx = np.zeros_like(x)
    ref_gx[:, :: strides[0], :: strides[1], :: strides[2]] = np.einsum("bthwo,io->bthwi", g, kernel)
    assert rel_err(gx, ref_gx) < RTOL
    ref_gk = np.einsum("bthwi,bthwo->io", x[:, :: strides[0], :: strides[1], :: strides[2]], g)
    assert rel_err(gk, ref_gk) < RTOL
    # Same as keras' Conv3D with a 1x1x1 kernel ('valid' subsampling).
    dense = keras.layers.Conv3D(6, 1, strides=strides, use_bias=False)
    dense.build(x.shape)
    dense.kernel.assign(kernel.reshape(1, 1, 1, 5, 6).astype("float32"))
    expected = keras.ops.convert_to_numpy(dense(xt)) + (bias if use_bias else 0.0)
    assert rel_err(y, expected) < RTOL


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


def test_pointwise_conv3d_config_and_errors():
    layer = PointwiseConv3D(4, strides=(1, 2, 2), use_bias=True)
    clone = PointwiseConv3D.from_config(json.loads(json.dumps(layer.get_config())))
    assert (clone.filters, tuple(clone.strides), clone.use_bias) == (4, (1, 2, 2), True)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5, 3)).astype("float32")
    y = layer(x)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(y))
    with pytest.raises(ValueError, match="filters"):
        PointwiseConv3D(0)
    with pytest.raises(ValueError, match="strides"):
        PointwiseConv3D(4, strides=0)
    with pytest.raises(ValueError, match="strides"):
        PointwiseConv3D(4, strides=(1, 2))
