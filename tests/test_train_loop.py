"""``train`` / ``training/train.py`` end to end on the synthetic dataset with a tiny ArchSpec:
run folder, logs, reloadable weights, MirroredStrategy on 2 logical CPUs with mixed precision and
shuffled frames, and a killed run resuming where it stopped."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.arch.spec import ArchSpec  # noqa: E402
from autox3d_tf.data import write_synthetic_dataset  # noqa: E402
from autox3d_tf.training import load_trained_model, train  # noqa: E402
from tests.helpers.train import tiny_spec  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    ds = write_synthetic_dataset(root, num_classes=4, clips_per_class=6, size=64, frames=16, progress=False)
    spec_path = root / "tiny.json"
    tiny_spec().save(str(spec_path))
    return {"train": ds.split_files["train"], "val": ds.split_files["val"], "spec": str(spec_path),
            "classes": ds.classes}


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_a_complete_run(data, tmp_path):
    out = tmp_path / "run"
    result = train(data["train"], model="X3D_XS", spec=data["spec"], out_dir=out, val_data=data["val"], epochs=2,
                   batch_size=4, crop=32, learning_rate=0.05, verbose=0)
    assert result.initial_epoch == 0
    assert len(result.history["loss"]) == 2 and "val_accuracy" in result.history and "top5" in result.history
    assert all(np.isfinite(result.history["loss"]))
    rows = _rows(out / "history.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert "val_loss" in rows[0]
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(out / "logs" / "train"))
    assert os.path.exists(out / "backup" / "latest.weights.h5")
    config = json.loads((out / "run.json").read_text())
    assert config["completed"] and config["classes"] == data["classes"]
    assert config["clip"]["frames"] == 4 and config["clip"]["train_crop"] == 32 and config["clip"]["test_crop"] == 36
    assert config["steps_per_epoch"] == 16 // 4 and config["precision"] == "float32"
    assert ArchSpec.load(str(out / "spec.json")) == tiny_spec()

    # The final weights reload into a fresh inference model that computes what the trained one does.
    model, _ = load_trained_model(out)
    assert model.input_shape == (None, 4, 36, 36, 3) and model.output_shape == (None, 4)
    x = np.random.default_rng(0).normal(size=(2, 4, 36, 36, 3)).astype(np.float32)
    logits = result.model(x, training=False).numpy()
    np.testing.assert_allclose(model(x).numpy(), tf.nn.softmax(logits).numpy(), atol=1e-5)

    # Running the finished run again trains nothing; a different configuration is refused.
    again = train(data["train"], model="X3D_XS", spec=data["spec"], out_dir=out, val_data=data["val"], epochs=2,
                  batch_size=4, crop=32, learning_rate=0.05, verbose=0)
    assert again.initial_epoch == 2 and not again.history.get("loss")
    assert len(_rows(out / "history.csv")) == 2
    with pytest.raises(ValueError, match="different run"):
        train(data["train"], model="X3D_XS", spec=data["spec"], out_dir=out, epochs=3, batch_size=4, crop=32,
              verbose=0)


@pytest.mark.slow
def test_script_mirrored_mixed_precision_shuffled_frames(data, tmp_path):
    """training/train.py on 2 logical CPU devices: MirroredStrategy, mixed_bfloat16, no-motion control."""
    out = tmp_path / "run"
    cmd = [sys.executable, os.path.join(ROOT, "training", "train.py"), f"--train_data={data['train']}",
           f"--val_data={data['val']}", f"--spec={data['spec']}", f"--out_dir={out}", "--epochs=1",
           "--batch_size=4", "--steps_per_epoch=2", "--crop=32", "--cpu_devices=2", "--mixed_precision",
           "--shuffle_frames", "--learning_rate=0.05", "--verbose=0", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["strategy"] == "MirroredStrategy, 2 replica(s)"
    assert summary["precision"] == "mixed_bfloat16"
    assert np.isfinite(summary["final_metrics"]["loss"])
    config = json.loads((out / "run.json").read_text())
    assert config["shuffle_frames"] is True and config["completed"]
    assert os.path.exists(out / "final.weights.h5")


def test_script_usage_errors():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "training", "train.py"), "--epochs=1"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode != 0 and "--train_data" in proc.stderr


KILLED = textwrap.dedent(
    """
    import os, signal, sys, keras
    from autox3d_tf.training import train

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # after the run's own callbacks saved the epoch

    train(sys.argv[1], model="X3D_XS", spec=sys.argv[2], out_dir=sys.argv[3], epochs=3, batch_size=4, crop=32,
          learning_rate=0.05, verbose=0, callbacks=[Kill()])
    """
)


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(data, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILLED, data["train"], data["spec"], str(out)],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert [r["epoch"] for r in _rows(out / "history.csv")] == ["0", "1"]
    assert json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert not os.path.exists(out / "final.weights.h5")

    result = train(data["train"], model="X3D_XS", spec=data["spec"], out_dir=out, epochs=3, batch_size=4, crop=32,
                   learning_rate=0.05, verbose=0)
    assert result.initial_epoch == 2
    assert len(result.history["loss"]) == 1  # only the third epoch ran
    assert [r["epoch"] for r in _rows(out / "history.csv")] == ["0", "1", "2"]
    # The optimizer state came back too: 3 epochs x 4 steps in all, and the schedule continued.
    assert int(result.model.optimizer.iterations.numpy()) == 12
    assert os.path.exists(out / "final.weights.h5")
