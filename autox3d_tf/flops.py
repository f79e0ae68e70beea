"""Multiply-accumulate (MAC) and parameter counts of built Keras models, in fvcore's convention.

The count walks the *built* model: every call of every layer in the functional graph (nested
functional / Sequential models are entered), with the input and output shapes recorded in
that graph. It never looks at an ``ArchSpec``, so it counts what the model really computes.

Convention (fvcore's ``FlopCountAnalysis`` with its default handles, applied to
pytorchvideo's X3D in eval mode; fvcore reports one fused multiply-add as one "flop"):

========================================  ==================================================
Keras layer                               MACs per sample
========================================  ==================================================
``Conv1D/2D/3D`` (any ``groups``)         output elements x (C_in / groups) x kernel volume
``DepthwiseConv1D/2D``                    output elements x kernel volume
``DepthwiseConv3D`` (ours)                output elements x kernel volume
``PointwiseConv3D`` (ours)                output elements x C_in
``Dense`` (on any rank; fvcore's linear)  output elements x input features
``BatchNormalization`` (inference)        2 x elements with scale or center, else 1 x
``LayerNormalization``                    5 x elements with scale or center, else 4 x
weight-free layers (activations, add,     0 (fvcore does not count ``aten::add``, ``mul``,
multiply, pooling, padding, reshape...)   ``sigmoid``, ``mean``, ``avg_pool3d``, ...)
========================================  ==================================================

Biases are not counted (fvcore does not). On pytorchvideo's X3D-XS at 4x160x160, fvcore
reports conv 604,437,312 + batch_norm 20,889,600 + linear 819,200 = 626,146,112, which this
module reproduces exactly.

A nested model called on a batch that a layer folded (a layer with a ``batch_folds`` attribute,
e.g. `autox3d_tf.models.consensus.FoldSegments`: K snippets of each clip in the batch) runs
``batch_folds`` times per sample: its MACs count that many times.

A layer that holds weights but has no handler makes the count fail loudly
(``on_unknown="raise"``, the default) or warn (``"warn"``), rather than silently counting 0;
:func:`register_macs_handler` adds handlers for new layer types.

Public API: :func:`count_macs`, :func:`macs_by_layer`, :func:`macs_by_stage`,
:func:`count_params`, :func:`layer_stats`, :func:`stage_stats`, :func:`register_macs_handler`.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import keras

from autox3d_tf.layers import DepthwiseConv3D, PointwiseConv3D

Shape = tuple[int, ...]
# handler(layer, input_shapes, output_shapes) -> MACs for ONE sample; shapes exclude the batch axis.
MacsHandler = Callable[[keras.layers.Layer, Sequence[Shape], Sequence[Shape]], int]

STAGE_PATTERN = re.compile(r"^(stem|stage\d+|head|predictions)(?:_|$)")
OTHER_GROUP = "other"
_BN_STAT_NAMES = ("moving_mean", "moving_variance")
ON_UNKNOWN_CHOICES = ("raise", "warn", "ignore")


class UnsupportedLayerError(TypeError):
    """A layer with weights whose MACs this module does not know how to count."""


# --------------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------------


def _numel(shape: Shape) -> int:
    return int(math.prod(shape))


def _conv_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    # Keras conv kernels are (*kernel, C_in / groups, C_out) for either data format.
    kernel_shape = tuple(layer.kernel.shape)
    return _numel(outputs[0]) * _numel(kernel_shape[:-1])


def _depthwise_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    # DepthwiseConv{1,2}D kernels are (*kernel, C_in, multiplier); ours are (*kernel, C, 1).
    kernel_shape = tuple(layer.kernel.shape)
    return _numel(outputs[0]) * _numel(kernel_shape[:-2])


def _pointwise_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    return _numel(outputs[0]) * int(layer.kernel.shape[0])


def _dense_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    # fvcore's aten::linear: prod(input shape) x out_features == output elements x in_features.
    return _numel(outputs[0]) * int(layer.kernel.shape[0])


def _batch_norm_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    # fvcore batchnorm_flop_jit in eval mode: numel x (2 if affine else 1).
    affine = bool(getattr(layer, "scale", True) or getattr(layer, "center", True))
    return _numel(inputs[0]) * (2 if affine else 1)


def _layer_norm_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    # fvcore norm_flop_counter: numel x (5 if affine else 4).
    affine = bool(getattr(layer, "scale", True) or getattr(layer, "center", True))
    return _numel(inputs[0]) * (5 if affine else 4)


def _zero_macs(layer, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
    return 0


_HANDLERS: dict[type, MacsHandler] = {}


def register_macs_handler(layer_type: type, handler: MacsHandler) -> None:
    """Registers how to count the MACs of ``layer_type`` (and its subclasses).

    ``handler(layer, input_shapes, output_shapes)`` returns the MACs of one call for ONE sample;
    the shapes it receives have the batch axis removed. The most specific registered class in a
    layer's MRO wins.
    """
    if not isinstance(layer_type, type):
        raise TypeError(f"`layer_type` must be a class, got {layer_type!r}.")
    if not callable(handler):
        raise TypeError(f"`handler` must be callable, got {handler!r}.")
    _HANDLERS[layer_type] = handler


for _cls in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D):
    register_macs_handler(_cls, _conv_macs)
for _cls in (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D, DepthwiseConv3D):
    register_macs_handler(_cls, _depthwise_macs)
register_macs_handler(PointwiseConv3D, _pointwise_macs)
register_macs_handler(keras.layers.Dense, _dense_macs)
register_macs_handler(keras.layers.BatchNormalization, _batch_norm_macs)
register_macs_handler(keras.layers.LayerNormalization, _layer_norm_macs)
# Layers with weights that fvcore would not count (a lookup; an elementwise normalisation).
register_macs_handler(keras.layers.Embedding, _zero_macs)
register_macs_handler(keras.layers.Normalization, _zero_macs)


def _find_handler(layer) -> MacsHandler | None:
    for cls in type(layer).__mro__:
        if cls in _HANDLERS:
            return _HANDLERS[cls]
    return None


# --------------------------------------------------------------------------------------------
# Graph walk
# --------------------------------------------------------------------------------------------


@dataclass
class LayerStats:
    """MACs and parameters of one layer of a model (all its calls in the graph summed).

    ``name`` is the layer name, prefixed with ``"outer/"`` for layers of nested models;
    ``group`` the stage it belongs to (see :func:`stage_of`). Shapes exclude the batch axis
    and are those of the layer's first call. ``macs`` is per sample.
    """

    name: str
    group: str
    class_name: str
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    macs: int = 0
    params: int = 0
    calls: int = 0


@dataclass
class StageStats:
    """One stage group of a model: stem, stage1..N, head, predictions (or other)."""

    name: str
    blocks: int
    width: int | None
    output_shape: Shape | None
    params: int
    macs: int
    layers: list[str] = field(default_factory=list)


def stage_of(layer_name: str) -> str:
    """The stage group of a layer name: ``stem``, ``stageN``, ``head``, ``predictions`` or ``other``."""
    match = STAGE_PATTERN.match(layer_name.rsplit("/", 1)[-1])
    return match.group(1) if match else OTHER_GROUP


def _graph_of(model) -> keras.Model | None:
    """The functional graph of a Functional or (built) Sequential model; None otherwise."""
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ValueError(
                f"Sequential model {model.name!r} is not built; give it an Input or call build(input_shape) first."
            )
        return functional
    if hasattr(model, "_nodes_by_depth") and getattr(model, "inputs", None) is not None:
        return model
    return None


def _static_shape(tensor, where: str) -> Shape:
    shape = tuple(tensor.shape)
    rest = shape[1:]
    if any(d is None for d in rest):
        raise ValueError(
            f"{where}: shape {shape} has unknown dimensions besides the batch axis; MACs need a "
            "static input shape (build the model with a concrete input_shape, e.g. "
            "get_model(name, input_shape=(16, 224, 224, 3)))."
        )
    return tuple(int(d) for d in rest)


def _layer_params(layer) -> int:
    """Parameters in PyTorch's convention: all weights except BatchNorm running statistics."""
    total = 0
    for w in layer.weights:
        name = w.path.rsplit("/", 1)[-1] if hasattr(w, "path") else w.name
        if isinstance(layer, keras.layers.BatchNormalization) and name in _BN_STAT_NAMES:
            continue
        total += _numel(tuple(w.shape))
    return total


def _batch_folds(node) -> int:
    """How many times per sample a node runs: the ``batch_folds`` of the layer that made its input."""
    folds = 1
    for t in node.input_tensors:
        history = getattr(t, "_keras_history", None)
        folds = max(folds, int(getattr(getattr(history, "operation", None), "batch_folds", 1) or 1))
    return folds


def _iter_calls(
    model, prefix: str = "", folds: int = 1
) -> Iterator[tuple[str, keras.layers.Layer, list[Shape], list[Shape], int]]:
    """Yields (qualified name, layer, input shapes, output shapes, calls per sample) per leaf layer
    call, in order."""
    graph = _graph_of(model)
    if graph is None:
        raise TypeError(
            f"{type(model).__name__} {getattr(model, 'name', '')!r} is a subclassed model without a "
            "functional graph; MACs can be counted for functional and Sequential Keras models only."
        )
    by_depth = graph._nodes_by_depth
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            op = node.operation
            if op is None or node.is_input or isinstance(op, keras.layers.InputLayer):
                continue
            name = f"{prefix}{op.name}"
            if isinstance(op, keras.Model):
                yield from _iter_calls(op, prefix=f"{name}/", folds=folds * _batch_folds(node))
                continue
            ins = [_static_shape(t, f"input of layer {name!r}") for t in node.input_tensors]
            outs = [_static_shape(t, f"output of layer {name!r}") for t in node.output_tensors]
            yield name, op, ins, outs, folds


def layer_stats(model: keras.Model, on_unknown: str = "raise") -> list[LayerStats]:
    """Per-layer MACs (per sample) and parameters of a built model, in graph order.

    Args:
        model: a functional or built Sequential Keras model (nested models are entered).
        on_unknown: what to do with a layer that has weights but no MACs handler:
            ``"raise"`` (:class:`UnsupportedLayerError`), ``"warn"`` (count it as 0 with a
            warning) or ``"ignore"``.
    """
    if on_unknown not in ON_UNKNOWN_CHOICES:
        raise ValueError(f"`on_unknown` must be one of {list(ON_UNKNOWN_CHOICES)}, got {on_unknown!r}.")
    stats: dict[str, LayerStats] = {}
    for name, layer, ins, outs, folds in _iter_calls(model):
        handler = _find_handler(layer)
        if handler is None:
            if layer.weights:
                message = (
                    f"Cannot count MACs of layer {name!r} ({type(layer).__name__}): it has weights but no "
                    "MACs handler. Register one with autox3d_tf.flops.register_macs_handler("
                    f"{type(layer).__name__}, fn), or pass on_unknown='warn' to count it as 0."
                )
                if on_unknown == "raise":
                    raise UnsupportedLayerError(message)
                if on_unknown == "warn":
                    warnings.warn(message, stacklevel=2)
            handler = _zero_macs
        entry = stats.get(name)
        if entry is None:
            entry = stats[name] = LayerStats(
                name=name,
                group=stage_of(name),
                class_name=type(layer).__name__,
                input_shapes=ins,
                output_shapes=outs,
                params=_layer_params(layer),
            )
        entry.macs += folds * int(handler(layer, ins, outs))
        entry.calls += 1
    return list(stats.values())


def count_macs(model: keras.Model, batch_size: int = 1, on_unknown: str = "raise") -> int:
    """Multiply-accumulates of one forward pass (inference) of ``batch_size`` clips.

    fvcore's convention (what it calls flops, and papers call GFLOPs for X3D); see the module
    docstring. ``count_macs(X3D_XS()) == 626_146_112``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    return batch_size * sum(s.macs for s in layer_stats(model, on_unknown=on_unknown))


def macs_by_layer(model: keras.Model, batch_size: int = 1, on_unknown: str = "raise") -> dict[str, int]:
    """``{layer name: MACs}`` for every leaf layer (weight-free layers included, with 0), in order."""
    return {s.name: batch_size * s.macs for s in layer_stats(model, on_unknown=on_unknown)}


def _group_order(group: str) -> tuple[int, int]:
    if group == "stem":
        return (0, 0)
    if group.startswith("stage"):
        return (1, int(group[5:]))
    return {"head": (2, 0), "predictions": (3, 0)}.get(group, (4, 0))


def stage_stats(model: keras.Model, on_unknown: str = "raise") -> list[StageStats]:
    """Per-stage MACs (per sample), parameters, block count, width and output shape.

    Layers are grouped by their name prefix (``stem``, ``stage1``..``stageN``, ``head``,
    ``predictions``; anything else goes to ``other``). ``blocks`` counts distinct
    ``stageN_blockB`` prefixes; ``output_shape`` is the output of the group's last layer
    (T x H x W x C for the stem and stages) and ``width`` its last axis.
    """
    groups: dict[str, StageStats] = {}
    block_names: dict[str, set[str]] = {}
    for s in layer_stats(model, on_unknown=on_unknown):
        g = groups.get(s.group)
        if g is None:
            g = groups[s.group] = StageStats(s.group, 0, None, None, 0, 0)
            block_names[s.group] = set()
        g.macs += s.macs
        g.params += s.params
        g.layers.append(s.name)
        if s.output_shapes:
            g.output_shape = s.output_shapes[0]
            g.width = s.output_shapes[0][-1] if s.output_shapes[0] else None
        match = re.match(r"^(stage\d+_block\d+)_", s.name.rsplit("/", 1)[-1])
        if match:
            block_names[s.group].add(match.group(1))
    for name, g in groups.items():
        g.blocks = len(block_names[name])
    return sorted(groups.values(), key=lambda g: _group_order(g.name))


def macs_by_stage(model: keras.Model, batch_size: int = 1, on_unknown: str = "raise") -> dict[str, int]:
    """``{stage: MACs}`` for ``stem``, ``stage1``..``stageN``, ``head``, ``predictions`` (and ``other``)."""
    return {g.name: batch_size * g.macs for g in stage_stats(model, on_unknown=on_unknown)}


def count_params(model: keras.Model) -> int:
    """Parameters in PyTorch's convention: every weight except BatchNorm running statistics.

    For a model with no frozen layers this equals the trainable parameter count
    (X3D-XS: 3,794,274, as ``sum(p.numel() for p in model.parameters())`` in pytorchvideo).
    """
    seen: set[int] = set()
    total = 0
    stats_ids = {
        id(w)
        for layer in _all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.weights
        if w.path.rsplit("/", 1)[-1] in _BN_STAT_NAMES
    }
    for w in model.weights:
        if id(w) in seen or id(w) in stats_ids:
            continue
        seen.add(id(w))
        total += _numel(tuple(w.shape))
    return total


def _all_layers(model) -> Iterator[keras.layers.Layer]:
    """Every layer inside ``model``, nested models and sublayers of custom layers included."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        yield from flatten(include_self=False, recursive=True)
        return
    for layer in getattr(model, "layers", []):  # pragma: no cover - older Keras
        yield layer
        yield from _all_layers(layer)
