"""The shared factory behind every named zoo model (keras.applications style)."""

from __future__ import annotations

import os
from typing import Callable, Sequence, Union

import keras

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.models.builder import build_model
from autox3d_tf.weights import load_pretrained, validate_weights_argument

WeightsArg = Union[str, os.PathLike, None]


def build_zoo_model(
    model_name: str,
    spec: ArchSpec,
    *,
    weights: WeightsArg = None,
    include_top: bool = True,
    input_shape: Sequence[int | None] | None = None,
    input_tensor=None,
    classes: int = 400,
    pooling: str | None = None,
    classifier_activation: str | None = "softmax",
    dropout_rate: float = 0.5,
    name: str | None = None,
    include_preprocessing: bool = False,
    causal: bool = False,
) -> keras.Model:
    """Builds ``spec`` and loads ``weights`` (None, a registered dataset name, a file or a run folder).

    With weights, ``classes`` may differ from theirs: every tensor but the classifier is loaded and
    the classifier is freshly initialised (timm's ``num_classes``). What was loaded is in the model's
    ``pretrained_report`` (`autox3d_tf.weights.PretrainedReport`).

    ``causal=True`` builds the causal form of ``spec`` (`ArchSpec.causal`), which streams frame by
    frame (`autox3d_tf.models.streaming`). Weights of a non-causal network load into it (same
    tensors) with a `UserWarning` that says what that costs (`autox3d_tf.weights.loading.NON_CAUSAL_WEIGHTS_WARNING`).
    """
    validate_weights_argument(model_name, weights)
    if not isinstance(causal, bool):
        raise ValueError(f"`causal` must be True or False, got {causal!r}.")
    if causal and not spec.causal:
        spec = spec.replace(causal=True)
    model = build_model(
        spec,
        include_top=include_top,
        input_shape=input_shape,
        input_tensor=input_tensor,
        classes=classes,
        pooling=pooling,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
        name=name,
        include_preprocessing=include_preprocessing,
    )
    model.pretrained_report = None if weights is None else load_pretrained(model, model_name, weights)
    return model


def make_factory(
    model_name: str, spec_fn: Callable[[], ArchSpec], doc: str, default_dropout: float = 0.5
) -> Callable[..., keras.Model]:
    """A named keras.applications-style factory for the architecture ``spec_fn()``
    (``default_dropout``: the factory's default ``dropout_rate``, X3D's 0.5 or E3D's 0.2)."""

    def factory(
        *,
        weights: WeightsArg = None,
        include_top: bool = True,
        input_shape=None,
        input_tensor=None,
        classes: int = 400,
        pooling: str | None = None,
        classifier_activation: str | None = "softmax",
        dropout_rate: float = default_dropout,
        name: str | None = None,
        include_preprocessing: bool = False,
        causal: bool = False,
    ) -> keras.Model:
        return build_zoo_model(
            model_name,
            spec_fn(),
            weights=weights,
            include_top=include_top,
            input_shape=input_shape,
            input_tensor=input_tensor,
            classes=classes,
            pooling=pooling,
            classifier_activation=classifier_activation,
            dropout_rate=dropout_rate,
            name=name,
            include_preprocessing=include_preprocessing,
            causal=causal,
        )

    factory.__name__ = factory.__qualname__ = model_name
    factory.__doc__ = doc
    return factory
