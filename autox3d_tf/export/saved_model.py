"""SavedModel export for TF Serving (docs/ARCHITECTURE.md section 10).

    from autox3d_tf.export import export_saved_model
    export_saved_model(model, "export/saved_model/1", class_names=names)

The exported ``serving_default`` signature takes uint8 RGB frames ``[batch, frames, height, width,
3]`` named ``frames`` (any number of frames, any size) and does the model's preprocessing inside:

1. time: ``T`` frames sampled uniformly from the given ones (the clip is used as is when it has
   ``T`` frames; a shorter one repeats frames);
2. space: short side resized to the crop (bilinear, antialiased), centre crop (as one evaluation
   view of :func:`autox3d_tf.data.video_eval_dataset`; a clip already at the crop size is untouched);
3. ``(x / 255 - 0.45) / 0.225`` (`autox3d_tf.layers.normalization.normalize_pixels`).

A consensus model (`autox3d_tf.models.segment_consensus`, K temporal segments of ``T`` frames)
samples its input as the evaluation pipeline's single view does: the given frames split into K
equal parts, from each the snippet of ``T`` frames ``rate`` apart centred in it
(`autox3d_tf.data.tf_sampling.snippet_eval_indices_tf`, looping when short); ``K * T`` frames are
used as they are. Give ``rate`` (a run's export takes the run's). A run trained on whole-video clips
(sampling rate 0) takes the whole video and picks the evaluation pipeline's frames, the centre of
each of ``T`` equal parts (`autox3d_tf.data.decode.whole_video_indices`): send every frame.

It returns ``probabilities`` ``[batch, classes]``, ``top_k_indices`` (int32), ``top_k_scores``
and ``top_k_labels`` (strings) ``[batch, k]``. The graph is the BatchNorm-folded inference graph
(:func:`autox3d_tf.models.fuse_for_inference`), float32, with no XLA op (see :func:`find_xla_ops`).

TensorFlow-only (a TensorFlow SavedModel).
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.data.tf_sampling import snippet_eval_indices_tf
from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels
from autox3d_tf.models.networks import build_network, can_fuse
from autox3d_tf.models.consensus import consensus_parts, segment_consensus
from autox3d_tf.models.fuse import fuse_for_inference
from autox3d_tf.models.networks import NetworkSpec
from autox3d_tf.models.video_model import model_spec

__all__ = [
    "SIGNATURE",
    "inference_model",
    "preprocess_frames",
    "make_serving_fn",
    "export_saved_model",
    "graph_ops",
    "find_xla_ops",
]

SIGNATURE = "serving_default"
# Ops that only XLA can run (tf2xla / jit_compile graphs); none may appear in an export.
XLA_OP_PREFIXES = ("Xla", "_Xla")
XLA_ATTRS = ("_XlaMustCompile", "_XlaCompile", "_xla_compile_id")


def _head(model: keras.Model) -> tuple[int, bool]:
    """(classes, outputs_probabilities) of a zoo-structured model, or of a consensus model of one
    (probabilities: a softmax after the consensus, or the average of the network's)."""
    parts = consensus_parts(model)
    if parts is not None:
        classes, network_softmax = _head(parts.network)
        return classes, parts.activation == "softmax" or (
            parts.activation is None and network_softmax and parts.consensus == "avg")
    layer = model.get_layer("predictions")
    activation = getattr(layer.activation, "__name__", str(layer.activation))
    return int(layer.units), activation == "softmax"


def inference_model(
    model: keras.Model,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    fuse: bool = True,
    logits: bool = False,
) -> keras.Model:
    """A float32 inference copy of ``model`` with a fixed ``(frames, crop, crop, 3)`` input and a
    softmax output; BatchNorm folded into the convolutions when ``fuse``.

    ``spec`` defaults to the architecture the model carries (`VideoModel.arch_spec`); ``frames`` /
    ``crop`` to the model's input shape (required when that is dynamic). The copy takes normalised
    clips even when ``model`` was built with ``include_preprocessing``.

    A consensus model gives a consensus copy (the same segments and reduction) of its network's
    inference copy; ``frames`` is then per snippet, and logits get a softmax after the consensus.

    ``logits=True`` (a plain network only; a consensus copy keeps its probabilities) leaves the
    softmax out: the copy returns logits, and carries ``_autox3d_logits = True``."""
    parts = consensus_parts(model)
    if parts is None:
        copy = _inference_copy(model, spec, frames, crop, fuse, None if logits else "softmax")
        copy._autox3d_logits = bool(logits)
        return copy
    _, network_softmax = _head(parts.network)
    # The network's copy keeps its logits when it has them: the consensus reduces logits.
    plain = _inference_copy(parts.network, spec, frames, crop, fuse, "softmax" if network_softmax else None)
    activation = parts.activation or (None if network_softmax else "softmax")
    return segment_consensus(plain, parts.segments, parts.consensus, activation=activation, name=model.name)


def _inference_copy(model: keras.Model, spec: NetworkSpec | None, frames: int | None, crop: int | None, fuse: bool,
                    classifier_activation: str | None) -> keras.Model:
    spec = model_spec(model, spec)
    _, t, h, w, _ = model.input_shape
    frames = int(frames or t or 0)
    crop = int(crop or (h if h == w else 0) or 0)
    if not frames or not crop:
        raise ValueError(f"the model's input shape {model.input_shape} is dynamic: give frames and crop")
    classes, _ = _head(model)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")
    try:
        plain = build_network(spec, input_shape=(frames, crop, crop, 3), classes=classes,
                              classifier_activation=classifier_activation, name=spec.name)
        plain.set_weights([np.asarray(w, np.float32) for w in model.get_weights()])
        return fuse_for_inference(plain, spec) if fuse and can_fuse(spec) else plain
    finally:
        keras.mixed_precision.set_global_policy(previous)


def preprocess_frames(
    frames: tf.Tensor,
    num_frames: int,
    crop: int,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    *,
    segments: int = 1,
    rate: int | None = None,
) -> tf.Tensor:
    """uint8 ``[B, N, H, W, 3]`` -> normalised float32 ``[B, num_frames, crop, crop, 3]`` (see the
    module docstring). With ``segments=K`` (``num_frames = K * T``), the K centred snippets of ``T``
    frames ``rate`` apart. Pure TensorFlow ops, usable in a serving graph."""
    x = tf.cast(frames, tf.float32)
    n = tf.shape(x)[1]
    if segments > 1:
        if rate is None:
            raise ValueError("sampling temporal segments needs the frame rate of a snippet: give rate")
        index = snippet_eval_indices_tf(n, num_frames // segments, int(rate), segments, 1)[0]
    elif rate == 0:  # a whole-video run: the evaluation's frames, one at the centre of each part
        index = tf.cast(snippet_eval_indices_tf(n, num_frames, 0, 1, 1)[0], tf.int32)
    else:
        positions = (tf.range(num_frames, dtype=tf.float32) + 0.5) * tf.cast(n, tf.float32) / float(num_frames)
        index = tf.minimum(tf.cast(tf.floor(positions), tf.int32), n - 1)
    x = tf.cond(tf.equal(n, num_frames), lambda: x, lambda: tf.gather(x, index, axis=1))
    shape = tf.shape(x)
    h, w = shape[2], shape[3]

    def resize():
        short = tf.cast(tf.minimum(h, w), tf.float32)
        nh = tf.maximum(tf.cast(tf.round(tf.cast(h, tf.float32) * crop / short), tf.int32), crop)
        nw = tf.maximum(tf.cast(tf.round(tf.cast(w, tf.float32) * crop / short), tf.int32), crop)
        flat = tf.reshape(x, tf.stack([-1, h, w, 3]))
        out = tf.image.resize(flat, tf.stack([nh, nw]), method="bilinear", antialias=True)
        return tf.reshape(out, tf.stack([shape[0], num_frames, nh, nw, 3]))

    x = tf.cond(tf.equal(tf.minimum(h, w), crop), lambda: x, resize)
    shape = tf.shape(x)
    top, left = (shape[2] - crop) // 2, (shape[3] - crop) // 2
    x = x[:, :, top : top + crop, left : left + crop, :]
    x = tf.ensure_shape(x, [None, num_frames, crop, crop, 3])
    return normalize_pixels(x, mean, std)


def make_serving_fn(
    model: keras.Model,
    class_names: Sequence[str],
    top_k: int = 5,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    preprocess: bool = True,
    rate: int | None = None,
):
    """The serving function of an inference model (fixed ``(T, crop, crop, 3)`` input, softmax
    output): ``frames`` (uint8) -> ``{"probabilities", "top_k_indices", "top_k_scores",
    "top_k_labels"}``. With ``preprocess=False`` the input must already be ``[B, T, crop, crop, 3]``
    (it is still normalised inside). A consensus model's frames are sampled as K snippets ``rate``
    apart (module docstring)."""
    _, frames_, crop, _, _ = model.input_shape
    classes, is_softmax = _head(model)
    names = [str(c) for c in class_names] if class_names else [str(i) for i in range(classes)]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for a model with {classes} classes")
    k = int(min(top_k, classes))
    labels = tf.constant(names)
    parts = consensus_parts(model)
    segments = 1 if parts is None else parts.segments
    if preprocess and segments > 1 and rate is None:
        raise ValueError(f"{model.name} takes {segments} temporal segments: give the snippets' frame rate (rate=)")

    def serve(frames):
        if preprocess:
            x = preprocess_frames(frames, frames_, crop, mean, std, segments=segments, rate=rate)
        else:
            x = normalize_pixels(tf.cast(frames, tf.float32), mean, std)
        out = tf.cast(model(x, training=False), tf.float32)
        probabilities = out if is_softmax else tf.nn.softmax(out, axis=-1)
        scores, indices = tf.math.top_k(probabilities, k=k)
        return {
            "probabilities": probabilities,
            "top_k_indices": indices,
            "top_k_scores": scores,
            "top_k_labels": tf.gather(labels, indices),
        }

    return serve


def export_saved_model(
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
    rate: int | None = None,
    verbose: bool = False,
) -> str:
    """Writes ``model`` as a TF Serving SavedModel at ``export_dir`` (use a version folder, e.g.
    ``.../saved_model/1``) with the ``serving_default`` signature described in the module docstring.

    ``frames`` / ``crop``: the clip the network sees (default: the model's input shape; a
    consensus model's ``frames`` are per snippet). ``rate``: a consensus model's snippet rate.
    ``fuse``: export the BatchNorm-folded graph (same outputs to ~1e-7, faster).
    Returns ``export_dir``."""
    infer = inference_model(model, spec, frames, crop, fuse)
    serve = make_serving_fn(infer, class_names or [], top_k, mean, std, rate=rate)
    archive = keras.export.ExportArchive()
    archive.track(infer)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=serve,
        input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")],
    )
    export_dir = os.fspath(export_dir)
    archive.write_out(export_dir, verbose=verbose)
    return export_dir


def graph_ops(export_dir: str | os.PathLike) -> dict[str, int]:
    """Op type -> count over a SavedModel's graph and all its functions (read from the protobuf,
    nothing is loaded)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(export_dir), "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    counts: dict[str, int] = {}
    for meta in proto.meta_graphs:
        nodes = list(meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            nodes.extend(fn.node_def)
        for node in nodes:
            counts[node.op] = counts.get(node.op, 0) + 1
    return counts


def find_xla_ops(export_dir: str | os.PathLike) -> list[str]:
    """XLA-only ops (``Xla*``) and functions marked for XLA compilation in a SavedModel; empty
    when the graph runs on TensorFlow's regular kernels (TF Serving's default, no XLA)."""
    from tensorflow.core.protobuf import saved_model_pb2

    found = sorted(op for op in graph_ops(export_dir) if op.startswith(XLA_OP_PREFIXES))
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(export_dir), "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    for meta in proto.meta_graphs:
        for fn in meta.graph_def.library.function:
            for attr in XLA_ATTRS:
                if attr in fn.attr and getattr(fn.attr[attr], "b", False):
                    found.append(f"{fn.signature.name}:{attr}")
            for node in fn.node_def:
                for attr in XLA_ATTRS:
                    if attr in node.attr and getattr(node.attr[attr], "b", False):
                        found.append(f"{node.name}:{attr}")
    return found
