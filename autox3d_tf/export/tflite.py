"""TFLite export (``tf.lite.TFLiteConverter.from_saved_model``): float32, float16, dynamic-range
and full-integer (int8) files, and their checks (XNNPACK coverage, agreement with the float model).

The TFLite model has one ``serving_default`` signature with a fixed input: uint8 ``frames``
``[1, T, crop, crop, 3]`` already sampled and cropped (resize on the device's side), normalised
inside; outputs ``probabilities`` ``[1, classes]``, ``logits`` (when the network has a softmax
classifier, the values before it) and ``top_k_indices`` / ``top_k_scores``. Only TFLite builtin ops
are allowed (no Flex / Select TF ops), so the stock interpreter runs it.

``quantize``:

- ``None``: float32 weights and activations;
- ``"float16"``: float16 weights (half the file), computed in float32 (XNNPACK runs it as float);
- ``"dynamic"``: int8 weights, activations quantised on the fly per call;
- ``"int8"``: full-integer: int8 weights and activations, the activations' ranges calibrated on a
  representative dataset (:func:`calibration_clips`: a tf.data pipeline of the user's clips, by
  default the built-in synthetic motion clips); the uint8 input and float outputs stay as they are.

The graph is traced with every `DepthwiseConv3D` in its "shift_conv" implementation: TFLite
copies each slice and pad of the default "slices" one, which "shift_conv" does not need
(`python benchmarks/bench_x3d.py --tflite` times the export; figures in the README).

TensorFlow-only (the TFLite converter and interpreter).
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.export.formats import QUANTIZE_MODES
from autox3d_tf.export.saved_model import SIGNATURE, inference_model
from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels
from autox3d_tf.layers import depthwise_implementation

__all__ = [
    "TFLITE_MODELS",
    "QUANTIZE_MODES",
    "export_tflite",
    "run_tflite",
    "tflite_ops",
    "undelegated_ops",
    "undelegated_op_details",
    "calibration_clips",
    "labelled_clips",
    "synthetic_clips",
    "compare_outputs",
]

TFLITE_MODELS = ("X3D_XS", "X3D_S")
DEFAULT_CALIBRATION_CLIPS = 32


def _check_quantize(quantize: str | None) -> str | None:
    if quantize in (None, "", "none", "float32"):
        return None
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)} (or None), got {quantize!r}")
    return quantize


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    spec: ArchSpec | None = None,
    frames: int | None = None,
    crop: int | None = None,
    top_k: int = 5,
    fuse: bool = True,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    quantize: str | None = None,
    calibration: Iterable[np.ndarray] | Callable[[], Iterable[np.ndarray]] | None = None,
    calibration_steps: int = DEFAULT_CALIBRATION_CLIPS,
) -> str:
    """Converts ``model`` to a TFLite flatbuffer at ``path`` (see the module docstring).

    ``quantize``: None, "float16", "dynamic" or "int8". For "int8", ``calibration`` gives the
    representative clips: uint8 ``[T, crop, crop, 3]`` or ``[B, T, crop, crop, 3]`` arrays (an
    iterable, or a callable returning one; :func:`calibration_clips` makes one from a data source);
    default :func:`synthetic_clips`; at most ``calibration_steps`` clips are used. Returns ``path``."""
    quantize = _check_quantize(quantize)
    infer = inference_model(model, spec, frames, crop, fuse, logits=True)
    _, t, c, _, _ = infer.input_shape
    classes = infer.output_shape[-1]
    k = int(min(top_k, classes))
    has_logits = getattr(infer, "_autox3d_logits", False)

    def serve(frames):
        x = normalize_pixels(tf.cast(frames, tf.float32), mean, std)
        out = tf.cast(infer(x, training=False), tf.float32)
        probabilities = tf.nn.softmax(out, axis=-1) if has_logits else out
        scores, indices = tf.math.top_k(probabilities, k=k)
        result = {"probabilities": probabilities, "top_k_indices": indices, "top_k_scores": scores}
        if has_logits:
            result["logits"] = out
        return result

    with tempfile.TemporaryDirectory() as tmp, depthwise_implementation(infer, "shift_conv"):
        archive = keras.export.ExportArchive()
        archive.track(infer)
        archive.add_endpoint(name=SIGNATURE, fn=serve,
                             input_signature=[tf.TensorSpec([1, t, c, c, 3], tf.uint8, name="frames")])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            clips = calibration if calibration is not None else synthetic_clips(t, c)
            converter.representative_dataset = _representative(clips, (t, c), calibration_steps)
            # Full integer where an int8 kernel exists (every op of the zoo's networks); the uint8 ->
            # float cast of the input and TOPK_V2 are not XNNPACK ops (listed by `undelegated_ops`).
            # The softmax is int8 too: probabilities come in steps of 1/256 (``logits`` are finer).
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def _representative(clips, shape: tuple[int, int], steps: int) -> Callable[[], Iterator[list[np.ndarray]]]:
    t, c = shape

    def generate():
        source = clips() if callable(clips) else clips
        n = 0
        for item in source:
            batch = np.asarray(item[0] if isinstance(item, (tuple, list)) else item)
            batch = batch[None] if batch.ndim == 4 else batch
            if batch.shape[1:] != (t, c, c, 3):
                raise ValueError(f"calibration clips must be [{t}, {c}, {c}, 3] uint8, got {list(batch.shape[1:])}")
            for clip in batch:
                if n >= steps:
                    return
                n += 1
                yield [np.asarray(clip, np.uint8)[None]]
        if n == 0:
            raise ValueError("the calibration data gave no clips")

    return generate


def synthetic_clips(frames: int, crop: int, count: int = DEFAULT_CALIBRATION_CLIPS, seed: int = 0,
                    classes: int = 4) -> list[np.ndarray]:
    """``count`` clips of the built-in synthetic motion dataset (`autox3d_tf.data.synthetic`),
    uint8 ``[frames, crop, crop, 3]``, the classes in turn; returns the list."""
    from autox3d_tf.data.synthetic import render_clip

    rng = np.random.default_rng(seed)
    return [render_clip(i % classes, rng, size=crop, frames=frames) for i in range(count)]


def calibration_clips(source: str | os.PathLike, frames: int, crop: int, *, rate: int = 1, count: int = 32,
                      split: str | None = None, class_names: Sequence[str] | None = None,
                      mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> Callable[[], Iterator[np.ndarray]]:
    """Representative clips from ``source`` (an annotation file, a folder of class sub-folders or
    TFRecord shards: whatever the evaluation pipelines read): the centre view (one clip, one crop)
    of up to ``count`` videos, ``frames`` frames ``rate`` apart at ``crop``, as the uint8 frames the
    TFLite file takes. Returns a callable that yields them (the pipeline runs when called)."""
    views = labelled_clips(source, frames, crop, rate=rate, count=count, split=split, class_names=class_names,
                           mean=mean, std=std)

    def generate():
        for clip, _ in views():
            yield clip

    return generate


def labelled_clips(source: str | os.PathLike, frames: int, crop: int, *, rate: int = 1, count: int | None = None,
                   split: str | None = None, class_names: Sequence[str] | None = None,
                   mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> Callable[[], Iterator[tuple]]:
    """As :func:`calibration_clips`, with the labels: yields ``(uint8 [1, T, crop, crop, 3], label)``
    for each video (all of them when ``count`` is None)."""
    from autox3d_tf.data.clip import ClipSettings
    from autox3d_tf.training.data import eval_dataset

    source = os.fspath(source)
    if not os.path.exists(source) and not tf.io.gfile.glob(source + "*"):
        raise FileNotFoundError(f"calibration data {source!r} does not exist")
    clip = ClipSettings(int(frames), int(rate), int(crop), int(crop), (int(crop), int(crop)), tuple(mean), tuple(std))
    ds, _ = eval_dataset(source, None, clip, batch_size=1, num_clips=1, num_crops=1, split=split,
                         class_names=class_names)
    if count is not None:
        ds = ds.take(int(count))
    m = np.asarray(mean, np.float32) * 255.0
    s = np.asarray(std, np.float32) * 255.0

    def generate():
        for clips, labels, *_ in ds:
            yield np.clip(np.round(clips.numpy() * s + m), 0, 255).astype(np.uint8), int(labels.numpy()[0])

    return generate


def run_tflite(path: str | os.PathLike, frames: np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
    """Runs a TFLite export on uint8 ``frames [1, T, crop, crop, 3]``; returns its outputs."""
    interpreter = tf.lite.Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner(SIGNATURE)
    return {k: np.asarray(v) for k, v in runner(frames=np.asarray(frames, np.uint8)).items()}


def tflite_ops(path: str | os.PathLike) -> dict[str, int]:
    """Op name -> count in a TFLite file (no delegate applied)."""
    interpreter = tf.lite.Interpreter(
        model_path=os.fspath(path),
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def undelegated_ops(path: str | os.PathLike, num_threads: int = 1) -> dict[str, int]:
    """Op name -> count of the ops that XNNPACK does not take (see :func:`undelegated_op_details`)."""
    left: dict[str, int] = {}
    for op in undelegated_op_details(path, num_threads):
        left[op["op_name"]] = left.get(op["op_name"], 0) + 1
    return left


def undelegated_op_details(path: str | os.PathLike, num_threads: int = 1) -> list[dict]:
    """Op name -> count of the ops of a TFLite file that the stock interpreter's default delegate
    (XNNPACK) does not take, so that they run on TFLite's own kernels. An op is delegated when an
    output of it is an output of a delegate partition, or is not allocated at all (a tensor inside
    a partition lives in the delegate)."""
    interpreter = tf.lite.Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    partition_outputs = {int(t) for op in ops if op["op_name"] == "DELEGATE" for t in op["outputs"]}

    def allocated(index: int) -> bool:
        try:
            interpreter.get_tensor(index)
            return True
        except ValueError:
            return False

    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    left = []
    for op in ops:
        if op["op_name"] == "DELEGATE":
            continue
        outputs = [int(t) for t in op["outputs"]]
        if any(t in partition_outputs for t in outputs) or not all(allocated(t) for t in outputs):
            continue
        left.append({"index": int(op["index"]), "op_name": op["op_name"],
                     "inputs": [(tensors[i]["name"], np.dtype(tensors[i]["dtype"]).name, list(map(int, tensors[i]["shape"])))
                                for i in map(int, op["inputs"]) if i >= 0]})
    return left


def compare_outputs(reference: str | os.PathLike, candidate: str | os.PathLike, clips: Iterable[np.ndarray],
                    labels: Sequence[int] | None = None, num_threads: int | None = None) -> dict:
    """Runs two TFLite files (e.g. float and int8) on the same uint8 clips ``[T, c, c, 3]`` and
    returns top-1 agreement, each file's top-1 accuracy (when ``labels`` are given) and the error of
    the candidate's logits (or probabilities, without logits): max and mean absolute, and the mean
    relative to the reference's logit standard deviation."""
    runners = [tf.lite.Interpreter(model_path=os.fspath(p), num_threads=num_threads).get_signature_runner(SIGNATURE)
               for p in (reference, candidate)]
    ref, cand = [], []
    for clip in clips:
        frames = np.asarray(clip, np.uint8)[None]
        outs = [r(frames=frames) for r in runners]
        key = "logits" if "logits" in outs[0] else "probabilities"
        ref.append(np.asarray(outs[0][key][0]))
        cand.append(np.asarray(outs[1][key][0]))
    ref_a, cand_a = np.stack(ref), np.stack(cand)
    err = np.abs(ref_a - cand_a)
    result = {
        "clips": int(len(ref_a)),
        "output": key,
        "top1_agreement": float(np.mean(ref_a.argmax(-1) == cand_a.argmax(-1))),
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "relative_error": float(err.mean() / max(float(ref_a.std()), 1e-12)),
    }
    if labels is not None:
        y = np.asarray(list(labels))[: len(ref_a)]
        result["reference_top1"] = float(np.mean(ref_a.argmax(-1) == y))
        result["candidate_top1"] = float(np.mean(cand_a.argmax(-1) == y))
    return result
