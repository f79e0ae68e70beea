"""Clip augmentation in TensorFlow, with ONE set of random parameters per clip.

Keras' augmentation layers draw new parameters per image, which breaks a video clip; here every random
draw is a stateless op keyed by the clip's seed, so a clip's frames share one scale, crop and flip,
and a pipeline is deterministic under a seed.

Training: short-side scale jitter to ``s ~ U[scale_min, scale_max]``, a random ``crop`` x ``crop``
window of the scaled frames, an optional horizontal flip, then normalisation. Scale-then-crop is done
as one ``crop_and_resize`` of the matching window of the source frames (same result, much less work).
Evaluation: resize the short side to ``crop`` and take 1 or 3 crops along the long side.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

__all__ = [
    "train_crop_box",
    "crop_and_resize_clip",
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


def train_crop_box(
    height: tf.Tensor,
    width: tf.Tensor,
    scale_range: tuple[int, int],
    crop: int,
    seed: tf.Tensor,
) -> tf.Tensor:
    """Normalised box ``[y1, x1, y2, x2]`` in the source frame of a random ``crop`` window after a
    random short-side scale in ``scale_range``."""
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    lo, hi = int(scale_range[0]), int(scale_range[1])
    scale = tf.random.stateless_uniform([], _seed(seed, 1), minval=lo, maxval=hi + 1, dtype=tf.int32)
    scale = tf.maximum(tf.cast(scale, tf.float32), float(crop))
    factor = scale / tf.minimum(h, w)
    sh, sw = h * factor, w * factor
    u = tf.random.stateless_uniform([2], _seed(seed, 2))
    top = tf.floor(u[0] * (tf.floor(sh) - crop + 1.0))
    left = tf.floor(u[1] * (tf.floor(sw) - crop + 1.0))
    return tf.stack([top / sh, left / sw, (top + crop) / sh, (left + crop) / sw])


def crop_and_resize_clip(frames: tf.Tensor, box: tf.Tensor, size: int) -> tf.Tensor:
    """The same normalised ``box`` of every frame ``[T, H, W, C]``, resized to ``size`` x ``size``
    (bilinear), as float32 in the input's value range."""
    t = tf.shape(frames)[0]
    boxes = tf.tile(tf.reshape(tf.cast(box, tf.float32), [1, 4]), [t, 1])
    # crop_and_resize samples at y * (H - 1); shift the box by half a pixel so a full box is the
    # usual pixel-centre resize.
    shape = tf.cast(tf.shape(frames)[1:3], tf.float32)
    half = 0.5 / shape
    scale = shape / tf.maximum(shape - 1.0, 1.0)
    y1 = (boxes[:, 0] + half[0] * (boxes[:, 2] - boxes[:, 0]) * (shape[0] / size) - half[0]) * scale[0]
    x1 = (boxes[:, 1] + half[1] * (boxes[:, 3] - boxes[:, 1]) * (shape[1] / size) - half[1]) * scale[1]
    y2 = (boxes[:, 2] - half[0] * (boxes[:, 2] - boxes[:, 0]) * (shape[0] / size) - half[0]) * scale[0]
    x2 = (boxes[:, 3] - half[1] * (boxes[:, 3] - boxes[:, 1]) * (shape[1] / size) - half[1]) * scale[1]
    # Upscaling puts the outermost samples up to half a pixel outside the frame: clamp the box (a
    # sub-pixel stretch) instead of letting crop_and_resize extrapolate zeros.
    boxes = tf.clip_by_value(tf.stack([y1, x1, y2, x2], axis=1), 0.0, 1.0)
    return tf.image.crop_and_resize(frames, boxes, tf.range(t), [size, size], method="bilinear")


def random_flip_clip(clip: tf.Tensor, seed: tf.Tensor, probability: float = 0.5) -> tf.Tensor:
    """Flips every frame of ``clip [T, H, W, C]`` left-right, or none, with one coin per clip."""
    coin = tf.random.stateless_uniform([], _seed(seed, 3))
    return tf.cond(coin < probability, lambda: tf.reverse(clip, axis=[2]), lambda: clip)


def normalize_clip(clip: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
    """``(clip / 255 - mean) / std`` per channel, float32 (``clip`` in [0, 255])."""
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    return (tf.cast(clip, tf.float32) / 255.0 - mean) / std


def train_augment(
    frames: tf.Tensor,
    seed: tf.Tensor,
    crop: int,
    scale_range: tuple[int, int],
    flip: bool = True,
    mean: Sequence[float] = (0.45, 0.45, 0.45),
    std: Sequence[float] = (0.225, 0.225, 0.225),
) -> tf.Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> augmented, normalised float32 ``[T, crop, crop, 3]``."""
    shape = tf.shape(frames)
    box = train_crop_box(shape[1], shape[2], scale_range, crop, seed)
    clip = crop_and_resize_clip(frames, box, crop)
    if flip:
        clip = random_flip_clip(clip, seed)
    clip = normalize_clip(clip, mean, std)
    return tf.ensure_shape(clip, [frames.shape[0], crop, crop, 3])


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
