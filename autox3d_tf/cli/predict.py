"""Top-k Kinetics-400 labels for video files.

    autox3d predict demo.mp4 other.mp4 --model X3D_S [--weights kinetics400] [--top 5] [--json]

Each video gives one clip of the model's ``frames x sampling_rate`` frames from its middle,
resized so that its short side is the model's test crop, centre-cropped, normalised with
``preprocess_input`` and classified. A video that cannot be read (missing, not a video,
truncated) gives a one-line error naming the file; the other videos are still predicted, and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``autox3d predict``."""
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (any format FFmpeg reads)")
    parser.add_argument("--model", required=True, help="zoo model name, e.g. X3D_S")
    parser.add_argument(
        "--weights",
        default="kinetics400",
        help="'kinetics400' (default, through the weights registry), a .weights.h5 file or a PyTorch checkpoint",
    )
    parser.add_argument("--top", type=int, default=5, help="how many labels per video (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def build_predictor(model_name: str, weights: str):
    """The model at its test crop with ``weights`` loaded, and its input configuration."""
    from autox3d_tf.zoo import get_model_config, get_model

    config = get_model_config(model_name)
    model = get_model(
        config.name,
        weights=weights,
        input_shape=(config.frames, config.test_crop, config.test_crop, 3),
        classifier_activation="softmax",
    )
    return model, config


def predict_videos(paths: Sequence[str], model, config, top: int = 5) -> list[dict[str, Any]]:
    """Predicts each video; failures become ``{"video": path, "error": message}`` entries.

    Returns one dict per path, in order: ``{"video", "predictions": [{"index", "label",
    "probability"}, ...]}`` or ``{"video", "error"}``.
    """
    from autox3d_tf.data.decode import VideoDecodeError, load_clip
    from autox3d_tf.preprocessing import decode_predictions, preprocess_input

    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            clip = load_clip(path, config.frames, config.sampling_rate, config.test_crop, short_side=config.test_crop)
        except VideoDecodeError as err:
            results.append({"video": path, "error": str(err)})
            continue
        except Exception as err:  # anything else the decoder raises still names the file
            results.append({"video": path, "error": f"{path}: {type(err).__name__}: {err}"})
            continue
        probs = model.predict(preprocess_input(clip[None]), verbose=0)
        classes = probs.shape[-1]
        class_list = None if classes == 400 else [str(i) for i in range(classes)]
        decoded = decode_predictions(probs, top=top, class_list=class_list)[0]
        results.append(
            {
                "video": path,
                "predictions": [{"index": i, "label": label, "probability": p} for i, label, p in decoded],
            }
        )
    return results


def run(args: argparse.Namespace) -> int:
    """Runs ``autox3d predict``; returns 0 if every video was predicted, else 1."""
    if args.top < 1:
        print("autox3d predict: --top must be >= 1", file=sys.stderr)
        return 2
    try:
        model, config = build_predictor(args.model, args.weights)
    except Exception as err:  # unknown model, missing weights, mismatched file, download failure
        print(f"autox3d predict: {err}", file=sys.stderr)
        return 2
    results = predict_videos(args.videos, model, config, top=args.top)
    failed = 0
    for result in results:
        if "error" in result:
            failed += 1
            print(f"autox3d predict: {result['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": config.name, "weights": args.weights, "results": results}, indent=2))
    else:
        for result in results:
            if "error" in result:
                continue
            print(os.fspath(result["video"]))
            width = max(len(p["label"]) for p in result["predictions"])
            for rank, p in enumerate(result["predictions"], start=1):
                print(f"  {rank}. {p['label']:<{width}}  {p['probability']:.4f}")
    return 1 if failed else 0
