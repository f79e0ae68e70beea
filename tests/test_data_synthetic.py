"""The built-in synthetic motion dataset: classes that differ only in frame order, real MP4 files,
Kinetics-style CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from autox3d_tf.cli.main import main
from autox3d_tf.data.annotations import load_annotations
from autox3d_tf.data.decode import decode_all_frames, probe_video
from autox3d_tf.data.synthetic import CLASS_NAMES, class_names, frame_order, render_clip, write_synthetic_dataset


@pytest.mark.parametrize("label", range(len(CLASS_NAMES)))
def test_every_class_shows_the_same_frames_in_its_own_order(label):
    # The same random draw (seed) gives the same base frames for every class; only the order differs.
    # So no order-free summary of a clip (a frame, the set of frames, their mean) depends on the class.
    base = render_clip(0, seed=7, size=40, frames=12)
    clip = render_clip(label, seed=7, size=40, frames=12)
    assert clip.shape == (12, 40, 40, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(clip, base[frame_order(label, 12)])
    assert sorted(map(bytes, clip)) == sorted(map(bytes, base))
    assert not np.array_equal(clip[0], clip[-1])  # and the frames do change over time


@pytest.mark.parametrize("frames", [8, 12, 16, 17])
def test_frame_orders(frames):
    orders = [frame_order(c, frames) for c in range(len(CLASS_NAMES))]
    for order in orders:
        assert sorted(order) == list(range(frames))  # a permutation of the base frames
    for c in range(0, len(CLASS_NAMES), 2):
        np.testing.assert_array_equal(orders[c + 1], orders[c][::-1])  # pairs are time reversals
    assert len({tuple(o) for o in orders}) == len(orders)  # all classes differ
    steps = [np.diff(o) for o in orders]  # base frames climbed per shown frame
    assert (steps[0] == 1).all() and (steps[1] == -1).all()  # rising / falling
    up, down = steps[2][steps[2] > 0], steps[2][steps[2] < 0]
    assert up.max() == 3 and up.mean() > 2 and -2.0 <= down.mean() < -1.0  # up fast, down slowly
    assert np.argmax(orders[2]) < (frames - 1) / 2 < np.argmax(orders[3])  # the top comes early / late
    assert (np.abs(steps[4]) <= 2).all() and np.argmax(orders[4]) in (frames // 2 - 1, frames // 2)  # up and down


def test_shapes_move_the_named_way():
    def height(frame, background):
        moving = np.abs(frame.astype(int) - background).sum(-1) > 0
        return -np.nonzero(moving)[0].mean()  # rows grow downwards

    for label in range(len(CLASS_NAMES)):
        clip = render_clip(label, seed=3, size=64, frames=16, moving=1).astype(int)
        heights = np.array([height(f, np.median(clip, axis=0)) for f in clip])  # median: the static background
        order = frame_order(label, 16)
        # the shape's height follows the base frame index shown: rank correlation 1 up to drift/size noise
        assert np.corrcoef(np.argsort(np.argsort(heights)), np.argsort(np.argsort(order)))[0, 1] > 0.95, CLASS_NAMES[label]


def test_deterministic_under_seed_and_varied_across_clips():
    a = render_clip(0, seed=np.random.default_rng([0, 5]))
    b = render_clip(0, seed=np.random.default_rng([0, 5]))
    c = render_clip(0, seed=np.random.default_rng([0, 6]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="between 2 and 6"):
        class_names(7)
    with pytest.raises(ValueError, match="label"):
        render_clip(6, seed=0)


def test_write_dataset(tmp_path):
    info = write_synthetic_dataset(tmp_path / "syn", num_classes=3, clips_per_class=4, size=32, frames=8,
                                   fps=8, seed=1, splits=(2, 1, 1), progress=False)
    assert info.counts == {"train": 6, "val": 3, "test": 3}
    assert info.classes == ["rising", "falling", "up fast, down slowly"]
    with open(info.annotations, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "youtube_id", "time_start", "time_end", "split"]
    ann = load_annotations(info.split_files["train"])
    assert [r.label for r in ann.records] == [0, 1, 2, 0, 1, 2]  # the dataset's own class order
    meta = probe_video(ann.records[0].path)
    assert (meta.width, meta.height, meta.num_frames, meta.codec) == (32, 32, 8, "h264")
    decoded = decode_all_frames(ann.records[0].path).astype(int)
    original = render_clip(0, np.random.default_rng([1, 0]), 32, 8).astype(int)
    # lossy (and H.264's 4:2:0 halves the colour resolution of these small shapes), but the same picture
    assert np.abs(decoded.mean(-1) - original.mean(-1)).mean() < 6
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
