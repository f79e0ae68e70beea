"""Seeking decodes the frames of a full decode in every container FFmpeg writes, and rotated videos
are turned upright (issue 15, items 1 and 2). The videos are written here with PyAV."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from autox3d_tf.data.decode import decode_all_frames, decode_frames, load_clip, probe_video
from tests.helpers.videos import render_frame, write_raw_h264

W, H, FPS, N = 64, 48, 24, 120  # 5 s: clips from 1 s on are reached by seeking


def _codec(*names: str) -> str:
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    pytest.skip(f"no encoder among {names} in this PyAV build")


# suffix -> (encoders, options)
CONTAINERS = {
    "mp4": (("libx264",), {"preset": "veryfast", "x264-params": "keyint=24:bframes=3"}),
    "mov": (("libx264",), {"preset": "veryfast", "x264-params": "keyint=24:bframes=2"}),
    "mkv": (("libx264",), {"preset": "veryfast", "x264-params": "keyint=24:bframes=3"}),
    "webm": (("libvpx-vp9", "libvpx"), {"g": "24", "deadline": "realtime", "cpu-used": "8"}),
    "avi": (("mpeg4",), {"g": "24", "bf": "2"}),
    "ts": (("libx264",), {"preset": "veryfast", "x264-params": "keyint=24:bframes=3"}),
    "flv": (("libx264", "flv"), {"g": "24"}),
    "gif": (("gif",), {}),
}


def write(path: Path, *, options: dict | None = None, codec: str | None = None, pts: list[int] | None = None,
          time_base: Fraction | None = None, rotation: int | None = None, hflip: bool = False,
          size: tuple[int, int] = (W, H)) -> str:
    """A test video: frame i is ``render_frame(i)``; ``pts`` (in ``time_base``) for variable rates."""
    suffix = path.suffix.lstrip(".")
    names, default_options = CONTAINERS.get(suffix, (("libx264",), {"preset": "veryfast"}))
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec or _codec(*names), rate=FPS)
        stream.width, stream.height = width, height
        stream.pix_fmt = "rgb8" if stream.codec_context.name == "gif" else "yuv420p"
        stream.options = dict(options if options is not None else default_options)
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation, hflip=hflip)
        for i in range(N if pts is None else len(pts)):
            frame = av.VideoFrame.from_ndarray(render_frame(i, width, height), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def _indexed(path: str) -> list[tuple[int, np.ndarray]]:
    fps = Fraction(probe_video(path).fps).limit_denominator(100000)  # the nominal rate indices count in
    with av.open(path) as container:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base)
        decoded = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    start = decoded[0][0]  # frame 0 is the first frame decoded
    return [(math.floor((pts - start) * tb * fps + Fraction(1, 2)), a) for pts, a in decoded]


def span(path: str) -> int:
    """One past the index of the last frame (the container's frame count can be an estimate)."""
    return _indexed(path)[-1][0] + 1


def reference(path: str, indices) -> np.ndarray:
    """The frames at ``indices`` from a full decode: the frame whose pts (from the first frame's)
    falls on the index at the average rate, or the last one before it (variable frame rates)."""
    frames = _indexed(path)
    out = []
    for want in indices:
        exact = [a for i, a in frames if i == want]
        before = [a for i, a in frames if i < want]
        out.append(exact[0] if exact else (before[-1] if before else frames[0][1]))
    return np.stack(out)


def clips(num_frames: int) -> list[np.ndarray]:
    """Clips that start at 1 s and later, so each one is reached by a seek."""
    starts = sorted({FPS + 1, num_frames // 2 + 3, num_frames - 13, 2 * FPS - 1})
    return [np.arange(s, s + 12) % num_frames for s in starts] + [np.arange(60, 100, 8) % num_frames]


@pytest.mark.parametrize("suffix", list(CONTAINERS))
def test_seek_matches_full_decode_in_every_container(tmp_path, suffix):
    path = write(tmp_path / f"cfr.{suffix}")
    everything = decode_all_frames(path)
    n = probe_video(path).num_frames
    for idx in clips(min(n, len(everything))):
        np.testing.assert_array_equal(decode_frames(path, idx), reference(path, idx), err_msg=f"{suffix} {idx}")
        if suffix != "gif":  # constant frame rate: the index is the position in the full decode
            np.testing.assert_array_equal(decode_frames(path, idx), everything[idx], err_msg=f"{suffix} {idx}")


@pytest.mark.parametrize("suffix", ["mp4", "mkv", "ts"])
def test_open_gop_seek_matches_full_decode(tmp_path, suffix):
    path = write(tmp_path / f"open.{suffix}",
                 options={"preset": "veryfast", "x264-params": "keyint=20:min-keyint=20:bframes=3:open-gop=1:scenecut=0"})
    everything = decode_all_frames(path)
    for idx in clips(len(everything)):
        np.testing.assert_array_equal(decode_frames(path, idx), everything[idx], err_msg=f"{suffix} {idx}")


@pytest.mark.parametrize("suffix", ["mp4", "mkv", "ts"])
def test_offset_start_time_seek_matches_full_decode(tmp_path, suffix):
    tb = Fraction(1, 1000)
    pts = [7000 + round(i * 1000 / FPS) for i in range(N)]  # the stream starts at 7 s
    path = write(tmp_path / f"offset.{suffix}", pts=pts, time_base=tb)
    for idx in clips(span(path)):
        np.testing.assert_array_equal(decode_frames(path, idx), reference(path, idx), err_msg=f"{suffix} {idx}")


@pytest.mark.parametrize("suffix", ["mp4", "mkv", "ts"])
def test_variable_frame_rate_seek_matches_full_decode(tmp_path, suffix):
    tb = Fraction(1, 1000)
    rng = np.random.default_rng(0)
    pts = np.cumsum(rng.choice([20, 42, 42, 90], size=N)).tolist()  # bursts and pauses
    path = write(tmp_path / f"vfr.{suffix}", pts=pts, time_base=tb)
    for idx in clips(span(path)):
        np.testing.assert_array_equal(decode_frames(path, idx), reference(path, idx), err_msg=f"{suffix} {idx}")


ROTATIONS = {  # display-matrix rotation (counter-clockwise), hflip -> what a player shows
    (90, False): lambda a: np.rot90(a, 1),
    (-90, False): lambda a: np.rot90(a, -1),
    (180, False): lambda a: np.rot90(a, 2),
    (90, True): lambda a: np.rot90(a, 1)[:, ::-1],
    (0, True): lambda a: a[:, ::-1],
}


@pytest.mark.parametrize("suffix", ["mp4", "mov", "mkv"])
@pytest.mark.parametrize("rotation,hflip", list(ROTATIONS))
def test_rotated_video_is_decoded_upright(tmp_path, suffix, rotation, hflip):
    plain = write(tmp_path / f"plain.{suffix}", options={"preset": "ultrafast", "crf": "0"})
    rotated = write(tmp_path / f"rot.{suffix}", options={"preset": "ultrafast", "crf": "0"},
                    rotation=rotation, hflip=hflip)
    upright = ROTATIONS[(rotation, hflip)]
    idx = [0, 5, 30, 61]
    expected = np.stack([upright(a) for a in decode_frames(plain, idx)])
    np.testing.assert_array_equal(decode_frames(rotated, idx), expected)
    np.testing.assert_array_equal(decode_all_frames(rotated)[idx], expected)
    clip = load_clip(rotated, frames=4, rate=2, crop=32)
    assert clip.shape == (4, 32, 32, 3)


def test_portrait_phone_video_has_portrait_frames(tmp_path):
    path = write(tmp_path / "phone.mp4", rotation=-90)  # stored landscape, shown portrait
    frames = decode_frames(path, [0, 40])
    assert frames.shape[1:3] == (W, H)  # height > width, as the phone showed it


@pytest.mark.parametrize("suffix", ["ts", "avi"])
def test_tfrecord_segment_after_a_seek_stores_the_segment_frames(tmp_path, suffix):
    import tensorflow as tf

    from autox3d_tf.data.tfrecord import video_to_jpegs

    path = write(tmp_path / f"seg.{suffix}")
    seg: dict = {}
    jpegs, _, h, w = video_to_jpegs(path, start=1.6, end=3.2, segment_info=seg)
    everything = decode_all_frames(path)
    expected = [tf.io.encode_jpeg(everything[i], quality=90).numpy()
                for i in range(seg["first"], seg["first"] + seg["count"])]
    assert seg["first"] > FPS and len(jpegs) == len(expected)
    assert jpegs == expected


def test_tfrecord_stores_rotated_videos_upright(tmp_path):
    from autox3d_tf.data.tfrecord import video_to_jpegs

    path = write(tmp_path / "phone.mp4", rotation=-90)
    jpegs, _, h, w = video_to_jpegs(path)
    assert (h, w) == (W, H) and len(jpegs) == N


def test_raw_h264_stream_decodes_like_a_full_decode(tmp_path):
    """A raw .h264 stream has no container: no frame count, no timestamps, no seeking."""
    path = write_raw_h264(tmp_path / "raw.h264", frames=N, size=(W, H), fps=FPS)
    everything = decode_all_frames(path)
    assert probe_video(path).num_frames == len(everything) == N
    for idx in clips(N):
        np.testing.assert_array_equal(decode_frames(path, idx), everything[idx])


@pytest.mark.parametrize("kind", ["fifo", "stdin"])
def test_streams_that_cannot_seek_are_one_clear_error(tmp_path, kind):
    import os

    from autox3d_tf.data.decode import VideoDecodeError

    if kind == "fifo":
        path = str(tmp_path / "pipe.mp4")
        os.mkfifo(path)
    else:
        path = "/dev/stdin"
        if os.path.isfile(path):
            pytest.skip("stdin is a regular file here")
    with pytest.raises(VideoDecodeError, match="not a regular file"):
        probe_video(path)


def test_frame_folder_follows_exif_orientation(tmp_path):
    """Frames from a phone (EXIF orientation 6: stored landscape, shown portrait) are read upright,
    like rotated videos."""
    from PIL import Image

    from autox3d_tf.data.decode import probe_video

    folder = tmp_path / "frames"
    folder.mkdir()
    stored = [render_frame(i, W, H) for i in range(3)]
    for i, array in enumerate(stored):
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(array).save(folder / f"{i + 1}.png", exif=exif)
    frames = decode_frames(str(folder), [0, 2])
    np.testing.assert_array_equal(frames, np.stack([np.rot90(stored[0], -1), np.rot90(stored[2], -1)]))
    info = probe_video(str(folder))
    assert (info.width, info.height) == (H, W)
