"""Temporal segments (issue 14, point 4; TSN-style K segments x T frames): the snippet indices,
the pipelines' clips (video files / frame folders and TFRecords, training and evaluation), the
consensus model (avg / max of the network's logits, ``fit``, ``.keras``, MACs), and a run with
``autox3d train --segments 2`` that evaluates and exports, the SavedModel agreeing with Keras."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from autox3d_tf.data.sampling import (  # noqa: E402
    clip_span, eval_clip_indices, segment_parts, snippet_eval_indices, snippet_train_indices, train_clip_indices)
from autox3d_tf.data.tf_sampling import snippet_eval_indices_tf, snippet_train_indices_tf  # noqa: E402
from autox3d_tf.layers.normalization import MEAN, STD  # noqa: E402
from autox3d_tf.models import SegmentConsensusModel, build_model, consensus_parts, segment_consensus  # noqa: E402
from tests.helpers.train import tiny_spec  # noqa: E402

STEP = 4  # frame k of a fixture video is the flat colour 4 * k: the decoded clip names its frames
LENGTHS = {"a/long": 60, "b/odd": 23, "b/short": 5}


# --------------------------------------------------------------------------------------------
# Indices
# --------------------------------------------------------------------------------------------


def _check_snippets_in_parts(idx: np.ndarray, n: int, frames: int, rate: int, segments: int) -> list[int]:
    """Asserts every snippet of ``idx`` lies in its part, ``rate`` apart; returns the starts."""
    first, count = segment_parts(n, segments)
    starts = []
    for k in range(segments):
        snippet = idx[k * frames:(k + 1) * frames]
        assert np.all(np.diff(snippet) == rate), snippet
        assert first[k] <= snippet[0] and snippet[-1] < first[k] + count[k], (k, snippet, first[k], count[k])
        starts.append(int(snippet[0]))
    return starts


def test_segment_parts_are_equal_and_cover_the_video():
    first, count = segment_parts(103, 4)
    assert first.tolist() == [0, 25, 51, 77] and count.tolist() == [25, 26, 26, 26]
    assert segment_parts(7, 1)[0].tolist() == [0] and segment_parts(7, 1)[1].tolist() == [7]
    with pytest.raises(ValueError):
        segment_parts(10, 0)


@pytest.mark.parametrize("n,frames,rate,segments", [(100, 2, 3, 4), (301, 4, 5, 3), (64, 8, 1, 8), (40, 2, 2, 2)])
def test_train_snippets_are_random_inside_their_parts(n, frames, rate, segments):
    seen = set()
    for seed in range(200):
        idx = snippet_train_indices(n, frames, rate, segments, np.random.default_rng(seed))
        assert idx.shape == (segments * frames,)
        seen.add(tuple(_check_snippets_in_parts(idx, n, frames, rate, segments)))
    first, count = segment_parts(n, segments)
    positions = int(np.prod([c - clip_span(frames, rate) + 1 for c in count]))
    assert len(seen) > min(20, positions // 2)  # not one fixed position: random in each part


def test_eval_snippets_are_at_the_centres_and_shift_with_num_clips():
    # 100 frames, 4 parts of 25; snippets of 2 frames 2 apart (span 3): room 22, centre offset 11.
    assert snippet_eval_indices(100, 2, 2, 4).tolist() == [[11, 13, 36, 38, 61, 63, 86, 88]]
    three = snippet_eval_indices(100, 2, 2, 4, num_clips=3)
    assert three.tolist() == [[0, 2, 25, 27, 50, 52, 75, 77], [11, 13, 36, 38, 61, 63, 86, 88],
                              [22, 24, 47, 49, 72, 74, 97, 99]]
    for view in three:
        _check_snippets_in_parts(view, 100, 2, 2, 4)
    # Odd parts: the centre rounds down, like a single plain evaluation clip.
    first, count = segment_parts(103, 4)
    centre = snippet_eval_indices(103, 4, 3, 4)[0]
    assert centre[::4].tolist() == [f + (c - clip_span(4, 3)) // 2 for f, c in zip(first, count)]


def test_short_videos_loop_like_plain_clips():
    # 5 frames in 4 parts (1, 1, 1, 2 frames): each snippet starts at its part and wraps.
    assert snippet_eval_indices(5, 2, 2, 4).tolist() == [[0, 2, 1, 3, 2, 4, 3, 0]]
    assert snippet_train_indices(5, 2, 2, 4, np.random.default_rng(0)).tolist() == [0, 2, 1, 3, 2, 4, 3, 0]
    assert eval_clip_indices(5, 4, 2, 1).tolist() == snippet_eval_indices(5, 4, 2, 1).tolist() == [[0, 2, 4, 1]]


@pytest.mark.parametrize("n", [1, 5, 23, 60, 301])
def test_one_segment_is_todays_clip(n):
    for seed in range(30):
        assert np.array_equal(snippet_train_indices(n, 4, 3, 1, np.random.default_rng(seed)),
                              train_clip_indices(n, 4, 3, np.random.default_rng(seed)))
    for clips in (1, 2, 5, 10):
        assert np.array_equal(snippet_eval_indices(n, 4, 3, 1, clips), eval_clip_indices(n, 4, 3, clips))


@pytest.mark.parametrize("n", [1, 5, 23, 60, 301])
def test_the_tensorflow_twins_give_the_same_indices(n):
    for segments in (1, 2, 4):
        for clips in (1, 3):
            got = snippet_eval_indices_tf(tf.constant(n), 4, 3, segments, clips).numpy()
            assert np.array_equal(got, snippet_eval_indices(n, 4, 3, segments, clips))
        for s in range(10):
            idx = snippet_train_indices_tf(tf.constant(n), 2, 3, segments, tf.constant([s, 7], tf.int64)).numpy()
            if n >= 23:
                _check_snippets_in_parts(idx, n, 2, 3, segments)
    # One segment: the TFRecord pipeline's training clip before segments existed.
    for s in range(10):
        seed = tf.constant([s, 3], tf.int64)
        u = tf.random.stateless_uniform([], seed, maxval=2**30, dtype=tf.int64)
        start = u % (max(n - clip_span(4, 3), 0) + 1)
        old = (start + tf.range(4, dtype=tf.int64) * 3) % max(n, 1)
        assert np.array_equal(snippet_train_indices_tf(tf.constant(n), 4, 3, 1, seed).numpy(), old.numpy())


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


def _write_index_videos(root) -> str:
    """Frame folders ``root/<class>/<video>`` whose frame k is the flat colour ``STEP * k``."""
    for name, count in LENGTHS.items():
        folder = os.path.join(root, name)
        os.makedirs(folder)
        for k in range(count):
            Image.fromarray(np.full((24, 32, 3), STEP * k, np.uint8)).save(os.path.join(folder, f"{k + 1}.png"))
    return os.fspath(root)


def _frame_numbers(clip) -> np.ndarray:
    """The frame index each frame of a normalised clip ``[T, H, W, 3]`` shows."""
    pixels = (np.asarray(clip)[..., 0].mean(axis=(1, 2)) * STD[0] + MEAN[0]) * 255.0
    return np.round(pixels / STEP).astype(int)


@pytest.fixture(scope="module")
def index_data(tmp_path_factory):
    from autox3d_tf.data.tfrecord import convert_to_tfrecord

    tmp = tmp_path_factory.mktemp("segments_data")
    folder = _write_index_videos(tmp / "videos")
    report = convert_to_tfrecord(folder, tmp / "shards" / "train", shards=1, workers=1, progress=False)
    assert report.videos == len(LENGTHS)
    return {"folder": folder, "shards": os.fspath(tmp / "shards" / "train")}


CLIP = dict(frames=2, rate=3, crop=16)


def test_video_training_clips_are_k_snippets_in_their_parts(index_data):
    from autox3d_tf.data import video_dataset

    ds = video_dataset(index_data["folder"], None, batch_size=0, seed=1, segments=4, **CLIP)
    starts: dict[int, set] = {60: set(), 23: set()}
    for _ in range(4):
        for clip, _ in ds:
            assert clip.shape == (8, 16, 16, 3)
            idx = _frame_numbers(clip)
            n = 60 if idx.max() >= 23 else 23 if idx.max() >= 5 else 5
            if n == 5:  # parts of 1, 1, 1, 2 frames: snippets start at their part and loop
                assert idx.tolist() == [0, 3, 1, 4, 2, 0, 3, 1]
            else:
                starts[n].add(tuple(_check_snippets_in_parts(idx, n, 2, 3, 4)))
    assert len(starts[60]) > 1 and len(starts[23]) > 1  # random positions, new each epoch


def test_video_eval_views_are_the_segments(index_data):
    from autox3d_tf.data import video_eval_dataset

    ds = video_eval_dataset(index_data["folder"], None, num_clips=2, num_crops=3, batch_size=0, segments=4,
                            frames=2, rate=3, crop=16)
    by_video: dict[str, list] = {}
    for clip, _, vid in ds:
        assert clip.shape == (8, 16, 16, 3)
        by_video.setdefault(vid.numpy().decode(), []).append(_frame_numbers(clip))
    assert set(by_video) == set(LENGTHS)
    for vid, views in by_video.items():
        want = snippet_eval_indices(LENGTHS[vid], 2, 3, 4, num_clips=2)
        assert len(views) == 6  # crop-major: crops x temporal views
        for c in range(3):
            assert np.array_equal(np.stack(views[2 * c:2 * c + 2]), want), (vid, views, want)


def test_one_segment_video_eval_is_todays(index_data):
    from autox3d_tf.data import video_eval_dataset

    ds = video_eval_dataset(index_data["folder"], None, num_clips=3, num_crops=1, batch_size=0, segments=1, **{
        "frames": 4, "rate": 3, "crop": 16})
    for clip, _, vid in ds.batch(3):
        n = LENGTHS[vid.numpy()[0].decode()]
        assert np.array_equal(np.stack([_frame_numbers(c) for c in clip]), eval_clip_indices(n, 4, 3, 3))


def test_tfrecord_clips_are_k_snippets(index_data):
    from autox3d_tf.data import tfrecord_dataset, tfrecord_eval_dataset

    train = tfrecord_dataset(index_data["shards"], None, batch_size=0, seed=2, segments=4, shuffle=False, **CLIP)
    clips = [(np.asarray(c), int(y)) for _ in range(3) for c, y in train]
    assert len(clips) == 3 * len(LENGTHS) and clips[0][0].shape == (8, 16, 16, 3)
    starts = set()
    for clip, _ in clips:
        idx = _frame_numbers(clip)
        if idx.max() > 23:  # the 60-frame video
            starts.add(tuple(_check_snippets_in_parts(idx, 60, 2, 3, 4)))
    assert len(starts) > 1
    views = tfrecord_eval_dataset(index_data["shards"], None, num_clips=2, num_crops=1, batch_size=0, segments=4,
                                  frames=2, rate=3, crop=16)
    got: dict[str, list] = {}
    for clip, _, vid in views:
        got.setdefault(vid.numpy().decode(), []).append(_frame_numbers(clip))
    for vid, v in got.items():
        assert np.array_equal(np.stack(v), snippet_eval_indices(LENGTHS[vid], 2, 3, 4, 2)), vid


def test_training_datasets_and_the_shuffled_frames_control(index_data):
    from autox3d_tf.data.clip import resolve_clip
    from autox3d_tf.training.data import eval_dataset, train_dataset

    clip = resolve_clip(None, frames=2, rate=3, crop=16)
    ds, info = train_dataset(index_data["folder"], None, clip, batch_size=3, seed=0, repeat=False, segments=4,
                             shuffle_time=True)
    (x, y), = list(ds)
    assert x.shape == (3, 8, 16, 16, 3) and y.shape == (3, 2) and info.num_examples == 3
    views, _ = eval_dataset(index_data["shards"], None, clip, batch_size=4, num_clips=1, num_crops=3, segments=4)
    x, _, _ = next(iter(views))
    assert x.shape == (4, 8, 16, 16, 3)


# --------------------------------------------------------------------------------------------
# The consensus model
# --------------------------------------------------------------------------------------------


def _randomise_batch_norms(model, seed=0):
    """Random BatchNorm parameters and statistics, so every layer matters."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    net = build_model(tiny_spec(), input_shape=(2, 32, 32, 3), classes=5, classifier_activation=None)
    _randomise_batch_norms(net)
    return net


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_consensus_is_the_mean_or_max_of_the_snippets_logits(network, mode):
    model = segment_consensus(network, segments=3, mode=mode)
    assert isinstance(model, SegmentConsensusModel) and model.input_shape == (None, 6, 32, 32, 3)
    assert model.network is network and model.output_shape == (None, 5)
    x = np.random.default_rng(1).normal(size=(2, 6, 32, 32, 3)).astype("float32")
    per = np.stack([np.asarray(network(x[:, 2 * k:2 * k + 2], training=False)) for k in range(3)], axis=1)
    assert np.abs(per[:, 0] - per[:, 1]).max() > 1e-3  # the snippets' logits differ
    want = per.mean(axis=1) if mode == "avg" else per.max(axis=1)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), want, atol=1e-5, rtol=0)
    probs = segment_consensus(network, 3, mode, activation="softmax")(x)
    np.testing.assert_allclose(np.asarray(probs), np.asarray(keras.ops.softmax(want)), atol=1e-5)


def test_consensus_checks_its_arguments(network):
    with pytest.raises(ValueError, match="mode"):
        segment_consensus(network, 2, mode="median")
    with pytest.raises(ValueError, match="segments"):
        segment_consensus(network, 0)
    dynamic = build_model(tiny_spec(), input_shape=(None, 32, 32, 3), classes=5)
    with pytest.raises(ValueError, match="frames"):
        segment_consensus(dynamic, 2)
    assert segment_consensus(dynamic, 2, frames=3).input_shape == (None, 6, 32, 32, 3)


def test_consensus_macs_are_k_times_the_networks(network):
    from autox3d_tf import flops

    assert flops.count_macs(segment_consensus(network, 4)) == 4 * flops.count_macs(network)


def test_consensus_fits_and_round_trips_through_keras_files(tmp_path):
    keras.utils.set_random_seed(1)
    net = build_model(tiny_spec(), input_shape=(2, None, None, 3), classes=3, classifier_activation=None)
    model = segment_consensus(net, 2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 4, 32, 32, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    before = [np.array(w) for w in net.trainable_weights]
    history = model.fit(x, y, batch_size=2, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(np.abs(np.asarray(w) - b).max() > 0 for w, b in zip(net.trainable_weights, before))
    path = tmp_path / "consensus.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    parts = consensus_parts(loaded)
    assert isinstance(loaded, SegmentConsensusModel) and parts.segments == 2 and parts.consensus == "avg"
    assert loaded.arch_spec == tiny_spec()
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                               atol=1e-6)
    assert consensus_parts(net) is None


# --------------------------------------------------------------------------------------------
# A run with --segments 2: train, evaluate, export, serve
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory):
    from autox3d_tf.data import write_synthetic_dataset
    from autox3d_tf.workflows import train as workflow

    root = tmp_path_factory.mktemp("segment_run")
    ds = write_synthetic_dataset(root / "data", num_classes=3, clips_per_class=6, size=48, frames=24, progress=False)
    spec = root / "tiny.json"
    spec.write_text(tiny_spec().to_json())
    argv = ["autox3d train", f"--train_data={ds.split_files['train']}", "--model=X3D_XS", f"--spec={spec}",
            f"--out_dir={root / 'run'}", "--epochs=1", "--batch_size=2", "--steps_per_epoch=2", "--frames=2",
            "--rate=3", "--crop=32", "--segments=2", "--learning_rate=0.05", "--verbose=0"]
    assert workflow.main(argv) == 0
    return {"dir": root / "run", "test": ds.split_files["test"], "classes": ds.classes}


@pytest.mark.slow  # the run's training (about 30 s on 2 cores) is shared by the three
def test_a_segment_run_records_its_segments_and_macs(segment_run):
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.training import load_trained_model

    config = json.loads((segment_run["dir"] / "run.json").read_text())
    assert config["completed"] and config["segments"] == 2 and config["segment_consensus"] == "avg"
    crop = config["clip"]["test_crop"]
    network = spec_macs(tiny_spec(), frames=2, size=crop, classes=3)
    assert config["macs"]["network"] == network and config["macs"]["per_clip"] == 2 * network
    model, _ = load_trained_model(segment_run["dir"])
    assert isinstance(model, SegmentConsensusModel) and model.input_shape == (None, 4, crop, crop, 3)
    from autox3d_tf import flops

    assert flops.count_macs(model) == 2 * flops.count_macs(model.network)


@pytest.mark.slow  # the run's training (about 30 s on 2 cores) is shared by the three
def test_a_segment_run_evaluates_on_its_segments(segment_run, tmp_path):
    from autox3d_tf.workflows import evaluate as workflow

    out = tmp_path / "eval"
    argv = ["autox3d evaluate", f"--run_dir={segment_run['dir']}", f"--data={segment_run['test']}",
            "--num_clips=2", "--num_crops=1", "--batch_size=4", f"--out_dir={out}", "--json"]
    assert workflow.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["segments"] == 2 and metrics["views"] == 2 * metrics["videos"] and metrics["videos"] >= 3
    assert 0.0 <= metrics["top1"] <= 1.0


@pytest.mark.slow  # the run's training (about 30 s on 2 cores) is shared by the three
def test_a_segment_run_exports_a_saved_model_that_samples_the_snippets(segment_run, tmp_path):
    from autox3d_tf.training import load_trained_model
    from autox3d_tf.workflows import export as workflow

    out = tmp_path / "export"
    assert workflow.main(["autox3d export", f"--run_dir={segment_run['dir']}", f"--out_dir={out}", "--json"]) == 0
    info = json.loads((out / "export.json").read_text())
    assert info["segments"] == 2 and "tflite" not in info
    model, config = load_trained_model(segment_run["dir"])
    crop, rate = config["clip"]["test_crop"], config["clip"]["rate"]
    served = tf.saved_model.load(info["saved_model"]).signatures["serving_default"]
    rng = np.random.default_rng(5)
    for n in (37, 4, 3):  # a long clip (snippets sampled), exactly K * T frames (as is), a short one (loops)
        frames = rng.integers(0, 256, size=(2, n, crop, crop, 3), dtype=np.uint8)
        got = served(frames=tf.constant(frames))["probabilities"].numpy()
        idx = snippet_eval_indices(n, 2, rate, 2)[0] if n != 4 else np.arange(4)
        x = (frames[:, idx].astype("float32") / 255.0 - np.asarray(MEAN, "float32")) / np.asarray(STD, "float32")
        want = np.asarray(model(x, training=False))
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
