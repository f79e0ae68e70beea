"""`autox3d demo --quick`: the whole flow end to end (data, search, train x2, evaluate x2, export, serve)
in a few minutes, its report, and resuming a finished or interrupted demo without redoing steps.

The full-size demo's accuracy (>= 90% test top-1, >= 30 points over the time-shuffled control) is a
measured result in the README, not a test: it takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from autox3d_tf.cli.main import main


@pytest.mark.slow
def test_quick_demo_runs_the_whole_flow_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    summary = json.loads((out / "report" / "summary.json").read_text())
    classes = json.loads((out / "data" / "classes.json").read_text())
    names = classes if isinstance(classes, list) else classes.get("names", classes.get("classes"))
    assert names == ["rising", "falling", "up fast, down slowly", "up slowly, down fast"]
    assert 0.0 <= summary["test_top1"] <= 1.0 and 0.0 <= summary["test_top1_frames_shuffled"] <= 1.0
    assert summary["metrics"]["train"]["videos"] == summary["metrics"]["train_shuffled"]["videos"] > 0
    assert summary["search"]["derived_macs"] <= summary["search"]["macs_target"] * 1.0001
    label, score = summary["served_prediction"]["top_k"][0]
    assert label in names and 0.0 < score <= 1.0
    plots = summary["plots"]
    assert plots and all(p.endswith(".png") and os.path.getsize(p) > 1000 for p in plots)
    assert any("confusion" in os.path.basename(p) for p in plots)
    assert "test top-1" in printed and "served by the exported SavedModel" in printed

    # A finished demo resumes without redoing anything.
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    for step in ("synthetic data", "architecture search", "export"):
        assert f"[demo] {step}: already done" in again

    # Interrupted after training: the lost steps (evaluation, export) are redone, nothing else.
    shutil.rmtree(out / "export")
    shutil.rmtree(out / "train" / "eval")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    resumed = capsys.readouterr().out
    assert "[demo] architecture search: already done" in resumed
    assert "[demo] evaluate (train): autox3d evaluate" in resumed and "[demo] export: autox3d export" in resumed
    assert json.loads((out / "report" / "summary.json").read_text())["served_prediction"]["top_k"]
