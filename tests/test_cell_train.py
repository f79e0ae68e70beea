"""A searched cell network (a `CellNetSpec` JSON, what `autox3d search --method differentiable`
writes) trains, evaluates and exports through the same commands as any zoo model."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.arch.cells import CellNetSpec, Genotype  # noqa: E402
from autox3d_tf.data import write_synthetic_dataset  # noqa: E402


@pytest.mark.slow
def test_cell_spec_trains_evaluates_and_exports(tmp_path):
    from autox3d_tf.export.runs import export_run
    from autox3d_tf.flops import count_macs
    from autox3d_tf.training import evaluate, load_trained_model, train

    ds = write_synthetic_dataset(tmp_path / "data", num_classes=2, clips_per_class=6, size=32, frames=8,
                                 progress=False)
    genotype = Genotype(normal=(("p3d_c", 0), ("sep_conv_1x3x3", 1)), reduce=(("max_pool_1x3x3", 0), ("p3d_a", 1)))
    spec = CellNetSpec("cells_searched", genotype, channels=4, layers=3, input_frames=4, input_size=32)
    spec_path = tmp_path / "arch.json"
    spec.save(str(spec_path))
    out = tmp_path / "run"
    train(ds.split_files["train"], model="X3D_XS", spec=spec_path, out_dir=out, epochs=1, steps_per_epoch=2,
          batch_size=4, frames=4, crop=32, learning_rate=0.05, verbose=0)
    config = json.loads((out / "run.json").read_text())
    assert config["spec"]["family"] == "cells" and CellNetSpec.from_dict(config["spec"]) == spec
    model, _ = load_trained_model(out)
    assert config["macs"]["network"] == count_macs(model)
    metrics = evaluate(out, ds.split_files["test"], num_clips=1, num_crops=1, batch_size=4)
    assert metrics["videos"] > 0 and 0.0 <= metrics["top1"] <= 1.0
    info = export_run(out, tmp_path / "export", tflite=False)
    loaded = tf.saved_model.load(info["saved_model"])
    clip = np.random.default_rng(0).integers(0, 256, (1, 4, 36, 36, 3), dtype=np.uint8)
    from autox3d_tf.preprocessing import preprocess_input

    got = loaded.signatures["serving_default"](frames=tf.constant(clip))["probabilities"].numpy()
    np.testing.assert_allclose(got, model(preprocess_input(clip)).numpy(), atol=1e-5)
