"""An inference graph with every BatchNorm folded into the convolution before it.

``fuse_for_inference(model)`` rebuilds a zoo model with ``fold_batch_norm=True`` (convolutions
with biases, 1x1x1 convolutions with their ReLU inside, which TensorFlow runs as one fused
kernel) and folds the weights:

    scale = gamma / sqrt(moving_variance + epsilon)
    kernel' = kernel * scale (per output channel),  bias' = beta - moving_mean * scale

The result computes the same function as the model in inference mode (to float rounding) and is
meant for serving and benchmarks; train the original model.
"""

from __future__ import annotations

import keras
import numpy as np

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.layers import DepthwiseConv3D
from autox3d_tf.models.builder import build_model
from autox3d_tf.models.video_model import VideoModel, model_spec


def _build_kwargs(model: keras.Model) -> dict:
    if not isinstance(model, VideoModel):
        raise ValueError(f"Model {model.name!r} was not built by autox3d_tf.models.build_model: nothing to fold.")
    return {**model.rebuild_kwargs(), "input_shape": tuple(model.input_shape[1:]), "name": f"{model.name}_folded"}


def fold_weights(source: keras.Model, folded: keras.Model) -> None:
    """Copies ``source``'s weights into the folded graph ``folded``, folding each BatchNorm."""
    pairs: dict[str, str] = getattr(folded, "folded_batch_norms", {})
    # A convolution that takes only the scale or only the bias of its BatchNorm (one of the two
    # convolutions of a pseudo-3D block, which share one: see `autox3d_tf.models.pseudo3d.FOLD_PARTS`).
    parts_of: dict[str, tuple[str, ...]] = getattr(folded, "folded_batch_norm_parts", {})
    for layer in folded.layers:
        if not layer.weights:
            continue
        src = source.get_layer(layer.name)
        bn_name = pairs.get(layer.name)
        if bn_name is None:
            layer.set_weights(src.get_weights())
            continue
        bn = source.get_layer(bn_name)
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
        scale = gamma / np.sqrt(var + bn.epsilon)
        parts = parts_of.get(layer.name, ("scale", "bias"))
        kernel = np.asarray(src.kernel, np.float64)
        if "scale" in parts:
            kernel = kernel * (scale[:, None] if isinstance(src, DepthwiseConv3D) else scale)
        weights = [kernel.astype(np.float32)]
        if getattr(layer, "bias", None) is not None:
            bias = beta - mean * scale if "bias" in parts else np.zeros_like(beta)
            if getattr(src, "bias", None) is not None:
                bias = bias + np.asarray(src.bias, np.float64) * (scale if "scale" in parts else 1.0)
            weights.append(bias.astype(np.float32))
        layer.set_weights(weights)


def fuse_for_inference(model: keras.Model, spec: ArchSpec | None = None) -> keras.Model:
    """The inference graph of ``model`` with its BatchNorms folded.

    ``model`` is a `VideoModel` from `build_model` (any zoo factory); its ``arch_spec`` and
    ``build_options`` say what to rebuild. ``spec`` overrides the architecture it carries.
    """
    spec = model_spec(model, spec)
    folded = build_model(spec, fold_batch_norm=True, **_build_kwargs(model))
    fold_weights(model, folded)
    return folded
