"""The probabilistic search never scores architectures on the videos its weights train on: a folder
(or any source whose held-out split would share videos with the training one) holds 20% of the
training videos out; --held_out_fraction sets the share."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from autox3d_tf.data import write_synthetic_dataset  # noqa: E402
from autox3d_tf.data.synthetic import render_clip, write_video  # noqa: E402


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    csv = write_synthetic_dataset(root / "csv", num_classes=2, clips_per_class=5, size=32, frames=8, progress=False)
    for label in (0, 1):
        folder = root / "folder" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(5):
            write_video(folder / f"{i}.mp4", render_clip(label, seed=10 * label + i, size=32, frames=8))
    return {"csv": str(csv.annotations), "folder": str(root / "folder")}


def _search_input_kwargs(monkeypatch, data, **kwargs) -> dict:
    from autox3d_tf import search
    from autox3d_tf.workflows.search import probabilistic_search

    seen = {}

    def fake(strategy, train_source, held_out_source, **kw):
        seen.update(kw, train_source=train_source, held_out_source=held_out_source)
        raise _Stop

    monkeypatch.setattr(search, "search_input", fake)
    with pytest.raises(_Stop):
        probabilistic_search(data, kwargs.pop("out_dir"), space="tiny", frames=4, crop=32, batch_size=2, **kwargs)
    return seen


def test_a_folder_holds_out_a_fifth_of_its_videos(monkeypatch, sources, tmp_path, capsys):
    seen = _search_input_kwargs(monkeypatch, sources["folder"], out_dir=str(tmp_path / "a"))
    assert seen["held_out_fraction"] == 0.2 and "holding out 20%" in capsys.readouterr().out

    from autox3d_tf.training.data import HoldOut, select_annotations

    train = {r.path for r in select_annotations(sources["folder"], None, None, HoldOut(0.2, "training", 0)).records}
    held = {r.path for r in select_annotations(sources["folder"], None, None, HoldOut(0.2, "validation", 0)).records}
    assert train.isdisjoint(held) and len(held) == 2 and len(train) == 8


def test_kinetics_splits_are_kept_and_the_fraction_can_be_set(monkeypatch, sources, tmp_path):
    seen = _search_input_kwargs(monkeypatch, sources["csv"], out_dir=str(tmp_path / "b"))
    assert not seen["held_out_fraction"] and seen["held_out_split"] == "val"
    seen = _search_input_kwargs(monkeypatch, sources["csv"], out_dir=str(tmp_path / "c"), held_out_fraction=0.5,
                                split_seed=2)
    assert seen["held_out_fraction"] == 0.5 and seen["split_seed"] == 2
