"""Throughput of the input pipelines: clips per second, video files vs TFRecords vs a naive baseline.

    python benchmarks/bench_data.py                  # X3D-M settings (16 x 5, crop 224), 60 clips each
    python benchmarks/bench_data.py --model X3D_S --clips 100

All three paths yield the same training clips (random start, scale jitter, crop, flip, normalise) from
the real clips in ../shared/data/videos, through tf.data with parallel maps:

- naive: decode every frame of the video (PyAV), then take the clip's frames;
- video: ``autox3d_tf.data.video_dataset`` (seek, decode forward only as far as needed, skip
  unneeded non-reference frames, convert only the clip's frames);
- tfrecord: ``autox3d_tf.data.tfrecord_dataset`` on shards from ``convert_to_tfrecord`` (JPEG frames).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from autox3d_tf.data import augment  # noqa: E402
from autox3d_tf.data.annotations import VideoRecord  # noqa: E402
from autox3d_tf.data.decode import decode_all_frames  # noqa: E402
from autox3d_tf.data import resolve_clip as clip_settings, tfrecord_dataset, video_dataset  # noqa: E402
from autox3d_tf.data.sampling import train_clip_indices  # noqa: E402
from autox3d_tf.data.tfrecord import convert_to_tfrecord  # noqa: E402

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"


def naive_dataset(records: list[VideoRecord], model: str, seed: int) -> tf.data.Dataset:
    """Decode every frame, then sample: the baseline."""
    cfg = clip_settings(model)
    paths = [r.path for r in records]

    def load(i, s):
        frames = decode_all_frames(paths[int(i)])
        idx = train_clip_indices(len(frames), cfg.frames, cfg.rate, np.random.default_rng(int(s) & 0xFFFFFFFF))
        return frames[idx]

    def decode(i, s):
        clip = tf.numpy_function(load, [i, s], tf.uint8)
        clip = tf.ensure_shape(clip, [cfg.frames, None, None, 3])
        return augment.train_augment(clip, s, cfg.train_crop, cfg.scale_range, True, cfg.mean, cfg.std), i

    ds = tf.data.Dataset.range(len(paths)).shuffle(len(paths), seed=seed).repeat()
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed)))
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(1).prefetch(tf.data.AUTOTUNE)


def clips_per_second(ds: tf.data.Dataset, clips: int, warmup: int = 4) -> float:
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    t = time.perf_counter()
    for _ in range(clips):
        next(it)
    return clips / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="X3D_M")
    parser.add_argument("--clips", type=int, default=60, help="clips timed per path (after warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    if not VIDEOS.is_dir():
        print(f"real clips not found at {VIDEOS.resolve()}", file=sys.stderr)
        return 1
    names = sorted(p.stem for p in VIDEOS.glob("*.mp4"))
    records = [VideoRecord(str(VIDEOS / f"{n}.mp4"), i, n) for i, n in enumerate(names)]
    cfg = clip_settings(args.model)
    print(f"{args.model}: {cfg.frames} x {cfg.rate} frames, crop {cfg.train_crop}, scale {cfg.scale_range}; "
          f"{len(records)} videos; {os.cpu_count()} CPU cores; {args.clips} clips per path")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        lst = Path(tmp) / "list.txt"
        lst.write_text("".join(f"{r.path} {r.label}\n" for r in records))
        t = time.perf_counter()
        convert_to_tfrecord(lst, Path(tmp) / "bench", shards=len(records), short_side=cfg.scale_range[0],
                            workers=2, progress=False)
        print(f"to-tfrecord: {time.perf_counter() - t:.1f} s for {len(records)} videos")
        paths = {
            "tfrecord": tfrecord_dataset(str(Path(tmp) / "bench"), args.model, batch_size=1, seed=args.seed,
                                         repeat=True, shuffle_buffer=len(records)),
            "video": video_dataset(records, args.model, batch_size=1, seed=args.seed, repeat=True),
        }
        if not args.skip_naive:
            paths["naive"] = naive_dataset(records, args.model, args.seed)
        for name, ds in paths.items():
            results[name] = clips_per_second(ds, args.clips)
            print(f"  {name}: {results[name]:.2f} clips/s", flush=True)
    print()
    print("| path | clips/s | vs naive | vs video |")
    print("|---|---|---|---|")
    for name, rate in results.items():
        vs_naive = f"{rate / results['naive']:.1f}x" if "naive" in results else "-"
        print(f"| {name} | {rate:.2f} | {vs_naive} | {rate / results['video']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
