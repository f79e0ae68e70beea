"""PyAV decoding on the real clips in ../shared/data/videos and on broken files the tests make."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from autox3d_tf.data.decode import (
    VideoDecodeError,
    center_crop,
    clip_indices,
    decode_all_frames,
    decode_frames,
    decode_frames_for,
    load_clip,
    probe_video,
    resize_short_side,
)

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
NAMES = ["demo", "test", "video1", "video2", "video3"]
# (width, height, fps, frames) from ../shared/data/README.md
EXPECTED = {"demo": (340, 256, 28, 280), "test": (340, 256, 30, 300), "video1": (452, 256, 30, 247),
            "video2": (144, 256, 30, 360), "video3": (340, 256, 25, 300)}

needs_videos = pytest.mark.skipif(
    not VIDEOS.is_dir(),
    reason=f"needs the real clips of ../shared/data/videos (decoding real files is the point), not found at "
           f"{VIDEOS.resolve()}")


def video(name: str) -> str:
    return str(VIDEOS / f"{name}.mp4")


@needs_videos
@pytest.mark.parametrize("name", NAMES)
def test_probe_matches_readme(name):
    info = probe_video(video(name))
    w, h, fps, frames = EXPECTED[name]
    assert (info.width, info.height) == (w, h)
    assert info.fps == pytest.approx(fps)
    assert info.num_frames == frames
    assert info.duration == pytest.approx(frames / fps, rel=0.05)


@needs_videos
@pytest.mark.parametrize("name", NAMES)
def test_decode_frames_equals_full_decode(name):
    everything = decode_all_frames(video(name))
    n = len(everything)
    rng = np.random.default_rng(1)
    for start in [0, int(rng.integers(n // 3, n - 80)), n - 40]:  # the last clip wraps past the end
        idx = clip_indices(n, 16, 5, start)
        got = decode_frames(video(name), idx)
        assert got.dtype == np.uint8 and got.shape == (16,) + everything.shape[1:]
        np.testing.assert_array_equal(got, everything[idx])


@needs_videos
def test_unordered_repeated_and_looping_indices():
    path = video("video2")
    everything = decode_all_frames(path)
    n = len(everything)
    idx = [200, 3, 3, n + 5, 2 * n + 7, 0]
    got = decode_frames(path, idx)
    np.testing.assert_array_equal(got, everything[[200, 3, 3, 5, 7, 0]])


@needs_videos
def test_decode_frames_for_keeps_index_shape():
    frames, info = decode_frames_for(video("video1"), lambda i: [[0, 10], [20, i.num_frames - 1]])
    assert frames.shape == (2, 2, 256, 452, 3)
    assert info.num_frames == 247


def test_clip_indices_loop_and_validate():
    np.testing.assert_array_equal(clip_indices(300, 4, 5, 10), [10, 15, 20, 25])
    np.testing.assert_array_equal(clip_indices(7, 4, 3, 2), [2, 5, 1, 4])
    with pytest.raises(ValueError):
        clip_indices(0, 4, 1)


def test_resize_and_center_crop():
    frames = np.zeros((2, 256, 340, 3), np.uint8)
    frames[:, :, 170:] = 200
    small = resize_short_side(frames, 128)
    assert small.shape == (2, 128, 170, 3)
    crop = center_crop(small, 128)
    assert crop.shape == (2, 128, 128, 3)
    assert crop[0, 0, 0, 0] == 0 and crop[0, 0, -1, 0] == 200  # the centre crop straddles the edge
    portrait = resize_short_side(np.zeros((1, 256, 144, 3), np.uint8), 72)
    assert portrait.shape == (1, 128, 72, 3)
    with pytest.raises(ValueError):
        center_crop(small, 200)


@needs_videos
def test_load_clip_for_prediction():
    clip = load_clip(video("video2"), frames=8, rate=4, crop=112)
    assert clip.shape == (8, 112, 112, 3) and clip.dtype == np.uint8
    assert clip.std() > 5  # real picture content, not a blank


# ----------------------------------------------------------------------------------- broken files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoDecodeError, match="nope.mp4: file not found"):
        decode_frames(path, [0])
    with pytest.raises(VideoDecodeError, match="nope.mp4"):
        probe_video(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match=r"empty.mp4: empty file"):
        decode_frames(path, [0])


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="notes.mp4: not a readable video"):
        probe_video(path)
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        decode_frames(path, [0, 1])


@needs_videos
def test_truncated_file_index_at_end(tmp_path):
    # demo.mp4 keeps its index (moov) at the end: a truncated copy cannot be opened at all.
    data = (VIDEOS / "demo.mp4").read_bytes()
    path = tmp_path / "demo_cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="demo_cut.mp4"):
        decode_frames(path, [0])


@needs_videos
def test_truncated_file_index_at_start(tmp_path):
    # video1.mp4 keeps its index first: the copy opens, but frames past the cut are gone.
    data = (VIDEOS / "video1.mp4").read_bytes()
    path = tmp_path / "video1_cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert probe_video(path).num_frames == 247  # the container still claims every frame
    early = decode_frames(path, [0, 1, 2])  # frames before the cut are fine
    assert early.shape == (3, 256, 452, 3)
    with pytest.raises(VideoDecodeError, match="video1_cut.mp4: (truncated|corrupt)"):
        decode_frames(path, clip_indices(247, 16, 5, 150))
