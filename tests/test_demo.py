"""The demo: the whole flow end to end (data, search, train x2, evaluate x2, export, serve) at a size
where the searched network, trained on the clips, clearly beats the same network trained on clips
whose frames are shuffled in time (the control, at chance by construction); its report; resuming a
finished or interrupted demo without redoing steps; and `autox3d demo --quick`'s settings.

The full-size demo's accuracy (4 classes, ~99% test top-1 against ~25% for the control) is a measured
result in the README: it takes about 8 minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest

from autox3d_tf.cli.main import main
from autox3d_tf.workflows.demo import DemoConfig, run_demo

# Two classes (rising / falling: the same frames in opposite orders, so the control is at 50%),
# 300 clips each (210 train, 45 val, 45 test), a 1-epoch search, 12 epochs of 52 steps of 8 clips.
# The network starts to see motion after about 300 steps (with 8 epochs of 35 steps it does not).
# Measured: test top-1 1.000 against 0.611 / 0.511 / 0.500 for the control with seeds 0 / 1 / 2;
# one demo run takes about 8 minutes on 2 lightly loaded cores.
SMALL = dict(classes=2, clips_per_class=300, search_epochs=1, search_warmup_epochs=0.5, train_epochs=12,
             batch_size=8, eval_clips=1, seed=0)


@pytest.mark.slow
def test_demo_beats_the_time_shuffled_control_and_resumes(tmp_path):
    out = tmp_path / "demo"
    config = DemoConfig(out_dir=str(out), **SMALL)
    printed: list[str] = []
    summary = run_demo(config, log=printed.append)
    printed_text = "\n".join(printed)

    classes = json.loads((out / "data" / "classes.json").read_text())
    names = classes if isinstance(classes, list) else classes.get("names", classes.get("classes"))
    assert names == ["rising", "falling"]
    top1, control = summary["test_top1"], summary["test_top1_frames_shuffled"]
    assert summary["metrics"]["train"]["top1"] == top1 and summary["metrics"]["train_shuffled"]["top1"] == control
    # Motion is the only cue: the trained network must see it, the control cannot.
    assert top1 >= 0.8, summary["metrics"]["train"]
    assert top1 - control >= 0.2, (top1, control)
    assert summary["motion_gain_points"] == pytest.approx(100 * (top1 - control))
    assert summary["metrics"]["train"]["videos"] == summary["metrics"]["train_shuffled"]["videos"] == 90
    assert summary["search"]["derived_macs"] <= summary["search"]["macs_target"] * 1.0001
    label, score = summary["served_prediction"]["top_k"][0]
    assert label in names and 0.5 <= score <= 1.0  # the top one of two classes
    plots = summary["plots"]
    assert plots and all(p.endswith(".png") and os.path.getsize(p) > 1000 for p in plots)
    assert any("confusion" in os.path.basename(p) for p in plots)
    assert "test top-1" in printed_text and "served by the exported SavedModel" in printed_text
    assert json.loads((out / "report" / "summary.json").read_text())["test_top1"] == top1

    # A finished demo resumes without redoing anything.
    printed.clear()
    assert run_demo(config, log=printed.append)["test_top1"] == top1
    for step in ("synthetic data", "architecture search", "train (searched network)", "export"):
        assert any(line.startswith(f"[demo] {step}: already done") for line in printed), step

    # Interrupted after training: the lost steps (evaluation, export) are redone, nothing else.
    shutil.rmtree(out / "export")
    shutil.rmtree(out / "train" / "eval")
    printed.clear()
    assert run_demo(config, log=printed.append)["test_top1"] == top1  # the same trained weights
    assert any(line.startswith("[demo] architecture search: already done") for line in printed)
    assert any(line.startswith("[demo] evaluate (train): autox3d evaluate") for line in printed)
    assert any(line.startswith("[demo] export: autox3d export") for line in printed)
    assert any(line.startswith("[demo] evaluate (train_shuffled): already done") for line in printed)


def test_cli_quick_demo_settings(monkeypatch, tmp_path):
    """`autox3d demo` passes its flags to `run_demo`; --quick shrinks every step (the whole quick
    flow runs in the wheel-install test)."""
    calls: list[DemoConfig] = []
    monkeypatch.setattr("autox3d_tf.workflows.demo.run_demo", lambda config: calls.append(config))
    assert main(["demo", "--out", str(tmp_path / "a"), "--seed", "3", "--train-epochs", "2"]) == 0
    assert main(["demo", "--quick", "--out", str(tmp_path / "b")]) == 0
    full, quick = calls
    assert full == dataclasses.replace(DemoConfig(), out_dir=str(tmp_path / "a"), seed=3, train_epochs=2)
    assert quick.out_dir == str(tmp_path / "b")
    assert quick.clips_per_class < DemoConfig().clips_per_class
    assert (quick.search_epochs, quick.train_epochs, quick.eval_clips) == (1, 1, 1)
