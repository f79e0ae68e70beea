"""The two kinds of network spec, behind one interface: `ArchSpec` (X3D-style residual networks,
`build_model`) and `CellNetSpec` (the differentiable search's cell networks, `build_cell_model`).

Training, evaluation and export read and build a run's network through these functions, so a
searched cell network trains, evaluates and exports like any zoo model (``autox3d train --spec
runs/darts/arch.json``). Cell networks have no BatchNorm folding (`can_fuse`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence, Union

import keras

from autox3d_tf.arch.cells import CellNetSpec, cell_net_macs
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.models.builder import build_model
from autox3d_tf.models.cell_builder import build_cell_model

__all__ = ["NetworkSpec", "build_network", "can_fuse", "load_network_spec", "network_macs", "spec_from_dict"]

NetworkSpec = Union[ArchSpec, CellNetSpec]


def spec_from_dict(data: Mapping[str, Any]) -> NetworkSpec:
    """A `CellNetSpec` for ``{"family": "cells", ...}``, else an `ArchSpec`."""
    if isinstance(data, Mapping) and data.get("family") == "cells":
        return CellNetSpec.from_dict(data)
    return ArchSpec.from_dict(data)


def load_network_spec(path: str | os.PathLike) -> NetworkSpec:
    """The spec in a JSON file (an `ArchSpec` or a `CellNetSpec`, e.g. a search's ``arch.json``)."""
    with open(os.fspath(path), encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{os.fspath(path)}: not a JSON spec ({err})") from None
    return spec_from_dict(data)


def build_network(
    spec: NetworkSpec,
    *,
    input_shape: Sequence[int | None] | None = None,
    classes: int = 400,
    classifier_activation: str | None = "softmax",
    dropout_rate: float = 0.5,
    name: str | None = None,
) -> keras.Model:
    """``spec``'s network with its top (`build_model` or `build_cell_model`)."""
    if isinstance(spec, CellNetSpec):
        return build_cell_model(spec, input_shape=input_shape, classes=classes,
                                classifier_activation=classifier_activation, dropout_rate=dropout_rate, name=name)
    return build_model(spec, input_shape=input_shape, classes=classes, classifier_activation=classifier_activation,
                       dropout_rate=dropout_rate, name=name)


def network_macs(spec: NetworkSpec, frames: int, size: int, classes: int) -> int:
    """MACs of ``spec``'s network on one ``frames x size x size`` clip."""
    if isinstance(spec, CellNetSpec):
        return cell_net_macs(spec, frames=frames, size=size, classes=classes)
    return spec_macs(spec, frames=frames, size=size, classes=classes)


def can_fuse(spec: NetworkSpec) -> bool:
    """Whether `fuse_for_inference` can fold the network's BatchNorms (X3D-style specs only)."""
    return isinstance(spec, ArchSpec)
