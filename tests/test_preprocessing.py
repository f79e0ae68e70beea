"""preprocess_input against the reference normalisation, decode_predictions, packaged class names."""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pytest

from autox3d_tf.preprocessing import class_names, decode_predictions, kinetics400_classes, preprocess_input
from tests.helpers.reference import require

SHARED = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kinetics400_classes.txt"


def _reference_normalise(clip_thwc: np.ndarray) -> np.ndarray:
    """What the pytorchvideo X3D recipe does: x / 255, then Normalize(0.45, 0.225) per channel."""
    torch = require("torch")
    x = torch.from_numpy(np.asarray(clip_thwc)).float() / 255.0
    mean = torch.tensor([0.45, 0.45, 0.45])
    std = torch.tensor([0.225, 0.225, 0.225])
    return ((x - mean) / std).numpy()


def test_preprocess_uint8_and_float_match_the_reference():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, size=(2, 4, 8, 8, 3), dtype=np.uint8)
    expected = _reference_normalise(clip)
    out = preprocess_input(clip)
    assert out.dtype == np.float32 and out.shape == clip.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(preprocess_input(clip.astype(np.float64)), expected, atol=1e-6)
    np.testing.assert_allclose(preprocess_input(clip.tolist()), expected, atol=1e-6)
    assert preprocess_input(np.zeros((1, 3), np.uint8))[0, 0] == pytest.approx(-2.0)
    assert preprocess_input(np.full((1, 3), 255, np.uint8))[0, 0] == pytest.approx((1 - 0.45) / 0.225)


def test_preprocess_tensors():
    import tensorflow as tf

    clip = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    out = preprocess_input(tf.constant(clip))
    assert isinstance(out, tf.Tensor) and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), _reference_normalise(clip), atol=1e-6)

    import keras

    inp = keras.Input((4, 8, 8, 3), dtype="uint8")
    model = keras.Model(inp, keras.layers.Lambda(preprocess_input)(inp))
    batch = np.full((1, 4, 8, 8, 3), 90, np.uint8)
    np.testing.assert_allclose(model(batch), _reference_normalise(batch), atol=1e-6)


def test_preprocess_rejects_wrong_layout():
    with pytest.raises(ValueError, match="3 channels last"):
        preprocess_input(np.zeros((1, 3, 4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="channels_last"):
        preprocess_input(np.zeros((1, 3), np.uint8), data_format="channels_first")


def test_packaged_class_names():
    names = kinetics400_classes()
    assert len(names) == 400 and len(set(names)) == 400
    assert names[0] == "abseiling" and names[6] == "arm wrestling" and names[62] == "cleaning pool"
    assert names[88] == "deadlifting" and names[151] == "high jump" and names[283] == "salsa dancing"
    assert list(names) == sorted(names)
    if SHARED.exists():
        packaged = pathlib.Path(__file__).resolve().parents[1] / "autox3d_tf" / "resources" / "kinetics400_classes.txt"
        assert packaged.read_bytes() == SHARED.read_bytes()
        assert hashlib.sha256(packaged.read_bytes()).hexdigest().startswith("e9f2806f")
    assert class_names() == names


def test_decode_predictions():
    probs = np.zeros((2, 400), np.float32)
    probs[0, [6, 62, 151]] = [0.5, 0.3, 0.2]
    probs[1, 88] = 1.0
    out = decode_predictions(probs, top=3)
    assert out[0] == [(6, "arm wrestling", 0.5), (62, "cleaning pool", pytest.approx(0.3)), (151, "high jump", pytest.approx(0.2))]
    assert out[1][0] == (88, "deadlifting", 1.0) and len(out[1]) == 3
    assert len(decode_predictions(probs)[0]) == 5
    assert decode_predictions(np.array([[0.1, 0.9]]), top=5, class_list=["a", "b"]) == [[(1, "b", pytest.approx(0.9)), (0, "a", pytest.approx(0.1))]]
    with pytest.raises(ValueError, match="400 class names"):
        decode_predictions(np.zeros((1, 10)))
    with pytest.raises(ValueError, match="2D"):
        decode_predictions(np.zeros(400))
    with pytest.raises(ValueError, match="top"):
        decode_predictions(probs, top=0)
