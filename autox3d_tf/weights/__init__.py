"""Pretrained weights: the registry, PyTorch checkpoint conversion, and loading into zoo models.

    from autox3d_tf.zoo import X3D_S
    model = X3D_S(weights="kinetics400")          # registry -> download -> convert once -> cache
    model = X3D_S(weights="x3d_s.pyth")           # a PyTorch checkpoint (pytorchvideo or PySlowFast)
    model = X3D_S(weights="x3d_s.weights.h5")     # Keras weights

    from autox3d_tf.weights import convert_checkpoint
    convert_checkpoint("X3D_S.pyth", "x3d_s.weights.h5", "X3D_S")

Loading is strict everywhere: a missing, extra or mis-shaped tensor is an error that lists the
offending names, and nothing is assigned.
"""

from __future__ import annotations

import os
import tempfile

from autox3d_tf.weights.convert import (
    LAYOUTS,
    WeightsMismatchError,
    checkpoint_num_classes,
    convert_checkpoint,
    convert_state_dict,
    detect_layout,
    extract_state_dict,
    load_torch_weights,
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
    "NoPretrainedWeightsError",
    "WeightsHashError",
]

_TORCH_SUFFIXES = (".pyth", ".pth", ".pt", ".ckpt")


def _h5_shapes(path: str) -> dict[str, tuple]:
    import h5py

    shapes: dict[str, tuple] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            shapes[name] = tuple(obj.shape)

    with h5py.File(path, "r") as fh:
        fh.visititems(visit)
    return shapes


def load_keras_weights(model, path: str, *, allow_extra: bool = False) -> None:
    """Loads a Keras ``.weights.h5`` file into ``model``, strictly.

    Keras' own ``load_weights`` matches variables by position and silently skips what does not
    match; here the file's variables are first compared with the model's (the model's layout is
    obtained by saving it to a temporary file): every model variable must be in the file with
    the same shape, and, unless ``allow_extra`` (used for ``include_top=False``), the file must
    hold nothing else. Then Keras loads it.

    Raises:
        WeightsMismatchError: listing missing, unexpected and mis-shaped variables.
    """
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"Keras weights files must end in '.weights.h5', got {path!r}.")
    source = _h5_shapes(path)
    fd, tmp = tempfile.mkstemp(suffix=".weights.h5")
    os.close(fd)
    try:
        os.remove(tmp)
        model.save_weights(tmp)
        target = _h5_shapes(tmp)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    missing = [k for k in target if k not in source]
    mismatched = [(k, target[k], source[k]) for k in target if k in source and source[k] != target[k]]
    unexpected = [] if allow_extra else [k for k in source if k not in target]
    if missing or mismatched or unexpected:
        parts = [f"{path} does not match model {model.name!r}."]
        if missing:
            parts.append(f"Missing ({len(missing)}): {', '.join(missing[:20])}.")
        if unexpected:
            parts.append(f"Unexpected ({len(unexpected)}): {', '.join(unexpected[:20])}.")
        if mismatched:
            shown = [f"{k} model {t}, file {s}" for k, t, s in mismatched[:20]]
            parts.append(f"Wrong shape ({len(mismatched)}): {', '.join(shown)}.")
        parts.append(
            "Nothing was loaded. (A cached conversion from an older version can be deleted from "
            f"{cache_dir() / 'weights'} to rebuild it.)"
        )
        raise WeightsMismatchError(
            " ".join(parts), missing, unexpected, [(k, t, s) for k, t, s in mismatched]
        )
    model.load_weights(path)


def validate_weights_argument(
    model_name: str, weights, *, include_top: bool = True, classes: int = 400
) -> str | None:
    """Checks a factory's ``weights`` argument without building or downloading anything.

    Factories may call this before building the model so that a bad argument fails fast.

    Returns:
        None for ``weights=None``, "path" for an existing file, or the registered dataset name.

    Raises:
        NoPretrainedWeightsError: a dataset name the model has no weights for (says what exists).
        ValueError: ``include_top=True`` with ``classes`` different from the pretrained classifier's
            (the keras.applications rule), or a path that does not exist.
    """
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"`weights` must be None, a dataset name such as 'kinetics400', or a path; got {weights!r}.")
    weights = os.fspath(weights)
    if os.path.exists(weights):
        return "path"
    looks_like_name = not any(sep in weights for sep in ("/", "\\", "."))
    if looks_like_name or weights in known_datasets() or weights in available_weights(model_name):
        entry = get_weights_entry(model_name, weights)
        if include_top and classes != entry.num_classes:
            raise ValueError(
                f"If using `weights='{weights}'` with `include_top=True`, `classes` must be {entry.num_classes}; "
                f"got classes={classes}. Use include_top=False to put your own classifier on the pretrained backbone."
            )
        return entry.dataset
    raise ValueError(
        f"`weights` for {model_name} must be None, one of the registered datasets "
        f"({', '.join(available_weights(model_name)) or 'none for this model'}), or the path to an existing "
        f".weights.h5 file or PyTorch checkpoint; {weights!r} does not exist."
    )


def load_pretrained(
    model, model_name: str, weights: str, *, include_top: bool = True, classes: int = 400
) -> None:
    """Loads ``weights`` into a freshly built zoo model (called by every zoo factory).

    Args:
        model: the model built by the factory.
        model_name: the zoo name, e.g. "X3D_S".
        weights: a registered dataset name ("kinetics400"), a PyTorch checkpoint path
            (``.pyth`` / ``.pth``, pytorchvideo or PySlowFast layout) or a ``.weights.h5`` path.
        include_top: whether the model has its classifier.
        classes: the model's number of classes.

    Raises:
        NoPretrainedWeightsError: a dataset name the model has no weights for.
        ValueError: pretrained top with ``classes`` different from the weights', or an unknown
            ``weights`` value.
        WeightsMismatchError: the file does not match the model.
    """
    kind = validate_weights_argument(model_name, weights, include_top=include_top, classes=classes)
    if kind is None:
        return
    weights = os.fspath(weights)
    if kind == "path":
        if weights.endswith(_TORCH_SUFFIXES) or (not weights.endswith(".h5") and is_torch_checkpoint(weights)):
            load_torch_weights(model, weights)
        else:
            load_keras_weights(model, weights, allow_extra=not include_top)
        return
    path = get_weights_file(model_name, kind)
    load_keras_weights(model, str(path), allow_extra=not include_top)
