"""the whole flow on the built-in synthetic dataset (interim: data, model info, a prediction).

    autox3d demo [--out demo_out]

This interim demo writes the built-in synthetic motion dataset, builds X3D-XS, prints its
parameters / GMACs / per-stage table, and classifies one synthetic clip end to end (decode,
resize, normalise, predict) with random weights. The search / train / evaluate / export flow
replaces it once those tools land.
"""

from __future__ import annotations

import argparse
import os
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--model", default="X3D_XS", help="zoo model to show (default: X3D_XS)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from autox3d_tf.cli.info import collect, format_text
    from autox3d_tf.data.decode import center_crop, clip_indices, decode_frames, probe_video, resize_short_side
    from autox3d_tf.data.synthetic import write_synthetic_dataset
    from autox3d_tf.preprocessing import decode_predictions, preprocess_input
    from autox3d_tf.zoo import get_config, get_model

    start = time.time()
    data_dir = os.path.join(args.out, "synthetic")
    print(f"[1/3] writing the synthetic motion dataset to {data_dir}")
    dataset = write_synthetic_dataset(data_dir, clips_per_class=10, seed=0)
    print(f"      {sum(dataset.counts.values())} clips, classes {dataset.classes}")

    print(f"[2/3] {args.model}")
    print(format_text(collect(args.model)))

    config = get_config(args.model)
    video = sorted(
        os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files if f.endswith(".mp4")
    )[0]
    info = probe_video(video)
    frames = decode_frames(video, clip_indices(info.num_frames, config.frames, 1))
    clip = center_crop(resize_short_side(frames, config.test_crop), config.test_crop)
    model = get_model(config.name, input_shape=(config.frames, config.test_crop, config.test_crop, 3))
    probs = model.predict(preprocess_input(clip[None].astype(np.float32)), verbose=0)
    print(f"[3/3] prediction on {video} (random weights, so the labels mean nothing):")
    for _, label, p in decode_predictions(probs, top=3)[0]:
        print(f"      {p:.4f}  {label}")
    print(f"done in {time.time() - start:.1f} s")
    return 0
