"""Annotation formats, file lookup, the shared class map, and missing-file errors."""

from __future__ import annotations

import json

import pytest

from autox3d_tf.data.annotations import (
    ClassMap,
    MissingVideosError,
    check_videos_exist,
    detect_format,
    load_annotations,
)


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def write_kinetics(path, rows):
    lines = ["label,youtube_id,time_start,time_end,split"] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_kinetics_csv_lookup_split_and_class_map(tmp_path):
    root = tmp_path / "videos"
    a = touch(root / "train" / "abseiling" / "aaa_000010_000020.mp4")  # long Kinetics name, in a sub-folder
    b = touch(root / "bbb.webm")  # bare id, other extension
    c = touch(root / "ccc_000000_000010.mp4")
    csv_path = tmp_path / "train.csv"
    write_kinetics(csv_path, [("abseiling", "aaa", 10, 20, "train"), ("zumba", "bbb", 0, 10, "train"),
                              ("bowling", "ccc", 0, 10, "val")])
    assert detect_format(str(csv_path)) == "kinetics"
    ann = load_annotations(csv_path, video_root=root, split="train")
    assert [r.path for r in ann.records] == [str(a), str(b)]
    assert ann.classes.names == ["abseiling", "bowling", "zumba"]  # sorted, from every row of the file
    assert [r.label for r in ann.records] == [0, 2]
    assert ann.records[0].start == 10 and ann.records[0].end == 20
    saved = tmp_path / "classes.json"
    assert json.loads(saved.read_text())["classes"] == ["abseiling", "bowling", "zumba"]

    # A second file in the same folder (the val split) reuses the saved map, so indices agree.
    val_csv = tmp_path / "val.csv"
    write_kinetics(val_csv, [("zumba", "bbb", 0, 10, "val")])
    val = load_annotations(val_csv, video_root=root)
    assert val.records[0].label == 2 and val.classes.names == ann.classes.names
    assert val.records[0].path == str(b)

    # An unknown class against an existing map is an error, not a silent new index.
    bad_csv = tmp_path / "bad.csv"
    write_kinetics(bad_csv, [("juggling", "bbb", 0, 10, "val")])
    with pytest.raises(ValueError, match="juggling"):
        load_annotations(bad_csv, video_root=root)
    assert c.exists()


def test_slowfast_list(tmp_path):
    touch(tmp_path / "v" / "x.mp4")
    lst = tmp_path / "list.txt"
    lst.write_text("v/x.mp4 3\nv/y.mp4 0\n")
    assert detect_format(str(lst)) == "slowfast"
    ann = load_annotations(lst)
    assert [r.label for r in ann.records] == [3, 0]
    assert ann.records[0].path == str(tmp_path / "v" / "x.mp4")
    lst.write_text("v/x.mp4 3\nv/y.mp4 cat\n")
    with pytest.raises(ValueError, match="list.txt:2: label must be an integer"):
        load_annotations(lst)


def test_ssv2_json_templates_and_labels_file(tmp_path):
    entries = [
        {"id": "11", "label": "putting a cup on a table", "template": "Putting [something] on [something]",
         "placeholders": ["a cup", "a table"]},
        {"id": "12", "label": "pushing a pen from left to right",
         "template": "Pushing [something] from left to right", "placeholders": ["a pen"]},
        {"id": "13"},  # test split: no label
    ]
    path = tmp_path / "something-something-v2-validation.json"
    path.write_text(json.dumps(entries))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"Pushing something from left to right": "0",
                                  "Putting something on something": "1"}))
    ann = load_annotations(path, classes=str(labels))
    assert ann.format == "ssv2"
    assert [r.label for r in ann.records] == [1, 0, -1]
    assert ann.records[0].path == str(tmp_path / "11.webm")
    assert ann.records[1].label_name == "Pushing something from left to right"


def test_missing_videos_listed(tmp_path):
    touch(tmp_path / "here.mp4")
    lst = tmp_path / "list.txt"
    lst.write_text("here.mp4 0\n" + "".join(f"gone{i}.mp4 1\n" for i in range(12)))
    ann = load_annotations(lst)
    with pytest.raises(MissingVideosError) as info:
        check_videos_exist(ann.records)
    message = str(info.value)
    assert message.startswith("12 of 13 annotated videos are missing")
    assert "gone0.mp4" in message and "and 2 more" in message
    assert len(info.value.missing) == 12


def test_class_map_round_trip(tmp_path):
    cmap = ClassMap.from_names(["b", "a", "b", "c"])
    assert cmap.names == ["a", "b", "c"] and cmap.index["c"] == 2
    cmap.save(tmp_path / "m.json")
    assert ClassMap.load(tmp_path / "m.json").names == ["a", "b", "c"]
    (tmp_path / "m.txt").write_text("x\ny\n")
    assert ClassMap.load(tmp_path / "m.txt").names == ["x", "y"]
