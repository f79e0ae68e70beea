"""Export for serving: a TF Serving SavedModel (uint8 frames in, probabilities and top-k out, no
XLA op), TFLite for the small models (float, float16, dynamic-range, int8), ONNX and OpenVINO, and a local stand-in for TF Serving's REST / gRPC APIs.

    from autox3d_tf.export import export_saved_model, export_tflite, export_run
    export_run("runs/xs", "export/xs")          # saved_model/1, model.tflite, labels.txt, export.json
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    "SIGNATURE": "saved_model",
    "inference_model": "saved_model",
    "preprocess_frames": "saved_model",
    "make_serving_fn": "saved_model",
    "export_saved_model": "saved_model",
    "graph_ops": "saved_model",
    "find_xla_ops": "saved_model",
    "TFLITE_MODELS": "tflite",
    "export_tflite": "tflite",
    "run_tflite": "tflite",
    "QUANTIZE_MODES": "formats",
    "FORMATS": "formats",
    "undelegated_ops": "tflite",
    "tflite_ops": "tflite",
    "compare_outputs": "tflite",
    "calibration_clips": "tflite",
    "synthetic_clips": "tflite",
    "export_onnx": "runtimes",
    "export_openvino": "runtimes",
    "run_onnx": "runtimes",
    "run_openvino": "runtimes",
    "MissingRuntimeError": "runtimes",
    "export_stream_saved_model": "streaming",
    "export_stream_tflite": "streaming",
    "streaming_form": "streaming",
    "TFLiteStream": "streaming",
    "export_run": "runs",
    "export_model": "runs",
    "Predictor": "serving",
    "rest_predict": "serving",
    "RestServer": "serving",
    "grpc_predict": "serving",
    "start_grpc_server": "serving",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"autox3d_tf.export.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'autox3d_tf.export' has no attribute {name!r}")
