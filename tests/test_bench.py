"""`autox3d bench` and `autox3d_tf.workflows.bench`: the timings' structure and the table (not the speed)."""

from __future__ import annotations

import json
import subprocess
import sys

from autox3d_tf.workflows.bench import BenchResult, Timing, format_table


def test_cli_json_times_keras_folded_and_tflite():
    out = subprocess.run(
        [sys.executable, "-m", "autox3d_tf.cli.main", "bench", "X3D_XS", "--batch", "1", "2", "--runs", "2",
         "--warmup", "1", "--threads", "1", "--input-shape", "4", "32", "32", "--tflite", "--json"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    results = json.loads(out)["results"]
    assert [(r["model"], r["batch"]) for r in results] == [("X3D_XS", 1), ("X3D_XS", 2)]
    one, two = results
    assert one["input_shape"] == [4, 32, 32, 3]
    for timing in (one["ours"], one["folded"], one["tflite"], two["ours"]):
        assert timing["runs"] == 2 and len(timing["times_ms"]) == 2 and timing["median_ms"] > 0
    assert two["tflite"] is None  # the TFLite export has a fixed batch of 1
    assert one["reference"] is None and one["tflite_ratio"] is None


def test_table_shows_tflite_column_and_ratios_only_when_timed():
    timing = lambda ms, batch=1: Timing(batch, 1, 0, [ms])  # noqa: E731
    with_tflite = BenchResult("X3D_XS", 1, (4, 160, 160, 3), 2, timing(40.0), folded=timing(30.0),
                              tflite=timing(15.0), reference=timing(50.0), reference_name="pytorchvideo")
    without = BenchResult("X3D_XS", 8, (4, 160, 160, 3), 2, timing(160.0, 8), folded=timing(140.0, 8),
                          reference=timing(400.0, 8), reference_name="pytorchvideo")  # fmt: skip
    assert with_tflite.tflite_ratio == 0.3 and without.tflite_ratio is None
    table = format_table([with_tflite, without])
    header, _, first, second = table.splitlines()
    assert "tflite ms" in header and "ratio tflite/ref" in header
    assert first.split("|")[6].strip() == "15.0" and first.rstrip(" |").endswith("0.300")
    assert second.split("|")[6].strip() == "-"
    assert "tflite" not in format_table([without]).splitlines()[0]
