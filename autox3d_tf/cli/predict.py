"""Top-k labels for video files, from a zoo model (Kinetics-400 labels) or a training run (its classes).

    autox3d predict demo.mp4 other.mp4 --model X3D_S [--weights kinetics400] [--top 5] [--json]
    autox3d predict clip.mp4 --run_dir runs/mine       # a fine-tuned run: its clip settings and classes

Each video gives one clip of the model's ``frames x sampling_rate`` frames from its middle (for
a run trained with sampling rate 0, ``frames`` frames spread over the whole video), resized so that its short side is the model's test crop, centre-cropped, normalised with
``preprocess_input`` and classified. A video that cannot be read (missing, not a video,
truncated) gives a one-line error naming the file; the other videos are still predicted, and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from autox3d_tf.workflows.json_output import print_json


@dataclass(frozen=True)
class PredictSettings:
    """What the prediction of one video needs: the model's name, its test clip, its labels."""

    name: str
    frames: int
    sampling_rate: int
    test_crop: int
    labels: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``autox3d predict``."""
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (any format FFmpeg reads)")
    parser.add_argument("--model", help="zoo model name, e.g. X3D_S")
    parser.add_argument("--run_dir", help="a training run folder (instead of --model): its weights, clip and classes")
    parser.add_argument(
        "--weights",
        default="kinetics400",
        help="'kinetics400' (default, through the weights registry), a .weights.h5 file or a PyTorch checkpoint",
    )
    parser.add_argument("--top", type=int, default=5, help="how many labels per video (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def build_predictor(model_name: str | None, weights: str, run_dir: str | None = None):
    """The model at its test crop with ``weights`` loaded (or a run's), and its `PredictSettings`."""
    if run_dir is not None:
        from autox3d_tf.training.loops import load_trained_model

        model, run = load_trained_model(run_dir)
        clip = run["clip"]
        return model, PredictSettings(run["spec"]["name"], clip["frames"], clip["rate"], clip["test_crop"],
                                      tuple(run["classes"]))
    from autox3d_tf.zoo import get_model, get_model_config

    config = get_model_config(model_name)
    model = get_model(
        config.name,
        weights=weights,
        input_shape=(config.frames, config.test_crop, config.test_crop, 3),
        classifier_activation="softmax",
    )
    labels = config.label_names if weights == "kinetics400" else ()
    return model, PredictSettings(config.name, config.frames, config.sampling_rate, config.test_crop, labels)


def predict_videos(paths: Sequence[str], model, config, top: int = 5) -> list[dict[str, Any]]:
    """Predicts each video; failures become ``{"video": path, "error": message}`` entries.

    Returns one dict per path, in order: ``{"video", "predictions": [{"index", "label",
    "probability"}, ...]}`` or ``{"video", "error"}``.
    """
    import numpy as np

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
        if not np.isfinite(probs).all():
            results.append({"video": path, "error": f"{path}: the model's output is not finite (NaN / Inf): "
                                                    "its weights or input are broken"})
            continue
        classes = probs.shape[-1]
        if len(config.labels) == classes:
            class_list = list(config.labels)
        else:
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
    if (args.model is None) == (args.run_dir is None):
        print("autox3d predict: give --model or --run_dir", file=sys.stderr)
        return 2
    if args.run_dir is None and str(args.weights).strip().lower() in ("", "none", "null"):
        print(f"autox3d predict: --weights {args.weights!r}: predictions need trained weights ('kinetics400', a "
              ".weights.h5 file, a PyTorch checkpoint, or --run_dir)", file=sys.stderr)
        return 2
    try:
        model, config = build_predictor(args.model, args.weights, args.run_dir)
    except Exception as err:  # unknown model, missing weights, mismatched file, download failure
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"autox3d predict: {message}", file=sys.stderr)
        return 2
    results = predict_videos(args.videos, model, config, top=args.top)
    failed = 0
    for result in results:
        if "error" in result:
            failed += 1
            print(f"autox3d predict: {result['error']}", file=sys.stderr)
    if args.json:
        weights = args.weights if args.run_dir is None else args.run_dir
        print_json({"model": config.name, "weights": weights, "results": results}, indent=2)
    else:
        for result in results:
            if "error" in result:
                continue
            print(os.fspath(result["video"]))
            width = max(len(p["label"]) for p in result["predictions"])
            for rank, p in enumerate(result["predictions"], start=1):
                print(f"  {rank}. {p['label']:<{width}}  {p['probability']:.4f}")
    return 1 if failed else 0
