"""`FrameConv3D`: the stem's (1, kh, kw) Conv3D computed as a 2D convolution of every frame.

On any Keras backend (``make test`` also runs this file with ``KERAS_BACKEND=jax``), but for the
TensorFlow training-graph check."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from autox3d_tf.layers import FrameConv3D
from autox3d_tf.zoo import get_model


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(filters=6, kernel_size=(1, 3, 3), strides=(1, 2, 2), padding="valid"),
        dict(filters=4, kernel_size=(1, 3, 5), strides=(1, 1, 2), padding="same", use_bias=True, activation="relu"),
        dict(filters=5, kernel_size=(1, 1, 1), padding="valid", use_bias=True),
    ],
)
def test_matches_keras_conv3d_and_round_trips(kwargs):
    """Same weights, same output as keras.layers.Conv3D (the backend's 3D convolution, float64
    where the backend has it)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 11, 3))
    ours = FrameConv3D(**kwargs)
    ours.build(x.shape)
    for w in ours.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    reference = keras.layers.Conv3D(**kwargs, dtype="float64")
    reference.build(x.shape)
    reference.set_weights([w.numpy().astype(np.float64) for w in ours.weights])
    got = keras.ops.convert_to_numpy(ours(x.astype("float32")))
    want = keras.ops.convert_to_numpy(reference(x))
    assert got.shape == want.shape == tuple(ours.compute_output_shape(x.shape))
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5

    clone = FrameConv3D.from_config(json.loads(json.dumps(ours.get_config())))
    clone.build(x.shape)
    clone.set_weights(ours.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x.astype("float32"))), got)


@pytest.mark.parametrize(
    "kwargs", [dict(kernel_size=(3, 3, 3)), dict(kernel_size=(1, 3, 3), strides=(2, 1, 1)), dict(kernel_size=1, groups=2)]
)
def test_rejects_kernels_over_more_than_one_frame(kwargs):
    with pytest.raises(ValueError, match="FrameConv3D"):
        FrameConv3D(4, **kwargs)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="Grappler is TensorFlow's")
def test_stem_uses_it_and_training_keeps_grappler_fusions(capfd):
    """With a plain Conv3D after the stem's Pad, Grappler's remapper fused the Pad into the
    convolution that the gradient also reads, failed, and dropped every fusion of the training
    step ("remapper failed: ... stem_pad" on stderr)."""
    model = get_model("X3D_XS", weights=None, input_shape=(4, 32, 32, 3), classes=3)
    assert isinstance(model.get_layer("stem_conv_spatial"), FrameConv3D)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((2, 4, 32, 32, 3)).astype("float32")
    model.fit(x, np.array([0, 2]), epochs=1, verbose=0)
    assert "remapper failed" not in capfd.readouterr().err
