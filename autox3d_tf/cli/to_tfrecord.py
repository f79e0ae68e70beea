"""videos to sharded SequenceExample TFRecords

    autox3d to-tfrecord train.csv out/train --shards 8 --short-side 256
    autox3d to-tfrecord data/train out/train          (a folder of class sub-folders)

Decodes each video once, stores its frames as JPEG (optionally at a lower fps and short side), and
writes shards in parallel. Only a Kinetics row's time_start..time_end segment is stored when it lies
inside the video; a segment past the video's end stores the whole video and is listed. Frame folders
(numbered JPEG / PNG frames) are videos too. Rerun after a kill to resume: complete shards are kept.
"""

from __future__ import annotations

import argparse
import sys

from autox3d_tf.workflows.json_output import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's arguments."""
    parser.add_argument("annotations", help="Kinetics CSV, PySlowFast list, Something-Something v2 JSON, or a "
                                            "folder with one sub-folder of videos or frame folders per class")
    parser.add_argument("out_prefix", help="output prefix: writes OUT_PREFIX-00000-of-0000N.tfrecord ...")
    parser.add_argument("--shards", type=int, default=8, help="number of shards (default 8)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")
    parser.add_argument("--fps", type=float, default=None, help="store at most this frame rate (default: source)")
    parser.add_argument("--short-side", type=int, default=None, help="shrink frames to this short side")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--video-root", default=None, help="folder of the videos (default: the annotation file's)")
    parser.add_argument("--split", default=None, help="Kinetics CSV: keep only this split")
    parser.add_argument("--overwrite", action="store_true", help="rewrite complete shards instead of resuming")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Runs the conversion; returns 0, or 1 when annotated videos are missing."""
    from autox3d_tf.data.annotations import MissingVideosError
    from autox3d_tf.data.tfrecord import convert_to_tfrecord

    try:
        report = convert_to_tfrecord(
            args.annotations, args.out_prefix, shards=args.shards, fps=args.fps, short_side=args.short_side,
            quality=args.quality, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet,
            video_root=args.video_root, split=args.split)
    except (MissingVideosError, FileNotFoundError, ValueError) as err:
        print(f"autox3d to-tfrecord: {err}", file=sys.stderr)
        return 1
    if args.json:
        print_json(report.__dict__)
    else:
        print(f"wrote {report.videos} videos into {report.written_shards} shards "
              f"({report.skipped_shards} already complete) in {report.seconds:.1f} s: {args.out_prefix}-*")
        for path, reason in report.errors:
            print(f"  skipped: {reason}")
        for path, reason in report.segment_fallbacks:
            print(f"  stored whole: {reason}")
    return 0
