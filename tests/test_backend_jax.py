"""The model code on the JAX backend: an `X3D_XS` forward pass equals TensorFlow's on the same weights.

Runs in the ``KERAS_BACKEND=jax`` step of ``make test`` and is skipped on any other backend. The
TensorFlow side runs in a subprocess (``KERAS_BACKEND=tensorflow``): it builds the model, gives
it random BatchNorm parameters and statistics and a random classifier (so every layer matters and
the logits are of order 1), and saves the weights (``.weights.h5``), the input clips and its
outputs in inference mode. This process builds the same model under JAX, loads those weights and
must give the same outputs within 1e-5, at batch 1 and 2 (`DepthwiseConv3D`'s "auto" takes
"slices" at one clip and "shift_conv" at more).
"""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs in the KERAS_BACKEND=jax step of `make test`"
)

INPUT_SHAPE = (4, 64, 64, 3)  # X3D-XS's 4 frames at a smaller crop
CLASSES = 7
ATOL = 1e-5

_TENSORFLOW_SIDE = """
import sys

import keras
import numpy as np

from autox3d_tf.zoo import X3D_XS

out = sys.argv[1]
assert keras.backend.backend() == "tensorflow", keras.backend.backend()
keras.utils.set_random_seed(0)
model = X3D_XS(weights=None, input_shape={shape}, classes={classes}, classifier_activation=None)
rng = np.random.default_rng(0)
for layer in model.layers:  # the builder's He-normal kernels; BatchNorm and classifier randomised
    for w in layer.weights:
        name = w.path.split("/")[-1]
        if name == "gamma":  # bn_c's starts at 0, which would cut every residual branch
            value = rng.uniform(0.5, 1.0, w.shape) * (0.3 if layer.name.endswith("bn_c") else 1.0)
        elif name == "moving_variance":
            value = rng.uniform(0.8, 1.2, w.shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0.0, 0.1, w.shape)
        elif layer.name == "predictions":  # logits of order 1
            value = rng.normal(0.0, 3.0 / np.sqrt(w.shape[0]), w.shape)
        else:
            continue
        w.assign(value.astype("float32"))
model.save_weights(out + "/x3d_xs.weights.h5")
clips = rng.standard_normal((2, *{shape})).astype("float32")
np.save(out + "/clips.npy", clips)
np.save(out + "/batch2.npy", keras.ops.convert_to_numpy(model(clips, training=False)))
np.save(out + "/batch1.npy", keras.ops.convert_to_numpy(model(clips[:1], training=False)))
"""


def test_zoo_imports_without_tensorflow():
    """The layers, the builder and the zoo (with its weights module) import under JAX alone."""
    code = (
        "import sys, keras; import autox3d_tf.layers, autox3d_tf.models, autox3d_tf.zoo; "
        "assert keras.backend.backend() == 'jax'; "
        "print(sorted(m for m in ('tensorflow', 'torch') if m in sys.modules))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_x3d_xs_forward_equals_tensorflow(tmp_path):
    from autox3d_tf.layers import DepthwiseConv3D
    from autox3d_tf.zoo import X3D_XS

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = _TENSORFLOW_SIDE.format(shape=INPUT_SHAPE, classes=CLASSES)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]

    model = X3D_XS(weights=None, input_shape=INPUT_SHAPE, classes=CLASSES, classifier_activation=None)
    assert any(isinstance(layer, DepthwiseConv3D) for layer in model.layers)
    model.load_weights(tmp_path / "x3d_xs.weights.h5")
    clips = np.load(tmp_path / "clips.npy")
    for batch in (2, 1):
        want = np.load(tmp_path / f"batch{batch}.npy")
        got = model.predict(clips[:batch], batch_size=batch, verbose=0)
        assert got.shape == (batch, CLASSES)
        assert np.abs(want).max() > 0.1  # outputs of a size that 1e-5 means something
        diff = float(np.abs(got - want).max())
        print(f"X3D_XS batch {batch}: max |JAX - TensorFlow| = {diff:.3g} (outputs up to {np.abs(want).max():.3g})")
        assert diff < ATOL, diff
