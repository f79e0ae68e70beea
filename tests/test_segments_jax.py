"""The temporal-segment consensus model on the JAX backend: its output is the mean (or max) of
the network's logits on each snippet run separately, and it round-trips through ``.keras``.

Runs in the ``KERAS_BACKEND=jax`` step of ``make test`` and is skipped on any other backend (the
TensorFlow side is tests/test_segments.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs in the KERAS_BACKEND=jax step of `make test`"
)


def _network() -> keras.Model:
    """A small functional video network: the zoo's on JAX is tests/test_backend_jax.py's; here
    only the wrapper's folding and reduction (keras.ops) are under test, in seconds."""
    inputs = keras.Input((2, 16, 16, 3))
    x = keras.layers.Conv3D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x), name="small")


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_consensus_on_jax(mode, tmp_path):
    from autox3d_tf.models import segment_consensus

    keras.utils.set_random_seed(0)
    net = _network()
    rng = np.random.default_rng(0)
    model = segment_consensus(net, segments=3, mode=mode)
    x = rng.normal(size=(2, 6, 16, 16, 3)).astype("float32")
    per = np.stack([np.asarray(net(x[:, 2 * k:2 * k + 2], training=False)) for k in range(3)], axis=1)
    assert np.abs(per[:, 0] - per[:, 2]).max() > 1e-3
    want = per.mean(axis=1) if mode == "avg" else per.max(axis=1)
    got = np.asarray(model(x, training=False))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    path = tmp_path / "consensus.keras"
    model.save(path)
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(path)(x, training=False)), got, atol=1e-6)
