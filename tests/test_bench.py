"""`autox3d bench` and `autox3d_tf.workflows.bench`: the timings' structure and the table (not the speed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


# ------------------------------------------------------------------ benchmarks/bench_search.py
def _bench_search():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench_search.py")
    spec = importlib.util.spec_from_file_location("bench_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_search_largest_cell_network_has_the_most_macs():
    import numpy as np

    from autox3d_tf.search.cell_space import cell_space_preset

    bench = _bench_search()
    space = cell_space_preset("cells-tiny", input_frames=2, input_size=32, classes=10)
    largest = space.macs(bench.largest_cell_genotype(space))
    rng = np.random.default_rng(0)
    shape = (space.num_edges, len(space.ops))
    others = [space.macs(space.derive(rng.normal(size=shape), rng.normal(size=shape))) for _ in range(200)]
    assert largest >= max(others) and {op for op, _ in bench.largest_cell_genotype(space).normal} == {"sep_conv_3x3x3"}


def test_bench_search_summary_ratios_and_memory_verdict():
    import argparse

    bench = _bench_search()
    args = argparse.Namespace(
        modes=["darts1", "prob", "cell_plain"], batch=2, memory_factor=2, target_batch=8, memory_budget_gb=4.0,
        cell_space="cells", cell_ops=None, nodes=None, cell_layers=None, channels=None, space="autox3d-v1",
        segments=4, frames=2, size=112, steps=3, samples=4, classes=101, quick=False)
    result = lambda mode, batch, ms, rss: {"mode": mode, "batch": batch, "ms_per_clip": ms, "step_ms_median": ms * batch,  # noqa: E731
                                           "peak_rss_mb": rss, "first_call_s": 1.0, "shared_process": False,
                                           "gmacs_per_clip": 1.0}
    results = {"darts1": result("darts1", 2, 300.0, 3000.0), "darts1@4": result("darts1", 4, 290.0, 4000.0),
               "prob": result("prob", 2, 100.0, 1500.0), "prob@4": result("prob", 4, 100.0, 1700.0),
               "cell_plain": result("cell_plain", 2, 50.0, 1000.0)}
    summary = bench.summarize(results, args)
    assert summary["per_clip"]["darts1"]["activation_mb_per_clip"] == 500.0
    assert "activation_mb_per_clip" not in summary["per_clip"]["cell_plain"]  # no second batch measured
    assert summary["ratios"]["darts1_over_prob_time"] == 3.0 and summary["ratios"]["darts1_over_cell_plain_time"] == 6.0
    assert summary["ratios"]["darts1_over_prob_memory"] == 5.0
    verdict = summary["memory_limit"]["darts1"]
    assert verdict["peak_gb_at_target_batch"] == (2000 + 8 * 500) / 1024 and verdict["memory_is_the_limit"]
    assert verdict["max_batch_in_budget"] == 4 and verdict["max_batch_by_device_gb"]["16"] == 28
    assert "PC-DARTS" in bench.format_report(summary)


@pytest.mark.slow
def test_bench_search_quick_writes_every_mode(tmp_path):
    """``--quick``: every mode in a fresh process, the JSON and the chart (a few minutes on 2 busy cores)."""
    import os

    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench_search.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out), "--png", str(png)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert set(summary) == {"setting", "per_clip", "ratios", "memory_limit", "results"}
    assert set(summary["per_clip"]) == {"darts1", "darts2", "cell_plain", "prob", "prob_weights", "block_plain"}
    assert all(entry["ms_per_clip"] > 0 for entry in summary["per_clip"].values())
    assert "activation_mb_per_clip" in summary["per_clip"]["darts1"]
    for key in ("darts1_over_prob_time", "darts2_over_prob_time", "darts1_over_cell_plain_time",
                "darts2_over_darts1_time", "prob_over_block_plain_time"):
        assert summary["ratios"][key] > 0, key
    assert summary["results"]["cell_plain"]["genotype"]["normal"]
    assert png.stat().st_size > 1000
    assert "differentiable step, 2nd order" in proc.stdout
