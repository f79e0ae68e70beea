"""ONNX (tf2onnx -> ONNX Runtime) and OpenVINO exports: outputs equal Keras's within 1e-4.

The converters are optional packages (``autox3d_tf[runtimes]``, in requirements-dev.txt): without
them these tests skip, and fail under ``AUTOX3D_REQUIRE_REFERENCE=1`` (``make test``, CI)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.export import runtimes  # noqa: E402
from tests.helpers.export_models import exportable_x3d_xs  # noqa: E402
from tests.helpers.reference import require  # noqa: E402

SHAPE = (4, 32, 32, 3)
CLASSES = 7


@pytest.fixture(scope="module")
def case():
    model = exportable_x3d_xs(SHAPE, CLASSES, seed=5)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, *SHAPE), dtype=np.uint8)
    x = ((frames / 255.0 - 0.45) / 0.225).astype(np.float32)
    probabilities = model.predict(x, verbose=0)
    return model, frames, probabilities


def _check(out, expected):
    assert set(out) == {"probabilities", "logits"}
    assert out["probabilities"].shape == expected.shape
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(tf.nn.softmax(out["logits"]).numpy(), expected, atol=1e-4, rtol=0)


def test_openvino_equals_keras(case, tmp_path):
    require("openvino")
    model, frames, expected = case
    path = runtimes.export_openvino(model, tmp_path / "openvino" / "model.xml")
    assert (tmp_path / "openvino" / "model.bin").stat().st_size > 1e6  # float32 weights, not float16
    _check(runtimes.run_openvino(path, frames, threads=1), expected)
    compiled = runtimes.openvino_model(path, threads=1, batch=1)  # the batch fixed, as the bench runs it
    _check(runtimes.run_openvino(compiled, frames[:1]), expected[:1])


@pytest.mark.slow
def test_onnx_equals_keras(case, tmp_path):
    require("tf2onnx")
    require("onnxruntime")
    model, frames, expected = case
    path = runtimes.export_onnx(model, tmp_path / "model.onnx")
    _check(runtimes.run_onnx(path, frames, threads=1), expected)
    _check(runtimes.run_onnx(runtimes.onnx_session(path, threads=1), frames[1:]), expected[1:])


def test_missing_converter_is_a_one_line_error(case, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(runtimes.MissingRuntimeError) as err:
        runtimes.export_onnx(case[0], tmp_path / "model.onnx")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    assert "pip install tf2onnx" in str(err.value)
