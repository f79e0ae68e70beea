"""benchmarks/real_video.py (issue 19): the folds (by clip number, every class in every fold, disjoint),
and its ``--quick`` flow end to end on the real EgoGestAR clips: every arm trained and scored, the run
folders re-scorable with ``autox3d evaluate``, strict JSON, the summary table and the PNG."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EGOGESTAR = ROOT / ".." / "shared" / "data" / "egogestar" / "annotations.csv"
needs_data = pytest.mark.skipif(not EGOGESTAR.is_file(), reason=f"EgoGestAR clips not found at {EGOGESTAR}")


def _bench():
    spec = importlib.util.spec_from_file_location("real_video", ROOT / "benchmarks" / "real_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_dir_of(results: dict, arm: str) -> str:
    return next(r["run_dir"] for r in results["runs"] if r["arm"] == arm)


class _Rec:
    def __init__(self, video_id: str, label: int):
        self.video_id, self.label, self.path = video_id, label, f"/x/{video_id}.mp4"


def test_folds_are_by_clip_number_and_hold_every_class():
    bench = _bench()
    recs = [_Rec(f"clip_{c}_{n}", c) for c in range(3) for n in range(1, 15)]
    folds = bench.make_folds(recs, 3)
    assert sum(len(f) for f in folds) == 42
    ids = [r.video_id for f in folds for r in f]
    assert len(set(ids)) == 42  # disjoint
    for f in folds:
        assert {r.label for r in f} == {0, 1, 2}
    # contiguous blocks in natural order: clips 1-5, 6-10, 11-14 (not the string order 1, 10, 11, ...)
    numbers = [sorted(int(r.video_id.rsplit("_", 1)[1]) for r in f if r.label == 0) for f in folds]
    assert numbers == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14]]
    with pytest.raises(SystemExit, match="fewer than --folds"):
        bench.make_folds(recs[:2], 3)


@pytest.mark.slow
@needs_data
def test_quick_benchmark_runs_every_arm(tmp_path):
    out = tmp_path / "rv"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_video.py"), "--out_dir", str(out),
                           "--quick"], capture_output=True, text=True, env=env, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])  # the last stdout line is strict JSON
    bench = _bench()
    assert set(summary) == set(bench.ARMS)
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 2 * len(bench.ARMS) and results["run_pairs"] == [[0, 0], [1, 1]]
    for arm, entry in summary.items():
        assert entry["runs"] == 2 and 0.0 <= entry["val_top1"] <= 1.0 and entry["latency_ms"] > 0
        assert entry["params"] > 0 and entry["macs"] > 0
    for arm in ("x3d", "control", "random", "entropy"):
        assert summary[arm]["within_budget"] and summary[arm]["macs"] <= results["macs_budget"], arm
    assert {r["within_budget"] for r in results["runs"]} <= {True, False}
    assert "vs_x3d" in summary["control"] and "vs_x3d" not in summary["x3d"]
    assert (Path(run_dir_of(results, "x3d")) / "eval_val" / "metrics.json").is_file()
    assert summary["probabilistic"]["search_seconds"] > 0 and "search_seconds" not in summary["x3d"]
    assert (out / "real_video.png").stat().st_size > 10_000 and "| X3D-XS |" in (out / "summary.md").read_text()
    # The scored fold never trains: the fold lists are disjoint, and every class is in each.
    train = (out / "folds" / "fold0" / "train.txt").read_text().split("\n")
    val = (out / "folds" / "fold0" / "val.txt").read_text().split("\n")
    assert not set(filter(None, train)) & set(filter(None, val))
    # A kept run folder is re-scored by `autox3d evaluate --run_dir` to the same top-1.
    run = next(r for r in results["runs"] if r["arm"] == "x3d" and r["fold"] == 0)
    ev = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "evaluate", "--run_dir", run["run_dir"],
                         "--data", str(out / "folds" / "fold0" / "val.txt"), "--num_clips", "1", "--num_crops", "1",
                         "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(ev.stdout)["top1"] == pytest.approx(run["val_top1"])
    # Started again, it reuses every finished run and search.
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_video.py"), "--out_dir", str(out),
                            "--quick", "--arms", "x3d", "probabilistic"], capture_output=True, text=True, env=env,
                           timeout=900)
    assert again.returncode == 0 and "Epoch" not in again.stdout + again.stderr
