"""Clip augmentation in TensorFlow, with ONE set of random parameters per clip.

Keras' augmentation layers draw new parameters per image, which breaks a video clip; here every random
draw is a stateless op keyed by the clip's seed, so a clip's frames share one scale, crop and flip,
and a pipeline is deterministic under a seed.

Training: short-side scale jitter to ``s ~ U[scale_min, scale_max]``, a random ``crop`` x ``crop``
window of the scaled frames, an optional horizontal flip, then normalisation. Scale-then-crop is done
as one resize of the matching window of the source frames (the same picture to within a pixel of
rounding, at a fraction of the work).
Evaluation: resize the short side to ``crop`` and take 1 or 3 crops along the long side.

TensorFlow-only (tf.image and stateless tf.random, inside tf.data).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels

__all__ = [
    "train_crop_window",
    "crop_resize_window",
    "resize_patch",
    "finish_train_clip",
    "random_flip_clip",
    "normalize_clip",
    "train_augment",
    "resize_short_side_tf",
    "eval_crops",
]


def _seed(seed: tf.Tensor, salt: int) -> tf.Tensor:
    """A stateless seed ``[2]`` derived from a clip seed (scalar or ``[2]``) and a salt."""
    seed = tf.cast(tf.reshape(seed, [-1]), tf.int64)
    pair = tf.stack([seed[0], seed[-1] if seed.shape[0] != 1 else tf.constant(0x5EED, tf.int64)])
    return tf.random.experimental.stateless_fold_in(pair, salt, alg="philox")


def train_crop_window(
    height: tf.Tensor,
    width: tf.Tensor,
    scale_range: tuple[int, int],
    crop: int,
    seed: tf.Tensor,
) -> tf.Tensor:
    """Integer window ``[top, left, h, w]`` in the source frame that, resized to ``crop`` x ``crop``,
    is a random ``crop`` window of the frame scaled to a random short side in ``scale_range``."""
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    lo, hi = int(scale_range[0]), int(scale_range[1])
    scale = tf.random.stateless_uniform([], _seed(seed, 1), minval=lo, maxval=hi + 1, dtype=tf.int32)
    scale = tf.maximum(tf.cast(scale, tf.float32), float(crop))
    factor = scale / tf.minimum(h, w)
    win = tf.cast(tf.round(crop / factor), tf.int32)
    win_h = tf.clip_by_value(win, 1, tf.cast(height, tf.int32))
    win_w = tf.clip_by_value(win, 1, tf.cast(width, tf.int32))
    u = tf.random.stateless_uniform([2], _seed(seed, 2))
    top = tf.cast(tf.floor(u[0] * tf.cast(tf.cast(height, tf.int32) - win_h + 1, tf.float32)), tf.int32)
    left = tf.cast(tf.floor(u[1] * tf.cast(tf.cast(width, tf.int32) - win_w + 1, tf.float32)), tf.int32)
    return tf.stack([top, left, win_h, win_w])


def crop_resize_window(frames: tf.Tensor, window: tf.Tensor, size: int) -> tf.Tensor:
    """The integer ``window`` ``[top, left, h, w]`` of every frame ``[T, H, W, C]`` resized to
    ``size`` x ``size`` (bilinear; antialiased when shrinking), float32 in the input's value range."""
    patch = frames[:, window[0] : window[0] + window[2], window[1] : window[1] + window[3], :]
    return resize_patch(patch, size)


def resize_patch(patch: tf.Tensor, size: int) -> tf.Tensor:
    """Resizes already cropped frames ``[T, h, w, C]`` (any numeric dtype) to ``size`` x ``size``
    float32 (bilinear; antialiased when shrinking)."""
    shape = tf.shape(patch)
    shrink = tf.maximum(shape[1], shape[2]) > size
    return tf.cond(
        shrink,
        lambda: tf.image.resize(tf.cast(patch, tf.float32), [size, size], method="bilinear", antialias=True),
        lambda: tf.image.resize(patch, [size, size], method="bilinear"),  # uint8 in, float32 out
    )


def random_flip_clip(clip: tf.Tensor, seed: tf.Tensor, probability: float = 0.5) -> tf.Tensor:
    """Flips every frame of ``clip [T, H, W, C]`` left-right, or none, with one coin per clip."""
    coin = tf.random.stateless_uniform([], _seed(seed, 3))
    return tf.cond(coin < probability, lambda: tf.reverse(clip, axis=[2]), lambda: clip)


def normalize_clip(clip: tf.Tensor, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> tf.Tensor:
    """``(clip / 255 - mean) / std`` per channel, float32 (``clip`` in [0, 255]): `normalize_pixels`."""
    return normalize_pixels(tf.cast(clip, tf.float32), mean, std)


def train_augment(
    frames: tf.Tensor,
    seed: tf.Tensor,
    crop: int,
    scale_range: tuple[int, int],
    flip: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> tf.Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> augmented, normalised float32 ``[T, crop, crop, 3]``."""
    shape = tf.shape(frames)
    window = train_crop_window(shape[1], shape[2], scale_range, crop, seed)
    patch = frames[:, window[0] : window[0] + window[2], window[1] : window[1] + window[3], :]
    return finish_train_clip(patch, seed, crop, flip, mean, std)


def finish_train_clip(
    patch: tf.Tensor,
    seed: tf.Tensor,
    crop: int,
    flip: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> tf.Tensor:
    """The rest of :func:`train_augment` once the clip's window is cut out (``patch [T, h, w, 3]``):
    resize to ``crop``, flip (one coin per clip), normalise. Lets a JPEG pipeline decode only the
    window (``tf.image.decode_and_crop_jpeg``)."""
    clip = resize_patch(patch, crop)
    if flip:
        clip = random_flip_clip(clip, seed)
    clip = normalize_clip(clip, mean, std)
    return tf.ensure_shape(clip, [patch.shape[0], crop, crop, 3])


def resize_short_side_tf(frames: tf.Tensor, size: int) -> tf.Tensor:
    """Resizes ``[..., H, W, C]`` so that the short side is ``size`` (bilinear, antialiased), float32."""
    shape = tf.shape(frames)
    h = tf.cast(shape[-3], tf.float32)
    w = tf.cast(shape[-2], tf.float32)
    factor = float(size) / tf.minimum(h, w)
    nh = tf.maximum(tf.cast(tf.round(h * factor), tf.int32), size)
    nw = tf.maximum(tf.cast(tf.round(w * factor), tf.int32), size)
    flat = tf.reshape(tf.cast(frames, tf.float32), tf.concat([[-1], shape[-3:]], 0))
    out = tf.image.resize(flat, tf.stack([nh, nw]), method="bilinear", antialias=True)
    return tf.reshape(out, tf.concat([shape[:-3], [nh, nw, shape[-1]]], 0))


def eval_crops(frames: tf.Tensor, crop: int, num_crops: int = 3) -> tf.Tensor:
    """``[..., T, H, W, C]`` resized to short side ``crop`` -> ``[num_crops, ..., T, crop, crop, C]``
    (PySlowFast's uniform crops: start, centre and end of the long side; or only the centre)."""
    x = resize_short_side_tf(frames, crop)
    h, w = tf.shape(x)[-3], tf.shape(x)[-2]
    cy, cx = (h - crop) // 2, (w - crop) // 2
    if num_crops == 1:
        offsets = [(cy, cx)]
    elif num_crops == 3:
        portrait = h > w
        offsets = [
            (tf.where(portrait, 0, cy), tf.where(portrait, cx, 0)),
            (cy, cx),
            (tf.where(portrait, h - crop, cy), tf.where(portrait, cx, w - crop)),
        ]
    else:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    views = [x[..., top : top + crop, left : left + crop, :] for top, left in offsets]
    return tf.stack(views)
