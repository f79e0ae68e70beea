"""Exporting a training run or a zoo model: SavedModel (+ TFLite for the small models) in one folder.

    OUT/saved_model/1/     the SavedModel (TF Serving: --model_base_path=OUT/saved_model)
    OUT/model.tflite       TFLite (X3D-XS / S, or when asked)
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
) -> dict:
    """Exports ``model`` into ``out_dir`` (layout in the module docstring); returns ``export.json``.

    ``spec`` defaults to the architecture the model carries (any `build_model` / zoo model). A
    consensus model (`autox3d_tf.models.segment_consensus`) needs ``rate``, its snippets' frame
    rate; ``frames`` is then per snippet and the signature samples K snippets."""
    from autox3d_tf.export.saved_model import SIGNATURE, export_saved_model, find_xla_ops
    from autox3d_tf.export.tflite import export_tflite
    from autox3d_tf.models.consensus import consensus_parts

    t0 = time.time()
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    saved = os.path.join(out_dir, "saved_model", str(int(version)))
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
    if tflite:
        path = export_tflite(model, os.path.join(out_dir, "model.tflite"), spec=spec, frames=frames, crop=crop,
                             top_k=top_k, fuse=fuse)
        result["tflite"] = path
        result["tflite_bytes"] = os.path.getsize(path)
        result["tflite_input"] = {"name": "frames", "dtype": "uint8", "shape": [1, frames, crop, crop, 3]}
    result["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(out_dir, "export.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result


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
) -> dict:
    """Exports a training run (``autox3d train``'s folder) to ``out_dir`` (default
    ``RUN/export``). The network sees the run's ``frames`` x test crop unless overridden;
    ``tflite="auto"`` converts the runs of X3D-XS / S (clip defaults) to TFLite too, not those
    trained with temporal segments (exported as their consensus model, K snippets at the run's rate)."""
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
    return export_model(model, out_dir, config["classes"], spec=spec, frames=frames or clip["frames"],
                        crop=crop or clip["test_crop"], top_k=top_k, fuse=fuse, tflite=bool(tflite), info=info,
                        rate=clip["rate"])


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
) -> dict:
    """Exports a zoo model (or an `ArchSpec`, a JSON path or a spec, at ``model``'s clip) with
    ``weights`` (a ``.weights.h5`` path or a dataset name such as ``"kinetics400"``; None: random).

    ``class_names`` default to Kinetics-400's; the network sees ``frames`` x ``crop`` (default: the
    model's clip and test crop); ``out_dir`` defaults to ``export/<spec name>``; ``tflite="auto"``
    converts X3D-XS / S."""
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
    return export_model(network, out_dir, names, frames=frames, crop=crop, top_k=top_k, fuse=fuse,
                        tflite=bool(tflite), info=info)
