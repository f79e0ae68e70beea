"""AutoX3D-XS, S, M and L factories: searched points of the autox3d-v1 space under X3D budgets.

Each spec is package data (``autox3d_tf/resources/autox3d/autox3d_<variant>.json``) found by the
project's training-free entropy search (STEntr score + evolution, `autox3d_tf.search.evolution`) under
the exact MACs of its X3D counterpart on the same clip; the command that reproduces it is in
``zoo/recipes/autox3d_<variant>.sh``. The specs have not been trained on any data: there are no
pretrained AutoX3D weights (``weights="kinetics400"`` raises an error that lists what exists).
"""

from __future__ import annotations

import functools

from autox3d_tf.arch.catalog import AUTOX3D_VARIANTS, autox3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.x3d import X3D_VARIANTS, x3d_spec
from autox3d_tf.zoo.factory import make_factory
from autox3d_tf.zoo.registry import register_factory

__all__ = ["AUTOX3D_VARIANTS", "AutoX3D_L", "AutoX3D_M", "AutoX3D_S", "AutoX3D_XS", "autox3d_spec"]

_DOC = """Instantiates AutoX3D-{variant}: an autox3d-v1 architecture found by the training-free entropy
search (E3D-style STEntr score + evolution) under the MACs of X3D-{variant} at the same input
({gmacs:.3f} GMACs for {frames}x{crop}x{crop}).

Not the architecture of the Auto-X3D paper (Jiang et al., WACV 2022), whose searched models were not
published in a form we could read, and not trained: no pretrained weights exist, so
``weights="kinetics400"`` raises an error. Spec: ``autox3d_tf/resources/autox3d/autox3d_{lower}.json``;
recipe: ``zoo/recipes/autox3d_{lower}.sh``; model card: ``zoo/AutoX3D_{variant}.md``.

Default input (as X3D-{variant}): {frames} frames sampled every {rate}, {crop}x{crop} crop (test crop
{test_crop}), pixels in [0, 1] normalised with mean 0.45 and std 0.225 (see `preprocess_input`), or raw
pixels in [0, 255] with `include_preprocessing=True`.

Args:
    weights: None (random init) or a path (str or os.PathLike) to a `.weights.h5` file or a
        training run folder; a dataset name goes through the weights registry (none is registered
        for AutoX3D models).
    include_top: whether to include the classification head.
    input_shape: (frames, height, width, 3); defaults to ({frames}, {crop}, {crop}, 3).
    input_tensor: optional Keras tensor to use as the model input.
    classes: number of classes. With weights of another class count (fine-tuning), every tensor
        but the classifier is loaded and the classifier is freshly initialised (one log line).
    pooling: with include_top=False: None (the 5D feature map), "avg" or "max" (the pooled
        features through the head's projection: the pre-logits).
    classifier_activation: activation of the last layer; None returns logits.
    dropout_rate: dropout before the classifier.
    name: model name.
    include_preprocessing: take RGB pixels in [0, 255] and normalise inside the model.
    causal: the causal form (output at frame t from frames up to t only), which trains with
        `fit` like any model and streams frame by frame (`autox3d_tf.models.streaming.stream_model`);
        non-causal weights load with a warning (README, "Causal models").

Returns:
    A `keras.Model`.
"""


def _make_factory(variant: str):
    model_name = f"AutoX3D_{variant}"
    v = X3D_VARIANTS[variant]

    doc = _DOC.format(
        variant=variant,
        lower=variant.lower(),
        gmacs=spec_macs(x3d_spec(variant)) / 1e9,
        frames=v.frames,
        rate=v.sampling_rate,
        crop=v.train_crop,
        test_crop=v.test_crop,
    )
    factory = make_factory(model_name, functools.partial(autox3d_spec, variant), doc)
    register_factory(model_name, factory)
    return factory


AutoX3D_XS = _make_factory("XS")
AutoX3D_S = _make_factory("S")
AutoX3D_M = _make_factory("M")
AutoX3D_L = _make_factory("L")
