"""training/search.py through `autox3d search` on the synthetic dataset; the script dispatcher."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_dispatcher_reports_missing_scripts(tmp_path, monkeypatch, capsys):
    from autox3d_tf.cli import scripts

    monkeypatch.setenv("AUTOX3D_TRAINING_DIR", str(tmp_path))
    for name in ("search", "train", "evaluate", "export"):
        assert scripts.run_for(name, argparse.Namespace(extra=[])) == 2
        assert "not available yet" in capsys.readouterr().err
    assert scripts.ACCEPTS_EXTRA is True
    parser = argparse.ArgumentParser()
    scripts.add_arguments_for("search", parser)
    assert "training/search.py" in parser.epilog


def test_search_help_lists_flags():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "search", "--helpfull"], cwd=ROOT, env=env,
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
    sys.path.insert(0, os.path.join(ROOT, "training"))
    from search import make_space

    space = make_space("tiny", 4, 32, 2)
    assert space.arch_macs(space.encode(spec)) == pytest.approx(summary["derived_macs"])
    for png in ("distribution.png", "distribution_final.png", "macs_accuracy.png"):
        assert (out / png).stat().st_size > 5000
    assert (out / "metrics.csv").exists() and os.listdir(out / "ckpt")
