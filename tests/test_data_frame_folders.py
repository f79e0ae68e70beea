"""Videos stored as frame folders (numbered JPEG / PNG frames): decoding, bad folders, the
pipelines, PySlowFast lists of frame folders, and to-tfrecord and back."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from autox3d_tf.data.decode import VideoDecodeError, decode_all_frames, decode_frames, load_clip, probe_video
from autox3d_tf.data.frame_folder import FRAME_FOLDER_FPS, frame_files
from tests.helpers.videos import render_frame


def write_frames(folder, count, size=(40, 32), seed=0, suffix=".png", name="{}"):
    """``count`` fixture frames as ``name.format(k)`` (1-based) in ``folder``; returns them."""
    os.makedirs(folder, exist_ok=True)
    frames = [render_frame(k, *size, seed=seed) for k in range(count)]
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(os.path.join(folder, name.format(k + 1) + suffix), quality=95)
    return np.stack(frames)


def test_decode_equals_the_png_frames_in_numeric_order(tmp_path):
    folder = tmp_path / "video"
    frames = write_frames(folder, 12)  # 1.png ... 12.png: 10.png sorts after 9.png, not after 1.png
    (folder / "notes.txt").write_text("not a frame")
    assert [os.path.basename(f) for f in frame_files(folder)][8:11] == ["9.png", "10.png", "11.png"]
    info = probe_video(folder)
    assert (info.num_frames, info.width, info.height, info.fps) == (12, 40, 32, FRAME_FOLDER_FPS)
    assert info.duration == pytest.approx(12 / FRAME_FOLDER_FPS)
    assert probe_video(folder, frame_rate=24).duration == pytest.approx(0.5)
    idx = [11, 0, 9, 14, 9]  # any order, repeats, past the end loops
    np.testing.assert_array_equal(decode_frames(folder, idx), frames[[11, 0, 9, 2, 9]])
    np.testing.assert_array_equal(decode_all_frames(folder), frames)
    assert load_clip(folder, frames=3, rate=2, crop=32).shape == (3, 32, 32, 3)


def test_zero_padded_jpeg_frames(tmp_path):
    folder = tmp_path / "jester"
    frames = write_frames(folder, 5, suffix=".jpg", name="{:05d}")
    decoded = decode_frames(folder, range(5))
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 4


def test_bad_frame_folders_are_decode_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoDecodeError, match="empty frame folder") as info:
        probe_video(empty)
    assert info.value.path == str(empty)
    broken = tmp_path / "broken"
    write_frames(broken, 4)
    (broken / "3.png").write_bytes(b"\x89PNG garbage")
    np.testing.assert_array_equal(decode_frames(broken, [0, 1]).shape, (2, 32, 40, 3))
    with pytest.raises(VideoDecodeError, match=r"unreadable frame 3\.png") as info:
        decode_frames(broken, [0, 2])
    assert info.value.path == str(broken)


def test_pipelines_skip_and_report_bad_frame_folders(tmp_path):
    from autox3d_tf.data import video_dataset, video_eval_dataset

    write_frames(tmp_path / "frames" / "good", 6)
    (tmp_path / "frames" / "empty").mkdir(parents=True)
    write_frames(tmp_path / "frames" / "broken", 6, seed=1)
    (tmp_path / "frames" / "broken" / "1.png").write_bytes(b"not a png")
    lst = tmp_path / "list.txt"
    lst.write_text("frames/good 0\nframes/empty 1\nframes/broken 1\n")
    train = video_dataset(lst, None, frames=2, rate=1, crop=32, batch_size=1, seed=0)
    assert len(list(train)) == 1
    assert sorted(train.error_log.paths) == [str(tmp_path / "frames" / n) for n in ("broken", "empty")]
    views = video_eval_dataset(lst, None, frames=2, rate=1, crop=32, num_clips=2, num_crops=1, batch_size=8)
    (clips, labels, ids), = list(views)
    assert clips.shape == (2, 2, 32, 32, 3) and labels.numpy().tolist() == [0, 0]
    assert [i.decode() for i in ids.numpy()] == ["good", "good"] and views.error_log.count == 2


def test_annotation_lists_of_frame_folders(tmp_path):
    import json

    from autox3d_tf.data.annotations import check_videos_exist, load_annotations

    write_frames(tmp_path / "frames" / "17", 3)
    write_frames(tmp_path / "frames" / "18", 3)
    (tmp_path / "frames" / "18.webm").write_bytes(b"x")  # a video file of the id wins over the folder
    ssv2 = tmp_path / "val.json"
    ssv2.write_text(json.dumps([{"id": "17", "template": "Pushing [something]"}, {"id": "18"}]))
    ann = load_annotations(ssv2, video_root=tmp_path / "frames")
    assert [r.path for r in ann.records] == [str(tmp_path / "frames" / "17"), str(tmp_path / "frames" / "18.webm")]
    lst = tmp_path / "list.txt"
    lst.write_text("frames/17 1\nframes/18/ 0\n")
    listed = load_annotations(lst)
    assert [r.video_id for r in listed.records] == ["17", "18"]
    check_videos_exist(listed.records)


def test_class_folders_of_frame_folders(tmp_path):
    from autox3d_tf.data.directory import directory_annotations

    write_frames(tmp_path / "data" / "wave" / "v1", 3)
    write_frames(tmp_path / "data" / "wave" / "v2", 3)
    write_frames(tmp_path / "data" / "clap" / "deeper" / "v3", 3)
    (tmp_path / "data" / "clap" / "bad").mkdir()
    ann = directory_annotations(tmp_path / "data")
    assert [(r.video_id, r.label) for r in ann.records] == [("clap/bad", 0), ("clap/deeper/v3", 0), ("wave/v1", 1),
                                                           ("wave/v2", 1)]
    jester = directory_annotations(tmp_path / "data" / "wave", labels=None)
    assert [r.video_id for r in jester.records] == ["v1", "v2"]
    with pytest.raises(ValueError, match="is one video"):
        directory_annotations(tmp_path / "data" / "wave" / "v1", labels=None)


def test_frame_folder_segment_and_fps_to_jpegs(tmp_path):
    from autox3d_tf.data.tfrecord import video_to_jpegs

    folder = tmp_path / "v"
    write_frames(folder, 24)  # 2 s at 12 fps
    jpegs, fps, h, w = video_to_jpegs(str(folder))
    assert (len(jpegs), fps, h, w) == (24, FRAME_FOLDER_FPS, 32, 40)
    half, fps, _, _ = video_to_jpegs(str(folder), fps=6)
    assert (len(half), fps) == (12, 6)
    seg: dict = {}
    part, _, _, _ = video_to_jpegs(str(folder), start=0.5, end=1.0, segment_info=seg)
    assert len(part) == 6 and seg["first"] == 6
    small, _, h, w = video_to_jpegs(str(folder), short_side=16)
    assert (h, w) == (16, 20)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from autox3d_tf.data.tfrecord import convert_to_tfrecord

    tmp = tmp_path_factory.mktemp("frames_tfrecord")
    frames = {"clap": write_frames(tmp / "data" / "clap" / "a", 5, seed=1),
              "wave": write_frames(tmp / "data" / "wave" / "b", 7, seed=2)}
    (tmp / "data" / "wave" / "empty").mkdir()
    report = convert_to_tfrecord(tmp / "data", tmp / "out" / "train", shards=1, workers=1, progress=False)
    return tmp, frames, report


def test_frame_folders_through_tfrecord_and_back(converted):
    import tensorflow as tf

    from autox3d_tf.data.tfrecord_format import parse_sequence_example

    tmp, frames, report = converted
    assert report.videos == 2 and [os.path.basename(p) for p, _ in report.errors] == ["empty"]
    assert not os.path.exists(tmp / "data" / "classes.json")
    assert (tmp / "out" / "train.classes.json").exists()
    back = {}
    for raw in tf.data.TFRecordDataset(report.shards):
        parsed = parse_sequence_example(raw)
        back[parsed["video_id"].numpy().decode()] = (int(parsed["label"]), np.stack(
            [tf.io.decode_jpeg(j).numpy() for j in parsed["jpegs"].numpy()]))
    assert sorted(back) == ["clap/a", "wave/b"]
    for vid, name, label in (("clap/a", "clap", 0), ("wave/b", "wave", 1)):
        got_label, got = back[vid]
        assert got_label == label and got.shape == frames[name].shape
        assert np.abs(got.astype(int) - frames[name]).mean() < 4  # JPEG quality 90 of the PNG frames


def test_training_from_the_converted_frame_folders(converted):
    from autox3d_tf.data.clip import resolve_clip
    from autox3d_tf.training.data import train_dataset

    tmp, _, _ = converted
    clip = resolve_clip(None, frames=2, rate=2, crop=32)
    ds, info = train_dataset(str(tmp / "out" / "train"), None, clip, batch_size=2, seed=0, repeat=False)
    (clips, labels), = list(ds)
    assert info.kind == "tfrecord" and info.class_names == ["clap", "wave"] and info.num_examples == 2
    assert clips.shape == (2, 2, 32, 32, 3) and sorted(np.argmax(labels.numpy(), axis=1).tolist()) == [0, 1]


def test_cli_to_tfrecord_on_a_folder(converted, capsys):
    from autox3d_tf.cli.main import main

    tmp, _, _ = converted
    rc = main(["to-tfrecord", str(tmp / "data"), str(tmp / "cli" / "t"), "--shards", "1", "--workers", "1",
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "wrote 2 videos into 1 shards" in out and "empty frame folder" in out
