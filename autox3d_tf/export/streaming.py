"""Export of a causal model's streaming form: SavedModel signatures with named states, and a TFLite
file that takes one frame at a time.

SavedModel (``export_stream_saved_model``), beside the usual full-clip ``serving_default``:

- ``init_states``: ``batch_size`` (int32 scalar) -> every state, zeros, by name;
- ``stream``: ``frames`` uint8 ``[batch, n, crop, crop, 3]`` (already sampled and cropped, any
  ``n >= 1``) and every state by name -> ``probabilities`` ``[batch, n, classes]`` (one row per
  frame: what the model says after that frame) and ``logits``, and each new state under its
  state's name. Feed the new states to the next call.

TFLite (``export_stream_tflite``): batch 1, one frame: ``frames`` float32 ``[1, 1, crop, crop,
3]`` (pixels in [0, 255]; float so that the whole graph, its normalisation included, runs on
XNNPACK) and the states in, ``probabilities`` / ``logits`` ``[1, classes]`` and the new states out.
`TFLiteStream` drives it: it keeps the states, so a caller only feeds frames.

Both are built from `autox3d_tf.models.streaming.stream_model` with BatchNorm folded; their outputs
equal the Keras causal model's at every frame (tests/test_export_stream.py).
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.export.saved_model import SIGNATURE, _inference_copy, make_serving_fn
from autox3d_tf.layers import depthwise_implementation
from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels
from autox3d_tf.models.streaming import OUTPUTS, StreamingModel, stream_model

__all__ = ["INIT_SIGNATURE", "STREAM_SIGNATURE", "TFLiteStream", "export_stream_saved_model",
           "export_stream_tflite", "streaming_form"]

INIT_SIGNATURE = "init_states"
STREAM_SIGNATURE = "stream"


def streaming_form(model: keras.Model, spec: ArchSpec | None = None, *, crop: int | None = None, fuse: bool = True,
                   batch_size: int | None = None, chunk_frames: int | None = None) -> StreamingModel:
    """The folded (``fuse``) streaming form of the causal ``model`` at ``crop`` x ``crop`` frames
    (default the model's own static size), with logits out."""
    _, t, h, _, _ = model.input_shape
    plain = _inference_copy(model, spec, t or 1, crop or h, False, None)
    return stream_model(plain, fold_batch_norm=fuse, batch_size=batch_size, chunk_frames=chunk_frames)


def _state_specs(stream: StreamingModel, batch: int | None) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([batch, *shape], tf.float32, name=name) for name, shape in stream.state_shapes.items()]


def export_stream_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    *,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    top_k: int = 5,
    fuse: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    verbose: bool = False,
) -> str:
    """Writes the causal ``model`` as a SavedModel with ``serving_default`` (a whole clip, as
    `autox3d_tf.export.export_saved_model`), ``init_states`` and ``stream`` (module docstring).
    Returns ``export_dir``."""
    stream = streaming_form(model, spec, crop=crop, fuse=fuse)
    _, t, h, _, _ = model.input_shape
    full = _inference_copy(model, spec, frames or t, crop or h, fuse, "softmax")
    serve = make_serving_fn(full, class_names or [], top_k, mean, std)
    names = list(stream.state_shapes)
    height, width, _ = stream.frame_shape

    def init_states(batch_size):
        return {name: tf.zeros(tf.concat([[batch_size], shape], 0)) for name, shape in stream.state_shapes.items()}

    def step(frames, *states):
        x = normalize_pixels(tf.cast(frames, tf.float32), mean, std)
        out = stream.graph({"frames": x, **dict(zip(names, states))}, training=False)
        logits = out.pop(OUTPUTS)
        return {"probabilities": tf.nn.softmax(logits, axis=-1), "logits": logits, **out}

    archive = keras.export.ExportArchive()
    archive.track(full)
    archive.track(stream.graph)
    archive.add_endpoint(name=SIGNATURE, fn=serve,
                         input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")])
    archive.add_endpoint(name=INIT_SIGNATURE, fn=init_states,
                         input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])
    archive.add_endpoint(name=STREAM_SIGNATURE, fn=step,
                         input_signature=[tf.TensorSpec([None, None, height, width, 3], tf.uint8, name="frames"),
                                          *_state_specs(stream, None)])
    export_dir = os.fspath(export_dir)
    archive.write_out(export_dir, verbose=verbose)
    return export_dir


def export_stream_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    spec: ArchSpec | None = None,
    crop: int | None = None,
    fuse: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> str:
    """Converts the causal ``model``'s streaming form (batch 1, one frame per call) to a TFLite
    file at ``path`` (module docstring); only builtin ops. Returns ``path``."""
    stream = streaming_form(model, spec, crop=crop, fuse=fuse, batch_size=1, chunk_frames=1)
    names = list(stream.state_shapes)
    height, width, _ = stream.frame_shape

    def step(frames, *states):
        x = normalize_pixels(frames, mean, std)
        out = stream.graph({"frames": x, **dict(zip(names, states))}, training=False)
        logits = out.pop(OUTPUTS)
        logits = tf.reshape(logits, [1, logits.shape[-1]])  # one frame; a reshape, which XNNPACK takes
        return {"probabilities": tf.nn.softmax(logits, axis=-1), "logits": logits, **out}

    with tempfile.TemporaryDirectory() as tmp, depthwise_implementation(stream.graph, "shift_conv"):
        archive = keras.export.ExportArchive()
        archive.track(stream.graph)
        archive.add_endpoint(name=SIGNATURE, fn=step,
                             input_signature=[tf.TensorSpec([1, 1, height, width, 3], tf.float32, name="frames"),
                                              *_state_specs(stream, 1)])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


class TFLiteStream:
    """Drives a file of `export_stream_tflite`: keeps the states; ``step(frame)`` feeds one frame
    (``[H, W, 3]`` pixels in [0, 255]) and returns the probabilities after it; ``reset()`` starts
    a new stream."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        self.interpreter = tf.lite.Interpreter(model_path=os.fspath(path), num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self.runner.get_input_details()
        self.frame_shape = tuple(int(d) for d in details["frames"]["shape"][2:])
        self.state_shapes = {k: tuple(int(d) for d in v["shape"]) for k, v in details.items() if k != "frames"}
        self.reset()

    def reset(self) -> None:
        """Zero states: the next frame is a stream's first."""
        self.states = {k: np.zeros(s, np.float32) for k, s in self.state_shapes.items()}
        self.frames_seen = 0

    def step(self, frame: np.ndarray, logits: bool = False) -> np.ndarray:
        """The ``[classes]`` probabilities (or logits) after ``frame``."""
        frame = np.asarray(frame, np.float32)
        if frame.shape != self.frame_shape:
            raise ValueError(f"TFLiteStream takes frames of shape {self.frame_shape}, got {frame.shape}")
        out = self.runner(frames=frame[None, None], **self.states)
        self.states = {k: out[k] for k in self.state_shapes}
        self.frames_seen += 1
        return np.asarray(out["logits" if logits else "probabilities"][0])
