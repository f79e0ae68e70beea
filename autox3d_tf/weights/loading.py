"""Loading pretrained weights into a built model, with the fine-tuning semantics of timm and
keras.applications.

``load_pretrained(model, model_name, weights)`` takes a registered dataset name (``"kinetics400"``),
a PyTorch checkpoint (pytorchvideo or PySlowFast layout), a Keras ``.weights.h5`` file, or a
training run folder (its ``final.weights.h5``). Loading is strict, with one exception:

- a model whose classifier has another number of classes than the weights' gets every tensor but
  the classifier (``predictions``), which keeps its fresh initialisation; one log line says so;
- a model without its top (``include_top=False``) gets every tensor it has (with ``pooling`` that
  includes the 2048-wide ``head_dense`` pre-logit layer of X3D).

Anything else that differs (a missing, extra or mis-shaped backbone tensor) is an error listing the
names, and nothing is assigned. When the model is not the weights' full model, the weights are
first loaded strictly into a donor: the same architecture with the weights' classifier, then every
layer is copied by name.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field

from autox3d_tf.arch import naming
from autox3d_tf.models.builder import build_model
from autox3d_tf.weights.convert import (
    NonFiniteWeightsError,
    WeightsMismatchError,
    check_finite,
    checkpoint_num_classes,
    extract_state_dict,
    load_torch_weights,
)
from autox3d_tf.weights.registry import (
    available_weights,
    cache_dir,
    get_weights_entry,
    get_weights_file,
    known_datasets,
)
from autox3d_tf.weights.torch_reader import is_torch_checkpoint, load_torch_checkpoint

__all__ = [
    "PretrainedReport",
    "RUN_WEIGHTS_FILE",
    "load_keras_weights",
    "load_pretrained",
    "resolve_weights_path",
    "validate_weights_argument",
]

logger = logging.getLogger("autox3d_tf.weights")

RUN_WEIGHTS_FILE = "final.weights.h5"  # the trained weights in a training run folder
_TORCH_SUFFIXES = (".pyth", ".pth", ".pt", ".ckpt")


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` loaded.

    Attributes:
        source: the weights as given (a dataset name or a path).
        file: the file read (the converted cache file for a dataset name).
        format: "torch" or "keras".
        loaded_layers: layers whose weights were assigned.
        loaded_tensors: number of variables assigned.
        skipped: layers of the model left with their fresh initialisation (the classifier when
            the number of classes differs).
        source_classes: classes of the weights' classifier (None when they have none).
        model_classes: classes of the model (None without a top).
    """

    source: str
    file: str
    format: str
    loaded_layers: list[str] = field(default_factory=list)
    loaded_tensors: int = 0
    skipped: list[str] = field(default_factory=list)
    source_classes: int | None = None
    model_classes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: what was loaded and what was left out."""
        line = f"Loaded {self.loaded_tensors} tensors ({len(self.loaded_layers)} layers) from {self.file}"
        if self.skipped:
            line += (f"; left out {', '.join(self.skipped)} (weights: {self.source_classes} classes, model: "
                     f"{self.model_classes}), freshly initialised")
        return line + "."


def _h5_shapes(path: str, nonfinite: list[str] | None = None) -> dict[str, tuple]:
    """The shape of every dataset in an HDF5 weights file; the names of those holding NaN / Inf are
    appended to ``nonfinite`` when given. A file that is not HDF5 is a ValueError naming it."""
    import h5py
    import numpy as np

    shapes: dict[str, tuple] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            shapes[name] = tuple(obj.shape)
            if nonfinite is not None and obj.dtype.kind in "fc" and obj.size and not np.isfinite(obj[()]).all():
                nonfinite.append(name)

    try:
        with h5py.File(path, "r") as fh:
            fh.visititems(visit)
    except OSError as err:  # not HDF5, truncated, unreadable
        raise ValueError(f"{path}: not a readable Keras .weights.h5 file ({str(err).splitlines()[0]})") from None
    return shapes


def _model_h5_shapes(model) -> dict[str, tuple]:
    fd, tmp = tempfile.mkstemp(suffix=".weights.h5")
    os.close(fd)
    try:
        os.remove(tmp)
        model.save_weights(tmp)
        return _h5_shapes(tmp)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _mismatch_error(path: str, model, missing, unexpected, mismatched) -> WeightsMismatchError:
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
    return WeightsMismatchError(" ".join(parts), missing, unexpected, list(mismatched))


def _compare(source: dict[str, tuple], target: dict[str, tuple], allow_extra: bool):
    missing = [k for k in target if k not in source]
    mismatched = [(k, target[k], source[k]) for k in target if k in source and source[k] != target[k]]
    unexpected = [] if allow_extra else [k for k in source if k not in target]
    return missing, unexpected, mismatched


def load_keras_weights(model, path: str | os.PathLike, *, allow_extra: bool = False) -> None:
    """Loads a Keras ``.weights.h5`` file into ``model``, strictly.

    Keras' own ``load_weights`` matches variables by position and silently skips what does not
    match; here the file's variables are first compared with the model's (the model's layout is
    obtained by saving it to a temporary file): every model variable must be in the file with
    the same shape, and, unless ``allow_extra``, the file must hold nothing else. Then Keras loads it.

    Raises:
        WeightsMismatchError: listing missing, unexpected and mis-shaped variables.
        NonFiniteWeightsError: the file holds NaN or Inf values (naming the variables).
        ValueError: the file is not a Keras weights file.
    """
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"Keras weights files must end in '.weights.h5', got {path!r}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file" + (" (a directory)" if os.path.isdir(path) else ""))
    nonfinite: list[str] = []
    source = _h5_shapes(path, nonfinite)
    if nonfinite:
        raise NonFiniteWeightsError(
            f"{path}: {len(nonfinite)} tensor(s) hold NaN or Inf values: {', '.join(nonfinite[:10])}"
            f"{' ...' if len(nonfinite) > 10 else ''}. These weights would predict garbage; nothing was loaded.",
            nonfinite)
    missing, unexpected, mismatched = _compare(source, _model_h5_shapes(model), allow_extra)
    if missing or mismatched or unexpected:
        raise _mismatch_error(path, model, missing, unexpected, mismatched)
    model.load_weights(path)


def resolve_weights_path(weights: str | os.PathLike) -> str:
    """The weights file of ``weights``: the path itself, or a run folder's ``final.weights.h5``.

    Raises:
        FileNotFoundError: a folder without trained weights.
    """
    path = os.fspath(weights)
    if os.path.isdir(path):
        inner = os.path.join(path, RUN_WEIGHTS_FILE)
        if not os.path.isfile(inner):
            raise FileNotFoundError(
                f"{path} is a folder without {RUN_WEIGHTS_FILE}: give a training run folder (finished), "
                "a .weights.h5 file or a PyTorch checkpoint."
            )
        return inner
    return path


def validate_weights_argument(model_name: str, weights) -> str | None:
    """Checks a factory's ``weights`` argument without building or downloading anything.

    Returns:
        None for ``weights=None``, "path" for an existing file or run folder, or the registered
        dataset name.

    Raises:
        NoPretrainedWeightsError: a dataset name the model has no weights for (says what exists).
        ValueError: a value that is neither a path nor a name, or a path that does not exist.
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
        return get_weights_entry(model_name, weights).dataset
    raise ValueError(
        f"`weights` for {model_name} must be None, one of the registered datasets "
        f"({', '.join(available_weights(model_name)) or 'none for this model'}), or the path to an existing "
        f".weights.h5 file, PyTorch checkpoint or training run folder; {weights!r} does not exist."
    )


def _is_torch(path: str) -> bool:
    return path.endswith(_TORCH_SUFFIXES) or (not path.endswith(".h5") and is_torch_checkpoint(path))


def _model_classes(model) -> int | None:
    if naming.PREDICTIONS not in {layer.name for layer in model.layers}:
        return None
    return int(model.get_layer(naming.PREDICTIONS).units)


def _keras_file_classes(path: str, model) -> int | None:
    """Classes of the classifier in a ``.weights.h5`` file written from ``model``'s architecture.

    A full model of the same architecture is saved with a probe class count; the file then differs
    from it in the classifier's kernel and bias only, whose shapes give the count. None when the file
    differs in anything else (the strict load reports it).
    """
    probe = _donor(model, classes=1)
    target = _model_h5_shapes(probe)
    source = _h5_shapes(path)
    missing, unexpected, mismatched = _compare(source, target, allow_extra=False)
    if missing or unexpected:
        return None
    if not mismatched:
        return 1
    counts = {file[-1] for _, model_shape, file in mismatched if model_shape[-1] == 1 and len(file) == len(model_shape)}
    if len(mismatched) == 2 and len(counts) == 1:
        return counts.pop()
    return None


def _donor(model, classes: int):
    """A full model of ``model``'s architecture with ``classes`` classes (same layer names)."""
    spec = getattr(model, "arch_spec", None)
    if spec is None or not getattr(model, "build_options", None):
        raise ValueError(
            f"Model {model.name!r} was not built by autox3d_tf.models.build_model: load weights into a zoo "
            "model, or use keras' model.load_weights."
        )
    options = model.rebuild_kwargs()
    options.update(include_top=True, classes=int(classes), pooling=None, classifier_activation=None)
    return build_model(spec, input_shape=tuple(model.input_shape[1:]), **options)


def _assign_all(model, donor, skip: set[str]) -> tuple[list[str], int]:
    """Copies every weighted layer of ``model`` but ``skip`` from ``donor``, by name."""
    donor_layers = {layer.name: layer for layer in donor.layers}
    plan = []
    for layer in model.layers:
        if not layer.weights or layer.name in skip:
            continue
        source = donor_layers.get(layer.name)
        values = source.get_weights() if source is not None else None
        if values is None or [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise WeightsMismatchError(f"Layer {layer.name!r} of {model.name!r} has no counterpart in the weights.")
        plan.append((layer, values))
    for layer, values in plan:
        layer.set_weights(values)
    return [layer.name for layer, _ in plan], sum(len(values) for _, values in plan)


# Loading non-causal weights into a causal model: what the warning says (README, "Causal models").
NON_CAUSAL_WEIGHTS_WARNING = (
    "{model}: the weights {weights!r} were trained non-causal (every temporal convolution centred, "
    "squeeze-excitation on the whole clip); the causal model shifts each temporal kernel into the past, "
    "which changes its outputs: measured on X3D-XS trained on the synthetic motion set, top-1 fell from "
    "{measured}. Fine-tune the causal model (model.fit, or `autox3d train --causal`) before using it."
)
NON_CAUSAL_MEASURED = ("80.9% (mean of 3 seeds, chance 25%) to 35.4% as they are, and was 70.2% after 2 epochs "
                       "of causal fine-tuning (a causal model trained from scratch: 97.8%)")


def _weights_are_causal(weights) -> bool | None:
    """Whether ``weights`` come from a causal network: False for a registered dataset or a PyTorch
    checkpoint (the reference codes train non-causal), a run folder's ``spec.json`` says, None when
    the file does not tell (a bare ``.weights.h5``)."""
    path = os.fspath(weights)
    if not os.path.exists(path):
        return False  # a registered dataset name
    if os.path.isdir(path):
        try:
            with open(os.path.join(path, "spec.json"), encoding="utf-8") as f:
                return bool(json.load(f).get("causal", False))
        except (OSError, ValueError, AttributeError):
            return None
    if path.endswith(".h5"):
        return None
    return False


def load_pretrained(model, model_name: str, weights: str | os.PathLike) -> PretrainedReport:
    """Loads ``weights`` into a model built by `build_model` (called by every zoo factory).

    Args:
        model: the model (with or without its top, any number of classes).
        model_name: the zoo name, e.g. "X3D_S" (for dataset names).
        weights: a registered dataset name ("kinetics400"), a PyTorch checkpoint (``.pyth`` /
            ``.pth``, pytorchvideo or PySlowFast layout), a ``.weights.h5`` file, or a training run
            folder.

    Returns:
        A :class:`PretrainedReport`; its one-line summary is logged when something was left out.

    Raises:
        NoPretrainedWeightsError: a dataset name the model has no weights for.
        ValueError: an unknown ``weights`` value, or a model not built by `build_model`.
        WeightsMismatchError: the weights do not fit the model's backbone (nothing is assigned).
    """
    kind = validate_weights_argument(model_name, weights)
    if kind is None:
        raise ValueError("`weights` is None: nothing to load.")
    if getattr(model, "build_options", {}).get("fold_batch_norm"):
        raise ValueError("Load pretrained weights into the unfolded model, then call fuse_for_inference.")
    spec = getattr(model, "arch_spec", None)
    if spec is not None and getattr(spec, "causal", False) and _weights_are_causal(weights) is False:
        warnings.warn(NON_CAUSAL_WEIGHTS_WARNING.format(model=model_name, weights=os.fspath(weights),
                                                        measured=NON_CAUSAL_MEASURED), UserWarning, stacklevel=4)
    if kind == "path":
        return _load_file(model, weights, resolve_weights_path(weights))
    path = os.fspath(get_weights_file(model_name, kind))
    hint = f"The cached file {path} is unusable: delete it and it is fetched and converted again."
    try:
        return _load_file(model, weights, path)
    except WeightsMismatchError:
        raise  # its message says where the cache is
    except NonFiniteWeightsError as err:
        raise NonFiniteWeightsError(f"{err} {hint}", err.tensors) from err
    except ValueError as err:  # the cached conversion itself is damaged
        raise ValueError(f"{err} {hint}") from err


def _load_file(model, weights: str | os.PathLike, path: str) -> PretrainedReport:
    """:func:`load_pretrained` of one resolved file."""
    torch_format = _is_torch(path)
    if torch_format:
        state_dict = extract_state_dict(load_torch_checkpoint(path))
        check_finite(state_dict, path)
        source_classes = checkpoint_num_classes(state_dict)
    else:
        state_dict = None
        source_classes = _keras_file_classes(path, model)
    model_classes = _model_classes(model)
    report = PretrainedReport(source=os.fspath(weights), file=path, format="torch" if torch_format else "keras",
                              source_classes=source_classes, model_classes=model_classes)

    def load_into(target) -> None:
        if torch_format:
            load_torch_weights(target, state_dict)
        else:
            load_keras_weights(target, path)

    if source_classes is None or model_classes == source_classes:
        # The weights' own model (or a file without a classifier, or of another architecture:
        # the strict load reports what differs).
        load_into(model)
        report.loaded_layers = [layer.name for layer in model.layers if layer.weights]
        report.loaded_tensors = len(model.weights)
        return report
    donor = _donor(model, source_classes)
    load_into(donor)
    skip = {naming.PREDICTIONS} if model_classes is not None else set()
    report.loaded_layers, report.loaded_tensors = _assign_all(model, donor, skip)
    report.skipped = sorted(skip)
    if report.skipped:
        logger.warning(report.summary())
    return report
