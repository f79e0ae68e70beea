"""`autox3d search` (autox3d_tf.workflows.search) on the synthetic dataset; the workflow dispatcher."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_workflow_command_runs_from_the_package(capsys):
    """Each workflow command is a module of the package: --help lists its own flags, bad flags exit 2."""
    from autox3d_tf.cli import workflow

    own_flag = {"train": "--train_data", "search": "--macs_target", "search-entropy": "--population",
                "evaluate": "--num_clips", "export": "--top_k"}
    assert set(workflow.WORKFLOWS) == set(own_flag)
    for name, flag in own_flag.items():
        assert workflow.run_for(name, argparse.Namespace(extra=["--help"])) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"autox3d {name}: ") and flag in out
        others = [f for n, f in own_flag.items() if n != name and not (name == "search" and n == "search-entropy")]
        assert not any(f"{f}:" in out for f in others), f"{name} --help lists another workflow's flags"
        assert workflow.run_for(name, argparse.Namespace(extra=["--no_such_flag=1"])) == 2
        assert "no_such_flag" in capsys.readouterr().err
    assert workflow.run_for("train", argparse.Namespace(extra=["positional"])) == 2
    assert "unexpected arguments" in capsys.readouterr().err


def test_search_help_lists_flags():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "search", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ("--macs_target", "--space", "--warmup_epochs", "--strategy", "--out_dir", "--data", "--epochs", "--batch_size"):
        assert flag in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "search", "--no_such_flag"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no_such_flag" in proc.stderr


@pytest.mark.slow
def test_autox3d_search_on_synthetic_csv(tmp_path):
    from autox3d_tf.arch.spec import ArchSpec
    from autox3d_tf.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "synthetic", num_classes=2, clips_per_class=8, size=32, frames=16, progress=False)
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    cmd = [sys.executable, "-m", "autox3d_tf.cli.main", "search", f"--data={data.annotations}", f"--out_dir={out}",
           "--space=tiny", "--frames=4", "--rate=2", "--crop=32", "--epochs=2", "--steps_per_epoch=2",
           "--warmup_epochs=1", "--batch_size=2", "--macs_target=0.003", "--history_every=1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    spec = ArchSpec.load(str(out / "arch.json"))
    summary = json.load(open(out / "search.json"))
    history = json.load(open(out / "history.json"))
    assert summary["classes"] == 2 and summary["macs_target"] == pytest.approx(3e6)
    assert summary["warmup_steps"] == 2 and summary["steps_per_epoch"] == 2
    assert [r["step"] for r in history["records"]] == [0, 1, 2, 3, 4]
    assert len(history["samples"]) == 4
    from autox3d_tf.search.space import space_preset

    space = space_preset("tiny", input_frames=4, input_size=32, classes=2)
    assert space.arch_macs(space.encode(spec)) == pytest.approx(summary["derived_macs"])
    for png in ("distribution.png", "distribution_final.png", "macs_accuracy.png"):
        assert (out / png).stat().st_size > 5000
    assert (out / "metrics.csv").exists() and os.listdir(out / "ckpt")
