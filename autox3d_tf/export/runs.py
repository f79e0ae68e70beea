"""Exporting a training run or a zoo model: SavedModel (+ TFLite for the small models) in one folder.

    OUT/saved_model/1/     the SavedModel (TF Serving: --model_base_path=OUT/saved_model)
    OUT/model.tflite       TFLite (X3D-XS / S, or when asked)
    OUT/stream.tflite      a causal model's one-frame streaming TFLite (with TFLite; its SavedModel
                           also gets the ``init_states`` / ``stream`` signatures: `autox3d_tf.export.streaming`)
    OUT/model_int8.tflite  quantised TFLite (``quantize=("int8", "float16", "dynamic")``, each its own file)
    OUT/model.onnx         ONNX (``formats=("onnx",)``, tf2onnx)
    OUT/openvino/model.xml OpenVINO IR (``formats=("openvino",)``), with model.bin
    OUT/labels.txt         class names, one per line, in index order
    OUT/export.json        what was exported: model, clip, classes, signature, files, sizes
"""

from __future__ import annotations

import json
import os
import time
from typing import Sequence

import keras

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.models.networks import can_fuse, spec_from_dict

__all__ = ["export_architecture", "export_model", "export_run"]


def export_model(
    model: keras.Model,
    out_dir: str | os.PathLike,
    class_names: Sequence[str],
    *,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    top_k: int = 5,
    fuse: bool = True,
    tflite: bool = False,
    version: int = 1,
    info: dict | None = None,
    rate: int | None = None,
    quantize: Sequence[str] = (),
    calibration=None,
    calibration_steps: int = 32,
    formats: Sequence[str] = (),
) -> dict:
    """Exports ``model`` into ``out_dir`` (layout in the module docstring); returns ``export.json``.

    ``spec`` defaults to the architecture the model carries (any `build_model` / zoo model). A
    consensus model (`autox3d_tf.models.segment_consensus`) needs ``rate``, its snippets' frame
    rate; ``frames`` is then per snippet and the signature samples K snippets.

    ``quantize``: quantised TFLite files to write besides the float one ("float16", "dynamic",
    "int8"; `autox3d_tf.export.tflite.export_tflite`), each checked against the float file on
    held-out synthetic clips (top-1 agreement, logit error, in ``export.json``); ``calibration``:
    int8's representative clips (default: synthetic clips). ``formats``: "onnx", "openvino"
    (`autox3d_tf.export.runtimes`)."""
    from autox3d_tf.export.formats import FORMATS, QUANTIZE_MODES
    from autox3d_tf.export.saved_model import SIGNATURE, export_saved_model, find_xla_ops
    from autox3d_tf.export.tflite import export_tflite
    from autox3d_tf.models.consensus import consensus_parts

    quantize = [q for q in dict.fromkeys(quantize or ()) if q]
    formats = [f for f in dict.fromkeys(formats or ()) if f]
    for mode in quantize:
        if mode not in QUANTIZE_MODES:
            raise ValueError(f"unknown quantisation {mode!r}: choose from {', '.join(QUANTIZE_MODES)}")
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}: choose from {', '.join(FORMATS)}")
    tflite = tflite or bool(quantize)
    t0 = time.time()
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    saved = os.path.join(out_dir, "saved_model", str(int(version)))
    arch = spec if spec is not None else getattr(model, "arch_spec", None)
    causal = isinstance(arch, ArchSpec) and arch.causal and consensus_parts(model) is None
    if causal:
        from autox3d_tf.export.streaming import export_stream_saved_model

        export_stream_saved_model(model, saved, class_names, spec=spec, frames=frames, crop=crop, top_k=top_k,
                                  fuse=fuse)
    else:
        export_saved_model(model, saved, class_names, spec=spec, frames=frames, crop=crop, top_k=top_k, fuse=fuse,
                           rate=rate)
    xla = find_xla_ops(saved)
    if xla:
        raise RuntimeError(f"the exported graph holds XLA-only ops: {xla}")
    with open(os.path.join(out_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    result = {
        **(info or {}),
        "saved_model": saved,
        "signature": SIGNATURE,
        "input": {"name": "frames", "dtype": "uint8", "shape": [None, None, None, None, 3]},
        "outputs": ["probabilities", "top_k_indices", "top_k_scores", "top_k_labels"],
        "network_input": {"frames": frames, "crop": crop},
        "segments": getattr(consensus_parts(model), "segments", 1),
        "classes": list(class_names),
        "top_k": int(min(top_k, len(class_names))),
        "fused": bool(fuse),
    }
    if causal:
        from autox3d_tf.export.streaming import INIT_SIGNATURE, STREAM_SIGNATURE

        result["stream_signatures"] = [INIT_SIGNATURE, STREAM_SIGNATURE]
    if tflite:
        path = export_tflite(model, os.path.join(out_dir, "model.tflite"), spec=spec, frames=frames, crop=crop,
                             top_k=top_k, fuse=fuse)
        result["tflite"] = path
        result["tflite_bytes"] = os.path.getsize(path)
        result["tflite_input"] = {"name": "frames", "dtype": "uint8", "shape": [1, frames, crop, crop, 3]}
        if causal:
            from autox3d_tf.export.streaming import export_stream_tflite

            result["stream_tflite"] = export_stream_tflite(model, os.path.join(out_dir, "stream.tflite"), spec=spec,
                                                           crop=crop, fuse=fuse)
        result.update(_quantized_files(model, out_dir, path, quantize, calibration, calibration_steps,
                                       dict(spec=spec, frames=frames, crop=crop, top_k=top_k, fuse=fuse)))
    result.update(_runtime_files(model, out_dir, formats, dict(spec=spec, frames=frames, crop=crop, fuse=fuse)))
    result["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(out_dir, "export.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result


def _quantized_files(model, out_dir: str, float_path: str, modes: Sequence[str], calibration, steps: int,
                     kw: dict) -> dict:
    """The quantised TFLite files, their XNNPACK coverage and their agreement with the float file."""
    from autox3d_tf.export.tflite import compare_outputs, export_tflite, synthetic_clips, undelegated_ops

    result: dict = {"tflite_undelegated_ops": undelegated_ops(float_path)}
    if not modes:
        return result
    t, c = model_input(model, kw, 0), model_input(model, kw, 1)
    held_out = synthetic_clips(t, c, count=16, seed=12345)
    result["tflite_quantized"] = {}
    for mode in modes:
        path = export_tflite(model, os.path.join(out_dir, f"model_{mode}.tflite"), quantize=mode,
                             calibration=calibration if mode == "int8" else None, calibration_steps=steps, **kw)
        result["tflite_quantized"][mode] = {
            "path": path,
            "bytes": os.path.getsize(path),
            "undelegated_ops": undelegated_ops(path),
            "vs_float_on_synthetic": compare_outputs(float_path, path, held_out),
        }
    return result


def model_input(model, kw: dict, which: int) -> int:
    """The clip's frames (``which=0``) or crop (1) an export sees: ``kw``'s, else the model's."""
    from autox3d_tf.models.consensus import consensus_parts

    value = kw.get("frames") if which == 0 else kw.get("crop")
    if value:
        return int(value)
    parts = consensus_parts(model)
    shape = (parts.network if parts is not None else model).input_shape
    return int(shape[1] if which == 0 else shape[2])


def _runtime_files(model, out_dir: str, formats: Sequence[str], kw: dict) -> dict:
    from autox3d_tf.export.runtimes import export_onnx, export_openvino

    result: dict = {}
    if "onnx" in formats:
        result["onnx"] = export_onnx(model, os.path.join(out_dir, "model.onnx"), **kw)
    if "openvino" in formats:
        result["openvino"] = export_openvino(model, os.path.join(out_dir, "openvino", "model.xml"), **kw)
    return result


def calibration_for(source: str | os.PathLike | None, frames: int, crop: int, rate: int, *, count: int = 32,
                    split: str | None = None):
    """int8 calibration clips from ``source`` (`autox3d_tf.export.tflite.calibration_clips`), or None
    (the synthetic default) without one."""
    if not source:
        return None
    from autox3d_tf.export.tflite import calibration_clips

    return calibration_clips(source, frames, crop, rate=rate, count=count, split=split)


def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    tflite: bool | str = "auto",
    frames: int | None = None,
    crop: int | None = None,
    top_k: int = 5,
    fuse: bool = True,
    weights: str | os.PathLike | None = None,
    quantize: Sequence[str] = (),
    calibration_data: str | os.PathLike | None = None,
    calibration_split: str | None = None,
    calibration_steps: int = 32,
    formats: Sequence[str] = (),
) -> dict:
    """Exports a training run (``autox3d train``'s folder) to ``out_dir`` (default
    ``RUN/export``). The network sees the run's ``frames`` x test crop unless overridden;
    ``tflite="auto"`` converts the runs of X3D-XS / S (clip defaults) to TFLite too, not those
    trained with temporal segments (exported as their consensus model, K snippets at the run's rate).
    ``quantize`` / ``formats``: as :func:`export_model`; int8 calibrates on ``calibration_data``
    (annotation file, folder or TFRecords; ``calibration_split`` of a Kinetics CSV) at the run's clip,
    default synthetic clips."""
    from autox3d_tf.export.tflite import TFLITE_MODELS
    from autox3d_tf.training.loops import load_trained_model

    model, config = load_trained_model(run_dir, weights=weights)
    clip = config["clip"]
    spec = spec_from_dict(config["spec"])
    segments = int(config.get("segments", 1))
    fuse = fuse and can_fuse(spec)
    if tflite == "auto":
        tflite = config["model"] in TFLITE_MODELS and segments == 1
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.join(os.fspath(run_dir), "export")
    info = {"run_dir": os.fspath(run_dir), "model": config["model"], "spec_name": spec.name,
            "shuffle_frames": bool(config.get("shuffle_frames", False)), "rate": clip["rate"]}
    frames, crop = frames or clip["frames"], crop or clip["test_crop"]
    if (quantize or formats) and segments > 1:
        raise ValueError(f"{run_dir} was trained with {segments} temporal segments: quantised TFLite, ONNX and "
                         "OpenVINO exports take plain networks only")
    calibration = calibration_for(calibration_data, frames, crop, clip["rate"], count=calibration_steps,
                                  split=calibration_split) if "int8" in (quantize or ()) else None
    return export_model(model, out_dir, config["classes"], spec=spec, frames=frames, crop=crop, top_k=top_k,
                        fuse=fuse, tflite=bool(tflite), info=info, rate=clip["rate"], quantize=quantize,
                        calibration=calibration, calibration_steps=calibration_steps, formats=formats)


def export_architecture(
    model: str | None = "X3D_XS",
    out_dir: str | os.PathLike | None = None,
    *,
    spec: str | os.PathLike | ArchSpec | None = None,
    weights: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    tflite: bool | str = "auto",
    frames: int | None = None,
    crop: int | None = None,
    top_k: int = 5,
    fuse: bool = True,
    quantize: Sequence[str] = (),
    calibration_data: str | os.PathLike | None = None,
    calibration_split: str | None = None,
    calibration_steps: int = 32,
    formats: Sequence[str] = (),
) -> dict:
    """Exports a zoo model (or an `ArchSpec`, a JSON path or a spec, at ``model``'s clip) with
    ``weights`` (a ``.weights.h5`` path or a dataset name such as ``"kinetics400"``; None: random).

    ``class_names`` default to Kinetics-400's; the network sees ``frames`` x ``crop`` (default: the
    model's clip and test crop); ``out_dir`` defaults to ``export/<spec name>``; ``tflite="auto"``
    converts X3D-XS / S. ``quantize``, ``formats`` and the calibration: as :func:`export_run`."""
    from autox3d_tf.arch.catalog import architecture_config, canonical_name
    from autox3d_tf.export.tflite import TFLITE_MODELS
    from autox3d_tf.models.builder import build_model
    from autox3d_tf.preprocessing import kinetics400_classes
    from autox3d_tf.zoo import get_model

    name = canonical_name(model or "X3D_XS")
    cfg = architecture_config(name)
    names = list(class_names) if class_names else list(kinetics400_classes())
    frames = frames or cfg.frames
    crop = crop or cfg.test_crop
    shape = (frames, crop, crop, 3)
    if spec is not None:
        spec = spec if isinstance(spec, ArchSpec) else ArchSpec.load(os.fspath(spec))
        network = build_model(spec, input_shape=shape, classes=len(names), name=spec.name)
        if weights:
            network.load_weights(os.fspath(weights))
    else:
        network = get_model(name, weights=weights, classes=len(names), input_shape=shape)
    arch = network.arch_spec
    if tflite == "auto":
        tflite = name in TFLITE_MODELS and spec is None
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.join("export", arch.name)
    info = {"model": name, "spec_name": arch.name, "weights": None if weights is None else os.fspath(weights)}
    calibration = calibration_for(calibration_data, frames, crop, cfg.sampling_rate, count=calibration_steps,
                                  split=calibration_split) if "int8" in (quantize or ()) else None
    return export_model(network, out_dir, names, frames=frames, crop=crop, top_k=top_k, fuse=fuse,
                        tflite=bool(tflite), info=info, quantize=quantize, calibration=calibration,
                        calibration_steps=calibration_steps, formats=formats)
