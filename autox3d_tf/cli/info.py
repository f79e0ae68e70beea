"""params, GMACs, input spec and a per-stage table of a model.

    autox3d info X3D_S
    autox3d info X3D_M --crop test --json
    autox3d info X3D_XS --input-shape 8 224 224
    autox3d info runs/search/arch.json          # an ArchSpec JSON (at its own clip)
    autox3d info model.keras                    # a saved model: the architecture it carries

MACs are counted on the built Keras model in fvcore's convention (see `autox3d_tf.flops`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from autox3d_tf.workflows.json_output import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model name, e.g. X3D_S (case-insensitive; see `list_models()`), an ArchSpec "
                        "JSON file, or a .keras file saved from a model of this package")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--input-shape",
        nargs=3,
        type=int,
        metavar=("FRAMES", "HEIGHT", "WIDTH"),
        help="count for this clip instead of the model's default",
    )
    shape.add_argument(
        "--crop",
        choices=("train", "test"),
        default="train",
        help="use the model's train (default) or test crop with its default clip length",
    )


def _fmt_shape(shape) -> str:
    return " x ".join(str(d) for d in shape) if shape else "-"


def _build(name: str, input_shape: tuple[int, int, int] | None, crop: str):
    """(model, its clip config) for a zoo name, an ArchSpec JSON or a ``.keras`` file."""
    import os

    from autox3d_tf.arch.catalog import ModelConfig
    from autox3d_tf.arch.spec import ArchSpec
    from autox3d_tf.models import build_model
    from autox3d_tf.zoo import get_model_config, get_model

    if not (name.endswith((".json", ".keras")) or os.path.exists(name)):
        config = get_model_config(name)  # ValueError naming the valid models
        if input_shape is not None:
            frames, height, width = (int(d) for d in input_shape)
        else:
            size = config.test_crop if crop == "test" else config.train_crop
            frames, height, width = config.frames, size, size
        return get_model(config.name, input_shape=(frames, height, width, 3)), config
    if not os.path.isfile(name):
        raise ValueError(f"{name}: no such file")
    if name.endswith(".keras"):
        import keras

        model = keras.saving.load_model(name, compile=False)
        spec = getattr(model, "arch_spec", None)
        if spec is None:
            raise ValueError(f"{name}: the model carries no ArchSpec (it was not built by autox3d_tf)")
        if input_shape is not None:
            model = build_model(spec, input_shape=(*input_shape, 3), **model.rebuild_kwargs())
    else:
        spec = ArchSpec.load(name)
        shape = (*input_shape, 3) if input_shape is not None else None
        model = build_model(spec, input_shape=shape)
    frames, size = spec.input_frames, spec.input_size
    config = ModelConfig(name=spec.name, family="spec", frames=frames, sampling_rate=1, train_crop=size,
                         test_crop=size, train_scale=(size, size), description=spec.notes or f"ArchSpec {spec.name}")
    return model, config


def collect(name: str, input_shape: tuple[int, int, int] | None = None, crop: str = "train") -> dict[str, Any]:
    """Everything `autox3d info` prints, as a JSON-ready dict (raises ValueError on bad input).

    ``name`` is a zoo model, an ArchSpec JSON file or a ``.keras`` file; the architecture is read
    from the built (or loaded) model."""
    from autox3d_tf import flops

    model, config = _build(name, input_shape, crop)
    frames, height, width = (int(d) for d in model.input_shape[1:4])
    spec = model.arch_spec
    stages = flops.stage_stats(model)
    macs = sum(s.macs for s in stages)
    return {
        "model": config.name,
        "family": config.family,
        "description": config.description,
        "input_shape": [frames, height, width, 3],
        "architecture": {"name": spec.name, "space": spec.space, "widths": list(spec.widths),
                         "depths": list(spec.depths), "strides": [st.stride for st in spec.stages],
                         "blocks": [_stage_blocks(st) for st in spec.stages],
                         "stem_temporal_kernel": spec.stem_temporal_kernel,
                         "head_width": spec.head_width, "head_hidden": spec.head_hidden,
                         "head_activation": spec.head_activation},
        "params": flops.count_params(model),
        "macs": macs,
        "gmacs": macs / 1e9,
        "macs_convention": "fvcore (one multiply-add = 1; conv, linear, batch norm in eval mode), batch 1",
        "input": {
            "frames": config.frames,
            "sampling_rate": config.sampling_rate,
            "train_crop": config.train_crop,
            "test_crop": config.test_crop,
            "train_scale": list(config.train_scale),
            "mean": list(config.mean),
            "std": list(config.std),
            "pixel_range": [0.0, 1.0],
            "num_classes": config.num_classes,
        },
        "stages": [
            {
                "stage": s.name,
                "blocks": s.blocks,
                "width": s.width,
                "output_shape": list(s.output_shape) if s.output_shape is not None else None,
                "params": s.params,
                "macs": s.macs,
                "gmacs": s.macs / 1e9,
            }
            for s in stages
        ],
    }


def _stage_blocks(stage) -> str:
    """The distinct computing blocks of a stage, e.g. "3x3x3 x2.25 se | 3x3x3 x2.25" (X3D) or
    "3x3x3 inner 96 relu pool" (E3D)."""
    kinds = []
    for block in stage.blocks:
        if block.is_skip:
            continue
        width = f"inner {block.inner}" if block.inner is not None else f"x{block.expansion:g}"
        parts = [block.type, width]
        parts += [p for p in (block.attention, block.activation, block.shortcut) if p not in ("none", "swish", "projection")]
        text = " ".join(parts)
        if text not in kinds:
            kinds.append(text)
    return " | ".join(kinds)


def format_text(info: dict[str, Any]) -> str:
    """The human-readable report of `collect`'s dict."""
    inp = info["input"]
    lines = [
        f"{info['model']}  ({info['description'] or info['family']})",
        f"  params        {info['params']:,}",
        f"  GMACs         {info['gmacs']:.3f}  (fvcore convention, batch 1, input {_fmt_shape(info['input_shape'])})",
        f"  clip          {inp['frames']} frames x sampling rate {inp['sampling_rate']}",
        f"  crop          train {inp['train_crop']}, test {inp['test_crop']}, "
        f"train scale jitter [{inp['train_scale'][0]}, {inp['train_scale'][1]}]",
        f"  normalise     [0, 1] pixels, mean {tuple(inp['mean'])}, std {tuple(inp['std'])}",
        f"  classes       {inp['num_classes']}",
    ]
    arch = info.get("architecture", {})
    if arch.get("space") == "e3d":  # E3D's per-stage kernels and bottlenecks are not in the table
        for i, blocks in enumerate(arch["blocks"], start=1):
            lines.append(f"  stage{i}        {blocks}, stride {arch['strides'][i - 1]}")
    lines.append("")
    header = ("stage", "blocks", "width", "output (T x H x W x C)", "params", "GMACs")
    rows = [
        (
            s["stage"],
            str(s["blocks"]) if s["blocks"] else "-",
            str(s["width"]) if s["width"] is not None else "-",
            _fmt_shape(s["output_shape"]),
            f"{s['params']:,}",
            f"{s['gmacs']:.3f}",
        )
        for s in info["stages"]
    ]
    rows.append(("total", "", "", "", f"{info['params']:,}", f"{info['gmacs']:.3f}"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {1, 2, 4, 5}

    def fmt(row) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines.append(fmt(header))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        info = collect(args.model, input_shape=args.input_shape, crop=args.crop)
    except ValueError as err:
        message = " ".join(str(err).split())
        print(f"autox3d info: error: {message}", file=sys.stderr)
        return 2
    if args.json:
        print_json(info, indent=2)
    else:
        print(format_text(info))
    return 0
