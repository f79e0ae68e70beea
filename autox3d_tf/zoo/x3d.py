"""X3D-XS, S, M, L and XL factories."""

from __future__ import annotations

import functools

from autox3d_tf.arch.x3d import X3D_VARIANTS, x3d_spec
from autox3d_tf.zoo.factory import make_factory
from autox3d_tf.zoo.registry import register_factory

_DOC = """Instantiates {title} (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video
Recognition", CVPR 2020), exact to the pytorchvideo / PySlowFast reference.

Default input: {frames} frames sampled every {rate}, {crop}x{crop} crop (test crop {test_crop}),
pixels in [0, 1] normalised with mean 0.45 and std 0.225 (see `preprocess_input`), or raw pixels in
[0, 255] with `include_preprocessing=True`.

Args:
    weights: None (random init), "kinetics400" (the official checkpoint through the weights
        registry), or a path (str or os.PathLike) to a `.weights.h5` file, a PyTorch checkpoint
        or a training run folder. Strict: a backbone tensor that differs is an error.
    include_top: whether to include the classification head.
    input_shape: (frames, height, width, 3); defaults to ({frames}, {crop}, {crop}, 3).
    input_tensor: optional Keras tensor to use as the model input.
    classes: number of classes. With weights of another class count (fine-tuning), every tensor
        but the classifier is loaded and the classifier is freshly initialised (one log line).
    pooling: with include_top=False: None (the 5D feature map), "avg" or "max" (the pooled
        features through the head's pretrained 2048-wide projection: the pre-logits).
    classifier_activation: activation of the last layer; None returns logits.
    dropout_rate: dropout before the classifier.
    name: model name.
    include_preprocessing: take RGB pixels in [0, 255] (uint8 or float) and normalise inside the
        model (a `PixelNormalization` layer first); default False: normalised float clips.
    causal: the causal form (output at frame t from frames up to t only), which trains with
        `fit` like any model and streams frame by frame (`autox3d_tf.models.streaming.stream_model`);
        non-causal weights load with a warning (README, "Causal models").

Returns:
    A `keras.Model`.
"""


def _make_factory(variant: str):
    model_name = f"X3D_{variant}"
    v = X3D_VARIANTS[variant]
    doc = _DOC.format(
        title=f"X3D-{variant}", frames=v.frames, rate=v.sampling_rate, crop=v.train_crop, test_crop=v.test_crop
    )
    factory = make_factory(model_name, functools.partial(x3d_spec, variant), doc)
    register_factory(model_name, factory)
    return factory


X3D_XS = _make_factory("XS")
X3D_S = _make_factory("S")
X3D_M = _make_factory("M")
X3D_L = _make_factory("L")
X3D_XL = _make_factory("XL")
