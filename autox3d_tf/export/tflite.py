"""TFLite export (``tf.lite.TFLiteConverter.from_saved_model``) for the small models (X3D-XS, S).

The TFLite model has one ``serving_default`` signature with a fixed input: uint8 ``frames``
``[1, T, crop, crop, 3]`` already sampled and cropped (resize on the device's side), normalised
inside; outputs ``probabilities`` ``[1, classes]`` and ``top_k_indices`` / ``top_k_scores``. Only
TFLite builtin ops are allowed (no Flex / Select TF ops), so the stock interpreter runs it.

The graph is traced with every `DepthwiseConv3D` in its "shift_conv" implementation: TFLite
copies each slice and pad of the default "slices" one, which "shift_conv" does not need
(`python benchmarks/bench_x3d.py --tflite` times the export; figures in the README).

TensorFlow-only (the TFLite converter and interpreter).
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.export.saved_model import SIGNATURE, inference_model
from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels
from autox3d_tf.layers import depthwise_implementation

__all__ = ["TFLITE_MODELS", "export_tflite", "run_tflite"]

TFLITE_MODELS = ("X3D_XS", "X3D_S")


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    top_k: int = 5,
    fuse: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> str:
    """Converts ``model`` to a float32 TFLite flatbuffer at ``path`` (see the module docstring).
    Returns ``path``."""
    infer = inference_model(model, spec, frames, crop, fuse)
    _, t, c, _, _ = infer.input_shape
    classes = infer.output_shape[-1]
    k = int(min(top_k, classes))

    def serve(frames):
        x = normalize_pixels(tf.cast(frames, tf.float32), mean, std)
        probabilities = tf.cast(infer(x, training=False), tf.float32)
        scores, indices = tf.math.top_k(probabilities, k=k)
        return {"probabilities": probabilities, "top_k_indices": indices, "top_k_scores": scores}

    with tempfile.TemporaryDirectory() as tmp, depthwise_implementation(infer, "shift_conv"):
        archive = keras.export.ExportArchive()
        archive.track(infer)
        archive.add_endpoint(name=SIGNATURE, fn=serve,
                             input_signature=[tf.TensorSpec([1, t, c, c, 3], tf.uint8, name="frames")])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def run_tflite(path: str | os.PathLike, frames: np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
    """Runs a TFLite export on uint8 ``frames [1, T, crop, crop, 3]``; returns its outputs."""
    interpreter = tf.lite.Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner(SIGNATURE)
    return {k: np.asarray(v) for k, v in runner(frames=np.asarray(frames, np.uint8)).items()}
