"""Independent tests of `DepthwiseConv3D` and `PointwiseConv3D`, on any Keras backend.

The reference (tests/helpers/conv_reference.py) is written from the definition of a depthwise 3D
convolution (zero padding, strides, one kernel per channel) in float64 NumPy, sharing no code with
the layer; its adjoint gives the exact input and kernel gradients of a linear functional of the
output. Two further, independent references: a dense 3D convolution (`keras.ops.conv`) with a
block-diagonal kernel ('same' / 'valid' semantics) and `torch.nn.functional.conv3d(groups=C)`
(PyTorch padding).

The configurations: a pairwise covering set of kernel x stride x padding x input size x bias x
implementation x batch (every pair of values of every two of them appears in some case), and a
seeded random property test. Only keras.ops and NumPy here (no TensorFlow), so the file also runs
under ``KERAS_BACKEND=jax``; the graph-mode checks are in tests/test_depthwise_conv3d_tf.py.
"""

from __future__ import annotations

import itertools
import json
import zlib

import keras
import numpy as np
import pytest

from autox3d_tf.layers import DepthwiseConv3D, PointwiseConv3D, depthwise_implementation
from tests.helpers.autodiff import linear_functional_grads
from tests.helpers.conv_reference import (
    RTOL,
    explicit_pads,
    make_depthwise,
    two_depthwise_model,
    pairs_of,
    pairwise_rows,
    ref_adjoint,
    ref_forward,
    rel_err,
)
from tests.helpers.reference import require


def _np(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


# --------------------------------------------------------------------------------------------
# Forward against the reference: a pairwise covering set
# --------------------------------------------------------------------------------------------

KERNELS = [(3, 3, 3), (1, 3, 3), (5, 3, 3), (3, 1, 1), (5, 1, 1), (3, 5, 5), (2, 2, 2)]
STRIDES = [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 1, 1)]
# 'same', 'valid', PyTorch "same-size" symmetric ints (per kernel), one int, asymmetric pairs.
PADDINGS = ["same", "valid", "half", 1, ((2, 0), (0, 1), (1, 2)), ((0, 1), (1, 0), (0, 0))]
# Input sizes (T, H, W): odd and even, some not multiples of the stride, always >= kernel.
INPUT_SIZES = [(7, 9, 11), (6, 8, 10)]
BIASES = [False, True]
IMPLEMENTATIONS = ["slices", "shift_conv", "auto"]
BATCHES = [1, 3]  # "slices" has a batch-1 path without row selection; "auto" switches on it
FACTORS = [KERNELS, STRIDES, PADDINGS, INPUT_SIZES, BIASES, IMPLEMENTATIONS, BATCHES]
COVERING_ROWS = pairwise_rows([len(f) for f in FACTORS])


def _padding(kind, kernel):
    return tuple(k // 2 for k in kernel) if kind == "half" else kind


def _case_id(row) -> str:
    k, s, p, n, b, impl, batch = (f[i] for f, i in zip(FACTORS, row))
    return f"k{''.join(map(str, k))}-s{''.join(map(str, s))}-p{row[2]}-n{row[3]}-b{int(b)}-{impl}-x{batch}"


@pytest.mark.parametrize("row", COVERING_ROWS, ids=[_case_id(r) for r in COVERING_ROWS])
def test_forward_matches_numpy_reference(row):
    kernel_size, strides, padding, size, use_bias, implementation, batch = (f[i] for f, i in zip(FACTORS, row))
    padding = _padding(padding, kernel_size)
    rng = np.random.default_rng(zlib.crc32(repr(row).encode()))
    channels = 3
    layer, kernel, bias = make_depthwise(kernel_size, strides, padding, use_bias, channels, rng, implementation=implementation)
    x = rng.standard_normal((batch, *size, channels)).astype("float32")
    pads = explicit_pads(padding, size, kernel_size, strides)
    ref = ref_forward(x, kernel, bias, strides, pads)
    got = _np(layer(x))
    assert rel_err(got, ref) < RTOL
    # The static shape inference agrees with the computed output.
    assert tuple(layer.compute_output_shape(x.shape)) == ref.shape


def test_covering_set_is_pairwise_and_small():
    """Every value of every factor meets every value of every other factor in some case."""
    covered = set().union(*(pairs_of(r) for r in COVERING_ROWS))
    for i, j in itertools.combinations(range(len(FACTORS)), 2):
        for a, b in itertools.product(range(len(FACTORS[i])), range(len(FACTORS[j]))):
            assert (i, a, j, b) in covered, (i, a, j, b)
    full = int(np.prod([len(f) for f in FACTORS]))
    assert len(COVERING_ROWS) <= 60 < full  # 7 x 6 = 42 at the very least


def _random_padding(rng):
    kind = rng.integers(5)
    if kind == 0:
        return "same"
    if kind == 1:
        return "valid"
    if kind == 2:
        return int(rng.integers(0, 3))
    if kind == 3:
        return tuple(int(v) for v in rng.integers(0, 3, size=3))
    return tuple((int(a), int(b)) for a, b in rng.integers(0, 3, size=(3, 2)))


def _random_config(rng):
    kernel_size = tuple(int(v) for v in rng.integers(1, 6, size=3))
    st, s_hw = (int(v) for v in rng.integers(1, 4, size=2))
    strides = (st, s_hw, s_hw)  # TensorFlow's depthwise 2D op needs equal row and column strides
    padding = _random_padding(rng)
    pads = explicit_pads(padding, (1, 1, 1), kernel_size, (1, 1, 1)) if padding != "same" else [(0, 0)] * 3
    size = tuple(int(rng.integers(max(1, k - sum(p)), k + 7)) for k, p in zip(kernel_size, pads))
    return dict(
        kernel_size=kernel_size,
        strides=strides,
        padding=padding,
        size=size,
        use_bias=bool(rng.integers(2)),
        implementation=str(rng.choice(IMPLEMENTATIONS)),
        channels=int(rng.integers(1, 5)),
        batch=int(rng.integers(1, 4)),
    )


def test_random_configurations_match_the_reference():
    """30 configurations drawn from a fixed seed (any kernel 1-5 per axis, strides 1-3, every
    padding form, sizes down to the smallest valid one): forward, output shape and the gradients of
    a random linear functional (input, kernel, bias) against the float64 reference and its adjoint."""
    rng = np.random.default_rng(20240611)
    failures = []
    for _ in range(30):
        c = _random_config(rng)
        layer, kernel, bias = make_depthwise(c["kernel_size"], c["strides"], c["padding"], c["use_bias"], c["channels"],
                                             rng, implementation=c["implementation"])
        x = rng.standard_normal((c["batch"], *c["size"], c["channels"])).astype("float32")
        pads = explicit_pads(c["padding"], c["size"], c["kernel_size"], c["strides"])
        try:
            ref = ref_forward(x, kernel, bias, c["strides"], pads)
            g = rng.standard_normal(ref.shape)
            y, gx, gw = linear_functional_grads(layer, x, g)
            ref_gx, ref_gk, ref_gb = ref_adjoint(x, kernel, g, c["strides"], pads)
            errors = [rel_err(y, ref), rel_err(gx, ref_gx), rel_err(gw[0], ref_gk)]
            if c["use_bias"]:
                errors.append(rel_err(gw[1], ref_gb))
            if max(errors) >= RTOL or tuple(layer.compute_output_shape(x.shape)) != ref.shape:
                failures.append((c, errors))
        except Exception as err:  # noqa: BLE001 - reported with its configuration below
            failures.append((c, f"{type(err).__name__}: {str(err)[:200]}"))
    assert not failures, "\n".join(map(str, failures))


# --------------------------------------------------------------------------------------------
# Gradients against the adjoint
# --------------------------------------------------------------------------------------------

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
# Bias x implementation cycled over the cases: each of the 6 combinations appears.
GRAD_PARAMS = [(*case, *combo) for case, combo in zip(GRAD_CASES, itertools.cycle(itertools.product(BIASES, IMPLEMENTATIONS)))]


@pytest.mark.parametrize("kernel_size,strides,padding,size,use_bias,implementation", GRAD_PARAMS)
def test_gradients_match_numpy_adjoint(kernel_size, strides, padding, size, use_bias, implementation):
    rng = np.random.default_rng(7)
    channels = 4
    layer, kernel, bias = make_depthwise(kernel_size, strides, padding, use_bias, channels, rng, implementation=implementation)
    x = rng.standard_normal((2, *size, channels)).astype("float32")
    pads = explicit_pads(padding, size, kernel_size, strides)
    g = rng.standard_normal(ref_forward(x, kernel, bias, strides, pads).shape)
    _, gx, grads = linear_functional_grads(layer, x, g)

    ref_gx, ref_gk, ref_gb = ref_adjoint(x, kernel, g, strides, pads)
    assert rel_err(gx, ref_gx) < RTOL
    assert rel_err(grads[0], ref_gk) < RTOL
    assert len(grads) == (2 if use_bias else 1)
    if use_bias:
        assert rel_err(grads[1], ref_gb) < RTOL


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
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX computes in float32 unless JAX_ENABLE_X64=1")
    rng = np.random.default_rng(11)
    layer, kernel, bias = make_depthwise((3, 3, 3), (1, 2, 2), "same", True, 3, rng, dtype="float64")
    x = rng.standard_normal((2, 5, 9, 8, 3))
    ref = ref_forward(x, kernel, bias, (1, 2, 2), explicit_pads("same", (5, 9, 8), (3, 3, 3), (1, 2, 2)))
    got = _np(layer(x))
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
def test_matches_dense_conv3d_with_diagonal_kernel(kernel_size, strides, padding, size):
    """The backend's own dense 3D convolution (block-diagonal kernel) defines 'same' and 'valid'."""
    rng = np.random.default_rng(5)
    channels = 3
    layer, kernel, _ = make_depthwise(kernel_size, strides, padding, False, channels, rng)
    dense = np.zeros((*kernel_size, channels, channels), np.float32)
    for c in range(channels):
        dense[..., c, c] = kernel[..., c, 0]
    x = rng.standard_normal((2, *size, channels)).astype("float32")
    ref = _np(keras.ops.conv(x, dense, strides=strides, padding=padding))
    got = _np(layer(x))
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
    layer, kernel, bias = make_depthwise(kernel_size, strides, padding, True, channels, rng)
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
    got = _np(layer(x.astype("float32")))
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
    assert not np.allclose(_np(layer.kernel), 0.0)
    np.testing.assert_array_equal(_np(layer.bias), 0.0)
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
    np.testing.assert_array_equal(_np(clone(x)), _np(y))
    assert clone.kernel_size == layer.kernel_size
    assert clone.strides == layer.strides
    assert clone.get_config() == layer.get_config() | {"name": clone.name}


def test_depthwise_implementation_switches_and_restores():
    """The context manager switches every layer (the traced graphs it changes are checked in
    tests/test_depthwise_conv3d_tf.py), restores the previous choices, and outputs stay equal."""
    rng = np.random.default_rng(8)
    model = two_depthwise_model(rng)
    data = rng.standard_normal((1, 4, 6, 6, 3)).astype("float32")
    default = model(data)
    with depthwise_implementation(model, "slices"):
        assert [layer.implementation for layer in model.layers[1:]] == ["slices", "slices"]
        slices = model(data)
    with depthwise_implementation(model, "shift_conv"):
        assert [layer.implementation for layer in model.layers[1:]] == ["shift_conv", "shift_conv"]
        shift_conv = model(data)
    assert [layer.implementation for layer in model.layers[1:]] == ["auto", "shift_conv"]
    assert rel_err(shift_conv, default) < RTOL
    assert rel_err(slices, default) < RTOL
    with pytest.raises(ValueError, match="implementation"):
        with depthwise_implementation(model, "grouped"):
            pass
    assert [layer.implementation for layer in model.layers[1:]] == ["auto", "shift_conv"]


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
    teacher, _, _ = make_depthwise((3, 3, 3), (1, 2, 2), "same", True, 3, rng)
    x = rng.standard_normal((4, 5, 8, 8, 3)).astype("float32")
    target = _np(teacher(x))

    student = keras.Sequential(
        [keras.Input((5, 8, 8, 3)), DepthwiseConv3D((3, 3, 3), strides=(1, 2, 2), padding="same", use_bias=True)]
    )
    student.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = student.evaluate(x, target, verbose=0)
    kernel_before = _np(student.layers[0].kernel).copy()
    student.fit(x, target, epochs=40, batch_size=4, verbose=0)
    after = student.evaluate(x, target, verbose=0)
    assert after < 0.5 * before
    assert not np.allclose(_np(student.layers[0].kernel), kernel_before)


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
    layer, kernel, _ = make_depthwise((5, 3, 3), 1, (2, 1, 1), False, 2, rng)
    x = rng.standard_normal((1, 1, 2, 2, 2)).astype("float32")
    ref = ref_forward(x, kernel, None, (1, 1, 1), [(2, 2), (1, 1), (1, 1)])
    assert rel_err(layer(x), ref) < RTOL


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

POINTWISE_STRIDES = [((1, 1, 1), (3, 5, 6)), ((1, 2, 2), (3, 7, 8)), ((1, 2, 2), (2, 8, 9)), ((2, 2, 2), (5, 5, 4)),
                     ((2, 1, 3), (4, 6, 7))]


@pytest.mark.parametrize("strides,size,use_bias", [(s, n, i % 2 == 0) for i, (s, n) in enumerate(POINTWISE_STRIDES)])
def test_pointwise_conv3d_matches_definition(strides, size, use_bias):
    rng = np.random.default_rng(13)
    layer = PointwiseConv3D(6, strides=strides, use_bias=use_bias)
    x = rng.standard_normal((2, *size, 5))
    layer.build(x.shape)
    kernel = rng.standard_normal((5, 6))
    layer.kernel.assign(kernel.astype("float32"))
    sub = x[:, :: strides[0], :: strides[1], :: strides[2]]
    ref = np.einsum("bthwi,io->bthwo", sub, kernel)
    bias = 0.0
    if use_bias:
        bias = rng.standard_normal(6)
        layer.bias.assign(bias.astype("float32"))
        ref = ref + bias
    g = rng.standard_normal(ref.shape)
    y, gx, (gk, *_) = linear_functional_grads(layer, x.astype("float32"), g)
    assert tuple(layer.compute_output_shape(x.shape)) == ref.shape
    assert rel_err(y, ref) < RTOL
    ref_gx = np.zeros_like(x)
    ref_gx[:, :: strides[0], :: strides[1], :: strides[2]] = np.einsum("bthwo,io->bthwi", g, kernel)
    assert rel_err(gx, ref_gx) < RTOL
    assert rel_err(gk, np.einsum("bthwi,bthwo->io", sub, g)) < RTOL
    # Same as keras' Conv3D with a 1x1x1 kernel ('valid' subsampling).
    dense = keras.layers.Conv3D(6, 1, strides=strides, use_bias=False)
    dense.build(x.shape)
    dense.kernel.assign(kernel.reshape(1, 1, 1, 5, 6).astype("float32"))
    expected = _np(dense(x.astype("float32"))) + bias
    assert rel_err(y, expected) < RTOL


def test_pointwise_conv3d_config_and_errors():
    layer = PointwiseConv3D(4, strides=(1, 2, 2), use_bias=True)
    clone = PointwiseConv3D.from_config(json.loads(json.dumps(layer.get_config())))
    assert (clone.filters, tuple(clone.strides), clone.use_bias) == (4, (1, 2, 2), True)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5, 3)).astype("float32")
    y = layer(x)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(_np(clone(x)), _np(y))
    with pytest.raises(ValueError, match="filters"):
        PointwiseConv3D(0)
    with pytest.raises(ValueError, match="strides"):
        PointwiseConv3D(4, strides=0)
    with pytest.raises(ValueError, match="strides"):
        PointwiseConv3D(4, strides=(1, 2))
