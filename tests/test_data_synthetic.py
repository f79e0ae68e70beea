"""The built-in synthetic motion dataset: time-only classes, real MP4 files, Kinetics-style CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from autox3d_tf.cli.main import main
from autox3d_tf.data.annotations import load_annotations
from autox3d_tf.data.decode import decode_all_frames, probe_video
from autox3d_tf.data.synthetic import CLASS_NAMES, class_names, render_clip, write_synthetic_dataset


@pytest.mark.parametrize("family", range(4))
def test_pair_classes_are_time_reversals(family):
    forward = render_clip(2 * family, seed=7, size=48, frames=10)
    backward = render_clip(2 * family + 1, seed=7, size=48, frames=10)
    assert forward.shape == (10, 48, 48, 3) and forward.dtype == np.uint8
    np.testing.assert_array_equal(backward, forward[::-1])  # same frames, opposite order
    assert not np.array_equal(forward[0], forward[-1])  # and the frames do change over time


def test_motion_goes_the_named_way():
    def centroid(frame, background):
        moving = np.abs(frame.astype(int) - background.astype(int)).sum(-1) > 0
        ys, xs = np.nonzero(moving)
        return xs.mean(), ys.mean(), moving.sum()

    for label, check in [(0, lambda a, b: b[0] > a[0]), (4, lambda a, b: b[1] > a[1]),
                         (2, lambda a, b: b[2] > a[2])]:
        clip = render_clip(label, seed=3, size=64, frames=8).astype(int)
        ref = np.median(clip, axis=0)  # static background
        first, last = centroid(clip[0], ref), centroid(clip[-1], ref)
        assert check(first, last), CLASS_NAMES[label]


def test_deterministic_under_seed_and_varied_across_clips():
    a = render_clip(0, seed=np.random.default_rng([0, 5]))
    b = render_clip(0, seed=np.random.default_rng([0, 5]))
    c = render_clip(0, seed=np.random.default_rng([0, 6]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError):
        class_names(9)


def test_write_dataset(tmp_path):
    info = write_synthetic_dataset(tmp_path / "syn", num_classes=3, clips_per_class=4, size=32, frames=8,
                                   fps=8, seed=1, splits=(2, 1, 1), progress=False)
    assert info.counts == {"train": 6, "val": 3, "test": 3}
    assert info.classes == ["moving right", "moving left", "growing"]
    with open(info.annotations, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "youtube_id", "time_start", "time_end", "split"]
    ann = load_annotations(info.split_files["train"])
    assert [r.label for r in ann.records] == [0, 1, 2, 0, 1, 2]  # the dataset's own class order
    meta = probe_video(ann.records[0].path)
    assert (meta.width, meta.height, meta.num_frames, meta.codec) == (32, 32, 8, "h264")
    decoded = decode_all_frames(ann.records[0].path).astype(int)
    original = render_clip(0, np.random.default_rng([1, 0]), 32, 8).astype(int)
    assert np.abs(decoded - original).mean() < 6  # lossy, but the same picture
    again = write_synthetic_dataset(tmp_path / "again", num_classes=3, clips_per_class=4, size=32, frames=8,
                                    fps=8, seed=1, splits=(2, 1, 1), progress=False)
    # Same seed, same pictures. (Not byte-identical files: x264's output was seen to differ
    # between two encodes of the same frames on a loaded machine.)
    first = decode_all_frames(tmp_path / "syn" / "videos" / "synth_00005.mp4").astype(int)
    second = decode_all_frames(tmp_path / "again" / "videos" / "synth_00005.mp4").astype(int)
    assert first.shape == second.shape
    assert np.abs(first - second).mean() < 1.0


def test_cli_make_synthetic(tmp_path, capsys):
    rc = main(["make-synthetic", str(tmp_path / "s"), "--classes", "2", "--clips-per-class", "2",
               "--size", "32", "--frames", "6", "--codec", "mpeg4"])
    assert rc == 0
    assert "wrote 4 clips" in capsys.readouterr().out
    videos = sorted((tmp_path / "s" / "videos").glob("*.mp4"))
    assert len(videos) == 4 and probe_video(videos[0]).codec == "mpeg4"
