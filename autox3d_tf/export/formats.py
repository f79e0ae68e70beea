"""The export modes and formats, by name (no TensorFlow import, so that a command line can check
its flags before loading anything)."""

from __future__ import annotations

__all__ = ["QUANTIZE_MODES", "FORMATS"]

# Quantised TFLite files (`autox3d_tf.export.tflite.export_tflite(quantize=...)`).
QUANTIZE_MODES = ("float16", "dynamic", "int8")
# Other runtimes' files (`autox3d_tf.export.runtimes`).
FORMATS = ("onnx", "openvino")
