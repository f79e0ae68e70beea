"""Videos stored as frame folders: one folder of numbered JPEG / PNG frames per video.

    frames = frame_files("20bn-jester-v1/12")          # ["…/00001.jpg", "…/00002.jpg", ...]
    info = probe_frame_folder("20bn-jester-v1/12")     # VideoInfo at FRAME_FOLDER_FPS
    clip = decode_frame_folder("20bn-jester-v1/12", [0, 2, 4])

The layout of Something-Something v1 and Jester. Frames are ordered by the number in their file
name (``2.jpg`` before ``10.jpg``); other files are ignored. A frame folder has no frame rate of its
own: it is given, or :data:`FRAME_FOLDER_FPS`; it only converts annotated segments (seconds) to
frames and is the frame rate stored in TFRecords. Indices past the last frame loop, as in videos.
An empty folder or an unreadable frame is a :class:`~autox3d_tf.data.decode.VideoDecodeError`
naming the folder (and the frame), so pipelines skip and report it like a bad video.

Plain NumPy and Pillow (no TensorFlow).
"""

from __future__ import annotations

import os
import re
from typing import Callable, Sequence

import numpy as np

from autox3d_tf.data.decode import VideoDecodeError, VideoInfo, assemble_frames, chosen_indices

__all__ = [
    "FRAME_EXTENSIONS",
    "FRAME_FOLDER_FPS",
    "is_frame_folder",
    "frame_files",
    "read_frame",
    "probe_frame_folder",
    "decode_frame_folder_for",
]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: The frame rate assumed for a frame folder when none is given: Something-Something v1 and Jester
#: were extracted at 12 frames per second.
FRAME_FOLDER_FPS = 12.0

_DIGITS = re.compile(r"\d+")


def _is_frame_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in FRAME_EXTENSIONS


def is_frame_folder(path: str | os.PathLike) -> bool:
    """True for a directory that holds at least one JPEG / PNG file."""
    path = os.fspath(path)
    return os.path.isdir(path) and any(_is_frame_name(n) for n in os.listdir(path))


def _frame_key(name: str) -> tuple[int, int, str]:
    numbers = _DIGITS.findall(os.path.splitext(name)[0])
    return (0, int(numbers[-1]), name) if numbers else (1, 0, name)


def frame_files(path: str | os.PathLike) -> list[str]:
    """The frame files of a frame folder in frame order (by the last number in each name).

    Raises :class:`VideoDecodeError` when ``path`` is missing, not a directory, or holds no frames.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "frame folder not found")
    if not os.path.isdir(path):
        raise VideoDecodeError(path, "not a frame folder")
    names = sorted((n for n in os.listdir(path) if _is_frame_name(n)), key=_frame_key)
    if not names:
        raise VideoDecodeError(path, "empty frame folder: no JPEG / PNG frames")
    return [os.path.join(path, n) for n in names]


_EXIF_ORIENTATION = 0x0112


def read_frame(folder: str, file: str) -> np.ndarray:
    """One frame as uint8 ``[H, W, 3]`` RGB; a :class:`VideoDecodeError` naming ``folder`` and the
    frame when it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(file) as image:
            # EXIF orientation (a phone's portrait JPEG), as a viewer shows it and as videos are decoded.
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, ValueError, SyntaxError) as err:  # PIL: UnidentifiedImageError, truncated data
        raise VideoDecodeError(folder, f"unreadable frame {os.path.basename(file)} "
                                       f"({type(err).__name__}: {err})") from err


def _folder_info(path: str, files: Sequence[str], frame_rate: float | None) -> VideoInfo:
    from PIL import Image

    fps = float(frame_rate or FRAME_FOLDER_FPS)
    if fps <= 0:
        raise ValueError(f"frame_rate must be positive, got {frame_rate}")
    try:
        with Image.open(files[0]) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):  # stored sideways
                width, height = height, width
    except (OSError, ValueError, SyntaxError) as err:
        raise VideoDecodeError(path, f"unreadable frame {os.path.basename(files[0])} "
                                     f"({type(err).__name__}: {err})") from err
    codec = os.path.splitext(files[0])[1].lower().lstrip(".")
    return VideoInfo(path=path, num_frames=len(files), fps=fps, width=width, height=height,
                     duration=len(files) / fps, codec=codec)


def probe_frame_folder(path: str | os.PathLike, frame_rate: float | None = None) -> VideoInfo:
    """The :class:`VideoInfo` of a frame folder: its frame count, ``frame_rate`` (default
    :data:`FRAME_FOLDER_FPS`) and the size of its first frame."""
    path = os.fspath(path)
    return _folder_info(path, frame_files(path), frame_rate)


def decode_frame_folder_for(
    path: str | os.PathLike, choose: Callable[[VideoInfo], Sequence[int]], frame_rate: float | None = None
) -> tuple[np.ndarray, VideoInfo]:
    """:func:`~autox3d_tf.data.decode.decode_frames_for` for a frame folder: reads only the chosen
    frames (indices loop past the last one); frames of another size than the first chosen one are
    resized to it."""
    path = os.fspath(path)
    files = frame_files(path)
    info = _folder_info(path, files, frame_rate)
    shape, mapped = chosen_indices(choose, info)
    found = {i: read_frame(path, files[i]) for i in sorted(set(mapped.tolist()))}
    return assemble_frames(found, shape, mapped), info
