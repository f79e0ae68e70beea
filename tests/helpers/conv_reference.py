"""float64 NumPy references for the convolution layers, written from the definition (zero padding,
strides, one kernel per channel) and sharing no code with `autox3d_tf.layers`, plus a deterministic
pairwise covering-array generator for choosing test configurations.

Backend-agnostic: NumPy and keras.ops only."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

RTOL = 1e-5  # max |layer - reference| / max |reference|


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME': output ceil(size / stride); the extra pad goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, spatial, kernel, strides) -> list[tuple[int, int]]:
    """((before, after),) * 3 for any padding form the layer accepts."""
    if padding == "valid":
        return [(0, 0)] * 3
    if padding == "same":
        return [tf_same_pads(n, k, s) for n, k, s in zip(spatial, kernel, strides)]
    if isinstance(padding, int):
        return [(padding, padding)] * 3
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def ref_forward(x, kernel, bias, strides, pads) -> np.ndarray:
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
    """max |got - ref| / max |ref| (shapes must agree)."""
    import keras

    got = np.asarray(keras.ops.convert_to_numpy(got), np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


def make_depthwise(kernel_size, strides, padding, use_bias, channels, rng, dtype="float32", implementation="slices"):
    """A built `DepthwiseConv3D` with random weights; returns it, its kernel (float64) and bias."""
    from autox3d_tf.layers import DepthwiseConv3D

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


def two_depthwise_model(rng):
    """A model of clips (1, 4, 6, 6, 3): "dw1" (3x3x3, padding 1, bias, implementation "auto") then
    "dw2" (3x3x3, 'same', "shift_conv"), with random weights."""
    import keras

    from autox3d_tf.layers import DepthwiseConv3D

    inputs = keras.Input((4, 6, 6, 3), batch_size=1)
    x = DepthwiseConv3D((3, 3, 3), padding=1, use_bias=True, name="dw1")(inputs)
    x = DepthwiseConv3D((3, 3, 3), padding="same", name="dw2", implementation="shift_conv")(x)
    model = keras.Model(inputs, x)
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    return model


def pairs_of(row: Sequence[int]) -> set[tuple[int, int, int, int]]:
    """The (factor i, value index, factor j, value index) pairs a row of value indices covers."""
    return {(i, row[i], j, row[j]) for i, j in itertools.combinations(range(len(row)), 2)}


def pairwise_rows(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """A deterministic pairwise covering array: rows of value indices (row[i] < sizes[i]) such
    that every pair of values of every two factors appears in some row.

    Greedy over the full product: each step takes the first row (in product order) that covers
    the most pairs not yet covered, until none is left."""
    candidates = [(row, pairs_of(row)) for row in itertools.product(*(range(n) for n in sizes))]
    uncovered = set().union(*(p for _, p in candidates))
    rows = []
    while uncovered:
        row, covered = max(candidates, key=lambda c: len(c[1] & uncovered))
        rows.append(row)
        uncovered -= covered
    return rows
