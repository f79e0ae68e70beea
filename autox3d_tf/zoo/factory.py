"""The shared factory behind every named zoo model (keras.applications style)."""

from __future__ import annotations

from typing import Callable, Sequence

import keras

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.models.builder import build_model
from autox3d_tf.weights import load_pretrained, validate_weights_argument


def build_zoo_model(
    model_name: str,
    spec: ArchSpec,
    *,
    weights: str | None = None,
    include_top: bool = True,
    input_shape: Sequence[int | None] | None = None,
    input_tensor=None,
    classes: int = 400,
    pooling: str | None = None,
    classifier_activation: str | None = "softmax",
    dropout_rate: float = 0.5,
    name: str | None = None,
    include_preprocessing: bool = False,
) -> keras.Model:
    """Builds ``spec`` and loads ``weights`` (None, a registered dataset name, or a file path)."""
    if weights is not None and not isinstance(weights, str):
        raise ValueError(f"`weights` must be None, a dataset name such as 'kinetics400', or a path; got {weights!r}.")
    if weights is not None:
        validate_weights_argument(model_name, weights, include_top=include_top, classes=classes)
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
    if weights is not None:
        load_pretrained(model, model_name, weights, include_top=include_top, classes=classes)
    return model


def make_factory(model_name: str, spec_fn: Callable[[], ArchSpec], doc: str) -> Callable[..., keras.Model]:
    """A named keras.applications-style factory for the architecture ``spec_fn()``."""

    def factory(
        *,
        weights: str | None = None,
        include_top: bool = True,
        input_shape=None,
        input_tensor=None,
        classes: int = 400,
        pooling: str | None = None,
        classifier_activation: str | None = "softmax",
        dropout_rate: float = 0.5,
        name: str | None = None,
        include_preprocessing: bool = False,
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
        )

    factory.__name__ = factory.__qualname__ = model_name
    factory.__doc__ = doc
    return factory
