"""CPU latency / throughput of zoo models, optionally side by side with pytorchvideo.

This is a benchmark library, not a test: numbers depend on the machine and its load.

    from autox3d_tf.workflows import bench
    bench.configure_threads(2)            # before TensorFlow initialises (first op / model)
    results = bench.benchmark("X3D_XS", batches=(1, 8), compare=True)
    print(bench.format_table(results))

Method. Ours: ``tf.function(lambda x: model(x, training=False))`` on a random normal clip
batch ``(B, T, H, W, 3)``, a few warm-up calls (tracing included), then the median of N timed
calls (each ends with the result copied to numpy). Reference: pytorchvideo's ``create_x3d``
for the same variant and input size, eval mode, under ``torch.no_grad()``, on the same values
transposed to ``(B, 3, T, H, W)``, with ``torch.set_num_threads`` equal to TensorFlow's intra-op
thread count. All of our runs are timed before the reference's, so that the two runtimes' thread
pools do not compete for cores. Both sides include the softmax classifier.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

REFERENCE_NAME = "pytorchvideo"


class ReferenceUnavailableError(RuntimeError):
    """The pytorchvideo reference cannot run here (missing packages or no matching model)."""


@dataclass
class Timing:
    """Wall-clock timings of one configuration, in milliseconds."""

    batch: int
    runs: int
    warmup: int
    times_ms: list[float]

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.times_ms))

    @property
    def min_ms(self) -> float:
        return float(min(self.times_ms))

    @property
    def throughput(self) -> float:
        """Clips per second at the median latency."""
        return self.batch * 1000.0 / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(median_ms=self.median_ms, min_ms=self.min_ms, clips_per_s=self.throughput)
        return data


@dataclass
class BenchResult:
    """One model at one batch size: ours, and the reference when it was run."""

    model: str
    batch: int
    input_shape: tuple[int, int, int, int]
    threads: int
    ours: Timing
    folded: Timing | None = None
    tflite: Timing | None = None
    reference: Timing | None = None
    reference_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _over_reference(self, timing: Timing | None) -> float | None:
        if self.reference is None or timing is None:
            return None
        return timing.median_ms / self.reference.median_ms

    @property
    def ratio(self) -> float | None:
        """ours / reference median latency (below 1: ours is faster)."""
        return self._over_reference(self.ours)

    @property
    def folded_ratio(self) -> float | None:
        """ours with BatchNorm folded (`fuse_for_inference`) / reference median latency."""
        return self._over_reference(self.folded)

    @property
    def tflite_ratio(self) -> float | None:
        """ours as a TFLite export (XNNPACK) / reference median latency."""
        return self._over_reference(self.tflite)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "batch": self.batch,
            "input_shape": list(self.input_shape),
            "threads": self.threads,
            "ours": self.ours.to_dict(),
            "folded": None if self.folded is None else self.folded.to_dict(),
            "folded_ratio": self.folded_ratio,
            "tflite": None if self.tflite is None else self.tflite.to_dict(),
            "tflite_ratio": self.tflite_ratio,
            "reference": None if self.reference is None else self.reference.to_dict(),
            "reference_name": self.reference_name,
            "ratio": self.ratio,
            **self.extra,
        }


# --------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        import os

        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        import os

        return os.cpu_count() or 1


def configure_threads(threads: int, inter_op_threads: int | None = None) -> None:
    """Sets TensorFlow's intra-op (and inter-op, default the same) thread pools.

    Must run before TensorFlow initialises its runtime (the first op, or building a model);
    afterwards only the values already in force are accepted, and anything else raises a
    RuntimeError that says so.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be a positive int, got {threads!r}.")
    inter = threads if inter_op_threads is None else int(inter_op_threads)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as err:
        current = (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        )
        raise RuntimeError(
            f"TensorFlow is already initialised with (intra, inter) = {current} threads (0 = all cores); "
            f"cannot switch to ({threads}, {inter}). Call configure_threads() before building any model."
        ) from err


def configure_torch_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` (and inter-op threads when still allowed)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # can only be set once, before any inter-op work; the intra-op count is what matters


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _time_calls(call: Callable[[], Any], runs: int, warmup: int) -> list[float]:
    if runs < 1 or warmup < 0:
        raise ValueError(f"`runs` must be >= 1 and `warmup` >= 0, got runs={runs}, warmup={warmup}.")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def make_inputs(batch: int, input_shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A float32 ``(batch, T, H, W, C)`` batch of standard normal values."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, *input_shape), dtype=np.float32)


def time_keras(model, inputs: np.ndarray, runs: int = 10, warmup: int = 2) -> Timing:
    """Median-able timings of ``tf.function(model(x, training=False))`` on ``inputs``."""
    import tensorflow as tf

    x = tf.constant(inputs)
    fn = tf.function(lambda t: model(t, training=False))

    def call():
        out = fn(x)
        return [np.asarray(o) for o in tf.nest.flatten(out)]

    warmup = max(warmup, 1)  # the first call traces the graph: never time it
    return Timing(int(inputs.shape[0]), runs, warmup, _time_calls(call, runs, warmup))


def time_tflite(path: str, inputs: np.ndarray, threads: int, runs: int = 10, warmup: int = 2) -> Timing:
    """Timings of a TFLite export (`export_tflite`: uint8 frames in, normalised inside) on
    ``inputs`` ``(1, T, H, W, 3)`` with the stock interpreter (XNNPACK) on ``threads`` threads."""
    import tensorflow as tf

    from autox3d_tf.export.saved_model import SIGNATURE

    interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads)
    runner = interpreter.get_signature_runner(SIGNATURE)
    frames = np.clip(inputs * 64 + 128, 0, 255).astype(np.uint8)

    def call():
        return runner(frames=frames)

    return Timing(int(inputs.shape[0]), runs, warmup, _time_calls(call, runs, warmup))


def time_torch(module, inputs: np.ndarray, runs: int = 10, warmup: int = 2) -> Timing:
    """Timings of a PyTorch module in eval mode under ``torch.no_grad()``.

    ``inputs`` are channels-last ``(B, T, H, W, C)`` and are transposed to ``(B, C, T, H, W)``.
    """
    import torch

    module.eval()
    x = torch.from_numpy(np.ascontiguousarray(inputs.transpose(0, 4, 1, 2, 3)))

    def call():
        with torch.no_grad():
            return module(x)

    return Timing(int(inputs.shape[0]), runs, warmup, _time_calls(call, runs, warmup))


# --------------------------------------------------------------------------------------------
# The pytorchvideo reference
# --------------------------------------------------------------------------------------------


def install_torchvision_stub() -> None:
    """pytorchvideo's model code imports ``torchvision.ops.RoIAlign`` (detection heads only).

    torchvision may not be installable next to torch (docs/ARCHITECTURE.md section 11); when it is missing,
    register a stand-in module whose RoIAlign raises if anything ever instantiates it.
    """
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401

        return
    except ImportError:
        pass

    class RoIAlign:  # pragma: no cover - never used by X3D
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is not installed; RoIAlign is a stand-in from autox3d_tf.workflows.bench.")

    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.RoIAlign = RoIAlign  # type: ignore[attr-defined]
    tv.ops = ops  # type: ignore[attr-defined]
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.ops"] = ops


def check_reference_available(model_name: str) -> str:
    """Raises ReferenceUnavailableError unless pytorchvideo can build ``model_name``.

    Returns the X3D variant ("XS", "S", ...).
    """
    from autox3d_tf.zoo import get_model_config

    config = get_model_config(model_name)
    if config.family != "x3d":
        raise ReferenceUnavailableError(
            f"no {REFERENCE_NAME} reference for {config.name} (only the X3D family has one)."
        )
    missing = []
    try:
        import torch  # noqa: F401
    except ImportError:
        missing.append("torch")
    if not missing:
        try:
            install_torchvision_stub()
            import pytorchvideo.models.x3d  # noqa: F401
        except ImportError as err:
            missing.append(f"pytorchvideo ({err})")
    if missing:
        raise ReferenceUnavailableError(
            f"--compare {REFERENCE_NAME} needs torch and pytorchvideo, missing: {', '.join(missing)}. "
            "Install them with: pip install torch pytorchvideo"
        )
    return config.name.split("_", 1)[1]


def build_reference(model_name: str, input_shape: Sequence[int], classes: int = 400):
    """pytorchvideo's X3D matching ``model_name`` for ``input_shape = (T, H, W, 3)``, eval mode."""
    from autox3d_tf.arch.x3d import X3D_VARIANTS

    variant = check_reference_available(model_name)
    frames, height, width = (int(d) for d in input_shape[:3])
    if height != width:
        raise ReferenceUnavailableError(f"{REFERENCE_NAME}'s X3D takes square crops only, got {height}x{width}.")
    from pytorchvideo.models.x3d import create_x3d

    v = X3D_VARIANTS[variant]
    model = create_x3d(
        input_clip_length=frames,
        input_crop_size=height,
        model_num_class=classes,
        width_factor=v.width_factor,
        depth_factor=v.depth_factor,
    )
    return model.eval()


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def benchmark(
    model_name: str,
    *,
    batches: Sequence[int] = (1, 8),
    threads: int | None = None,
    runs: int = 10,
    warmup: int = 2,
    compare: bool = False,
    input_shape: Sequence[int] | None = None,
    seed: int = 0,
    folded: bool = True,
    tflite: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[BenchResult]:
    """Times ``model_name`` at each batch size (and pytorchvideo's X3D when ``compare``).

    Args:
        model_name: a zoo model name.
        batches: batch sizes.
        threads: TensorFlow intra/inter-op threads and torch threads; set through
            :func:`configure_threads` (must happen before TensorFlow initialises; None keeps
            TensorFlow's current setting and uses :func:`default_threads` for torch).
        runs, warmup: timed and untimed calls per configuration; the median is reported.
        compare: also time the pytorchvideo reference on the same values.
        input_shape: ``(T, H, W)`` or ``(T, H, W, 3)``; default the model's train clip.
        seed: seed of the random inputs.
        folded: also time the inference graph with BatchNorm folded (`fuse_for_inference`).
        tflite: also time the TFLite export (batch 1 only: the export has a fixed batch of 1).
        log: optional progress callback.
    """
    from autox3d_tf.zoo import get_model_config, get_model

    config = get_model_config(model_name)
    if compare:
        check_reference_available(config.name)  # fail before spending minutes on our side
    if threads is not None:
        configure_threads(threads)
    else:
        threads = default_threads()
    shape = tuple(input_shape) if input_shape is not None else config.input_shape[:3]
    shape = (*(int(d) for d in shape[:3]), 3)
    model = get_model(config.name, input_shape=shape)
    say = log or (lambda _msg: None)

    fused = None
    if folded:
        from autox3d_tf.models import fuse_for_inference

        fused = fuse_for_inference(model)
    results = []
    for batch in batches:
        inputs = make_inputs(batch, shape, seed)
        say(f"{config.name} batch {batch}: ours")
        result = BenchResult(config.name, int(batch), shape, threads, time_keras(model, inputs, runs=runs, warmup=warmup))
        if fused is not None:
            say(f"{config.name} batch {batch}: ours, BatchNorm folded")
            result.folded = time_keras(fused, inputs, runs=runs, warmup=warmup)
        results.append(result)
    if tflite and any(r.batch == 1 for r in results):
        import tempfile

        from autox3d_tf.export.tflite import export_tflite

        with tempfile.TemporaryDirectory() as tmp:
            say(f"{config.name} batch 1: ours, TFLite export")
            path = export_tflite(model, os.path.join(tmp, "model.tflite"))
            for result in results:
                if result.batch == 1:
                    result.tflite = time_tflite(path, make_inputs(1, shape, seed), threads, runs=runs, warmup=warmup)
    del model, fused

    if compare:
        configure_torch_threads(threads)
        reference = build_reference(config.name, shape)
        for result in results:
            say(f"{config.name} batch {result.batch}: {REFERENCE_NAME}")
            result.reference = time_torch(reference, make_inputs(result.batch, shape, seed), runs=runs, warmup=warmup)
            result.reference_name = REFERENCE_NAME
    return results


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def format_table(results: Sequence[BenchResult], markdown: bool = True) -> str:
    """A table: model, batch, ours ms, clips/s, reference ms, clips/s, ratio ours/reference."""
    ref_name = next((r.reference_name for r in results if r.reference_name), REFERENCE_NAME)
    header = [
        "model", "batch", "ours ms", "ours clips/s", "folded ms", "tflite ms", f"{ref_name} ms", f"{ref_name} clips/s",
        "ratio ours/ref", "ratio folded/ref", "ratio tflite/ref",
    ]  # fmt: skip
    rows = [
        [
            r.model,
            str(r.batch),
            _fmt(r.ours.median_ms),
            _fmt(r.ours.throughput, 2),
            _fmt(r.folded.median_ms if r.folded else None),
            _fmt(r.tflite.median_ms if r.tflite else None),
            _fmt(r.reference.median_ms if r.reference else None),
            _fmt(r.reference.throughput if r.reference else None, 2),
            _fmt(r.ratio, 3),
            _fmt(r.folded_ratio, 3),
            _fmt(r.tflite_ratio, 3),
        ]
        for r in results
    ]
    keep = [i for i, h in enumerate(header) if i < 4 or any(row[i] != "-" for row in rows)]
    header, rows = [header[i] for i in keep], [[row[i] for i in keep] for row in rows]
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]

    def cells(row: Sequence[str]) -> list[str]:
        return [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]

    if markdown:
        lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
        lines.append("|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
        lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    else:
        lines = ["  ".join(cells(row)) for row in [header, *rows]]
    return "\n".join(lines)
