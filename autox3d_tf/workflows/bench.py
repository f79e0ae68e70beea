"""CPU latency / throughput of zoo models, optionally side by side with pytorchvideo and other zoo models.

This is a benchmark library, not a test: numbers depend on the machine and its load.

    from autox3d_tf.workflows import bench
    bench.configure_threads(2)            # before TensorFlow initialises (first op / model)
    results = bench.benchmark("X3D_XS", batches=(1, 8), compare=True)
    print(bench.format_table(results))

Method. One random clip batch: uint8 frames ``(B, T, H, W, 3)`` for the exports (TFLite,
OpenVINO, ONNX Runtime: they normalise inside) and the same frames normalised for the Keras model
(``tf.function(lambda x: model(x, training=False))``) and the reference (pytorchvideo's
``create_x3d`` for the same variant and input size, eval mode, under ``torch.no_grad()``, the values
transposed to ``(B, 3, T, H, W)``). Every engine gets the same thread count. Warm-up rounds
(tracing included), then N timed rounds, each calling every engine once in turn (interleaved,
so that the load of a shared machine hits all alike); the median is reported. Every side includes
the softmax classifier.
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
    engines: dict[str, Timing] = field(default_factory=dict)
    # Main model's rows only: compared zoo model -> engine -> main / compared median latency.
    compared: dict[str, dict[str, float]] = field(default_factory=dict)

    def timing(self, engine: str) -> Timing | None:
        """The timing of ``engine`` ("tf", "folded", "tflite", ... see :data:`ENGINES`), or None."""
        legacy = {"tf": self.ours, "folded": self.folded, "tflite": self.tflite}
        return legacy[engine] if engine in legacy and legacy[engine] is not None else self.engines.get(engine)

    def engine_ratio(self, engine: str) -> float | None:
        """``engine`` / reference median latency."""
        return self._over_reference(self.timing(engine))

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
            "engines": {name: t.to_dict() for name, t in self._all_engines().items()},
            "engine_ratios": {name: self.engine_ratio(name) for name in self._all_engines()},
            "ratio_to_compared": {name: dict(ratios) for name, ratios in self.compared.items()},
            **self.extra,
        }

    def _all_engines(self) -> dict[str, Timing]:
        names = [e for e in ENGINES if self.timing(e) is not None]
        return {name: self.timing(name) for name in names}


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
# Engines
# --------------------------------------------------------------------------------------------

# Every engine `benchmark` can time. "tf": the zoo model as a tf.function; "folded": the same with
# BatchNorm folded (what the SavedModel serves); "tflite*": the TFLite export (float32 / float16
# weights / dynamic-range / full-integer int8) in the stock interpreter (XNNPACK); "openvino": the
# OpenVINO IR of the export graph (float32); "openvino-int8": OpenVINO reading the int8 TFLite file;
# "onnxruntime": the ONNX export in ONNX Runtime. All on the same clip and the same threads.
ENGINES = ("tf", "folded", "tflite", "tflite-float16", "tflite-dynamic", "tflite-int8", "openvino",
           "openvino-int8", "onnxruntime")
# The TFLite files have a fixed batch of 1.
BATCH1_ONLY = ("tflite", "tflite-float16", "tflite-dynamic", "tflite-int8", "openvino-int8")
_COLUMN = {"tf": "ours", "folded": "folded", "tflite": "tflite"}


def parse_engines(text: str | Sequence[str]) -> list[str]:
    """``"tf,folded,tflite"`` (or a list) -> engine names, checked against :data:`ENGINES`; "all"
    is every engine. "tf" is always timed (it is the zoo model itself) and comes first."""
    items = [e.strip() for e in (text.split(",") if isinstance(text, str) else text) for e in e.split(",")]
    items = [e for e in items if e]
    if "all" in items:
        items = list(ENGINES)
    unknown = [e for e in items if e not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)} (or all)")
    return ["tf"] + [e for e in dict.fromkeys(items) if e != "tf"]


def parse_compare(text: str | Sequence[str], model_name: str | None = None) -> list[str]:
    """``"pytorchvideo,X3D_S,autox3d_s"`` (or a list) -> the names to compare with: :data:`REFERENCE_NAME`
    and zoo model names (canonical spelling, case-insensitive, duplicates and ``model_name`` itself
    dropped). Unknown names raise a one-line ValueError that lists the valid choices."""
    from autox3d_tf.zoo import get_model_config, list_models

    items = [e.strip() for e in (text.split(",") if isinstance(text, str) else text) for e in e.split(",")]
    items = [e for e in items if e]
    known = {n.lower(): n for n in list_models()}
    unknown = [e for e in items if e.lower() != REFERENCE_NAME and e.lower() not in known]
    if unknown or not items:
        raise ValueError(f"unknown --compare name(s) {', '.join(unknown) or '(none given)'}: choose from "
                         f"{REFERENCE_NAME}, {', '.join(list_models())} (comma-separated)")
    main = get_model_config(model_name).name if model_name else None
    names = [REFERENCE_NAME if e.lower() == REFERENCE_NAME else known[e.lower()] for e in items]
    return [n for n in dict.fromkeys(names) if n != main]


def _frames_and_inputs(batch: int, shape: Sequence[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same clip for every engine: uint8 frames (what the exports take) and the normalised
    float32 clip the Keras and PyTorch models take (what the exports compute inside)."""
    from autox3d_tf.layers.normalization import MEAN, STD

    frames = np.clip(make_inputs(batch, shape, seed) * 64 + 128, 0, 255).astype(np.uint8)
    x = (frames.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return frames, x.astype(np.float32)


class _Engines:
    """Builds each engine's exported file once (in ``tmp``) and a call for a batch."""

    def __init__(self, model, shape, threads: int, tmp: str, say: Callable[[str], None]):
        self.model, self.shape, self.threads, self.tmp, self.say = model, shape, threads, tmp, say
        self._files: dict[str, str] = {}
        self._fused = None

    def _file(self, kind: str) -> str:
        if kind not in self._files:
            from autox3d_tf.export import runtimes
            from autox3d_tf.export.tflite import export_tflite

            self.say(f"{self.model.name}: exporting {kind}")
            path = os.path.join(self.tmp, kind.replace("-", "_"))
            if kind.startswith("tflite"):
                mode = kind.split("-", 1)[1] if "-" in kind else None
                self._files[kind] = export_tflite(self.model, path + ".tflite", quantize=mode, calibration_steps=8)
            elif kind == "onnx":
                self._files[kind] = runtimes.export_onnx(self.model, path + ".onnx")
            elif kind == "openvino":
                self._files[kind] = runtimes.export_openvino(self.model, os.path.join(path, "model.xml"))
        return self._files[kind]

    def call(self, engine: str, batch: int, frames: np.ndarray, x: np.ndarray) -> Callable[[], Any] | None:
        """A no-argument call that runs ``engine`` once on the batch, or None where it cannot."""
        if batch != 1 and engine in BATCH1_ONLY:
            return None
        if engine in ("tf", "folded"):
            import tensorflow as tf

            if engine == "folded" and self._fused is None:
                from autox3d_tf.models import fuse_for_inference

                self._fused = fuse_for_inference(self.model)
            net = self.model if engine == "tf" else self._fused
            fn = tf.function(lambda t: net(t, training=False))
            tensor = tf.constant(x)
            return lambda: [np.asarray(o) for o in tf.nest.flatten(fn(tensor))]
        if engine.startswith("tflite"):
            import tensorflow as tf

            from autox3d_tf.export.saved_model import SIGNATURE

            interpreter = tf.lite.Interpreter(model_path=self._file(engine), num_threads=self.threads)
            runner = interpreter.get_signature_runner(SIGNATURE)
            return lambda: runner(frames=frames)
        if engine in ("openvino", "openvino-int8"):
            from autox3d_tf.export.runtimes import openvino_model

            path = self._file("openvino" if engine == "openvino" else "tflite-int8")
            compiled = openvino_model(path, threads=self.threads, batch=batch if engine == "openvino" else None)
            request = compiled.create_infer_request()
            return lambda: request.infer([frames])
        if engine == "onnxruntime":
            from autox3d_tf.export.runtimes import onnx_session

            session = onnx_session(self._file("onnx"), threads=self.threads)
            name = session.get_inputs()[0].name
            return lambda: session.run(None, {name: frames})
        raise ValueError(f"unknown engine {engine!r}")


def check_engines_available(engines: Sequence[str]) -> None:
    """Raises a one-line error (a ValueError) when an engine's package is not installed."""
    from autox3d_tf.export.runtimes import _require

    for engine in engines:
        if engine.startswith("openvino"):
            _require("openvino")
        elif engine == "onnxruntime":
            _require("tf2onnx")
            _require("onnxruntime")


def time_interleaved(calls: dict[str, Callable[[], Any]], runs: int, warmup: int, batch: int) -> dict[str, Timing]:
    """Times every call ``runs`` times in rounds (one call of each engine per round, in turn), after
    ``warmup`` untimed rounds (at least one: tf.function traces on its first call), so that a change
    of the machine's load hits every engine alike."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"`runs` must be >= 1 and `warmup` >= 0, got runs={runs}, warmup={warmup}.")
    warmup = max(warmup, 1)
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: Timing(batch, runs, warmup, t) for name, t in times.items()}


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
    compare: bool | str | Sequence[str] = False,
    input_shape: Sequence[int] | None = None,
    seed: int = 0,
    folded: bool = True,
    tflite: bool = False,
    engines: Sequence[str] | str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[BenchResult]:
    """Times ``model_name`` on each engine at each batch size (and pytorchvideo's X3D and other zoo
    models when ``compare`` names them).

    Args:
        model_name: a zoo model name.
        batches: batch sizes.
        threads: TensorFlow intra/inter-op threads, and every other engine's (TFLite, OpenVINO,
            ONNX Runtime, torch); TensorFlow's are set through :func:`configure_threads` (must
            happen before TensorFlow initialises; None keeps TensorFlow's current setting and uses
            :func:`default_threads` for the others).
        runs, warmup: timed and untimed calls per configuration; the median is reported. Within a
            batch size the engines (and the reference) run interleaved, one call each per round.
        compare: True: also time the pytorchvideo reference on the same values; or names (a list or
            "pytorchvideo,X3D_S,..."; see :func:`parse_compare`): the reference and/or zoo models, each
            timed with the same engines, threads and batch sizes on its own clip (its train clip, or
            ``input_shape``), interleaved in the same rounds. Their rows follow the main model's (one
            group per model), and the main model's rows get ``compared``: main / compared per engine.
        input_shape: ``(T, H, W)`` or ``(T, H, W, 3)``; default the model's train clip.
        seed: seed of the random clip (uint8 frames for the exports, the same normalised for the models).
        folded, tflite: without ``engines``, time "folded" / "tflite" too (the defaults of before).
        engines: names from :data:`ENGINES` (a list or "tf,folded,..."); "tf" is always timed.
            The batch-1-only engines (:data:`BATCH1_ONLY`) are skipped at other batch sizes.
        log: optional progress callback.
    """
    import tempfile

    from autox3d_tf.zoo import get_model_config, get_model

    config = get_model_config(model_name)
    if engines is None:
        engines = ["tf"] + (["folded"] if folded else []) + (["tflite"] if tflite else [])
    engines = parse_engines(engines)
    check_engines_available(engines)
    if isinstance(compare, bool) or not compare:
        names = [REFERENCE_NAME] if compare is True else []
    else:
        names = parse_compare(compare, config.name)
    others = [n for n in names if n != REFERENCE_NAME]
    compare = REFERENCE_NAME in names
    if compare:
        check_reference_available(config.name)  # fail before spending minutes on our side
    if threads is not None:
        configure_threads(threads)
    else:
        threads = default_threads()

    def clip(cfg):
        shape = tuple(input_shape) if input_shape is not None else cfg.input_shape[:3]
        return (*(int(d) for d in shape[:3]), 3)

    shape = clip(config)
    model = get_model(config.name, input_shape=shape)
    shapes = {name: clip(get_model_config(name)) for name in others}
    models = {name: get_model(name, input_shape=shapes[name]) for name in others}
    say = log or (lambda _msg: None)
    reference = None
    if compare:
        configure_torch_threads(threads)
        reference = build_reference(config.name, shape)

    results = []
    side: dict[str, list[BenchResult]] = {name: [] for name in others}
    with tempfile.TemporaryDirectory() as tmp:
        built = _Engines(model, shape, threads, tmp, say)
        built_others = {}
        for name in others:
            os.makedirs(os.path.join(tmp, name))
            built_others[name] = _Engines(models[name], shapes[name], threads, os.path.join(tmp, name), say)
        for batch in batches:
            frames, x = _frames_and_inputs(batch, shape, seed)
            calls = {}
            for engine in engines:
                call = built.call(engine, batch, frames, x)
                if call is not None:
                    calls[engine] = call
            if reference is not None:
                calls[REFERENCE_NAME] = _torch_call(reference, x)
            for name in others:  # "<model>:<engine>", after the main model's, in the same rounds
                other_frames, other_x = _frames_and_inputs(batch, shapes[name], seed)
                for engine in engines:
                    call = built_others[name].call(engine, batch, other_frames, other_x)
                    if call is not None:
                        calls[f"{name}:{engine}"] = call
            say(f"{config.name} batch {batch}: {', '.join(calls)}, interleaved")
            timings = time_interleaved(calls, runs, warmup, int(batch))
            for name in others:
                mine = {e: timings.pop(f"{name}:{e}") for e in engines if f"{name}:{e}" in timings}
                side[name].append(BenchResult(name, int(batch), shapes[name], threads, mine.pop("tf"),
                                              folded=mine.pop("folded", None), tflite=mine.pop("tflite", None),
                                              engines=mine))
            result = BenchResult(config.name, int(batch), shape, threads, timings.pop("tf"),
                                 folded=timings.pop("folded", None), tflite=timings.pop("tflite", None))
            if reference is not None:
                result.reference = timings.pop(REFERENCE_NAME)
                result.reference_name = REFERENCE_NAME
            result.engines = timings
            for name in others:
                theirs = side[name][-1]
                result.compared[name] = {e: result.timing(e).median_ms / theirs.timing(e).median_ms
                                         for e in ENGINES if result.timing(e) and theirs.timing(e)}
            results.append(result)
            del calls
    return results + [r for name in others for r in side[name]]


def _torch_call(module, x: np.ndarray) -> Callable[[], Any]:
    import torch

    module.eval()
    tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3)))

    def call():
        with torch.no_grad():
            return module(tensor)

    return call


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def fastest(result: BenchResult, exported_only: bool = False) -> tuple[str, Timing] | None:
    """The engine with the lowest median latency for ``result`` (``exported_only``: not "tf"/"folded")."""
    timed = {e: result.timing(e) for e in ENGINES if result.timing(e) is not None}
    if exported_only:
        timed = {e: t for e, t in timed.items() if e not in ("tf", "folded")}
    if not timed:
        return None
    name = min(timed, key=lambda e: timed[e].median_ms)
    return name, timed[name]


def format_table(results: Sequence[BenchResult], markdown: bool = True) -> str:
    """A table: model, batch, each engine's ms (ours = "tf" and its clips/s first), the reference's
    ms and clips/s, and each engine's ratio to the reference; columns nobody timed are left out."""
    ref_name = next((r.reference_name for r in results if r.reference_name), REFERENCE_NAME)
    others = [e for e in ENGINES if e not in _COLUMN]
    header = (["model", "batch", "ours ms", "ours clips/s", "folded ms", "tflite ms"] + [f"{e} ms" for e in others]
              + [f"{ref_name} ms", f"{ref_name} clips/s", "ratio ours/ref", "ratio folded/ref", "ratio tflite/ref"]
              + [f"ratio {e}/ref" for e in others])

    def ms(r, e):
        t = r.timing(e)
        return _fmt(t.median_ms if t else None)

    rows = [
        [r.model, str(r.batch), ms(r, "tf"), _fmt(r.ours.throughput, 2), ms(r, "folded"), ms(r, "tflite")]
        + [ms(r, e) for e in others]
        + [_fmt(r.reference.median_ms if r.reference else None),
           _fmt(r.reference.throughput if r.reference else None, 2),
           _fmt(r.ratio, 3), _fmt(r.folded_ratio, 3), _fmt(r.tflite_ratio, 3)]
        + [_fmt(r.engine_ratio(e), 3) for e in others]
        for r in results
    ]
    keep = [i for i, h in enumerate(header) if i < 4 or any(row[i] != "-" for row in rows)]
    return _render([header[i] for i in keep], [[row[i] for i in keep] for row in rows], markdown)


def _render(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """Markdown (or aligned plain text) table; the first column left-aligned, the others right."""
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



def format_ratios(results: Sequence[BenchResult], markdown: bool = True) -> str:
    """A table of the main model's median latency over each compared zoo model's, per batch size
    and engine (below 1: the main model is faster); empty when no zoo model was compared."""
    rows = [(r, name, ratios) for r in results for name, ratios in r.compared.items()]
    if not rows:
        return ""
    engines = [e for e in ENGINES if any(e in ratios for _, _, ratios in rows)]
    header = ["ratio", "batch"] + engines
    body = [[f"{r.model} / {name}", str(r.batch)] + [_fmt(ratios.get(e), 3) for e in engines]
            for r, name, ratios in rows]
    return _render(header, body, markdown)
