"""Whole-video clips (sampling rate 0, ``WHOLE_VIDEO``): a clip's frames spread over the whole video,
frame i from the i-th of ``frames`` equal parts (random in training, centred in evaluation), in the
NumPy indices, their TensorFlow twins, both pipelines, ``load_clip`` and the clip settings.

The expected indices are written out by hand from the rule, not computed with the package."""

from __future__ import annotations

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from autox3d_tf.data.clip import resolve_clip  # noqa: E402
from autox3d_tf.data.decode import load_clip, whole_video_indices  # noqa: E402
from autox3d_tf.data.sampling import WHOLE_VIDEO, eval_clip_indices, snippet_layout, train_clip_indices  # noqa: E402
from autox3d_tf.data.tf_sampling import snippet_eval_indices_tf, snippet_train_indices_tf  # noqa: E402
from tests.test_segments import LENGTHS, _frame_numbers, _write_index_videos  # noqa: E402


def _in_parts(idx, n: int, frames: int) -> bool:
    """Frame i lies in the i-th of ``frames`` equal parts of ``n`` frames."""
    return all(i * n // frames <= int(x) < (i + 1) * n // frames for i, x in enumerate(idx))


def test_eval_clip_is_the_centres_of_equal_parts():
    assert WHOLE_VIDEO == 0
    # 60 frames, 6 parts of 10: centre (count - 1) // 2 = 4 of each part.
    assert eval_clip_indices(60, 6, 0, 1).tolist() == [[4, 14, 24, 34, 44, 54]]
    assert whole_video_indices(60, 6).tolist() == [4, 14, 24, 34, 44, 54]
    # 23 frames, 4 parts: bounds 0, 5, 11, 17, 23 -> counts 5, 6, 6, 6 -> centres 2, 7, 13, 19.
    assert eval_clip_indices(23, 4, 0, 1).tolist() == [[2, 7, 13, 19]]
    assert whole_video_indices(23, 4).tolist() == [2, 7, 13, 19]
    # Three views shift through each part of 10 frames: offsets 0, 4 (round(4.5) is 4), 9.
    assert eval_clip_indices(30, 3, 0, 3).tolist() == [[0, 10, 20], [4, 14, 24], [9, 19, 29]]


def test_training_clips_are_random_inside_their_parts():
    rng = np.random.default_rng(0)
    draws = {tuple(train_clip_indices(60, 6, 0, rng).tolist()) for _ in range(50)}
    assert len(draws) > 10
    assert all(_in_parts(d, 60, 6) for d in draws)
    # A video shorter than the clip repeats frames, never leaves the video.
    short = train_clip_indices(4, 6, 0, rng)
    assert short.shape == (6,) and short.min() >= 0 and short.max() < 4


def test_layout_and_bad_rates():
    assert snippet_layout(8, 0) == (1, 1, 8) and snippet_layout(8, 0, segments=2) == (1, 1, 16)
    assert snippet_layout(8, 3, 2) == (8, 3, 2)
    with pytest.raises(ValueError, match="sampling rate"):
        snippet_layout(8, -1)
    assert resolve_clip("X3D_XS", rate=0).rate == 0
    assert resolve_clip("X3D_XS").rate == 12  # X3D-XS: 4 frames every 12


@pytest.mark.parametrize("n", [60, 23, 5])
def test_tensorflow_twins(n):
    eval_tf = snippet_eval_indices_tf(tf.constant(n), 4, 0, 1, 3).numpy()
    np.testing.assert_array_equal(eval_tf, eval_clip_indices(n, 4, 0, 3))
    for s in range(5):
        idx = snippet_train_indices_tf(tf.constant(n), 4, 0, 1, tf.constant([s, 7])).numpy()
        assert idx.shape == (4,) and (_in_parts(idx, n, 4) if n >= 4 else idx.max() < n)


@pytest.fixture(scope="module")
def index_data(tmp_path_factory):
    from autox3d_tf.data.tfrecord import convert_to_tfrecord

    tmp = tmp_path_factory.mktemp("whole_video")
    folder = _write_index_videos(tmp / "videos")
    convert_to_tfrecord(folder, tmp / "shards" / "train", shards=1, workers=1, progress=False)
    return {"folder": folder, "shards": os.fspath(tmp / "shards" / "train")}


@pytest.mark.parametrize("source", ["folder", "shards"])
def test_pipelines_spread_the_clip_over_the_video(index_data, source):
    from autox3d_tf.data import tfrecord_dataset, tfrecord_eval_dataset, video_dataset, video_eval_dataset

    train_fn, eval_fn = (video_dataset, video_eval_dataset) if source == "folder" else (
        tfrecord_dataset, tfrecord_eval_dataset)
    clip = dict(frames=4, rate=0, crop=16)
    seen: dict[int, set] = {}
    train = train_fn(index_data[source], None, batch_size=0, seed=3, **clip)
    for _ in range(3):
        for x, _ in train:
            idx = _frame_numbers(x)
            n = 60 if idx.max() >= 23 else 23 if idx.max() >= 5 else 5
            assert n == 5 or _in_parts(idx, n, 4), idx
            seen.setdefault(n, set()).add(tuple(idx))
    assert len(seen[60]) > 1  # random positions, new each epoch
    views = {}
    for x, _, vid in eval_fn(index_data[source], None, num_clips=1, num_crops=1, batch_size=0, **clip):
        views[os.path.basename(vid.numpy().decode())] = _frame_numbers(x).tolist()
    assert views["long"] == [7, 22, 37, 52]  # 4 parts of 15: centre 7
    assert views["odd"] == [2, 7, 13, 19]
    assert set(LENGTHS) == {"a/long", "b/odd", "b/short"}


def test_load_clip_takes_the_whole_video(index_data):
    clip = load_clip(os.path.join(index_data["folder"], "a", "long"), 6, 0, 16)
    assert _frame_numbers(_normalised(clip)).tolist() == [4, 14, 24, 34, 44, 54]


def _normalised(clip: np.ndarray) -> np.ndarray:
    from autox3d_tf.layers.normalization import MEAN, STD

    return (clip.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)


@pytest.mark.parametrize("n", [60, 23, 10])
def test_serving_picks_the_evaluation_frames(n):
    from autox3d_tf.export.saved_model import preprocess_frames

    video = np.stack([np.full((8, 8, 3), 4 * k, np.uint8) for k in range(n)])[None]  # frame k: colour 4k
    clip = preprocess_frames(tf.constant(video), 4, 8, rate=0).numpy()[0]
    assert _frame_numbers(clip).tolist() == whole_video_indices(n, 4).tolist()
