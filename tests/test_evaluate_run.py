"""Multi-view evaluation of a training run (N clips x 3 crops): top-1 / top-5, confusion matrix
and its PNG, the absl script; and exporting the same run with training/export.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.arch.spec import StageSpec  # noqa: E402
from autox3d_tf.data import write_synthetic_dataset  # noqa: E402
from autox3d_tf.training import confusion_matrix, evaluate, load_trained_model, plot_confusion_matrix, train  # noqa: E402
from autox3d_tf.zoo import get_spec  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny network trained for 2 steps on the synthetic dataset (4 classes, 4 test videos)."""
    root = tmp_path_factory.mktemp("eval")
    ds = write_synthetic_dataset(root / "data", num_classes=4, clips_per_class=6, size=64, frames=16, progress=False)
    xs = get_spec("X3D_XS")
    spec = xs.replace(name="tiny", stem_width=8, head_width=48, head_hidden=32,
                      stages=tuple(StageSpec(w, s.blocks[:1], s.stride) for s, w in zip(xs.stages, (8, 16, 24, 32))))
    train(ds.split_files["train"], model="X3D_XS", spec=spec, out_dir=root / "run", epochs=1, batch_size=4,
          steps_per_epoch=2, crop=32, learning_rate=0.05, verbose=0)
    return {"dir": root / "run", "test": ds.split_files["test"], "classes": ds.classes}


def test_confusion_matrix_and_plot(tmp_path):
    cm = confusion_matrix([0, 1, 1, 2, -1], [0, 1, 2, 2, 0], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    path = plot_confusion_matrix(cm, ["a", "b", "c"], tmp_path / "cm.png")
    assert open(path, "rb").read(8) == PNG


def test_evaluate_run_multi_view(run, tmp_path):
    out = tmp_path / "eval"
    result = evaluate(run["dir"], run["test"], num_clips=2, num_crops=3, batch_size=6, out_dir=out)
    assert result["videos"] == 4 and result["views"] == 4 * 2 * 3
    cm = np.asarray(result["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == 4
    assert result["top1"] == pytest.approx(np.trace(cm) / 4)
    assert result["top5"] == 1.0  # 4 classes: top-5 holds them all
    assert len(result["predictions"]) == 4 and sorted(result["labels"]) == [0, 1, 2, 3]
    assert set(result["per_class_accuracy"]) == set(run["classes"])
    assert open(result["confusion_matrix_png"], "rb").read(8) == PNG
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["top1"] == result["top1"] and saved["num_clips"] == 2 and not saved["shuffle_frames"]

    # The averaged softmax is the model's: recompute one video's 6 views by hand.
    from autox3d_tf.training.data import eval_dataset
    from autox3d_tf.training.loops import load_run
    from autox3d_tf.data.clip import ClipSettings

    model, config = load_trained_model(run["dir"])
    c = config["clip"]
    clip = ClipSettings(c["frames"], c["rate"], c["train_crop"], c["test_crop"], tuple(c["scale_range"]))
    views, _ = eval_dataset(run["test"], "X3D_XS", clip, batch_size=6, num_clips=2, num_crops=3,
                            class_names=config["classes"])
    x, y, vid = next(iter(views))
    assert len(set(vid.numpy().tolist())) == 1
    mean = model(x).numpy().mean(0)
    assert int(np.argmax(mean)) == result["predictions"][0]
    assert load_run(run["dir"])["completed"]


def test_evaluate_with_shuffled_frames(run):
    result = evaluate(run["dir"], run["test"], num_clips=1, num_crops=1, shuffle_frames=True)
    assert result["shuffle_frames"] and result["views"] == 4


def test_evaluate_script_json(run, tmp_path):
    out = tmp_path / "eval"
    cmd = [sys.executable, os.path.join(ROOT, "training", "evaluate.py"), f"--run_dir={run['dir']}",
           f"--data={run['test']}", "--num_clips=1", "--num_crops=3", f"--out_dir={out}", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert result["videos"] == 4 and result["views"] == 12 and 0.0 <= result["top1"] <= 1.0
    assert os.path.exists(out / "confusion_matrix.png") and os.path.exists(out / "metrics.json")


@pytest.mark.slow
def test_export_script_on_the_run(run, tmp_path):
    """training/export.py --run_dir: SavedModel whose probabilities are the run's model's."""
    out = tmp_path / "export"
    cmd = [sys.executable, os.path.join(ROOT, "training", "export.py"), f"--run_dir={run['dir']}",
           f"--out_dir={out}", "--tflite=false", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert info["network_input"] == {"frames": 4, "crop": 36} and "tflite" not in info
    model, config = load_trained_model(run["dir"])
    x = np.random.default_rng(0).integers(0, 256, (2, 4, 36, 36, 3), dtype=np.uint8)
    loaded = tf.saved_model.load(info["saved_model"])
    got = loaded.signatures["serving_default"](frames=tf.constant(x))
    from autox3d_tf.preprocessing import preprocess_input

    np.testing.assert_allclose(got["probabilities"].numpy(), model(preprocess_input(x)).numpy(), atol=1e-5)
    labels = [[s.decode() for s in row] for row in got["top_k_labels"].numpy()]
    assert all(set(row) == set(config["classes"]) for row in labels)  # 4 classes: top-k is all of them
