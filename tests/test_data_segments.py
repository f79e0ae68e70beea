"""Kinetics time_start / time_end segments: clips only from the segment (training, evaluation,
to-tfrecord); segments reaching the end of a video, and trimmed files, behave as the whole video;
segments past the end fall back to the whole video and are reported. The videos are fixtures the
tests write (tests/helpers/videos.py), with the real clips' lengths and frame rates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.cli.main import main
from autox3d_tf.data import video_pipeline
from autox3d_tf.data.annotations import VideoRecord, load_annotations
from autox3d_tf.data.sampling import Segment, eval_clip_indices, segment_frames, train_clip_indices
from autox3d_tf.data.tfrecord import convert_to_tfrecord, video_to_jpegs
from autox3d_tf.data.tfrecord_format import parse_sequence_example, shard_paths
from autox3d_tf.data.video_pipeline import video_dataset, video_eval_dataset
from tests.helpers.videos import write_clips

SMALL = dict(model="X3D_XS", frames=4, rate=8, crop=64)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Stand-ins for test.mp4 (300 frames, 30 fps, 10.0 s), video1.mp4 (247 frames, 30 fps, 8.2 s)
    and demo.mp4 (280 frames, 28 fps, 10.0 s)."""
    folder = tmp_path_factory.mktemp("videos")
    write_clips(folder, ["test", "video1", "demo"])
    return folder


@pytest.fixture(scope="module")
def video10s(videos) -> str:
    """The stand-in for test.mp4: 300 frames, 30 fps, 10.0 s."""
    return str(videos / "test.mp4")


def test_segment_frames_rules():
    assert segment_frames(300, 30.0) == Segment(0, 300)  # no segment
    assert segment_frames(300, 30.0, 2, 5) == Segment(60, 90)  # strictly inside: restricts
    assert segment_frames(300, 30.0, 0, 9) == Segment(0, 270)
    assert segment_frames(300, 30.0, 0, 10) == Segment(0, 300)  # covers the video
    assert segment_frames(247, 30.0, 0, 9) == Segment(0, 247)  # time_end = ceil(8.23 s): whole
    assert segment_frames(300, 30.0, 5, 15) == Segment(0, 300)  # time_end beyond the video: whole
    assert segment_frames(300, 30.0, 14, 24) == Segment(0, 300, past_end=True)
    assert segment_frames(300, 30.0, 10, 20).past_end  # starts exactly at the end
    assert segment_frames(300, 30.0, 3, None) == Segment(90, 210)
    assert segment_frames(300, 30.0, 2, 2) == Segment(60, 1)  # empty segment: one frame


def test_indices_stay_inside_the_segment():
    seg = Segment(60, 30)
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = train_clip_indices(300, 4, 8, rng, seg)  # span 25 <= 30
        assert 60 <= idx.min() and idx.max() < 90 and np.all(np.diff(idx) == 8)
    looped = train_clip_indices(300, 8, 8, rng, seg)  # span 57 > 30: loops inside the segment
    assert 60 <= looped.min() and looped.max() < 90
    ev = eval_clip_indices(300, 4, 8, 2, seg)
    assert ev[:, 0].tolist() == [60, 65] and ev.max() < 90
    np.testing.assert_array_equal(eval_clip_indices(300, 4, 8, 3, Segment(0, 300)), eval_clip_indices(300, 4, 8, 3))


def test_kinetics_trimmed_files_keep_the_whole_video(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    (root / "aaa_000002_000005.mp4").write_bytes(b"x")  # Kinetics' released name: already cut
    (root / "bbb.mp4").write_bytes(b"x")  # bare id: the full source video
    csv = tmp_path / "k.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\na,aaa,2,5,train\nb,bbb,2,5,train\n")
    ann = load_annotations(csv, video_root=root)
    trimmed, full = ann.records
    assert trimmed.trimmed and trimmed.segment == (None, None) and (trimmed.start, trimmed.end) == (2, 5)
    assert not full.trimmed and full.segment == (2, 5)


def record_indices(monkeypatch):
    """Wraps the pipeline's decoder to record the frame indices each video was asked for."""
    seen: dict[str, list[np.ndarray]] = {}
    real = video_pipeline.decode_frames_for

    def spy(path, choose):
        def chosen(info):
            idx = np.asarray(choose(info))
            seen.setdefault(os.path.basename(path), []).append(idx)
            return idx
        return real(path, chosen)

    monkeypatch.setattr(video_pipeline, "decode_frames_for", spy)
    return seen


def test_training_and_eval_clips_come_from_the_segment(monkeypatch, tmp_path, video10s):
    os.symlink(video10s, tmp_path / "seg.mp4")
    seen = record_indices(monkeypatch)
    rec = VideoRecord(str(tmp_path / "seg.mp4"), 0, "seg", start=2, end=3)  # frames 60..89
    ds = video_dataset([rec], batch_size=1, seed=0, repeat=True, **SMALL)
    for _ in ds.take(6):
        pass
    starts = set()
    for idx in seen["seg.mp4"]:
        assert 60 <= idx.min() and idx.max() < 90, idx
        starts.add(int(idx[0]))
    assert len(starts) > 1  # still random inside the segment
    views = list(video_eval_dataset([rec], num_clips=2, num_crops=1, batch_size=2, **SMALL))
    assert views[0][0].shape == (2, 4, 64, 64, 3)
    assert seen["seg.mp4"][-1][:, 0].tolist() == [60, 65]


def test_whole_video_segments_behave_as_before(tmp_path, video10s):
    plain = VideoRecord(video10s, 0, "v")
    covering = VideoRecord(video10s, 0, "v", start=0, end=10)  # time_end = ceil(duration)
    beyond = VideoRecord(video10s, 0, "v", start=3, end=13)  # time_end beyond the video
    trimmed = VideoRecord(video10s, 0, "v", start=2, end=5, trimmed=True)
    inside = VideoRecord(video10s, 0, "v", start=2, end=5)

    def clips(rec):
        return [x.numpy() for x, _ in video_dataset([rec], batch_size=1, seed=5, repeat=True, **SMALL).take(3)]

    base = clips(plain)
    for rec in (covering, beyond, trimmed):
        for a, b in zip(base, clips(rec)):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(base, clips(inside)))


def test_segment_past_the_end_falls_back_and_is_reported(caplog, video10s):
    past = VideoRecord(video10s, 0, "v", start=14, end=24)  # 10 s video
    ds = video_dataset([past], batch_size=1, seed=5, repeat=True, **SMALL)
    with caplog.at_level("WARNING", logger="autox3d_tf.data"):
        got = [x.numpy() for x, _ in ds.take(3)]
    base = [x.numpy() for x, _ in video_dataset([VideoRecord(video10s, 0, "v")], batch_size=1, seed=5,
                                                repeat=True, **SMALL).take(3)]
    for a, b in zip(base, got):
        np.testing.assert_array_equal(a, b)  # the whole video, as without a segment
    log = ds.error_log
    assert log.count == 0  # nothing skipped ...
    assert len(log.segment_fallbacks) == 1 and log.segment_fallbacks[0][0] == video10s  # ... once per video
    assert "starts past the end of the video (10.00 s)" in log.summary()
    assert sum("segment past the end" in r.message for r in caplog.records) == 1


def test_to_tfrecord_stores_only_the_segment(tmp_path, videos, video10s):
    root = tmp_path / "videos"
    root.mkdir()
    for name in ("test", "video1", "demo"):
        os.symlink(videos / f"{name}.mp4", root / f"{name}.mp4")
    csv = tmp_path / "k.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "a,test,2,5,train\n"  # inside: 3 s
                   "b,video1,0,9,train\n"  # 8.2 s video, time_end = ceil(duration): whole
                   "c,demo,12,22,train\n")  # past the end of a 10 s video: whole, reported
    report = convert_to_tfrecord(csv, tmp_path / "out" / "k", shards=1, fps=10, short_side=64, workers=1,
                                 progress=False, video_root=root)
    assert report.videos == 3 and not report.errors
    assert [p for p, _ in report.segment_fallbacks] == [str(root / "demo.mp4")]
    counts = {}
    for raw in tf.data.TFRecordDataset(shard_paths(tmp_path / "out" / "k", 1)):
        ex = parse_sequence_example(raw)
        counts[ex["video_id"].numpy().decode()] = int(ex["jpegs"].shape[0])
        if ex["video_id"].numpy() == b"test":
            first = tf.io.decode_jpeg(ex["jpegs"][0]).numpy().astype(np.float32)
    assert counts["test"] == 30  # 3 s at 10 fps
    assert counts["video1"] == pytest.approx(83, abs=1) and counts["demo"] == 100  # whole videos
    whole, _, _, _ = video_to_jpegs(video10s, 10, 64)
    # The segment's first stored frame is the video's frame at 2 s (frame 20 at 10 fps).
    diffs = [np.abs(tf.io.decode_jpeg(whole[k]).numpy().astype(np.float32) - first).mean() for k in (19, 20, 21)]
    assert diffs[1] < 1.0 < min(diffs[0], diffs[2])
    manifest = json.loads((tmp_path / "out" / "k.manifest.json").read_text())
    assert len(manifest["segment_fallbacks"]) == 1


def test_cli_lists_segment_fallbacks(tmp_path, capsys, videos):
    csv = tmp_path / "k.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\nc,demo,12,22,train\n")
    rc = main(["to-tfrecord", str(csv), str(tmp_path / "k"), "--shards", "1", "--workers", "1", "--fps", "2",
               "--short-side", "32", "--video-root", str(videos), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "wrote 1 videos" in out and "stored whole:" in out and "demo.mp4: segment [12.0, 22.0)" in out
