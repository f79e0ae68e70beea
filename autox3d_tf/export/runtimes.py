"""ONNX (tf2onnx, run by ONNX Runtime) and OpenVINO exports of a model's inference graph.

Both files take what the TFLite export takes, with a free batch: uint8 ``frames``
``[batch, T, crop, crop, 3]`` already sampled and cropped, normalised inside; outputs
``probabilities`` ``[batch, classes]`` and, when the network has a softmax classifier, ``logits``.
They are traced with every `DepthwiseConv3D` in its "shift_conv" implementation: OpenVINO's
TensorFlow front end refuses the ``DepthwiseConv2dNative`` with explicit padding of the "slices"
one, and "shift_conv" has only "same" / "valid" convolutions (and no gather, so a free batch).

    from autox3d_tf.export.runtimes import export_onnx, export_openvino, run_onnx, run_openvino
    export_onnx(model, "out/model.onnx");  run_onnx("out/model.onnx", frames)["probabilities"]

The converters are optional (``pip install autox3d_tf[runtimes]``: tf2onnx, onnxruntime,
openvino) and imported only here, when used.
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.export.formats import FORMATS
from autox3d_tf.export.saved_model import inference_model
from autox3d_tf.layers import depthwise_implementation
from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels

__all__ = ["FORMATS", "MissingRuntimeError", "export_onnx", "export_openvino", "run_onnx", "run_openvino",
           "onnx_session", "openvino_model"]

_PACKAGES = {"tf2onnx": "tf2onnx", "onnxruntime": "onnxruntime", "openvino": "openvino", "onnx": "onnx"}


class MissingRuntimeError(ImportError, ValueError):
    """An optional converter or runtime is not installed (a ValueError too, so that the command
    line prints it in one line)."""


def _require(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise MissingRuntimeError(
            f"{module} is not installed ({err}); install it with `pip install {_PACKAGES.get(module, module)}` "
            "or `pip install autox3d_tf[runtimes]`") from None


def _serving(model: keras.Model, spec, frames, crop, fuse, mean, std):
    infer = inference_model(model, spec, frames, crop, fuse, logits=True)
    _, t, c, _, _ = infer.input_shape
    has_logits = getattr(infer, "_autox3d_logits", False)

    def serve(frames):
        x = normalize_pixels(tf.cast(frames, tf.float32), mean, std)
        out = tf.cast(infer(x, training=False), tf.float32)
        result = {"probabilities": tf.nn.softmax(out, axis=-1) if has_logits else out}
        if has_logits:
            result["logits"] = out
        return result

    return infer, serve, tf.TensorSpec([None, t, c, c, 3], tf.uint8, name="frames")


def export_onnx(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    fuse: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    opset: int = 17,
) -> str:
    """Writes ``model`` as an ONNX file at ``path`` (tf2onnx; see the module docstring). Returns ``path``."""
    tf2onnx = _require("tf2onnx")
    _require("onnx")
    infer, serve, signature = _serving(model, spec, frames, crop, fuse, mean, std)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with depthwise_implementation(infer, "shift_conv"):
        function = tf.function(serve, input_signature=[signature])
        function.get_concrete_function()
        tf2onnx.convert.from_function(function, input_signature=[signature], opset=opset, output_path=path)
    return path


def export_openvino(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    fuse: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> str:
    """Writes ``model`` as an OpenVINO IR (``path`` = ``.../model.xml``, and its ``.bin``), float32
    weights, converted from a SavedModel of the "shift_conv" graph. Returns ``path``."""
    ov = _require("openvino")
    infer, serve, signature = _serving(model, spec, frames, crop, fuse, mean, std)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, depthwise_implementation(infer, "shift_conv"):
        archive = keras.export.ExportArchive()
        archive.track(infer)
        archive.add_endpoint(name="serving_default", fn=serve, input_signature=[signature])
        archive.write_out(tmp, verbose=False)
        converted = ov.convert_model(tmp)
        ov.save_model(converted, path, compress_to_fp16=False)
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session for an :func:`export_onnx` file (``threads`` intra-op threads)."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    # No spin-waiting between calls: on a shared CPU (or next to another runtime) idle threads that
    # spin take the cores from whatever runs next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path_or_session, frames: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
    """Runs an ONNX export (a path, or an :func:`onnx_session`) on uint8 ``frames``; returns its outputs."""
    session = path_or_session if hasattr(path_or_session, "run") else onnx_session(path_or_session, threads)
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {session.get_inputs()[0].name: np.asarray(frames, np.uint8)})
    return {_output_key(n): np.asarray(v) for n, v in zip(names, values)}


def openvino_model(path: str | os.PathLike, threads: int | None = None, batch: int | None = None):
    """An OpenVINO model compiled for the CPU (``threads`` inference threads; ``batch`` fixes the
    batch size, which lets OpenVINO plan for it)."""
    ov = _require("openvino")
    core = ov.Core()
    model = core.read_model(os.fspath(path))
    if batch:
        shape = model.input(0).get_partial_shape()
        shape[0] = int(batch)
        model.reshape({model.input(0).any_name: shape})
    # f32: on CPUs with bfloat16 units OpenVINO would otherwise compute in bfloat16 (errors ~1e-3).
    # No pinning of threads to cores: on a shared machine a pinned thread waits for its busy core
    # (X3D-XS, one clip, 2 threads here: 39.5 ms pinned, 24.8 ms not).
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(model, "CPU", config)


def run_openvino(path_or_model, frames: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
    """Runs an OpenVINO export (a path, or an :func:`openvino_model`) on uint8 ``frames``."""
    compiled = path_or_model if hasattr(path_or_model, "outputs") else openvino_model(path_or_model, threads)
    result = compiled(np.asarray(frames, np.uint8))
    return {_output_key(out.any_name): np.asarray(result[out]) for out in compiled.outputs}


def _output_key(name: str) -> str:
    for key in ("probabilities", "logits"):
        if key in name:
            return key
    return name
