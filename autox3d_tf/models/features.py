"""Feature outputs of a built network: the spatio-temporal feature map and the pre-logit features.

    from autox3d_tf.models import feature_extractor
    features = feature_extractor(X3D_S(weights="kinetics400"))
    out = features(clips)   # {"feature_map": (B, T, H', W', 432), "pre_logits": (B, 2048)}

The feature map is the output of the head's 1x1x1 convolution + BN + ReLU (before any pooling); the
pre-logit features are what the classifier reads: the pooled map through the head's projection
(``head_dense`` + ReLU) when the spec has one, else the pooled map.
"""

from __future__ import annotations

import keras

from autox3d_tf.arch import naming

__all__ = ["FEATURE_MAP", "PRE_LOGITS", "feature_extractor"]

FEATURE_MAP = "feature_map"
PRE_LOGITS = "pre_logits"

_PRE_LOGIT_LAYERS = (naming.HEAD_DENSE_RELU, naming.HEAD_DENSE_SWISH, naming.HEAD_POOL, naming.AVG_POOL, naming.MAX_POOL)


def _output_of(model: keras.Model, names) -> keras.KerasTensor | None:
    present = {layer.name: layer for layer in model.layers}
    for name in names:
        if name in present:
            return present[name].output
    return None


def feature_extractor(model: keras.Model, name: str | None = None) -> keras.Model:
    """A model sharing ``model``'s layers and weights whose outputs are a dict of its features.

    Works on a model built by `autox3d_tf.models.build_model` (any zoo model), with or without its
    top. ``"pre_logits"`` is missing for a model without top and without pooling.

    Raises:
        ValueError: ``model`` has no X3D-style head (it was not built by `build_model`).
    """
    feature_map = _output_of(model, (naming.HEAD_RELU, naming.HEAD_CONV))
    if feature_map is None:
        raise ValueError(f"Model {model.name!r} has no '{naming.HEAD_CONV}' layer: it was not built by build_model.")
    outputs = {FEATURE_MAP: feature_map}
    pre_logits = _output_of(model, _PRE_LOGIT_LAYERS)
    if pre_logits is not None:
        outputs[PRE_LOGITS] = pre_logits
    return keras.Model(model.inputs, outputs, name=name or f"{model.name}_features")
