"""E3D exports like every zoo model: a serving SavedModel (folded BN, no XLA op, no AvgPool3D) and a
builtin-ops TFLite file, both equal to Keras. Slow (about 40 s each on 2 cores)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.export import export_saved_model, export_tflite, find_xla_ops, graph_ops, run_tflite  # noqa: E402
from autox3d_tf.preprocessing import preprocess_input  # noqa: E402
from autox3d_tf.zoo import E3D_S, get_spec  # noqa: E402

SHAPE = (4, 64, 64, 3)
CLASSES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def e3d_s():
    """E3D-S on 4 x 64 x 64 clips, 5 classes, random weights (BatchNorm folding with random statistics:
    tests/test_e3d_zoo.py)."""
    keras.utils.set_random_seed(3)
    model = E3D_S(input_shape=SHAPE, classes=len(CLASSES))
    rng = np.random.default_rng(0)
    w = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([w[0] * 1000, w[1]])
    frames = rng.integers(0, 256, (2, *SHAPE), dtype=np.uint8)
    # E3D at random init barely depends on its input (27 blocks, 3 without shortcut; with random
    # BatchNorm statistics not at all): a clip half dark, half bright, and a classifier 1000x larger
    # than its init make the outputs differ visibly.
    frames[1] = np.clip(frames[1] // 4 + np.where(np.arange(64)[None, :, None, None] < 32, 0, 190), 0, 255)
    return model, frames, model.predict(preprocess_input(frames), verbose=0)


@pytest.mark.slow
def test_saved_model(e3d_s, tmp_path):
    model, frames, expected = e3d_s
    path = export_saved_model(model, tmp_path / "saved_model" / "1", CLASSES, spec=get_spec("E3D_S"), top_k=3)
    assert find_xla_ops(path) == []
    ops = graph_ops(path)
    assert "DepthwiseConv2dNative" in ops and "AvgPool" in ops  # the stage-1 shortcut pools per frame
    assert not {"AvgPool3D", "FusedBatchNormV3", "FusedBatchNorm"} & set(ops)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(frames=tf.constant(frames))
    assert np.abs(out["probabilities"].numpy() - expected).max() < 1e-5
    assert np.abs(expected[0] - expected[1]).max() > 2e-4  # input dependent


@pytest.mark.slow
def test_tflite(e3d_s, tmp_path):
    model, frames, expected = e3d_s
    path = export_tflite(model, tmp_path / "e3d_s.tflite", spec=get_spec("E3D_S"))
    got = run_tflite(path, frames[:1])["probabilities"]
    assert np.abs(got - expected[:1]).max() < 1e-4
