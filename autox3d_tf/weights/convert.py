"""PyTorch X3D checkpoints (pytorchvideo or PySlowFast key layout) and E3D state dicts (tinynas
``Cnn3DNet``, see `autox3d_tf.weights.e3d_layout`) to Keras weights, strictly.

Every weighted Keras layer of a model built by :func:`autox3d_tf.models.builder.build_model`
names the PyTorch tensors it needs (the layer names, `autox3d_tf.arch.naming`, follow
pytorchvideo's ``create_x3d`` one to one); the checkpoint must hold exactly those tensors, with
exactly those shapes. A missing, extra or mis-shaped tensor raises :class:`WeightsMismatchError`
listing the offending keys, and nothing is assigned: there is never a silent partial load.

Key layouts (``S`` = stage from 1, ``B`` = block from 0, ``H`` = number of stages + 1):

=================  ====================================  =======================================
Keras layer        pytorchvideo (``create_x3d``)         PySlowFast (``X3D``)
=================  ====================================  =======================================
stem_conv_spatial  blocks.0.conv.conv_t                  s1.pathway0_stem.conv_xy
stem_conv_temporal blocks.0.conv.conv_xy                 s1.pathway0_stem.conv
stem_bn            blocks.0.norm                         s1.pathway0_stem.bn
..._conv_a / bn_a  blocks.S.res_blocks.B.branch2.conv_a  sS+1.pathway0_resB.branch2.a / a_bn
                   / norm_a
..._conv_b / bn_b  ...branch2.conv_b / norm_b.0          ...branch2.b / b_bn
..._se_reduce      ...branch2.norm_b.1.block.0           ...branch2.se.fc1
..._se_expand      ...branch2.norm_b.1.block.2           ...branch2.se.fc2
..._conv_c / bn_c  ...branch2.conv_c / norm_c            ...branch2.c / c_bn
..._shortcut_conv  blocks.S.res_blocks.B.branch1_conv    sS+1.pathway0_resB.branch1
..._shortcut_bn    ...branch1_norm                       ...branch1_bn
head_conv          blocks.H.pool.pre_conv                head.conv_5
head_bn            blocks.H.pool.pre_norm                head.conv_5_bn
head_dense         blocks.H.pool.post_conv               head.lin_5
predictions        blocks.H.proj                         head.projection
=================  ====================================  =======================================

Quirks handled:

- pytorchvideo's stem names are crossed: ``conv_t`` is the spatial 1x3x3 convolution and
  ``conv_xy`` the temporal 5x1x1 one (PySlowFast: ``conv_xy`` spatial, ``conv`` temporal).
- PySlowFast always puts a BatchNorm on a projection shortcut, including stage 1's
  (24 -> 24 channels, stride 2), where pytorchvideo and this model have a bare 1x1x1
  convolution. For inference that BN is folded exactly: with ``scale = gamma / sqrt(var + eps)``
  and ``shift = beta - mean * scale``, the shortcut kernel's output columns are multiplied by
  ``scale`` and ``shift`` is added to the block's ``bn_c`` beta (both branches are summed before
  the block's ReLU). The folded model computes the same function in inference mode; its
  training-mode BN statistics differ from PySlowFast's. A log line says when this happens.
- ``num_batches_tracked`` buffers are ignored; a ``module.`` prefix (DataParallel) is stripped.
- PyTorch convolution weights are ``(out, in, t, h, w)``; Keras kernels are
  ``(t, h, w, in, out)`` (Conv3D), ``(t, h, w, C, 1)`` (DepthwiseConv3D) and ``(in, out)``
  (PointwiseConv3D, Dense).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections import OrderedDict
from typing import Any, Callable, Mapping

import numpy as np

from autox3d_tf.arch import naming
from autox3d_tf.arch.catalog import canonical_name, get_spec
from autox3d_tf.models.builder import build_model
from autox3d_tf.weights.e3d_layout import E3D_CLASSIFIER, E3D_LAYOUT, e3d_torch_layer, is_e3d_key
from autox3d_tf.weights.torch_reader import CheckpointError, load_torch_checkpoint

__all__ = [
    "LAYOUTS",
    "WeightsMismatchError",
    "NonFiniteWeightsError",
    "nonfinite_tensors",
    "check_finite",
    "remove_stale_temporaries",
    "extract_state_dict",
    "detect_layout",
    "checkpoint_num_classes",
    "convert_state_dict",
    "load_torch_weights",
    "convert_checkpoint",
]

logger = logging.getLogger("autox3d_tf.weights")

LAYOUTS = ("pytorchvideo", "pyslowfast", E3D_LAYOUT)
BN_EPSILON = 1e-5  # PyTorch's default, used by every X3D checkpoint

_BN_VARS = ("gamma", "beta", "moving_mean", "moving_variance")
_BN_TORCH = ("weight", "bias", "running_mean", "running_var")

# Block layer roles (`autox3d_tf.arch.naming`) -> module paths inside a residual block.
_PTV_BLOCK = {
    naming.CONV_A: "branch2.conv_a",
    naming.BN_A: "branch2.norm_a",
    naming.CONV_B: "branch2.conv_b",
    naming.BN_B: "branch2.norm_b.0",
    naming.SE_REDUCE: "branch2.norm_b.1.block.0",
    naming.SE_EXPAND: "branch2.norm_b.1.block.2",
    naming.CONV_C: "branch2.conv_c",
    naming.BN_C: "branch2.norm_c",
    naming.SHORTCUT_CONV: "branch1_conv",
    naming.SHORTCUT_BN: "branch1_norm",
}
_PSF_BLOCK = {
    naming.CONV_A: "branch2.a",
    naming.BN_A: "branch2.a_bn",
    naming.CONV_B: "branch2.b",
    naming.BN_B: "branch2.b_bn",
    naming.SE_REDUCE: "branch2.se.fc1",
    naming.SE_EXPAND: "branch2.se.fc2",
    naming.CONV_C: "branch2.c",
    naming.BN_C: "branch2.c_bn",
    naming.SHORTCUT_CONV: "branch1",
    naming.SHORTCUT_BN: "branch1_bn",
}
_BLOCK_ROLE_KIND = {
    naming.CONV_A: "pointwise",
    naming.CONV_C: "pointwise",
    naming.SHORTCUT_CONV: "pointwise",
    naming.CONV_B: "depthwise",
    naming.SE_REDUCE: "conv_dense",
    naming.SE_EXPAND: "conv_dense",
}  # the others are BatchNorms
_TOP_LAYERS = (naming.HEAD_DENSE, naming.PREDICTIONS)


class WeightsMismatchError(ValueError):
    """The checkpoint's tensors do not match the model's weights one to one.

    Attributes:
        missing: PyTorch keys the model needs that the checkpoint lacks.
        unexpected: checkpoint keys that no model weight uses.
        mismatched: ``(key, expected_shape, found_shape)`` triples.
        unmapped: Keras layers with weights but no known PyTorch counterpart.
    """

    def __init__(self, message: str, missing=(), unexpected=(), mismatched=(), unmapped=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        self.unmapped = list(unmapped)


class NonFiniteWeightsError(ValueError):
    """Weights hold NaN or infinite values (a diverged run, a corrupt file): they would predict
    garbage without a word. ``tensors`` names them."""

    def __init__(self, message: str, tensors=()):
        super().__init__(message)
        self.tensors = list(tensors)


def nonfinite_tensors(tensors: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point arrays in ``tensors`` that hold a NaN or an infinity."""
    bad = []
    for name, value in tensors.items():
        array = np.asarray(value)
        if array.dtype.kind in "fc" and array.size and not np.isfinite(array).all():
            bad.append(name)
    return bad


def check_finite(tensors: Mapping[str, Any], source: str) -> None:
    """Raises :class:`NonFiniteWeightsError` naming ``source`` and its non-finite tensors."""
    bad = nonfinite_tensors(tensors)
    if bad:
        raise NonFiniteWeightsError(
            f"{source}: {len(bad)} tensor(s) hold NaN or Inf values: {_list(bad, 10)}. These weights would "
            "predict garbage; nothing was loaded.", bad)


def _list(items, limit: int = 20) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def extract_state_dict(checkpoint: Any) -> "OrderedDict[str, np.ndarray]":
    """The model's state dict from a loaded checkpoint.

    Accepts ``{"model_state": sd}`` (pytorchvideo / PySlowFast), ``{"state_dict": sd}``,
    ``{"model": sd}`` or a bare state dict. Drops ``num_batches_tracked`` buffers and strips a
    ``module.`` prefix. Values must be arrays (as returned by :func:`load_torch_checkpoint`).
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"A checkpoint must be a dict, got {type(checkpoint).__name__}.")
    sd = checkpoint
    for key in ("model_state", "state_dict", "model"):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            sd = checkpoint[key]
            break
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    not_arrays = []
    for key, value in sd.items():
        if not isinstance(key, str):
            not_arrays.append(repr(key))
            continue
        name = key[len("module.") :] if key.startswith("module.") else key
        if name.endswith("num_batches_tracked"):
            continue
        if not isinstance(value, np.ndarray):
            not_arrays.append(key)
            continue
        out[name] = value
    if not_arrays:
        raise CheckpointError(
            "The checkpoint's state dict holds entries that are not tensors: "
            f"{_list(not_arrays)}. Top-level keys: {_list(checkpoint.keys())}."
        )
    if not out:
        raise CheckpointError(f"The checkpoint holds no tensors. Top-level keys: {_list(checkpoint.keys())}.")
    return out


def detect_layout(state_dict: Mapping[str, Any]) -> str:
    """``"pytorchvideo"`` (keys ``blocks.N...``), ``"pyslowfast"`` (keys ``s1.``..``s5.``, ``head.``)
    or ``"e3d"`` (keys ``block_list.N...``, ``fc_linear.N...``)."""
    keys = list(state_dict)
    ptv = sum(k.startswith("blocks.") for k in keys)
    psf = sum(bool(re.match(r"^(s\d+|head)\.", k)) for k in keys)
    e3d = sum(is_e3d_key(k) for k in keys)
    if ptv and not psf and not e3d:
        return "pytorchvideo"
    if psf and not ptv and not e3d:
        return "pyslowfast"
    if e3d and not ptv and not psf:
        return E3D_LAYOUT
    raise CheckpointError(
        "Cannot tell the checkpoint's key layout (expected pytorchvideo 'blocks.0.conv.conv_t.weight' or "
        f"PySlowFast 's1.pathway0_stem.conv_xy.weight' style keys); first keys: {_list(keys, 8)}."
    )


def _torch_layer(layout: str, layer_name: str, num_stages: int) -> tuple[str, str] | None:
    """(PyTorch module path, role) for a Keras layer name, or None if unknown."""
    if layout == E3D_LAYOUT:
        return e3d_torch_layer(layer_name, num_stages)
    ptv = layout == "pytorchvideo"
    head = f"blocks.{num_stages + 1}." if ptv else "head."
    fixed = {
        naming.STEM_CONV_SPATIAL: ("blocks.0.conv.conv_t" if ptv else "s1.pathway0_stem.conv_xy", "conv3d"),
        naming.STEM_CONV_TEMPORAL: ("blocks.0.conv.conv_xy" if ptv else "s1.pathway0_stem.conv", "depthwise"),
        naming.STEM_BN: ("blocks.0.norm" if ptv else "s1.pathway0_stem.bn", "bn"),
        naming.HEAD_CONV: (head + ("pool.pre_conv" if ptv else "conv_5"), "pointwise"),
        naming.HEAD_BN: (head + ("pool.pre_norm" if ptv else "conv_5_bn"), "bn"),
        naming.HEAD_DENSE: (head + ("pool.post_conv" if ptv else "lin_5"), "conv_dense"),
        naming.PREDICTIONS: (head + ("proj" if ptv else "projection"), "linear"),
    }
    if layer_name in fixed:
        return fixed[layer_name]
    parsed = naming.parse_block_layer(layer_name)
    if parsed is None:
        return None
    stage, block, part = parsed
    if ptv:
        path = f"blocks.{stage}.res_blocks.{block}.{_PTV_BLOCK[part]}"
    else:
        path = f"s{stage + 1}.pathway0_res{block}.{_PSF_BLOCK[part]}"
    return path, _BLOCK_ROLE_KIND.get(part, "bn")


def _torch_shape(role: str, var_name: str, keras_shape: tuple) -> tuple:
    """The PyTorch shape that maps onto a Keras variable of ``keras_shape``."""
    if var_name == "bias" or role == "bn":
        return keras_shape
    if role == "conv3d":  # (t, h, w, in, out) <- (out, in, t, h, w)
        t, h, w, i, o = keras_shape
        return (o, i, t, h, w)
    if role == "depthwise":  # (t, h, w, C, 1) <- (C, 1, t, h, w)
        t, h, w, c, m = keras_shape
        return (c * m, 1, t, h, w)
    if role in ("pointwise", "conv_dense"):  # (in, out) <- (out, in, 1, 1, 1)
        i, o = keras_shape
        return (o, i, 1, 1, 1)
    if role == "linear":  # (in, out) <- (out, in)
        i, o = keras_shape
        return (o, i)
    raise AssertionError(role)


def _to_keras(role: str, var_name: str, value: np.ndarray, keras_shape: tuple) -> np.ndarray:
    if var_name == "bias" or role == "bn":
        out = value
    elif role == "conv3d":
        out = np.transpose(value, (2, 3, 4, 1, 0))
    elif role == "depthwise":
        out = np.transpose(value, (2, 3, 4, 0, 1))
    else:  # pointwise, conv_dense, linear
        out = value.reshape(value.shape[0], value.shape[1]).T
    return np.ascontiguousarray(out, dtype=np.float32).reshape(keras_shape)


def _num_stages(layer_names) -> int:
    stages = [parsed[0] for n in layer_names if (parsed := naming.parse_block_layer(n))]
    return max(stages) if stages else 4


def checkpoint_num_classes(state_dict: Mapping[str, np.ndarray], layout: str | None = None) -> int | None:
    """Number of classes of the checkpoint's classifier (None if it has none)."""
    layout = layout or detect_layout(state_dict)
    if layout == E3D_LAYOUT:
        value = state_dict.get(f"{E3D_CLASSIFIER}.weight")
        return int(value.shape[0]) if value is not None and value.ndim == 2 else None
    suffix = "proj.weight" if layout == "pytorchvideo" else "head.projection.weight"
    for key, value in state_dict.items():
        if key.endswith(suffix) and value.ndim == 2 and (layout == "pyslowfast" or key.startswith("blocks.")):
            return int(value.shape[0])
    return None


def _variable_name(var) -> str:
    name = getattr(var, "name", "") or ""
    return name.split("/")[-1].split(":")[0]


def convert_state_dict(
    state_dict: Mapping[str, np.ndarray],
    model,
    *,
    layout: str | None = None,
) -> tuple[dict[str, list[tuple[Any, np.ndarray]]], dict]:
    """Maps a PyTorch state dict onto ``model``'s variables, strictly.

    Args:
        state_dict: tensor name -> array (see :func:`extract_state_dict`).
        model: a Keras model from the zoo builder (with or without its top).
        layout: "pytorchvideo", "pyslowfast", "e3d" or None to detect it.

    Returns:
        ``(assignments, info)``: layer name -> list of (variable, value) pairs, and a dict with
        ``layout``, ``folded`` (blocks whose PySlowFast shortcut BN was folded), ``ignored_top``
        (checkpoint classifier keys skipped because the model has no top) and ``num_tensors``.

    Raises:
        WeightsMismatchError: missing, unexpected or mis-shaped tensors, or unmappable layers.
    """
    detected = detect_layout(state_dict)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS} or None, got {layout!r}.")
    if layout is not None and layout != detected:
        raise CheckpointError(f"The checkpoint's keys are in the {detected} layout, not {layout}.")
    layout = detected
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    num_stages = _num_stages(layers)

    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[tuple[str, tuple, tuple]] = []
    unmapped: list[str] = []
    assignments: dict[str, list[tuple[Any, np.ndarray]]] = {}

    for name, layer in layers.items():
        target = _torch_layer(layout, name, num_stages)
        if target is None:
            unmapped.append(name)
            continue
        path, role = target
        pairs = []
        for var in layer.weights:
            vname = _variable_name(var)
            keras_shape = tuple(int(d) for d in var.shape)
            if role == "bn":
                if vname not in _BN_VARS:
                    unmapped.append(f"{name}/{vname}")
                    continue
                tname = _BN_TORCH[_BN_VARS.index(vname)]
            elif vname in ("kernel", "bias"):
                tname = "weight" if vname == "kernel" else "bias"
            else:
                unmapped.append(f"{name}/{vname}")
                continue
            key = f"{path}.{tname}"
            expected = _torch_shape(role, vname, keras_shape)
            if key not in state_dict:
                missing.append(key)
                continue
            used.add(key)
            value = state_dict[key]
            if tuple(value.shape) != expected:
                mismatched.append((key, expected, tuple(value.shape)))
                continue
            pairs.append((var, _to_keras(role, vname, value, keras_shape)))
        assignments[name] = pairs

    # PySlowFast's BN on a shortcut that this model (like pytorchvideo) has without one.
    folded: list[str] = []
    for name in layers:
        parsed = naming.parse_block_layer(name)
        if not parsed or parsed[2] != naming.SHORTCUT_CONV:
            continue
        prefix = naming.block_prefix(parsed[0], parsed[1])
        if naming.block_layer(prefix, naming.SHORTCUT_BN) in layers:
            continue
        path = _torch_layer(layout, naming.block_layer(prefix, naming.SHORTCUT_BN), num_stages)[0]
        bn_keys = [f"{path}.{t}" for t in _BN_TORCH]
        present = [k for k in bn_keys if k in state_dict]
        if not present or layout != "pyslowfast":
            continue
        absent = [k for k in bn_keys if k not in state_dict]
        if absent:
            missing.extend(absent)
            continue
        used.update(bn_keys)
        gamma, beta, mean, var = (state_dict[k].astype(np.float64) for k in bn_keys)
        scale = gamma / np.sqrt(var + BN_EPSILON)
        shift = beta - mean * scale
        conv_pairs = assignments.get(name, [])
        bn_c = naming.block_layer(prefix, naming.BN_C)
        bn_pairs = assignments.get(bn_c, [])
        kernel = [i for i, (v, _) in enumerate(conv_pairs) if _variable_name(v) == "kernel"]
        beta_c = [i for i, (v, _) in enumerate(bn_pairs) if _variable_name(v) == "beta"]
        if not kernel or not beta_c:
            continue  # already reported as missing / mismatched
        k_var, k_val = conv_pairs[kernel[0]]
        if k_val.shape[-1] != scale.shape[0]:
            mismatched.append((bn_keys[0], (k_val.shape[-1],), tuple(gamma.shape)))
            continue
        conv_pairs[kernel[0]] = (k_var, (k_val.astype(np.float64) * scale[None, :]).astype(np.float32))
        b_var, b_val = bn_pairs[beta_c[0]]
        bn_pairs[beta_c[0]] = (b_var, (b_val.astype(np.float64) + shift).astype(np.float32))
        folded.append(prefix)

    # Classifier tensors of the checkpoint are expected extras when the model has no top.
    ignored_top: list[str] = []
    for top in _TOP_LAYERS:
        if top in layers:
            continue
        path = _torch_layer(layout, top, num_stages)[0]
        for key in (f"{path}.weight", f"{path}.bias"):
            if key in state_dict:
                used.add(key)
                ignored_top.append(key)

    unexpected = [k for k in state_dict if k not in used]
    if missing or unexpected or mismatched or unmapped:
        parts = [f"The {layout} checkpoint does not match model {model.name!r} ({len(state_dict)} tensors)."]
        if missing:
            parts.append(f"Missing ({len(missing)}): {_list(missing)}.")
        if unexpected:
            parts.append(f"Unexpected ({len(unexpected)}): {_list(unexpected)}.")
        if mismatched:
            shown = [f"{k} expected {e}, found {f}" for k, e, f in mismatched]
            parts.append(f"Wrong shape ({len(mismatched)}): {_list(shown)}.")
        if unmapped:
            parts.append(f"Keras layers with no PyTorch counterpart ({len(unmapped)}): {_list(unmapped)}.")
        parts.append("Nothing was loaded.")
        raise WeightsMismatchError(" ".join(parts), missing, unexpected, mismatched, unmapped)

    if folded:
        logger.info(
            "Folded PySlowFast's shortcut BatchNorm into the shortcut convolution and bn_c beta of %s "
            "(exact in inference mode).",
            ", ".join(folded),
        )
    info = {"layout": layout, "folded": folded, "ignored_top": ignored_top, "num_tensors": len(state_dict)}
    return assignments, info


def _as_state_dict(source: Any) -> "OrderedDict[str, np.ndarray]":
    """The state dict of a checkpoint path or a loaded checkpoint, every float tensor finite."""
    if isinstance(source, (str, os.PathLike)):
        state_dict = extract_state_dict(load_torch_checkpoint(source))
        check_finite(state_dict, os.fspath(source))
        return state_dict
    state_dict = extract_state_dict(source)
    check_finite(state_dict, "the checkpoint")
    return state_dict


def load_torch_weights(model, source: Any, *, layout: str | None = None) -> dict:
    """Loads a PyTorch X3D checkpoint into ``model`` (all tensors or none).

    Args:
        model: a zoo / builder model, with or without its top.
        source: a checkpoint path, a loaded checkpoint dict, or a state dict of arrays.
        layout: "pytorchvideo", "pyslowfast" or None to detect it from the keys.

    Returns:
        The info dict of :func:`convert_state_dict`.
    """
    state_dict = _as_state_dict(source)
    assignments, info = convert_state_dict(state_dict, model, layout=layout)
    for pairs in assignments.values():
        for var, value in pairs:
            var.assign(value)
    return info


_TMP_PREFIX = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(directory: str, suffix: str = ".weights.h5") -> list[str]:
    """Removes the ``.tmp-<pid>-*`` files a killed writer left in ``directory`` (those of a process
    that no longer runs); returns their paths."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(_TMP_PREFIX) and name.endswith(suffix)):
            continue
        pid = name[len(_TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid():
            continue
        if not pid.isdigit():  # the old unnamed form (.tmp-XXXX.weights.h5): only when an hour old
            try:
                import time

                if time.time() - os.path.getmtime(os.path.join(directory, name)) < 3600:
                    continue
            except OSError:
                continue
        try:
            os.remove(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
        except OSError:
            pass
    if removed:
        logger.info("Removed %d temporary file(s) left by an interrupted conversion in %s", len(removed), directory)
    return removed


def _atomic_save_weights(model, dst: str) -> None:
    """Saves ``model``'s weights to ``dst`` through ``.tmp-<pid>-*`` and a rename; temporaries of
    killed runs in that folder are removed first."""
    directory = os.path.dirname(os.path.abspath(dst)) or "."
    if os.path.isdir(dst):
        raise ValueError(f"{dst} is a directory; give a file name ending in '.weights.h5'.")
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=".weights.h5", dir=directory)
    os.close(fd)
    try:
        os.remove(tmp)  # Keras writes the file itself
        model.save_weights(tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model_name: str,
    *,
    layout: str | None = None,
    build: Callable[..., Any] | None = None,
    expected_classes: int | None = None,
) -> dict:
    """Converts a PyTorch checkpoint into a Keras ``.weights.h5`` file for a zoo model.

    The model is built with its top and as many classes as the checkpoint's classifier; the
    file is written to a temporary name next to ``dst`` and renamed into place, so ``dst`` is
    never half-written.

    Args:
        src: ``.pyth`` / ``.pth`` checkpoint (pytorchvideo or PySlowFast layout).
        dst: output path, must end in ``.weights.h5``.
        model_name: zoo model name, e.g. "X3D_S".
        layout: force a key layout (default: detected).
        build: optional model factory ``build(classes=...)`` (default: the catalogued architecture
            ``model_name`` built by `autox3d_tf.models.build_model`).
        expected_classes: when given, a checkpoint with another number of classes is an error
            (a ``WeightsMismatchError``) and nothing is written.

    Returns:
        Info dict: ``layout``, ``folded``, ``classes``, ``model``, ``num_tensors``, ``dst``.
    """
    dst = os.fspath(dst)
    if not dst.endswith(".weights.h5"):
        raise ValueError(f"The output file name must end in '.weights.h5' (Keras weights format), got {dst!r}.")
    state_dict = _as_state_dict(src)
    detected = detect_layout(state_dict)
    if layout is not None and layout != detected:
        raise CheckpointError(f"{os.fspath(src)}: the checkpoint's keys are in the {detected} layout, not {layout}.")
    layout = detected
    classes = checkpoint_num_classes(state_dict, layout)
    if classes is None:
        raise WeightsMismatchError(
            f"{os.fspath(src)} has no classifier ('proj.weight' / 'head.projection.weight'); cannot convert a "
            "headless checkpoint into a full model.",
        )
    if expected_classes is not None and classes != expected_classes:
        raise WeightsMismatchError(
            f"{os.fspath(src)} has {classes} classes, not the expected {expected_classes}; nothing was written.")
    if build is None:
        model_name = canonical_name(model_name)
        model = build_model(get_spec(model_name), classes=classes)
    else:
        model = build(classes=classes)
    info = load_torch_weights(model, state_dict, layout=layout)
    _atomic_save_weights(model, dst)
    info.update({"classes": classes, "model": model_name, "dst": dst})
    return info
