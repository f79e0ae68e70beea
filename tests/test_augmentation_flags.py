"""Augmentation a user controls: --flip / --noflip and --scale_jitter reach the training and search
pipelines (train, search, their CLIs), and bad values are one-line usage errors."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")


def test_train_cli_passes_flip_and_scale_jitter(monkeypatch, tmp_path, capsys):
    from autox3d_tf.training import loops
    from autox3d_tf.workflows import train as workflow

    seen = {}

    def fake_train(data, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(loops, "train", fake_train)
    base = ["autox3d train", f"--train_data={tmp_path}", f"--out_dir={tmp_path / 'run'}"]
    assert workflow.main([*base, "--noflip", "--scale_jitter=40,48"]) == 2
    assert seen["flip"] is False and seen["scale_range"] == (40, 48)
    seen.clear()
    assert workflow.main(base) == 2
    assert seen["flip"] is None and seen["scale_range"] is None  # the pipeline's defaults
    capsys.readouterr()
    for bad in ("--scale_jitter=48,40", "--scale_jitter=a,b", "--scale_jitter=40"):
        assert workflow.main([*base, bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--scale_jitter" in err[0], err


def test_search_input_passes_flip_and_scale_to_both_sources(monkeypatch):
    import tensorflow as tf

    from autox3d_tf.search import trainer

    calls = []

    def fake_clips(source, split, batch, ctx, class_names=None, hold_out=None, **kwargs):
        calls.append(kwargs)
        return tf.data.Dataset.from_tensors((tf.zeros((4, 8, 8, 3)), tf.constant(0))).batch(batch)

    monkeypatch.setattr(trainer, "_clips", fake_clips)
    trainer.search_input(tf.distribute.get_strategy(), "a.csv", "b.csv", batch_size=2, frames=4, rate=1, crop=8,
                         flip=False, scale_range=(10, 12))
    assert len(calls) == 2 and all(c["flip"] is False and c["scale_range"] == (10, 12) for c in calls)


def test_search_cli_passes_flip(monkeypatch, tmp_path):
    from autox3d_tf.workflows import search as workflow

    seen = {}

    def fake_search(data, out_dir, **kwargs):
        seen.update(kwargs)
        return {}

    monkeypatch.setattr(workflow, "probabilistic_search", fake_search)
    assert workflow.main(["autox3d search", f"--data={tmp_path}", "--noflip", "--scale_jitter=70,80"]) == 0
    assert seen["flip"] is False and seen["scale_range"] == (70, 80)
