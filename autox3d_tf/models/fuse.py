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


def _build_kwargs(model: keras.Model) -> dict:
    names = {layer.name for layer in model.layers}
    kwargs: dict = {"input_shape": tuple(model.input_shape[1:]), "name": f"{model.name}_folded"}
    if "predictions" in names:
        head = model.get_layer("predictions")
        activation = keras.activations.serialize(head.activation)
        activation = activation if isinstance(activation, str) else getattr(head.activation, "__name__", None)
        kwargs.update(include_top=True, classes=head.units, classifier_activation=None if activation == "linear" else activation)
    else:
        pooling = "avg" if "avg_pool" in names else "max" if "max_pool" in names else None
        kwargs.update(include_top=False, pooling=pooling)
    return kwargs


def fold_weights(source: keras.Model, folded: keras.Model) -> None:
    """Copies ``source``'s weights into the folded graph ``folded``, folding each BatchNorm."""
    pairs: dict[str, str] = getattr(folded, "folded_batch_norms", {})
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
        kernel = np.asarray(src.kernel, np.float64)
        if isinstance(src, DepthwiseConv3D):
            kernel = kernel * scale[:, None]
        else:
            kernel = kernel * scale
        bias = beta - mean * scale
        if getattr(src, "bias", None) is not None:
            bias = bias + np.asarray(src.bias, np.float64) * scale
        layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])


def fuse_for_inference(model: keras.Model, spec: ArchSpec | None = None) -> keras.Model:
    """The inference graph of ``model`` (built from ``spec``) with its BatchNorms folded.

    ``spec`` defaults to the zoo spec named like the model (e.g. "x3d_s").
    """
    if spec is None:
        from autox3d_tf.zoo import get_spec

        spec = get_spec(model.name)
    folded = build_model(spec, fold_batch_norm=True, **_build_kwargs(model))
    fold_weights(model, folded)
    return folded
