"""Causal networks (``causal=True``) and their streaming form: causality, exactness, training.

References: a float64 NumPy causal convolution and cumulative average (independent of the
layers), and the full-clip causal network for the chunked stream (the issue's contract: equal at
every frame within 1e-5).
"""

from __future__ import annotations

import json
import os
import warnings

import keras
import numpy as np
import pytest

from autox3d_tf.arch.e3d import e3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.spec import ArchSpec, BlockSpec, StageSpec
from autox3d_tf.arch.x3d import x3d_spec
from autox3d_tf.layers import CumulativeAveragePooling3D, DepthwiseConv3D, causal_padding
from autox3d_tf.models.builder import build_model
from autox3d_tf.models.streaming import frame_output_model, stream_model
from autox3d_tf.search.space import autox3d_v1
from autox3d_tf.zoo import X3D_XS, get_spec
from tests.test_export_saved_model import randomize_batch_norms

SHAPE = (8, 64, 64, 3)


def _clip(batch: int = 2, shape=SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def _causal(spec: ArchSpec, shape=SHAPE, classes: int = 5, seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model(spec.replace(causal=True), input_shape=shape, classes=classes, classifier_activation=None)
    randomize_batch_norms(model, seed)
    return model


def _searched_spec() -> ArchSpec:
    """A network the probabilistic search can derive: random choices of the autox3d-v1 space."""
    space = autox3d_v1(input_frames=SHAPE[0], input_size=SHAPE[1], classes=5, max_depths=(1, 2, 2, 2))
    rng = np.random.default_rng(4)
    choices = [int(rng.integers(d.size)) for d in space.decisions]
    return space.decode(choices, name="searched")


def _pseudo3d_spec() -> ArchSpec:
    """Every pseudo-3D topology, the dilated one, SE and a 5-frame kernel in one small network."""
    blocks = [BlockSpec("2+1d", attention="se"), BlockSpec("p3d-b"), BlockSpec("p3d-c", attention="se"),
              BlockSpec("2+1d-d2"), BlockSpec("5x3x3")]
    stages = (StageSpec(24, tuple(blocks[:2])), StageSpec(32, tuple(blocks[2:4])), StageSpec(48, (blocks[4],)))
    return ArchSpec("p3d", stages, input_frames=SHAPE[0], input_size=SHAPE[1], head_width=64, head_hidden=96)


SPECS = {
    "x3d_xs": lambda: x3d_spec("XS"),
    "autox3d_xs": lambda: get_spec("AutoX3D_XS"),
    "searched": _searched_spec,
    "pseudo3d": _pseudo3d_spec,
    "e3d_s": lambda: e3d_spec("S"),
}


# ------------------------------------------------------------------ the layers, against NumPy


def test_causal_depthwise_conv_equals_numpy_float64():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6, 5, 4))
    kernel = (3, 3, 3)
    layer = DepthwiseConv3D(kernel, padding=causal_padding(kernel))
    y = np.asarray(layer(x.astype(np.float32)))
    k = np.asarray(layer.kernel, np.float64)[..., 0]  # (t, h, w, C)
    padded = np.pad(x, ((0, 0), (2, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros_like(x)
    for t in range(7):
        for i in range(3):
            for a in range(3):
                for b in range(3):
                    want[:, t] += padded[:, t + i, a : a + 6, b : b + 5] * k[i, a, b]
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_causal_padding_of_a_dilated_kernel():
    assert causal_padding((3, 1, 1), dilation=2) == ((4, 0), (0, 0), (0, 0))
    assert causal_padding((5, 3, 3)) == ((4, 0), (1, 1), (1, 1))


def test_cumulative_average_equals_numpy_and_streams():
    x = np.random.default_rng(1).normal(size=(2, 6, 3, 4, 5))
    want = np.cumsum(x.mean(axis=(2, 3)), axis=1) / np.arange(1, 7)[None, :, None]
    layer = CumulativeAveragePooling3D()
    np.testing.assert_allclose(np.asarray(layer(x.astype(np.float32))), want, rtol=1e-5, atol=1e-6)
    keep = CumulativeAveragePooling3D(keepdims=True)(x.astype(np.float32))
    assert tuple(keep.shape) == (2, 6, 1, 1, 5)
    total, count = np.zeros((2, 5), np.float32), np.zeros((2, 1), np.float32)
    pieces = []
    for start, stop in ((0, 1), (1, 4), (4, 6)):
        y, total, count = layer(x[:, start:stop].astype(np.float32), total, count)
        pieces.append(np.asarray(y))
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(count), [[6.0], [6.0]])


# ------------------------------------------------------------------ the causal network


def test_output_at_frame_t_depends_only_on_frames_up_to_t():
    model = frame_output_model(_causal(x3d_spec("XS")))
    x = _clip()
    later = x.copy()
    later[:, 5:] = _clip(seed=9)[:, 5:]
    y, y_later = model.predict(x, verbose=0), model.predict(later, verbose=0)
    assert y.shape == (2, SHAPE[0], 5)
    np.testing.assert_array_equal(y[:, :5], y_later[:, :5])
    assert np.abs(y[:, 5:] - y_later[:, 5:]).max() > 1e-4
    # The non-causal network's early outputs do see the later frames.
    plain = build_model(x3d_spec("XS"), input_shape=SHAPE, classes=5, include_top=False)
    randomize_batch_norms(plain)
    early = plain.predict(x, verbose=0)[:, :1], plain.predict(later, verbose=0)[:, :1]
    assert np.abs(early[0] - early[1]).max() > 1e-4


def test_last_frame_output_is_the_model_output_and_weights_macs_are_the_same():
    model = _causal(x3d_spec("XS"))
    x = _clip()
    frames = frame_output_model(model).predict(x, verbose=0)
    np.testing.assert_allclose(frames[:, -1], model.predict(x, verbose=0), atol=1e-6)
    plain = build_model(x3d_spec("XS"), input_shape=SHAPE, classes=5, classifier_activation=None)
    assert plain.count_params() == model.count_params()
    plain.set_weights(model.get_weights())  # the same tensors, in the same order
    assert spec_macs(x3d_spec("XS").replace(causal=True), frames=8, size=64, classes=5) == spec_macs(
        x3d_spec("XS"), frames=8, size=64, classes=5)
    assert np.abs(plain.predict(x, verbose=0) - model.predict(x, verbose=0)).max() > 1e-4


def test_spec_json_round_trip():
    spec = x3d_spec("XS")
    assert "causal" not in spec.to_dict()
    causal = ArchSpec.from_json(spec.replace(causal=True).to_json())
    assert causal.causal and causal == spec.replace(causal=True) and causal != spec
    with pytest.raises(ValueError, match="causal must be true or false"):
        spec.replace(causal="yes")


def test_errors_name_the_problem():
    plain = build_model(x3d_spec("XS"), input_shape=SHAPE, classes=5)
    with pytest.raises(ValueError, match="not causal"):
        stream_model(plain)
    with pytest.raises(ValueError, match="needs a causal network"):
        build_model(x3d_spec("XS"), input_shape=SHAPE, classes=5, frame_outputs=True)
    with pytest.raises(ValueError, match="fixed height and width"):
        stream_model(build_model(x3d_spec("XS").replace(causal=True), input_shape=(8, None, None, 3), classes=5))
    stream = stream_model(_causal(x3d_spec("XS")))
    with pytest.raises(ValueError, match="missing"):
        stream(_clip()[:, :1], {})
    with pytest.raises(ValueError, match="must be"):
        stream(_clip(shape=(8, 32, 32, 3))[:, :1], stream.init_states(2))


def test_factory_causal_and_keras_file(tmp_path):
    model = X3D_XS(causal=True, input_shape=SHAPE, classes=3)
    assert model.arch_spec.causal
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.arch_spec.causal
    x = _clip(1)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="`causal` must be"):
        X3D_XS(causal="yes")


def _run_folder(path, causal: bool) -> str:
    model = X3D_XS(causal=causal, input_shape=SHAPE, classes=3)
    os.makedirs(path)
    model.save_weights(os.path.join(path, "final.weights.h5"))
    with open(os.path.join(path, "spec.json"), "w", encoding="utf-8") as f:
        json.dump(model.arch_spec.to_dict(), f)
    return str(path)


def test_non_causal_weights_load_with_a_measured_warning(tmp_path):
    plain_run = _run_folder(tmp_path / "plain", causal=False)
    with pytest.warns(UserWarning, match=r"trained non-causal.*top-1 fell from \d"):
        X3D_XS(causal=True, weights=plain_run, input_shape=SHAPE, classes=3)
    causal_run = _run_folder(tmp_path / "causal", causal=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*non-causal")
        X3D_XS(causal=True, weights=causal_run, input_shape=SHAPE, classes=3)
        X3D_XS(weights=plain_run, input_shape=SHAPE, classes=3)  # non-causal into non-causal


# ------------------------------------------------------------------ streaming, exact


@pytest.mark.parametrize("name", [n if n == "x3d_xs" else pytest.param(n, marks=pytest.mark.slow) for n in SPECS])
def test_stream_equals_full_clip_at_every_frame(name):
    spec = SPECS[name]()
    shape = (SHAPE[0], 64, 64, 3)
    model = _causal(spec, shape)
    x = _clip(2, shape)
    want = frame_output_model(model).predict(x, verbose=0)
    scale = np.abs(want).max()
    assert scale > 1e-3
    stream = stream_model(model)
    for chunk in (1, 3, shape[0]):
        got = stream.run(x, chunk)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, scale), (name, chunk)


def test_folded_stream_and_states_carry_over():
    model = _causal(x3d_spec("XS"))
    x = _clip(1)
    want = frame_output_model(model).predict(x, verbose=0)
    stream = stream_model(model, fold_batch_norm=True, batch_size=1, chunk_frames=1)
    states = stream.init_states(1)
    assert set(states) == set(stream.state_names) and all(not v.any() for v in states.values())
    outs = []
    for t in range(x.shape[1]):
        y, states = stream(x[:, t : t + 1], states)
        outs.append(y)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), want, atol=1e-5)
    assert states["head_pool_count"][0, 0] == x.shape[1]


@pytest.mark.slow
def test_causal_model_fits_then_streams_with_the_same_weights():
    keras.utils.set_random_seed(2)
    model = X3D_XS(causal=True, input_shape=(6, 32, 32, 3), classes=2, classifier_activation=None, dropout_rate=0.0)
    x = _clip(8, (6, 32, 32, 3))
    y = np.arange(8) % 2
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights()))
    streamed = stream_model(model).run(x[:2], chunk=2)
    np.testing.assert_allclose(streamed[:, -1], model.predict(x[:2], verbose=0), atol=1e-5)
