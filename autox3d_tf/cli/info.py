"""params, GMACs, input spec and a per-stage table of a model.

    autox3d info X3D_S
    autox3d info X3D_M --crop test --json
    autox3d info X3D_XS --input-shape 8 224 224

MACs are counted on the built Keras model in fvcore's convention (see `autox3d_tf.flops`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model name, e.g. X3D_S (case-insensitive; see `list_models()`)")
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


def collect(name: str, input_shape: tuple[int, int, int] | None = None, crop: str = "train") -> dict[str, Any]:
    """Everything `autox3d info` prints, as a JSON-ready dict (raises ValueError on bad input)."""
    from autox3d_tf import flops
    from autox3d_tf.zoo import get_config, get_model

    config = get_config(name)  # ValueError naming the valid models
    if input_shape is not None:
        frames, height, width = (int(d) for d in input_shape)
    else:
        size = config.test_crop if crop == "test" else config.train_crop
        frames, height, width = config.frames, size, size
    model = get_model(config.name, input_shape=(frames, height, width, 3))
    stages = flops.stage_stats(model)
    macs = sum(s.macs for s in stages)
    return {
        "model": config.name,
        "family": config.family,
        "description": config.description,
        "input_shape": [frames, height, width, 3],
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
        "",
    ]
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
        print(json.dumps(info, indent=2))
    else:
        print(format_text(info))
    return 0
