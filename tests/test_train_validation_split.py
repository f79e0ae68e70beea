"""``train(validation_split=...)``: a held-out share of the training videos validates every epoch,
is recorded in run.json, and is what ``evaluate`` scores on the run's own data; TFRecords refuse it."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

from autox3d_tf.data import write_synthetic_dataset  # noqa: E402
from autox3d_tf.training import evaluate, train  # noqa: E402
from autox3d_tf.training.data import HoldOut, select_annotations  # noqa: E402
from tests.helpers.train import tiny_spec  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("holdout")
    ds = write_synthetic_dataset(root, num_classes=4, clips_per_class=5, size=48, frames=16, progress=False)
    spec = root / "tiny.json"
    tiny_spec().save(str(spec))
    return {"train": ds.split_files["train"], "spec": str(spec)}


def test_hold_out_subsets_are_disjoint_and_cover_the_videos(data):
    whole = {r.path for r in select_annotations(data["train"], None, None).records}
    training = {r.path for r in select_annotations(data["train"], None, None, HoldOut(0.25, "training", 3)).records}
    validation = {r.path for r in select_annotations(data["train"], None, None, HoldOut(0.25, "validation", 3)).records}
    assert training.isdisjoint(validation) and training | validation == whole
    assert len(validation) == int(0.25 * len(whole))
    other = {r.path for r in select_annotations(data["train"], None, None, HoldOut(0.25, "validation", 4)).records}
    assert other != validation  # another seed, another draw


def test_train_validates_on_the_held_out_videos(data, tmp_path):
    out = tmp_path / "run"
    result = train(data["train"], model="X3D_XS", spec=data["spec"], out_dir=out, validation_split=0.25, split_seed=3,
                   epochs=1, batch_size=4, crop=32, learning_rate=0.05, verbose=0)
    assert "val_accuracy" in result.history
    config = json.loads((out / "run.json").read_text())
    assert config["validation_split"] == {"fraction": 0.25, "seed": 3}
    held = select_annotations(data["train"], None, None, HoldOut(0.25, "validation", 3))
    metrics = evaluate(out, data["train"], num_clips=1, num_crops=1, batch_size=4)
    assert metrics["videos"] == len(held) and metrics["subset"] == {"validation_split": 0.25, "subset": "validation",
                                                                    "seed": 3}
    everything = evaluate(out, data["train"], num_clips=1, num_crops=1, batch_size=4, validation_split=0.25,
                          subset="training", split_seed=3)
    assert everything["videos"] == len(select_annotations(data["train"], None, None).records) - len(held)
    with pytest.raises(ValueError, match="not both"):
        train(data["train"], model="X3D_XS", spec=data["spec"], out_dir=tmp_path / "b", validation_split=0.25,
              val_data=data["train"], epochs=1, batch_size=4, crop=32, verbose=0)
