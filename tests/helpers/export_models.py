"""Small zoo models with trained-like weights for the export tests."""

from __future__ import annotations

import numpy as np


def exportable_x3d_xs(shape=(4, 32, 32, 3), classes: int = 10, seed: int = 0):
    """X3D-XS at ``shape`` with random BatchNorm statistics and a wider classifier.

    X3D zero-initialises the last BatchNorm of each block, so at initialisation every residual
    branch is 0 (no trained model has that, and int8 calibration sees it as a 1e-8 range); the
    classifier's weights are scaled so that logits differ visibly between clips."""
    import keras

    from autox3d_tf.zoo import X3D_XS

    keras.utils.set_random_seed(seed)
    model = X3D_XS(input_shape=shape, classes=classes)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 2.0, n)])
    w = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([w[0] * 30, w[1]])
    return model
