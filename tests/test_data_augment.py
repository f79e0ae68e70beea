"""Sampling indices and per-clip augmentation: one set of random parameters per clip, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.data import augment
from autox3d_tf.data.sampling import (
    clip_span,
    eval_clip_indices,
    spatial_crop_offsets,
    train_clip_indices,
    uniform_clip_starts,
)


def test_uniform_starts_cover_the_video():
    assert clip_span(16, 5) == 76
    assert uniform_clip_starts(300, 16, 5, 10)[0] == 0
    assert uniform_clip_starts(300, 16, 5, 10)[-1] == 300 - 76
    assert uniform_clip_starts(300, 16, 5, 1) == [(300 - 76) // 2]
    assert uniform_clip_starts(50, 16, 5, 3) == [0, 0, 0]  # short video: all views from the start, looping
    idx = eval_clip_indices(50, 16, 5, 3)
    assert idx.shape == (3, 16) and idx.max() < 50


def test_train_indices_random_but_seeded():
    a = [train_clip_indices(300, 16, 5, np.random.default_rng(s))[0] for s in range(20)]
    b = [train_clip_indices(300, 16, 5, np.random.default_rng(s))[0] for s in range(20)]
    assert a == b and len(set(a)) > 10 and max(a) <= 224


def test_spatial_crop_offsets():
    assert spatial_crop_offsets(182, 242, 182) == [(0, 0), (0, 30), (0, 60)]
    assert spatial_crop_offsets(323, 182, 182) == [(0, 0), (70, 0), (141, 0)]
    assert spatial_crop_offsets(182, 242, 182, 1) == [(0, 30)]


def ramp_clip(t=4, h=48, w=64):
    """Frames whose pixel value encodes (frame, row, column), so crops and flips can be checked."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    frames = np.stack([np.stack([yy * 2, xx * 2, np.full_like(yy, 40 * i)], -1) for i in range(t)])
    return tf.constant(frames.astype(np.uint8))


def test_one_crop_and_flip_per_clip():
    frames = ramp_clip()
    for s in range(6):
        out = augment.train_augment(frames, tf.constant(s, tf.int64), crop=32, scale_range=(48, 64),
                                    flip=True, mean=(0, 0, 0), std=(1 / 255, 1 / 255, 1 / 255)).numpy()
        assert out.shape == (4, 32, 32, 3)
        # rows and columns (channels 0, 1) identical in every frame: the same window, the same flip
        for i in range(1, 4):
            np.testing.assert_allclose(out[i, ..., :2], out[0, ..., :2], atol=1e-3)
            np.testing.assert_allclose(out[i, ..., 2], 40 * i, atol=1e-3)


def test_flip_and_scale_vary_with_seed_and_repeat_under_it():
    frames = ramp_clip()
    kw = dict(crop=32, scale_range=(48, 80), flip=True)
    outs = [augment.train_augment(frames, tf.constant(s, tf.int64), **kw).numpy() for s in range(16)]
    flipped = [o[0, 0, 0, 1] > o[0, 0, -1, 1] for o in outs]  # column ramp runs backwards
    assert 2 <= sum(flipped) <= 14
    spans = {round(float(o[0, -1, 0, 0] - o[0, 0, 0, 0]), 3) for o in outs}
    assert len(spans) > 3  # different scales
    again = augment.train_augment(frames, tf.constant(5, tf.int64), **kw).numpy()
    np.testing.assert_array_equal(again, outs[5])
    no_flip = [augment.train_augment(frames, tf.constant(s, tf.int64), crop=32, scale_range=(48, 80),
                                     flip=False).numpy() for s in range(8)]
    assert all(o[0, 0, 0, 1] < o[0, 0, -1, 1] for o in no_flip)


def test_full_window_is_a_plain_resize_and_window_tracks_scale():
    frames = tf.random.uniform([2, 40, 60, 3], 0, 255, seed=1)
    out = augment.crop_resize_window(frames, tf.constant([0, 0, 40, 60]), 30)
    ref = tf.image.resize(frames, [30, 30], method="bilinear", antialias=True)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-3)
    # short side 256 scaled to [256, 320] then cropped to 224: the source window is 224 / factor
    sizes = {int(augment.train_crop_window(256, 340, (256, 320), 224, tf.constant(s, tf.int64))[2])
             for s in range(30)}
    assert min(sizes) >= round(224 * 256 / 320) and max(sizes) <= 224 and len(sizes) > 5


def test_normalize():
    out = augment.normalize_clip(tf.constant([[0, 255, 114.75]]), (0.45,) * 3, (0.225,) * 3).numpy()
    np.testing.assert_allclose(out, [[-2.0, 1 / 0.225 * 0.55, 0.0]], atol=1e-5)


def test_eval_crops_landscape_and_portrait():
    land = tf.zeros([2, 3, 100, 150, 3], tf.uint8)
    assert augment.eval_crops(land, 50, 3).shape == (3, 2, 3, 50, 50, 3)
    frames = ramp_clip(t=1, h=64, w=48)  # portrait: crops run top to bottom
    views = augment.eval_crops(frames, 24, 3).numpy()
    rows = views[:, 0, :, 0, 0]
    assert rows[0, 0] < rows[1, 0] < rows[2, 0]
    with pytest.raises(ValueError):
        augment.eval_crops(frames, 24, 2)
