"""Fine-tuning with ``train`` / ``autox3d train``: from a 400-class X3D-XS checkpoint the test writes
(random pytorchvideo weights) to a 4-class model, with the backbone frozen or trained from a stage;
the run's defaults, its record, and its export and serving like any other run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from autox3d_tf.data import write_synthetic_dataset  # noqa: E402
from autox3d_tf.training import finetune_learning_rate, layer_groups, load_trained_model, train  # noqa: E402
from autox3d_tf.training.finetune import layer_group  # noqa: E402
from autox3d_tf.training.recipe import Recipe, scaled_learning_rate  # noqa: E402
from autox3d_tf.weights import convert_checkpoint  # noqa: E402
from autox3d_tf.zoo import X3D_XS  # noqa: E402
from tests.helpers.checkpoints import reference_model, save_pytorchvideo_checkpoint  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
CLIP = dict(frames=4, crop=32, batch_size=4, steps_per_epoch=2, epochs=1, verbose=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    ds = write_synthetic_dataset(root / "data", num_classes=4, clips_per_class=6, size=48, frames=16, progress=False)
    pyth = root / "x3d_xs_k400.pyth"
    save_pytorchvideo_checkpoint(reference_model("XS", seed=3), pyth)
    h5 = root / "x3d_xs_k400.weights.h5"
    convert_checkpoint(pyth, h5, "X3D_XS")
    pretrained = X3D_XS(weights=h5)
    reference = {layer.name: layer.get_weights() for layer in pretrained.layers if layer.weights}
    return {"root": root, "train": ds.split_files["train"], "pyth": pyth,
            "reference": reference}


class _Snapshot(keras.callbacks.Callback):
    """The network's weights by layer name when training begins."""

    def on_train_begin(self, logs=None):
        self.weights = {layer.name: layer.get_weights() for layer in self.model.layers if layer.weights}


def _changed(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_frozen_backbone_starts_from_and_keeps_the_checkpoint(setup, tmp_path):
    snapshot = _Snapshot()
    out = tmp_path / "frozen"
    result = train(setup["train"], model="X3D_XS", out_dir=out, weights=setup["pyth"], freeze_backbone=True,
                   flip=False, callbacks=[snapshot], **CLIP)
    reference = setup["reference"]
    assert set(snapshot.weights) == set(reference)
    for name, values in snapshot.weights.items():
        if name != "predictions":  # at the start every backbone tensor is the checkpoint's
            assert not _changed(values, reference[name]), name
    assert snapshot.weights["predictions"][0].shape == (2048, 4)

    trained, config = load_trained_model(out)
    after = {layer.name: layer.get_weights() for layer in trained.layers if layer.weights}
    for name, values in after.items():
        if name != "predictions":  # frozen: weights and BatchNorm statistics unchanged
            assert not _changed(values, reference[name]), name
    assert _changed(after["predictions"], snapshot.weights["predictions"])

    assert config["weights"] == str(setup["pyth"]) and config["unfreeze_from"] == "classifier"
    assert config["augmentation"]["flip"] is False
    assert config["learning_rate"] == pytest.approx(0.1 * scaled_learning_rate(4, Recipe()))
    assert config["learning_rate"] == pytest.approx(finetune_learning_rate(4))
    assert config["pretrained"]["skipped"] == ["predictions"] and config["pretrained"]["source_classes"] == 400
    assert len(config["frozen_layers"]) == len(reference) - 1
    assert result.extra["pretrained_summary"].startswith("Loaded ")


def test_unfreeze_from_a_stage_trains_only_from_there(setup, tmp_path):
    out = tmp_path / "stage4"
    train(setup["train"], model="X3D_XS", out_dir=out, weights=setup["pyth"], unfreeze_from="stage4",
          learning_rate=0.5, **CLIP)
    trained, config = load_trained_model(out)
    reference = setup["reference"]
    for layer in trained.layers:
        if not layer.weights:
            continue
        group = layer_group(layer.name)
        changed = _changed(layer.get_weights(), reference[layer.name])
        if group in ("stem", "stage1", "stage2", "stage3"):
            assert not changed, layer.name
    assert _changed(trained.get_layer("head_conv").get_weights(), reference["head_conv"])
    assert _changed(trained.get_layer("stage4_block0_conv_a").get_weights(), reference["stage4_block0_conv_a"])
    assert config["unfreeze_from"] == "stage4"


def test_layer_groups_and_bad_arguments(setup, tmp_path):
    model = X3D_XS(input_shape=(4, 32, 32, 3), classes=3)
    assert layer_groups(model) == ["stem", "stage1", "stage2", "stage3", "stage4", "head", "classifier"]
    with pytest.raises(ValueError, match="stage9"):
        train(setup["train"], model="X3D_XS", out_dir=tmp_path / "a", weights=setup["pyth"], unfreeze_from="stage9",
              **CLIP)
    with pytest.raises(ValueError, match="needs pretrained"):
        train(setup["train"], model="X3D_XS", out_dir=tmp_path / "b", freeze_backbone=True, **CLIP)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "train", *args], capture_output=True,
                          text=True, env=ENV, timeout=600, cwd=ROOT)


def test_cli_errors_are_one_line(setup, tmp_path):
    base = [f"--train_data={setup['train']}", "--frames=4", "--crop=32", "--epochs=1", "--steps_per_epoch=1",
            "--batch_size=2", "--verbose=0"]
    other = tmp_path / "other.weights.h5"
    from autox3d_tf.zoo import AutoX3D_XS

    AutoX3D_XS(input_shape=(4, 32, 32, 3), classes=4).save_weights(other)
    for extra, expected in (
        ([f"--init_weights={other}", f"--out_dir={tmp_path / 'x'}"], "does not match"),
        (["--freeze_backbone", f"--out_dir={tmp_path / 'y'}"], "needs pretrained"),
        (["--scale_jitter=40", f"--out_dir={tmp_path / 'z'}"], "--scale_jitter"),
    ):
        proc = _cli(*base, *extra)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("autox3d train")]
        assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_finetune_then_export_and_serve(setup, tmp_path):
    """autox3d train --weights ... --freeze_backbone --noflip, then autox3d export, then the SavedModel
    answers a REST predict like TF Serving with the run's classes."""
    out = tmp_path / "run"
    proc = _cli(f"--train_data={setup['train']}", f"--weights={setup['pyth']}", "--model=X3D_XS", "--freeze_backbone",
                "--noflip", "--frames=4", "--crop=32", "--epochs=1", "--steps_per_epoch=2", "--batch_size=4",
                "--verbose=0", f"--out_dir={out}", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["pretrained"]["skipped"] == ["predictions"] and summary["frozen_layers"] > 100
    export = tmp_path / "export"
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "export", f"--run_dir={out}",
                           f"--out_dir={export}", "--tflite=false", "--json"], capture_output=True, text=True,
                          env=ENV, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout[proc.stdout.index("{"):])
    from autox3d_tf.export.serving import Predictor

    predictor = Predictor(info["saved_model"])
    clip = np.random.default_rng(0).integers(0, 256, (1, 4, 36, 36, 3), dtype=np.uint8)
    answer = predictor.predict({"frames": clip})
    model, config = load_trained_model(out)
    from autox3d_tf.preprocessing import preprocess_input

    np.testing.assert_allclose(answer["probabilities"], model(preprocess_input(clip)).numpy(), atol=1e-5)
    assert {s.decode() for s in answer["top_k_labels"][0]} <= set(config["classes"])
