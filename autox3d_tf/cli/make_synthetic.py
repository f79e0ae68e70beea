"""write the built-in synthetic motion dataset

    autox3d make-synthetic data/synthetic --classes 4 --clips-per-class 200 --size 48 --frames 16

Real MP4 files plus a Kinetics-style CSV (and train/val/test CSVs, classes.json). The classes show the
same frames in different orders (rising, falling, up fast and down slowly, ...), so only motion tells
them apart: a model that ignores time order is at chance.
"""

from __future__ import annotations

import argparse
import sys

from autox3d_tf.workflows.json_output import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's arguments."""
    parser.add_argument("out_dir", help="output folder (created)")
    parser.add_argument("--classes", type=int, default=4, help="number of classes, 2 to 6 (default 4)")
    parser.add_argument("--clips-per-class", type=int, default=200, help="clips per class (default 200)")
    parser.add_argument("--size", type=int, default=48, help="frame width and height in pixels (default 48)")
    parser.add_argument("--moving", type=int, default=8, help="travelling shapes per clip (default 8)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--fps", type=int, default=12, help="frame rate (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--codec", default="h264", choices=["h264", "mpeg4"], help="video codec (default h264)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def run(args: argparse.Namespace) -> int:
    """Writes the dataset; returns 0 (2 for bad arguments or an unwritable folder, one line on stderr)."""
    from autox3d_tf.data.synthetic import write_synthetic_dataset

    try:
        info = write_synthetic_dataset(
            args.out_dir, num_classes=args.classes, clips_per_class=args.clips_per_class, size=args.size,
            frames=args.frames, moving=args.moving, fps=args.fps, seed=args.seed, codec=args.codec,
            progress=not args.quiet)
    except (ValueError, OSError) as err:
        print(f"autox3d make-synthetic: {err}", file=sys.stderr)
        return 2
    if args.json:
        print_json(info.__dict__)
    else:
        counts = ", ".join(f"{k} {v}" for k, v in info.counts.items())
        print(f"wrote {sum(info.counts.values())} clips ({counts}) of {len(info.classes)} classes "
              f"to {info.root} in {info.seconds:.1f} s; annotations: {info.annotations}")
    return 0
