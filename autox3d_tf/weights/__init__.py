"""Pretrained weights: the registry, PyTorch checkpoint conversion, and loading into zoo models.

    from autox3d_tf.zoo import X3D_S
    model = X3D_S(weights="kinetics400")          # registry -> download -> convert once -> cache
    model = X3D_S(weights="x3d_s.pyth")           # a PyTorch checkpoint (pytorchvideo or PySlowFast)
    model = X3D_S(weights="x3d_s.weights.h5")     # Keras weights, or a training run folder
    model = X3D_S(weights="kinetics400", classes=10)  # fine-tuning: a fresh 10-class classifier

    from autox3d_tf.weights import convert_checkpoint
    convert_checkpoint("X3D_S.pyth", "x3d_s.weights.h5", "X3D_S")

Loading is strict: a missing, extra or mis-shaped backbone tensor is an error that lists the
offending names, and nothing is assigned. Only the classifier may differ: a model with another
number of classes gets every tensor but ``predictions`` (freshly initialised, said in one log line),
and a model without its top gets every tensor it has (see `autox3d_tf.weights.loading`).
"""

from __future__ import annotations

from autox3d_tf.weights.convert import (
    LAYOUTS,
    NonFiniteWeightsError,
    WeightsMismatchError,
    checkpoint_num_classes,
    convert_checkpoint,
    convert_state_dict,
    detect_layout,
    extract_state_dict,
    load_torch_weights,
)
from autox3d_tf.weights.loading import (
    RUN_WEIGHTS_FILE,
    PretrainedReport,
    load_keras_weights,
    load_pretrained,
    resolve_weights_path,
    validate_weights_argument,
)
from autox3d_tf.weights.registry import (
    NoPretrainedWeightsError,
    WeightsEntry,
    WeightsHashError,
    available_weights,
    cache_dir,
    fetch_checkpoint,
    get_weights_entry,
    get_weights_file,
    known_datasets,
    list_weights,
    register_weights,
    unregister_weights,
)
from autox3d_tf.weights.torch_reader import (
    CheckpointError,
    UnsafeCheckpointError,
    is_torch_checkpoint,
    load_torch_checkpoint,
)

__all__ = [
    "load_pretrained",
    "PretrainedReport",
    "RUN_WEIGHTS_FILE",
    "resolve_weights_path",
    "validate_weights_argument",
    "load_keras_weights",
    "load_torch_weights",
    "load_torch_checkpoint",
    "convert_checkpoint",
    "convert_state_dict",
    "extract_state_dict",
    "detect_layout",
    "checkpoint_num_classes",
    "is_torch_checkpoint",
    "LAYOUTS",
    "WeightsEntry",
    "list_weights",
    "available_weights",
    "known_datasets",
    "get_weights_entry",
    "get_weights_file",
    "fetch_checkpoint",
    "register_weights",
    "unregister_weights",
    "cache_dir",
    "CheckpointError",
    "UnsafeCheckpointError",
    "WeightsMismatchError",
    "NonFiniteWeightsError",
    "NoPretrainedWeightsError",
    "WeightsHashError",
]
