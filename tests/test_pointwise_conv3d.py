"""`PointwiseConv3D`'s three computations (matmul, 1x1 Conv2D, strided 1x1 Conv2D) against the
definition of a 1x1x1 convolution, on any Keras backend (``make test`` also runs this file with
``KERAS_BACKEND=jax``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from autox3d_tf.layers import PointwiseConv3D, pointwise_conv3d


@pytest.mark.parametrize(
    "path,strides",
    [("matmul", (1, 1, 1)), ("conv", (1, 1, 1)), ("matmul", (2, 1, 1)), ("conv", (3, 1, 1)), ("strided", (1, 2, 2)),
     ("strided", (2, 2, 3))],
)
def test_each_computation_matches_the_definition(monkeypatch, path, strides):
    """``relu(x[:, ::st, ::sh, ::sw] @ kernel + bias)``, whichever computation the size picks."""
    # The layer reads CONV_MIN_ROWS when called: 1 makes every unstrided call a Conv2D.
    monkeypatch.setattr(pointwise_conv3d, "CONV_MIN_ROWS", 1 if path == "conv" else 10**9)
    rng = np.random.default_rng(len(path) + sum(strides))
    x = rng.standard_normal((2, 5, 7, 8, 3)).astype("float32")
    layer = PointwiseConv3D(4, strides=strides, use_bias=True, activation="relu")
    layer.build(x.shape)
    kernel = rng.standard_normal((3, 4)).astype("float32")
    bias = rng.standard_normal(4).astype("float32")
    layer.set_weights([kernel, bias])
    sub = x[:, :: strides[0], :: strides[1], :: strides[2]].astype(np.float64)
    want = np.maximum(np.einsum("bthwi,io->bthwo", sub, kernel.astype(np.float64)) + bias, 0.0)
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == want.shape == tuple(layer.compute_output_shape(x.shape))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
