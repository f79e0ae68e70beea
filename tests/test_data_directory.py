"""Datasets from a folder of class sub-folders (autox3d_tf.data.directory, directory_pipeline) with
the conventions of keras.utils.image_dataset_from_directory, and the workflows on such a folder."""

from __future__ import annotations

import os

import numpy as np
import pytest

from autox3d_tf.data.annotations import load_annotations
from autox3d_tf.data.directory import directory_annotations, split_annotations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return str(path)


@pytest.fixture
def tree(tmp_path):
    """Three classes (not created in sorted order), a hidden folder, stray files."""
    root = tmp_path / "data"
    files = {"zebra": [touch(root / "zebra" / f"z{i}.mp4") for i in range(3)],
             "ant": [touch(root / "ant" / "a0.webm"), touch(root / "ant" / "deeper" / "a1.MP4")],
             "moth": [touch(root / "moth" / "m0.avi")]}
    touch(root / ".cache" / "hidden.mp4")
    touch(root / "ant" / "notes.txt")
    touch(root / "stray_at_the_root.mp4")
    return root, files


def test_class_names_are_the_sorted_sub_folders(tree):
    root, files = tree
    ann = directory_annotations(root)
    assert ann.classes.names == ["ant", "moth", "zebra"]
    assert [r.path for r in ann.records] == files["ant"] + files["moth"] + files["zebra"]
    assert [r.label for r in ann.records] == [0, 0, 1, 2, 2, 2]
    assert [r.video_id for r in ann.records][:2] == ["ant/a0", "ant/deeper/a1"]
    assert not os.path.exists(root / "classes.json")


def test_class_names_argument_selects_and_orders(tree):
    root, files = tree
    ann = directory_annotations(root, class_names=["zebra", "ant"])
    assert ann.classes.names == ["zebra", "ant"]
    assert [r.path for r in ann.records] == files["zebra"] + files["ant"]
    assert [r.label for r in ann.records] == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="did not match the names of the subdirectories"):
        directory_annotations(root, class_names=["ant", "wasp"])
    with pytest.raises(ValueError, match='only pass `class_names` if `labels="inferred"`'):
        directory_annotations(root, labels=None, class_names=["ant"])


def test_extensions_filter(tree):
    root, files = tree
    only_mp4 = directory_annotations(root, extensions=("mp4",))
    assert [r.path for r in only_mp4.records] == [files["ant"][1]] + files["zebra"]
    avi = directory_annotations(root, extensions=".avi")
    assert [r.path for r in avi.records] == files["moth"]
    with pytest.raises(ValueError, match="No videos found in directory"):
        directory_annotations(root, extensions=(".mkv",))


def test_follow_links(tmp_path, tree):
    root, files = tree
    outside = tmp_path / "elsewhere"
    linked = [touch(outside / "v0.mp4"), touch(outside / "v1.mp4")]
    os.symlink(outside, root / "moth" / "linked")
    plain = directory_annotations(root)
    assert not any("linked" in r.path for r in plain.records)
    followed = directory_annotations(root, follow_links=True)
    moth = [r.path for r in followed.records if r.label_name == "moth"]
    assert moth == files["moth"] + [str(root / "moth" / "linked" / os.path.basename(p)) for p in linked]


def test_unlabelled_and_explicit_labels(tree):
    root, files = tree
    everything = files["ant"] + files["moth"] + [str(root / "stray_at_the_root.mp4")] + files["zebra"]
    unlabelled = directory_annotations(root, labels=None)
    assert sorted(r.path for r in unlabelled.records) == sorted(everything)
    assert {r.label for r in unlabelled.records} == {-1}
    explicit = directory_annotations(root, labels=[1, 0, 1, 0, 0, 1, 1])
    assert [r.label for r in explicit.records] == [1, 0, 1, 0, 0, 1, 1] and explicit.classes.names == ["0", "1"]
    with pytest.raises(ValueError, match="Expected the lengths of `labels` to match"):
        directory_annotations(root, labels=[0, 1])
    with pytest.raises(ValueError, match="should be a list/tuple of integer labels"):
        directory_annotations(root, labels="folders")


def test_load_annotations_reads_a_folder_with_a_fixed_class_map(tree):
    root, _ = tree
    ann = load_annotations(root, classes=["wasp", "zebra", "moth", "ant"])
    assert ann.format == "directory" and ann.classes.names == ["wasp", "zebra", "moth", "ant"]
    assert {r.label_name: r.label for r in ann.records} == {"ant": 3, "moth": 2, "zebra": 1}
    with pytest.raises(ValueError, match=r"class folders are not in the class map: \['moth'\]"):
        load_annotations(root, classes=["ant", "zebra"])


def _many(tmp_path, n=20):
    root = tmp_path / "many"
    for i in range(n):
        touch(root / ("even" if i % 2 == 0 else "odd") / f"v{i:02d}.mp4")
    return directory_annotations(root)


def test_split_is_disjoint_covering_and_the_same_for_both_subsets(tmp_path):
    ann = _many(tmp_path)
    every = [r.path for r in ann.records]
    train = split_annotations(ann, 0.25, "training", seed=3)
    val = split_annotations(ann, 0.25, "validation", seed=3)
    t, v = [r.path for r in train.records], [r.path for r in val.records]
    assert len(v) == 5 and len(t) == 15
    assert not set(t) & set(v) and sorted(t + v) == sorted(every)
    both = split_annotations(ann, 0.25, "both", seed=3)
    assert [r.path for r in both[0].records] == t and [r.path for r in both[1].records] == v
    assert [r.path for r in split_annotations(_many(tmp_path), 0.25, "validation", seed=3).records] == v
    other = [r.path for r in split_annotations(ann, 0.25, "validation", seed=4).records]
    assert other != v and len(other) == 5
    assert t == [p for p in every if p in set(t)]  # each subset keeps the folder order
    unseeded = split_annotations(ann, 0.25, "validation")
    assert [r.path for r in unseeded.records] == every[-5:]  # Keras without shuffling: the last files


def test_split_argument_errors_mirror_keras(tmp_path, tree):
    from autox3d_tf.data.directory_pipeline import video_dataset_from_directory, video_eval_dataset_from_directory

    root, _ = tree
    cases = [
        (dict(validation_split=1.5, subset="training", seed=1), "`validation_split` must be between 0 and 1"),
        (dict(subset="training", seed=1), "If `subset` is set, `validation_split` must be set, and inversely"),
        (dict(validation_split=0.2, seed=1), "If `subset` is set, `validation_split` must be set, and inversely"),
        (dict(validation_split=0.2, subset="test", seed=1), '`subset` must be either "training", "validation"'),
        (dict(validation_split=0.2, subset="training"), "you must provide a `seed` argument"),
        (dict(label_mode="sparse"), '`label_mode` argument must be one of "int", "categorical", "binary"'),
        (dict(label_mode="binary"), 'When passing `label_mode="binary"`, there must be exactly 2'),
        (dict(validation_split=0.01, subset="validation", seed=1), "No validation videos in"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            video_dataset_from_directory(root, model=None, frames=2, rate=1, crop=32, **kwargs)
    with pytest.raises(ValueError, match="If `subset` is set"):
        video_eval_dataset_from_directory(root, subset="validation")
    unshuffled = video_dataset_from_directory(root, model=None, frames=2, rate=1, crop=32, shuffle=False,
                                              validation_split=0.5, subset="validation")
    assert len(unshuffled.file_paths) == 3


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A real folder: 2 classes x 3 tiny videos, one of them a frame folder of PNGs."""
    from PIL import Image

    from tests.helpers.videos import render_frame, write_video

    root = tmp_path_factory.mktemp("folder") / "data"
    for c, name in enumerate(("left", "right")):
        for i in range(2):
            write_video(root / name / f"{name}{i}.mp4", frames=6, size=(48, 32), fps=10, seed=2 * c + i)
        (root / name / f"{name}_frames").mkdir()
        for k in range(6):
            Image.fromarray(render_frame(k, 48, 32, seed=9 + c)).save(root / name / f"{name}_frames" / f"{k + 1}.png")
    return root


def test_video_dataset_from_directory(videos):
    from autox3d_tf.data.directory_pipeline import video_dataset_from_directory

    train, val = video_dataset_from_directory(videos, label_mode="categorical", model=None, frames=2, rate=2,
                                              crop=32, batch_size=2, seed=0, validation_split=0.34, subset="both")
    assert train.class_names == ["left", "right"] == val.class_names
    assert len(train.file_paths) == 4 and len(val.file_paths) == 2
    assert sorted(train.file_paths + val.file_paths) == sorted(
        str(p) for c in ("left", "right") for p in (videos / c).iterdir())
    clips, labels = next(iter(train))
    assert clips.shape == (2, 2, 32, 32, 3) and labels.shape == (2, 2)
    assert np.allclose(labels.numpy().sum(axis=1), 1.0)
    got = sorted(int(y) for _, ys in val for y in np.argmax(ys.numpy(), axis=1))
    assert got == sorted(0 if "/left/" in p else 1 for p in val.file_paths)
    assert val.error_log.count == 0 and train.annotations.format == "directory"

    bare = video_dataset_from_directory(videos, labels=None, model=None, frames=2, rate=2, crop=32, batch_size=3,
                                        seed=0, drop_remainder=False)
    assert bare.class_names is None and [tuple(c.shape) for c in bare] == [(3, 2, 32, 32, 3)] * 2
    binary = video_dataset_from_directory(videos, label_mode="binary", model=None, frames=2, rate=2, crop=32,
                                          batch_size=6, seed=0)
    _, ys = next(iter(binary))
    assert ys.shape == (6, 1) and sorted(ys.numpy().ravel().tolist()) == [0, 0, 0, 1, 1, 1]


def test_eval_dataset_from_directory_uses_the_same_split(videos):
    from autox3d_tf.data.directory_pipeline import video_dataset_from_directory, video_eval_dataset_from_directory

    train = video_dataset_from_directory(videos, model=None, frames=2, rate=2, crop=32, seed=5,
                                         validation_split=0.5, subset="training")
    views = video_eval_dataset_from_directory(videos, model=None, frames=2, rate=2, crop=32, num_clips=2,
                                              num_crops=1, batch_size=4, seed=5, validation_split=0.5,
                                              subset="validation")
    assert not set(train.file_paths) & set(views.file_paths) and len(views.file_paths) == 3
    ids, labels = [], []
    for clips, ys, vids in views:
        assert clips.shape[1:] == (2, 32, 32, 3)
        ids += [v.decode() for v in vids.numpy()]
        labels += ys.numpy().tolist()
    expected = [os.path.splitext(os.path.relpath(p, videos))[0] for p in views.file_paths]
    assert ids == [i for i in expected for _ in range(2)]
    assert labels == [0 if i.startswith("left/") else 1 for i in ids]


def test_training_helpers_take_a_folder(videos):
    from autox3d_tf.training.data import is_tfrecord_source, load_class_names

    assert not is_tfrecord_source(str(videos))
    assert load_class_names(str(videos)) == ["left", "right"]
    assert load_class_names(str(videos), ["right", "left"]) == ["right", "left"]


@pytest.fixture(scope="module")
def tiny_spec_file(tmp_path_factory):
    from tests.helpers.train import tiny_spec

    path = tmp_path_factory.mktemp("spec") / "tiny.json"
    tiny_spec().save(str(path))
    return str(path)


def test_cli_train_and_evaluate_on_a_folder(videos, tiny_spec_file, tmp_path, capsys):
    import json

    from autox3d_tf.cli.main import main

    run = tmp_path / "run"
    rc = main(["train", f"--train_data={videos}", f"--val_data={videos}", "--model=X3D_XS", f"--spec={tiny_spec_file}",
               "--frames=2", "--rate=2", "--crop=32", "--epochs=1", "--steps_per_epoch=1", "--batch_size=2",
               f"--out_dir={run}", "--verbose=0", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    config = json.loads((run / "run.json").read_text())
    assert config["classes"] == ["left", "right"] and config["train_data"] == str(videos)
    rc = main(["evaluate", f"--run_dir={run}", f"--data={videos}", "--num_clips=1", "--num_crops=1", "--json",
               f"--out_dir={tmp_path / 'eval'}"])
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    metrics = json.loads(out.out)
    assert metrics["videos"] == 6 and metrics["class_names"] == ["left", "right"] and metrics["bad_videos"] == 0
    assert not os.path.exists(videos / "classes.json")


def test_cli_search_on_a_folder(videos, tmp_path, capsys):
    import json

    from autox3d_tf.cli.main import main

    out = tmp_path / "search"
    rc = main(["search", f"--data={videos}", f"--out_dir={out}", "--space=tiny", "--frames=2", "--rate=2",
               "--crop=32", "--epochs=1", "--steps_per_epoch=1", "--warmup_epochs=0", "--batch_size=2",
               "--macs_target=0.003", "--plots=false"])
    err = capsys.readouterr().err
    assert rc == 0, err[-3000:]
    assert json.loads((out / "search.json").read_text())["classes"] == 2


EGOGESTAR = "/work/shared/data/egogestar"


@pytest.mark.skipif(not os.path.isdir(EGOGESTAR), reason="the EgoGesture sample is not on this machine")
def test_folder_of_links_to_real_videos_matches_their_csv(tmp_path):
    """The Kinetics CSV of the real sample and a class-folder tree of links to the same files agree."""
    from autox3d_tf.data.directory_pipeline import video_eval_dataset_from_directory

    csv_ann = load_annotations(os.path.join(EGOGESTAR, "annotations.csv"), video_root=os.path.join(EGOGESTAR, "videos"),
                               save_class_map=False)
    root = tmp_path / "linked"
    for r in csv_ann.records:
        os.makedirs(root / r.label_name, exist_ok=True)
        os.symlink(r.path, root / r.label_name / os.path.basename(r.path))
    ann = directory_annotations(root)
    assert ann.classes.names == sorted({r.label_name for r in csv_ann.records})
    by_id = {r.video_id: r.label_name for r in csv_ann.records}
    assert len(ann.records) == len(csv_ann.records)
    assert all(by_id[os.path.basename(r.video_id)] == r.label_name for r in ann.records)
    views = video_eval_dataset_from_directory(root, model=None, frames=2, rate=4, crop=32, num_clips=1, num_crops=1,
                                              batch_size=2, validation_split=0.0131, subset="validation", seed=0)
    (clips, labels, ids), = list(views)
    assert clips.shape == (2, 2, 32, 32, 3) and views.error_log.count == 0
    assert [ann.classes.names[y] for y in labels.numpy()] == [by_id[os.path.basename(i.decode())] for i in ids.numpy()]
