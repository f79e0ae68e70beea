"""Quantised TFLite (float16, dynamic-range, int8 with a representative dataset): each mode
converts with builtin ops only, runs in the stock interpreter, keeps its ops on XNNPACK (the few
that are not are listed), and agrees with the float file on synthetic clips."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.export.tflite import (  # noqa: E402
    calibration_clips, compare_outputs, export_tflite, run_tflite, synthetic_clips, tflite_ops, undelegated_ops)
from tests.helpers.export_models import exportable_x3d_xs  # noqa: E402

SHAPE = (4, 32, 32, 3)
CLASSES = 10
# What XNNPACK has no kernel for: the uint8 -> float cast of the input and the top-k (both tiny).
NOT_XNNPACK = {"CAST", "TOPK_V2"}


@pytest.fixture(scope="module")
def model():
    return exportable_x3d_xs(SHAPE, CLASSES, seed=3)


@pytest.fixture(scope="module")
def files(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    return {"float": export_tflite(model, out / "float.tflite"),
            "int8": export_tflite(model, out / "int8.tflite", quantize="int8", calibration_steps=16)}


@pytest.fixture(scope="module")
def clips():
    return synthetic_clips(SHAPE[0], SHAPE[1], count=24, seed=7)  # not the calibration clips (seed 0)


def _check_file(path, float_path, clips, allowed):
    ops = tflite_ops(path)
    assert not [op for op in ops if op.startswith("FLEX") or op == "CUSTOM"], ops
    left = undelegated_ops(path)
    assert set(left) <= allowed, left
    out = run_tflite(path, clips[0][None])
    assert set(out) == {"probabilities", "logits", "top_k_indices", "top_k_scores"}
    assert out["probabilities"].shape == (1, CLASSES) and abs(float(out["probabilities"].sum()) - 1) < 0.02
    return compare_outputs(float_path, path, clips)


def test_float_file_is_all_on_xnnpack_but_cast_and_topk(files, model, clips):
    assert undelegated_ops(files["float"]) == {"CAST": 1, "TOPK_V2": 1}
    x = (clips[0][None] / 255.0 - 0.45) / 0.225
    expected = model.predict(x.astype(np.float32), verbose=0)
    np.testing.assert_allclose(run_tflite(files["float"], clips[0][None])["probabilities"], expected, atol=1e-5)


def test_int8_is_full_integer_and_agrees_with_float(files, clips):
    ops = tflite_ops(files["int8"])
    assert ops.get("QUANTIZE", 0) == 1 and ops.get("DEQUANTIZE", 0) <= 3  # int8 from input to logits
    check = _check_file(files["int8"], files["float"], clips, NOT_XNNPACK | {"SOFTMAX"})
    print("int8 vs float:", check)
    assert check["top1_agreement"] >= 0.75, check
    assert check["relative_error"] < 0.15, check
    assert os.path.getsize(files["int8"]) < 0.4 * os.path.getsize(files["float"])


def test_calibration_from_a_folder_of_videos(tmp_path):
    from autox3d_tf.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "data", num_classes=2, clips_per_class=3, size=40, frames=8, progress=False)
    generate = calibration_clips(tmp_path / "data" / "annotations.csv", 4, 32, rate=2, count=4)
    got = list(generate())
    assert len(got) == 4 and all(c.shape == (1, 4, 32, 32, 3) and c.dtype == np.uint8 for c in got)
    assert 20 < float(np.mean(got)) < 235
    with pytest.raises(FileNotFoundError, match="calibration data"):
        calibration_clips(tmp_path / "missing.csv", 4, 32)


def test_bad_quantize_mode_is_a_value_error(model, tmp_path):
    with pytest.raises(ValueError, match="float16, dynamic, int8"):
        export_tflite(model, tmp_path / "x.tflite", quantize="int4")


@pytest.mark.slow
def test_float16_and_dynamic_convert_and_agree(model, files, clips, tmp_path):
    f16 = export_tflite(model, tmp_path / "f16.tflite", quantize="float16")
    check = _check_file(f16, files["float"], clips, NOT_XNNPACK)
    print("float16 vs float:", check)
    assert check["top1_agreement"] == 1.0 and check["relative_error"] < 0.01
    dyn = export_tflite(model, tmp_path / "dyn.tflite", quantize="dynamic")
    # XNNPACK has no hybrid (int8 weights, float activations) depthwise kernel: those run on TFLite's.
    check = _check_file(dyn, files["float"], clips, NOT_XNNPACK | {"DEPTHWISE_CONV_2D"})
    print("dynamic vs float:", check)
    assert check["top1_agreement"] >= 0.9 and check["relative_error"] < 0.1


@pytest.mark.slow
def test_cli_int8_with_calibration_data(tmp_path):
    from autox3d_tf.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "data", num_classes=2, clips_per_class=3, size=40, frames=8, progress=False)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "autox3d_tf.cli.main", "export", "--model", "X3D_XS", "--frames", "4", "--crop",
           "32", "--quantize", "int8", "--calibration_data", str(tmp_path / "data" / "annotations.csv"),
           "--calibration_clips", "4", "--out_dir", str(tmp_path / "out"), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    info = json.loads(proc.stdout)
    q = info["tflite_quantized"]["int8"]
    assert os.path.isfile(q["path"]) and set(q["undelegated_ops"]) <= NOT_XNNPACK | {"SOFTMAX", "ADD"}
    assert 0 <= q["vs_float_on_synthetic"]["top1_agreement"] <= 1


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    from autox3d_tf.workflows import export

    base = ["autox3d export", "--model", "X3D_XS", "--out_dir", str(tmp_path)]
    for extra, message in ((["--quantize", "int4"], "int4"), (["--format", "caffe"], "caffe"),
                           (["--quantize", "int8", "--tflite", "false"], "tflite"),
                           (["--calibration_clips", "0"], "calibration_clips")):
        assert export.main(base + extra) == 2
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not os.listdir(tmp_path)
