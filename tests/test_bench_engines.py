"""`autox3d bench --engine ...`: engine names, interleaved timing, the table's per-engine columns,
and every engine timed on one tiny clip (not the speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autox3d_tf.workflows.bench import (BATCH1_ONLY, ENGINES, BenchResult, Timing, fastest, format_table,
                                        parse_engines, time_interleaved)


def test_parse_engines_keeps_tf_first_and_rejects_unknown_names():
    assert parse_engines("tflite-int8, openvino,tflite-int8") == ["tf", "tflite-int8", "openvino"]
    assert parse_engines("all") == list(ENGINES)
    with pytest.raises(ValueError, match="tensorrt"):
        parse_engines("tf,tensorrt")


def test_time_interleaved_runs_every_engine_in_rounds():
    order = []
    calls = {name: (lambda n=name: order.append(n)) for name in ("a", "b", "c")}
    timings = time_interleaved(calls, runs=3, warmup=1, batch=2)
    assert order == ["a", "b", "c"] * 4
    assert all(t.runs == 3 and len(t.times_ms) == 3 and t.batch == 2 for t in timings.values())


def test_table_has_a_column_and_a_ratio_per_timed_engine():
    timing = lambda ms, batch=1: Timing(batch, 1, 0, [ms])  # noqa: E731
    one = BenchResult("X3D_XS", 1, (4, 160, 160, 3), 2, timing(40.0), folded=timing(30.0), tflite=timing(15.0),
                      reference=timing(50.0), reference_name="pytorchvideo",
                      engines={"tflite-int8": timing(10.0), "openvino": timing(12.5)})
    eight = BenchResult("X3D_XS", 8, (4, 160, 160, 3), 2, timing(160.0, 8), reference=timing(400.0, 8),
                        reference_name="pytorchvideo", engines={"openvino": timing(80.0, 8)})
    header, _, first, second = format_table([one, eight]).splitlines()
    cols = [c.strip() for c in header.strip("|").split("|")]
    for name in ("tflite-int8 ms", "openvino ms", "ratio tflite-int8/ref", "ratio openvino/ref"):
        assert name in cols
    assert "onnxruntime ms" not in cols and "tflite-float16 ms" not in cols
    row = dict(zip(cols, (c.strip() for c in first.strip("|").split("|"))))
    assert row["tflite-int8 ms"] == "10.0" and row["ratio tflite-int8/ref"] == "0.200"
    row8 = dict(zip(cols, (c.strip() for c in second.strip("|").split("|"))))
    assert row8["tflite-int8 ms"] == "-" and row8["ratio openvino/ref"] == "0.200"
    assert fastest(one)[0] == "tflite-int8" and fastest(eight)[0] == "openvino"
    data = one.to_dict()
    assert data["engine_ratios"]["tflite-int8"] == 0.2 and set(data["engines"]) >= {"tf", "folded", "tflite", "openvino"}


@pytest.mark.slow
def test_cli_times_every_engine_on_one_clip():
    """Every engine (exports included) on a 4 x 32 x 32 clip; the batch-1-only ones skip batch 2."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-m", "autox3d_tf.cli.main", "bench", "X3D_XS", "--batch", "1", "2", "--runs", "1",
         "--warmup", "1", "--threads", "1", "--input-shape", "4", "32", "32", "--engine", "all", "--json"],
        capture_output=True, text=True, timeout=900, check=True, env=env,
    ).stdout  # fmt: skip
    one, two = json.loads(out)["results"]
    assert set(one["engines"]) == set(ENGINES)
    assert set(two["engines"]) == set(ENGINES) - set(BATCH1_ONLY)
    assert all(t["median_ms"] > 0 for t in one["engines"].values())


def test_cli_unknown_engine_is_a_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "bench", "X3D_XS", "--engine", "tf,cuda"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown engine(s) cuda" in proc.stderr.strip().splitlines()[-1]


def test_cli_compare_times_zoo_models_in_the_same_rounds_with_ratios():
    """``--compare X3D_XS,AutoX3D_XS``: one row group per model, and main / compared per engine."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-m", "autox3d_tf.cli.main", "bench", "E3D_S", "--compare", "x3d_xs,AutoX3D_XS,E3D_S",
         "--batch", "1", "--runs", "1", "--warmup", "0", "--threads", "1", "--input-shape", "2", "32", "32",
         "--engine", "tf", "--json"],
        capture_output=True, text=True, timeout=600, check=True, env=env,
    ).stdout  # fmt: skip
    data = json.loads(out)
    assert data["model"] == "E3D_S" and data["compare"] == ["X3D_XS", "AutoX3D_XS"]
    main, x3d, auto = data["results"]
    assert [r["model"] for r in (main, x3d, auto)] == ["E3D_S", "X3D_XS", "AutoX3D_XS"]
    assert all(r["input_shape"] == [2, 32, 32, 3] and r["batch"] == 1 for r in (main, x3d, auto))
    assert set(main["engines"]) == set(x3d["engines"]) == {"tf"} and x3d["ratio_to_compared"] == {}
    for name, other in (("X3D_XS", x3d), ("AutoX3D_XS", auto)):
        ratio = main["ratio_to_compared"][name]["tf"]
        assert ratio == pytest.approx(main["ours"]["median_ms"] / other["ours"]["median_ms"])


def test_compare_ratio_table_and_unknown_names():
    from autox3d_tf.workflows.bench import format_ratios, parse_compare

    assert parse_compare("pytorchvideo, x3d_s,X3D_S,e3d_s", "E3D_S") == ["pytorchvideo", "X3D_S"]
    timing = lambda ms: Timing(1, 1, 0, [ms])  # noqa: E731
    main = BenchResult("E3D_S", 1, (13, 160, 160, 3), 2, timing(50.0), folded=timing(40.0),
                       compared={"X3D_S": {"tf": 0.5, "folded": 0.4}})
    header, _, row = format_ratios([main, BenchResult("X3D_S", 1, (13, 160, 160, 3), 2, timing(100.0))]).splitlines()
    assert [c.strip() for c in row.strip("|").split("|")] == ["E3D_S / X3D_S", "1", "0.500", "0.400"]
    assert format_ratios([BenchResult("X3D_S", 1, (13, 160, 160, 3), 2, timing(100.0))]) == ""
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "bench", "E3D_S", "--compare", "X3D_S,X3D_Q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "unknown --compare name(s) X3D_Q" in last and "pytorchvideo, X3D_XS" in last and "E3D_S" in last
