"""Gradients of a Keras layer on whichever Keras backend runs the tests (TensorFlow or JAX)."""

from __future__ import annotations

import keras
import numpy as np
import pytest


def linear_functional_grads(layer, x: np.ndarray, g: np.ndarray):
    """For ``loss = sum(g * layer(x))``: returns ``(y, dloss/dx, [dloss/dw for w in
    layer.trainable_weights])`` as NumPy arrays. ``layer`` must be built."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            loss = tf.reduce_sum(y * tf.constant(g, y.dtype))
        grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]

        def loss_fn(inputs, weights):
            y, _ = layer.stateless_call(weights, frozen, inputs)
            return jnp.sum(y * jnp.asarray(g, y.dtype)), y

        grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))  # one compilation, not one per op
        (_, y), (gx, gw) = grad_fn(jnp.asarray(x), trainable)
        grads = [gx, *gw]
    else:
        pytest.skip(f"no gradient helper for the {backend!r} backend")
    arrays = [np.asarray(keras.ops.convert_to_numpy(v)) for v in grads]
    return np.asarray(keras.ops.convert_to_numpy(y)), arrays[0], arrays[1:]
