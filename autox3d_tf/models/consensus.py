"""Temporal-segment consensus (TSN-style): any network run on K snippets, its logits averaged.

    from autox3d_tf.models import segment_consensus
    net = build_model(spec, input_shape=(2, 112, 112, 3), classes=101, classifier_activation=None)
    model = segment_consensus(net, segments=4)       # input (4 * 2, 112, 112, 3), output (101,)

The clip is the K snippets concatenated in time (what the pipelines give with ``segments=K``,
:mod:`autox3d_tf.data.sampling`): ``(B, K * T, H, W, C)`` is folded into the batch as
``(B * K, T, H, W, C)``, the network runs once on all snippets, and its outputs ``(B * K, classes)``
are reshaped to ``(B, K, classes)`` and reduced over the snippets: the mean (``"avg"``, TSN's
consensus) or the maximum (``"max"``). Give a network with logits (``classifier_activation=None``)
and ``activation="softmax"`` for probabilities of the averaged logits.

The wrapper is a functional :class:`SegmentConsensusModel` holding the network as a nested model
(the same layers and weights), so it trains with ``fit``, takes the multi-view evaluation's views,
saves to ``.keras`` and loads again (its layers are registered serializable), and counts K times
the network's MACs (`autox3d_tf.flops` multiplies what runs on a folded batch by ``batch_folds``).
Model code: ``keras.ops`` only, every backend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
from keras import ops

from autox3d_tf.arch.spec import ArchSpec

__all__ = [
    "CONSENSUS_MODES",
    "FoldSegments",
    "SegmentConsensus",
    "SegmentConsensusModel",
    "ConsensusParts",
    "segment_consensus",
    "consensus_parts",
]

CONSENSUS_MODES = ("avg", "max")


def _check(segments: int, mode: str) -> None:
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"segments must be a positive int, got {segments!r}")
    if mode not in CONSENSUS_MODES:
        raise ValueError(f"consensus mode must be one of {CONSENSUS_MODES}, got {mode!r}")


@keras.saving.register_keras_serializable(package="autox3d_tf")
class FoldSegments(keras.layers.Layer):
    """``(B, K * T, ...)`` -> ``(B * K, T, ...)``: the K snippets of a clip folded into the batch.

    ``batch_folds`` (= K) tells `autox3d_tf.flops` that what runs on the output runs K times per clip.
    """

    def __init__(self, segments: int, **kwargs):
        super().__init__(**kwargs)
        _check(segments, "avg")
        self.segments = int(segments)

    @property
    def batch_folds(self) -> int:
        return self.segments

    def _frames(self, length: int | None) -> int:
        if length is None:
            raise ValueError("FoldSegments needs a static number of frames (K * T)")
        if length % self.segments:
            raise ValueError(f"{length} frames cannot be split into {self.segments} segments")
        return length // self.segments

    def call(self, x):
        shape = ops.shape(x)
        frames = self._frames(x.shape[1])
        return ops.reshape(x, (-1, frames, *shape[2:]))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] * self.segments
        return (batch, self._frames(input_shape[1]), *input_shape[2:])

    def get_config(self) -> dict:
        return {**super().get_config(), "segments": self.segments}


@keras.saving.register_keras_serializable(package="autox3d_tf")
class SegmentConsensus(keras.layers.Layer):
    """``(B * K, ...)`` -> ``(B, ...)``: the mean (``"avg"``) or maximum (``"max"``) over each
    clip's K snippets."""

    def __init__(self, segments: int, mode: str = "avg", **kwargs):
        super().__init__(**kwargs)
        _check(segments, mode)
        self.segments = int(segments)
        self.mode = mode

    def call(self, x):
        grouped = ops.reshape(x, (-1, self.segments, *x.shape[1:]))
        return ops.mean(grouped, axis=1) if self.mode == "avg" else ops.max(grouped, axis=1)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.segments
        return (batch, *input_shape[1:])

    def get_config(self) -> dict:
        return {**super().get_config(), "segments": self.segments, "mode": self.mode}


@keras.saving.register_keras_serializable(package="autox3d_tf")
class SegmentConsensusModel(keras.Model):
    """The functional consensus model :func:`segment_consensus` returns: ``network`` (the nested
    model), ``segments``, ``consensus``, ``activation`` (after the consensus, or None), and the
    network's ``arch_spec`` when it carries one."""

    def __init__(self, *args, segments: int = 1, consensus: str = "avg", activation: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.segments = int(segments)
        self.consensus = consensus
        self.activation = activation

    @property
    def network(self) -> keras.Model:
        """The network run on every snippet (the nested model)."""
        return next(layer for layer in self.layers if isinstance(layer, keras.Model))

    @property
    def arch_spec(self) -> ArchSpec | None:
        return getattr(self.network, "arch_spec", None)

    @property
    def snippet_frames(self) -> int:
        """Frames per snippet (the network's ``T``)."""
        return int(self.input_shape[1]) // self.segments

    def get_config(self) -> dict:
        return {**super().get_config(), "segments": self.segments, "consensus": self.consensus,
                "activation": self.activation}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "SegmentConsensusModel":
        config = dict(config)
        extra: dict[str, Any] = {k: config.pop(k, d) for k, d in
                                 (("segments", 1), ("consensus", "avg"), ("activation", None))}
        model = super().from_config(config, custom_objects=custom_objects)
        model.segments, model.consensus, model.activation = int(extra["segments"]), extra["consensus"], \
            extra["activation"]
        return model


def segment_consensus(
    network: keras.Model,
    segments: int,
    mode: str = "avg",
    *,
    activation: str | None = None,
    frames: int | None = None,
    name: str | None = None,
) -> SegmentConsensusModel:
    """Wraps ``network`` (input ``(T, H, W, C)``) into a model taking K snippets ``(K * T, H, W, C)``.

    Args:
      network: any functional video network: a zoo model, ``build_model(spec)``, a derived searched
        network. Best with logits (``classifier_activation=None``): the consensus reduces them.
      segments: K, the snippets per clip.
      mode: ``"avg"`` (mean of the K outputs) or ``"max"``.
      activation: applied after the consensus (e.g. ``"softmax"``); None keeps the reduced outputs.
      frames: ``T`` when the network's input has no static number of frames.
      name: default ``"{network.name}_x{K}"``.
    """
    _check(segments, mode)
    t, *rest = network.input_shape[1:]
    t = int(frames or t or 0)
    if not t:
        raise ValueError(f"the network's input {network.input_shape} has no static number of frames: give frames")
    inputs = keras.Input((segments * t, *rest), name="snippets")
    x = FoldSegments(segments, name="fold_segments")(inputs)
    x = network(x)
    x = SegmentConsensus(segments, mode, name="segment_consensus")(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name="consensus_activation")(x)
    return SegmentConsensusModel(inputs, x, segments=segments, consensus=mode, activation=activation,
                                 name=name or f"{network.name}_x{segments}")


class ConsensusParts(NamedTuple):
    """What a consensus model is made of (see :func:`consensus_parts`)."""

    network: keras.Model
    segments: int
    consensus: str
    activation: str | None


def consensus_parts(model: keras.Model) -> ConsensusParts | None:
    """``(network, segments, consensus, activation)`` of a :class:`SegmentConsensusModel`; None for
    any other model."""
    if not isinstance(model, SegmentConsensusModel):
        return None
    return ConsensusParts(model.network, model.segments, model.consensus, model.activation)
