"""PyTorch checkpoint (pytorchvideo or PySlowFast) to Keras weights.

    autox3d convert X3D_S.pyth x3d_s.weights.h5 --model X3D_S

The key layout is detected from the checkpoint (``--layout`` forces it). The conversion is
strict: a missing, extra or mis-shaped tensor is an error naming the keys, and no output file is
written. Nothing from the checkpoint is executed (a restricted unpickler reads it, without torch).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from autox3d_tf.workflows.json_output import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``autox3d convert``."""
    parser.add_argument("src", help="PyTorch checkpoint (.pyth / .pth), pytorchvideo or PySlowFast layout")
    parser.add_argument("dst", help="output Keras weights file, ending in .weights.h5")
    parser.add_argument("--model", required=True, help="zoo model name, e.g. X3D_S")
    parser.add_argument(
        "--layout", choices=["auto", "pytorchvideo", "pyslowfast"], default="auto", help="checkpoint key layout"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args: argparse.Namespace) -> int:
    """Runs the conversion; returns the exit status (0 on success, 1 on a conversion error)."""
    from autox3d_tf.weights import CheckpointError, WeightsMismatchError, convert_checkpoint

    if not args.json:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("autox3d_tf.weights").setLevel(logging.INFO)
    if not os.path.isfile(args.src):
        why = "is a directory, not a checkpoint file" if os.path.isdir(args.src) else "no such file"
        print(f"autox3d convert: {args.src}: {why}", file=sys.stderr)
        return 1
    try:
        info = convert_checkpoint(
            args.src, args.dst, args.model, layout=None if args.layout == "auto" else args.layout
        )
    except (CheckpointError, WeightsMismatchError, ValueError, OSError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        prefix = "" if message.startswith(args.src) else f"{args.src}: "
        print(f"autox3d convert: {prefix}{message}", file=sys.stderr)
        return 1
    if args.json:
        print_json({"src": args.src, **info}, indent=2)
    else:
        folded = f"; folded shortcut BN of {', '.join(info['folded'])}" if info["folded"] else ""
        print(
            f"Converted {args.src} ({info['layout']} layout, {info['num_tensors']} tensors, {info['classes']} classes) "
            f"-> {args.dst} for {info['model']}{folded}."
        )
    return 0
