"""Streaming inference of a causal network: chunks of frames in, outputs at every frame out, exact.

A causal network (``causal=True`` on any factory, or ``spec.causal``; see
`autox3d_tf.layers.causal`) has an output at every frame that depends only on the frames up to
it. Its streaming form computes the same outputs chunk by chunk, from one frame to a whole clip
at a time, carrying states between chunks: the last input frames of every temporal convolution
and the running sums of every cumulative average (MoViNet's stream states)::

    stream = stream_model(model)                 # the trained causal model's weights
    states = stream.init_states(batch_size=1)
    for chunk in chunks:                         # (1, n, H, W, 3), any n >= 1
        outputs, states = stream(chunk, states)  # (1, n, classes): one output per frame

The outputs equal those of ``frame_output_model(model)`` on the whole clip at every frame, and at
the clip's last frame those of ``model`` itself. ``stream.graph`` is a functional Keras model on
``{"frames": chunk, **states}`` returning ``{"outputs": ..., **new_states}`` (each new state under
its state's name), which `autox3d_tf.export` exports with named state tensors.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np

from autox3d_tf.arch import naming
from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.models.builder import _Graph, build_model, network
from autox3d_tf.models.fuse import fold_weights
from autox3d_tf.models.video_model import VideoModel, model_spec

OUTPUTS = "outputs"


def _causal_options(model: keras.Model, spec: ArchSpec | None) -> tuple[ArchSpec, dict]:
    if not isinstance(model, VideoModel):
        raise ValueError(f"Model {model.name!r} was not built by autox3d_tf.models.build_model: it cannot stream.")
    spec = model_spec(model, spec)
    if not spec.causal:
        raise ValueError(
            f"Model {model.name!r} is not causal: its output at frame t depends on later frames, so it cannot "
            "stream frame by frame. Build it with `causal=True` (and train or fine-tune it that way)."
        )
    return spec, model.rebuild_kwargs()


def frame_output_model(model: keras.Model, spec: ArchSpec | None = None) -> VideoModel:
    """``model`` (causal) with its outputs at every frame, ``(batch, frames, classes)``: the same
    network and weights, its head pooling a cumulative average over time."""
    spec, options = _causal_options(model, spec)
    options.pop("frame_outputs", None)
    frames = build_model(spec, input_shape=tuple(model.input_shape[1:]), frame_outputs=True,
                         **{**options, "name": f"{model.name}_frames"})
    fold_weights(model, frames)
    return frames


class StreamingModel:
    """A causal network run chunk by chunk (see the module docstring); built by `stream_model`.

    Attributes:
        graph: the functional model ``{"frames", **states} -> {"outputs", **new_states}``.
        spec: the architecture.
        state_shapes: each state's shape without its batch axis, by name.
        frame_shape: ``(height, width, 3)`` of the frames it takes.
    """

    def __init__(self, graph: keras.Model, spec: ArchSpec, state_shapes: Mapping[str, tuple[int, ...]],
                 frame_shape: tuple[int, int, int]):
        self.graph = graph
        self.spec = spec
        self.state_shapes = dict(state_shapes)
        self.frame_shape = tuple(frame_shape)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self.state_shapes)

    def init_states(self, batch_size: int = 1) -> dict[str, np.ndarray]:
        """The states before the first frame (zeros: the causal padding and empty running sums)."""
        return {name: np.zeros((batch_size, *shape), np.float32) for name, shape in self.state_shapes.items()}

    def __call__(self, frames: Any, states: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The outputs at each frame of ``frames`` ``(batch, n, H, W, 3)`` and the states after it."""
        missing = sorted(set(self.state_shapes) - set(states))
        if missing:
            raise ValueError(f"Streaming states are missing {missing}; start from `init_states()`.")
        frames = np.asarray(frames, np.float32)
        if frames.ndim != 5 or tuple(frames.shape[2:]) != self.frame_shape:
            raise ValueError(
                f"Streaming frames must be (batch, n, {', '.join(map(str, self.frame_shape))}), got {frames.shape}."
            )
        result = self.graph.predict_on_batch({naming.INPUTS: frames, **{k: states[k] for k in self.state_shapes}})
        outputs = np.asarray(result.pop(OUTPUTS))
        return outputs, {k: np.asarray(v) for k, v in result.items()}

    def run(self, clip: Any, chunk: int = 1, states: Mapping[str, Any] | None = None) -> np.ndarray:
        """The outputs at every frame of ``clip`` ``(batch, T, H, W, 3)``, streamed ``chunk`` frames
        at a time (from ``states``, default the start of a stream)."""
        clip = np.asarray(clip, np.float32)
        states = dict(states) if states is not None else self.init_states(clip.shape[0])
        outputs = []
        for start in range(0, clip.shape[1], chunk):
            out, states = self(clip[:, start : start + chunk], states)
            outputs.append(out)
        return np.concatenate(outputs, axis=1)


def stream_model(
    model: keras.Model,
    spec: ArchSpec | None = None,
    *,
    fold_batch_norm: bool = False,
    batch_size: int | None = None,
    chunk_frames: int | None = None,
) -> StreamingModel:
    """The streaming form of the causal ``model``, with its weights.

    Args:
        model: a causal `VideoModel` (``causal=True``) with a static frame size, with its top or
            ``pooling="avg"``.
        spec: overrides the architecture the model carries.
        fold_batch_norm: the graph with every BatchNorm folded into the convolution before it
            (for serving; the same function to float rounding).
        batch_size, chunk_frames: static batch and chunk lengths (None: any), e.g. 1 and 1 for a
            TFLite file that takes one frame at a time.
    """
    spec, options = _causal_options(model, spec)
    options.pop("frame_outputs", None)
    _, _, height, width, channels = model.input_shape
    if height is None or width is None:
        raise ValueError(f"Model {model.name!r} takes frames of any size; streaming needs a fixed height and width.")
    g = _Graph(fold_batch_norm, stream=True, batch_size=batch_size)
    frames = keras.Input(shape=(chunk_frames, height, width, channels), batch_size=batch_size, name=naming.INPUTS)
    head = {k: v for k, v in options.items() if k in ("include_top", "pooling", "classes", "classifier_activation",
                                                       "dropout_rate")}
    out = network(frames, spec, g, include_preprocessing=options.get("include_preprocessing", False), **head)
    graph = keras.Model(inputs={naming.INPUTS: frames, **g.states_in}, outputs={OUTPUTS: out, **g.states_out},
                        name=f"{model.name}_stream")
    graph.folded_batch_norms = dict(g.folded)
    graph.folded_batch_norm_parts = dict(g.fold_parts)
    fold_weights(model, graph)
    shapes = {name: tuple(int(d) for d in state.shape[1:]) for name, state in g.states_in.items()}
    return StreamingModel(graph, spec, shapes, (height, width, channels))
