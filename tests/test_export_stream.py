"""The streaming exports of a causal model: SavedModel ``init_states`` / ``stream`` signatures and a
one-frame TFLite file, equal to the Keras causal model at every frame, after fine-tuning with fit."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.export.streaming import TFLiteStream, export_stream_saved_model, export_stream_tflite
from autox3d_tf.export.tflite import undelegated_ops
from autox3d_tf.layers.normalization import normalize_pixels
from autox3d_tf.models.streaming import frame_output_model
from autox3d_tf.zoo import X3D_XS
from tests.test_export_saved_model import randomize_batch_norms

pytestmark = pytest.mark.slow
SHAPE = (6, 48, 48, 3)
NAMES = ["up", "down", "left"]


@pytest.fixture(scope="module")
def tuned():
    """A causal X3D-XS fine-tuned with fit (a few steps), and a uint8 clip with its per-frame
    probabilities from Keras."""
    keras.utils.set_random_seed(3)
    model = X3D_XS(causal=True, input_shape=SHAPE, classes=len(NAMES), dropout_rate=0.0)
    randomize_batch_norms(model)
    rng = np.random.default_rng(0)
    train = rng.normal(size=(8, *SHAPE)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(train, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    clip = rng.integers(0, 256, size=(2, *SHAPE), dtype=np.uint8)
    want = frame_output_model(model).predict(np.asarray(normalize_pixels(clip.astype(np.float32))), verbose=0)
    return model, clip, want


def test_saved_model_streams_equal_to_keras(tuned, tmp_path):
    model, clip, want = tuned
    path = export_stream_saved_model(model, tmp_path / "1", NAMES)
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "init_states", "stream"} <= set(loaded.signatures)
    stream = loaded.signatures["stream"]
    for chunk in (1, 3, SHAPE[0]):
        states = loaded.signatures["init_states"](batch_size=tf.constant(2))
        assert all(not v.numpy().any() for v in states.values())
        pieces = []
        for start in range(0, SHAPE[0], chunk):
            out = stream(frames=tf.constant(clip[:, start : start + chunk]), **states)
            pieces.append(out["probabilities"].numpy())
            states = {k: out[k] for k in states}
        np.testing.assert_allclose(np.concatenate(pieces, axis=1), want, atol=1e-5)
    full = loaded.signatures["serving_default"](frames=tf.constant(clip))
    np.testing.assert_allclose(full["probabilities"].numpy(), want[:, -1], atol=1e-5)


def test_tflite_one_frame_at_a_time_on_xnnpack(tuned, tmp_path):
    model, clip, want = tuned
    path = export_stream_tflite(model, tmp_path / "stream.tflite")
    assert undelegated_ops(path) == {}
    runner = TFLiteStream(path)
    for b in range(2):
        runner.reset()
        got = np.stack([runner.step(frame) for frame in clip[b]])
        np.testing.assert_allclose(got, want[b], atol=1e-5)
    assert runner.frames_seen == SHAPE[0]
    with pytest.raises(ValueError, match="frames of shape"):
        runner.step(clip[0, 0, :8])
