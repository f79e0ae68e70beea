"""Malformed annotations are one ValueError naming file:line, and one line on stderr (exit 2, or 1 for
to-tfrecord) at every command that reads annotations; PySlowFast lists with class names."""

from __future__ import annotations

import json

import pytest

from autox3d_tf.data.annotations import ClassMap, load_annotations

KINETICS_HEADER = "label,youtube_id,time_start,time_end,split\n"

# name -> (file name, content, line the message must name, words it must contain)
MALFORMED = {
    "mixed PySlowFast labels": ("list.txt", "a.mp4 0\nb.mp4 1\n# comment\nc.mp4 cat\n", 4, "label must be an integer"),
    "PySlowFast names then an integer": ("names.txt", "a.mp4 cat\nb.mp4 7\n", 2, "label must be a class name"),
    "PySlowFast line without a label": ("short.txt", "a.mp4 0\n\nb.mp4\n", 3, "expected 'path label'"),
    "missing Kinetics column": ("k.csv", "label,youtube_id,time_start,split\nx,aaa,0,train\n", 1, "missing time_end"),
    "empty file": ("empty.csv", "", 1, "empty annotation file"),
    "blank file": ("blank.txt", "\n  \n", 1, "empty annotation file"),
    "header only": ("header.csv", KINETICS_HEADER, 2, "no rows"),
    "unknown format": ("clip.mp4", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", 1, "unknown annotation format"),
    "non-numeric Kinetics time": ("t.csv", KINETICS_HEADER + "x,aaa,0,10,train\ny,bbb,ten,20,train\n", 3,
                                  "time_start must be a number"),
    "Kinetics row without an id": ("id.csv", KINETICS_HEADER + "x,aaa,0,10,train\ny,,0,10,train\n", 3, "no youtube_id"),
    "SSv2 entry without id": ("ssv2.json", '[\n {"id": "1", "template": "a"},\n\n {"template": "b"}\n]\n', 4,
                              'needs an "id"'),
    "SSv2 not a list": ("obj.json", '{"id": "1"}\n', 1, "must be a list"),
    "invalid JSON": ("bad.json", '[\n {"id": "1",\n  "template": "a"\n ,]\n', 4, "invalid JSON"),
    "not UTF-8": ("latin.txt", "a.mp4 0\nb\xe9.mp4 1\n".encode("latin-1"), 2, "not UTF-8"),
}


def _write(tmp_path, name):
    file, content, line, words = MALFORMED[name]
    path = tmp_path / file
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path, line, words


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_annotation_is_a_value_error_naming_file_and_line(tmp_path, name):
    path, line, words = _write(tmp_path, name)
    with pytest.raises(ValueError) as info:
        load_annotations(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and words in message and "\n" not in message


def test_invalid_class_map_names_file_and_line(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text('{"classes": [\n "a",\n }')
    with pytest.raises(ValueError, match=rf"^{path}:3: invalid JSON"):
        ClassMap.load(path)
    path.write_text('{"a": "first"}')
    with pytest.raises(ValueError, match=rf"^{path}:1: not a class map"):
        ClassMap.load(path)


def test_unknown_explicit_format(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a.mp4 0\n")
    with pytest.raises(ValueError, match=rf"^{path}: unknown annotation format 'xml'"):
        load_annotations(path, format="xml")


def test_slowfast_list_with_class_names(tmp_path):
    lst = tmp_path / "train.txt"
    lst.write_text("v/1.mp4 zumba\nv/2.mp4 abseiling\nframes/3 zumba\n")
    ann = load_annotations(lst)
    assert ann.classes.names == ["abseiling", "zumba"] and [r.label for r in ann.records] == [1, 0, 1]
    assert [r.video_id for r in ann.records] == ["1", "2", "3"]
    assert json.loads((tmp_path / "classes.json").read_text())["classes"] == ["abseiling", "zumba"]
    val = tmp_path / "val.txt"  # a second list beside it reuses the saved map
    val.write_text("v/4.mp4 zumba\n")
    assert load_annotations(val).records[0].label == 1
    (tmp_path / "classes.json").write_text(json.dumps({"classes": ["zumba", "abseiling", "yoga"]}))
    assert [r.label for r in load_annotations(lst).records] == [0, 1, 0]
    val.write_text("v/4.mp4 juggling\n")
    with pytest.raises(ValueError, match="juggling"):
        load_annotations(val)


def _cli(command, path, tmp_path):
    classes = tmp_path / "map.json"
    classes.write_text(json.dumps(["a", "b"]))
    return {
        "train": ["train", f"--train_data={path}", "--model=X3D_XS", f"--out_dir={tmp_path / 'run'}"],
        "evaluate": ["evaluate", f"--data={path}", "--model=X3D_XS", f"--classes={classes}"],
        "search": ["search", f"--data={path}", f"--out_dir={tmp_path / 'search'}", "--space=tiny"],
        "to-tfrecord": ["to-tfrecord", str(path), str(tmp_path / "out" / "t"), "--quiet"],
    }[command]


@pytest.mark.parametrize("command", ["train", "evaluate", "search", "to-tfrecord"])
def test_cli_prints_one_line_naming_file_and_line(tmp_path, capsys, command):
    from autox3d_tf.cli.main import main

    for name in sorted(MALFORMED):
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        path, line, words = _write(folder, name)
        rc = main(_cli(command, path, folder))
        err = capsys.readouterr().err
        assert rc == (1 if command == "to-tfrecord" else 2), (name, err)
        assert "Traceback" not in err, (name, err)
        ours = [e for e in err.splitlines() if e.startswith(f"autox3d {command}: ")]
        assert len(ours) == 1 and f"{path}:{line}: " in ours[0] and words in ours[0], (name, err)
