"""Cost of the architecture searches (issue 5, point 9; issue 14, point 7).

Measures, per clip, at the same batch and the same clip (``--segments`` x ``--frames`` frames of
``--size`` x ``--size``):

- ``darts1`` / ``darts2``: a step of `DifferentiableSearch` on the cell space ``--cell_space``
  (an architecture step on a held-out batch, first or second order, plus a weight step; every
  candidate operation of every edge is computed and held for the backward pass). The clip is K
  snippets of ``--frames`` frames, folded into the batch (the paper's temporal segments);
- ``cell_plain``: a plain training step (``model.fit``'s ``train_step``, SGD) of the LARGEST
  derived cell network: on every edge the costliest operation (most MACs), and per node the two
  costliest incoming edges, in `segment_consensus` over the same K snippets;
- ``prob``: a step of `ArchitectureSearch` on the block space ``--space`` (a weight step on one
  sampled architecture plus a distribution step that evaluates K sampled architectures on a
  held-out batch, K = ``--samples``), and ``prob_weights``, its weight step alone (warm-up);
- ``block_plain``: a plain training step of the block space's largest architecture
  (``space.extreme_choices(largest=True)``: widest stages, costliest block type, largest
  expansion, SE everywhere).

The probabilistic search has no temporal segments: the block-space modes take the same input
tensor as one clip of K x T frames. The differentiable search runs on cell spaces only, so the
differentiable / probabilistic ratios compare two methods on two spaces; the ratio of each search
to the plain step of its own space's largest network is the overhead of the method.

Time: the median of ``--steps`` timed steps after two untimed ones, divided by the batch.

Peak activation memory: measured on the CPU as the peak resident set (``getrusage`` ``ru_maxrss``)
of a FRESH process per configuration, at the batch and at ``--memory_factor`` times the batch; the
slope (MB per extra clip) is the activation memory, because the imports, the graph, the weights
and the optimizer state do not grow with the batch and cancel out. Limits: RSS counts what the
allocator took from the system, so it includes allocator slack and fragmentation, and TensorFlow's
inter-op parallelism may keep more tensors alive at once than a sequential executor; the slope is
linear only when no batch-dependent buffer is freed early. ``tracemalloc`` sees none of
TensorFlow's buffers and ``tf.config.experimental.get_memory_info`` works on GPUs only, so neither
is used. The ``intercept`` (peak RSS minus slope x batch) extrapolates to other batches: the
benchmark says which batch of the differentiable step fits in ``--memory_budget_gb`` (default:
this machine's memory) and whether memory, not time, is the limit at the setting measured.

    python benchmarks/bench_search.py                        # the paper's setting: cells, 4 x 2 x 112 x 112
    python benchmarks/bench_search.py --quick --out bench.json --png bench.png    # CI: tiny spaces, < 1 min
    python benchmarks/bench_search.py --modes prob,block_plain --space small --segments 1 --frames 8 --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("darts1", "darts2", "cell_plain", "prob", "prob_weights", "block_plain")
LABELS = {
    "darts1": "differentiable step, 1st order",
    "darts2": "differentiable step, 2nd order",
    "cell_plain": "plain step, largest cell net",
    "prob": "probabilistic step (K held-out)",
    "prob_weights": "probabilistic weight step only",
    "block_plain": "plain step, largest block arch",
}
QUICK = dict(memory_modes="darts1", memory_steps=0, cell_space="cells-tiny", cell_ops="p3d_a,sep_conv_1x3x3,max_pool_1x3x3,zero", nodes=1, cell_layers=1,
             channels=4, space="tiny", segments=2, frames=2, size=32, batch=1, memory_factor=2, steps=2, samples=2,
             classes=10)
# The commonest accelerator memories, for "which batch fits" (GB).
DEVICE_GB = (16, 24, 40, 80)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _machine_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def largest_cell_genotype(space):
    """The derived genotype of ``space`` with the most MACs: per edge its costliest operation, per
    node its two costliest incoming edges (ties: the first)."""
    from autox3d_tf.arch.cells import Genotype

    normal, reduce, _ = space.cost_tables()
    usable = [o for o, op in enumerate(space.ops) if op != "zero"]

    def pairs(table):
        out = []
        for node in range(space.nodes):
            edges = [e for e, (n, _) in enumerate(space.edges) if n == node]
            best = {e: max(usable, key=lambda o: (table[e, o], -o)) for e in edges}
            top = sorted(sorted(edges, key=lambda e: (-table[e, best[e]], e))[:2])
            out += [(space.ops[best[e]], space.edges[e][1]) for e in top]
        return tuple(out)

    return Genotype(normal=pairs(normal), reduce=pairs(reduce))


def _cell_overrides(args: argparse.Namespace) -> dict:
    out = {"ops": tuple(args.cell_ops.split(",")) if args.cell_ops else None, "nodes": args.nodes,
           "layers": args.cell_layers, "channels": args.channels}
    return {k: v for k, v in out.items() if v is not None}


def measure(mode: str, args: argparse.Namespace) -> dict:
    """One measurement in this process: step times (after 2 untimed steps) and the peak RSS."""
    import numpy as np
    import tensorflow as tf

    import keras

    base_rss = _rss_mb()
    batch, k, frames, size = args.batch, args.segments, args.frames, args.size
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, k * frames, size, size, 3)).astype("float32")
    y = (np.arange(batch) % args.classes).astype("int32")
    data = {"train": (tf.constant(x), tf.constant(y)), "held_out": (tf.constant(x[::-1]), tf.constant(y[::-1]))}
    sgd = lambda: keras.optimizers.SGD(0.01, momentum=0.9)  # noqa: E731
    keras.utils.set_random_seed(0)
    if mode in ("darts1", "darts2", "cell_plain"):
        from autox3d_tf.search.cell_space import cell_space_preset

        space = cell_space_preset(args.cell_space, input_frames=frames, input_size=size, classes=args.classes,
                                  **_cell_overrides(args))
        if mode == "cell_plain":
            from autox3d_tf.arch.cells import cell_net_macs
            from autox3d_tf.models import segment_consensus
            from autox3d_tf.models.cell_builder import build_cell_model

            genotype = largest_cell_genotype(space)
            spec = space.spec(genotype, name="cells_largest")
            net = build_cell_model(spec, classes=args.classes, classifier_activation=None)
            model = segment_consensus(net, k) if k > 1 else net
            model.compile(sgd(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            run = lambda: model.train_on_batch(x, y)  # noqa: E731
            extra = {"gmacs_per_clip": k * cell_net_macs(spec, classes=args.classes) / 1e9,
                     "params": net.count_params(), "genotype": genotype.to_dict()}
        else:
            from autox3d_tf.search.differentiable import DifferentiableSearch

            model = DifferentiableSearch(space, None, second_order=mode == "darts2", segments=k)
            model.compile(sgd(), keras.optimizers.Adam(3e-3))
            step = tf.function(model.train_step)
            run = lambda: step(data)  # noqa: E731
            uniform = np.full((space.num_edges, len(space.ops)), 1.0 / len(space.ops), np.float32)
            extra = {"expected_gmacs_per_clip": k * float(model.expected_macs(uniform, uniform)) / 1e9,
                     "supernet_params": int(sum(np.prod(v.shape) for v in model.supernet.trainable_variables)),
                     "edges_x_ops": [space.num_edges, len(space.ops)]}
        space_name = space.name
    else:
        from autox3d_tf.search.space import space_preset

        space = space_preset(args.space, input_frames=k * frames, input_size=size, classes=args.classes)
        space_name = space.name
        if mode == "block_plain":
            from autox3d_tf.flops import count_macs
            from autox3d_tf.models.builder import build_model

            spec = space.decode(space.extreme_choices(largest=True))
            model = build_model(spec, classes=space.classes, classifier_activation=None)
            model.compile(sgd(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            run = lambda: model.train_on_batch(x, y)  # noqa: E731
            extra = {"gmacs_per_clip": count_macs(model) / 1e9, "params": model.count_params()}
        else:
            from autox3d_tf.search import ArchitectureSearch

            warm = mode == "prob_weights"
            model = ArchitectureSearch(space, 1e15, num_samples=args.samples, min_samples=args.samples,
                                       warmup_steps=10**9 if warm else 0)
            model.compile(sgd(), keras.optimizers.Adam(0.025))
            step = tf.function(model.train_step)
            run = lambda: step(data)  # noqa: E731
            extra = {"expected_gmacs_per_clip": float(model.distribution.expected_macs()) / 1e9,
                     "supernet_params": int(sum(np.prod(v.shape) for v in model.supernet.trainable_variables))}

    def timed() -> float:
        t0 = time.perf_counter()
        out = run()
        if isinstance(out, dict):
            [np.asarray(v) for v in out.values()]
        return time.perf_counter() - t0

    first = timed()
    if args.steps:  # steps 0: the first call only (a memory measurement)
        timed()
    times = [timed() for _ in range(args.steps)] or [first]
    return {
        "mode": mode,
        "space": space_name,
        "clip": [k, frames, size, size],
        "batch": batch,
        "first_call_s": first,
        "step_ms": [1000 * t for t in times],
        "step_ms_median": 1000 * float(np.median(times)),
        "ms_per_clip": 1000 * float(np.median(times)) / batch,
        "peak_rss_mb": _peak_mb(),
        "rss_after_import_mb": base_rss,
        **extra,
    }


def _command(modes: list[str], args: argparse.Namespace, batch: int, steps: int) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--_mode", ",".join(modes), "--space", args.space,
           "--cell_space", args.cell_space, "--segments", str(args.segments), "--frames", str(args.frames),
           "--size", str(args.size), "--batch", str(batch), "--steps", str(steps), "--samples", str(args.samples),
           "--classes", str(args.classes)]
    for flag in ("cell_ops", "nodes", "cell_layers", "channels"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    return cmd


def _run(jobs: list[tuple[list[str], int, int]], args: argparse.Namespace, parallel: bool) -> list[list[dict]]:
    """Runs every ``(modes, batch, steps)`` in a fresh process (all at once when ``parallel``);
    the results of each, in order."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    out = []
    pending = []
    for modes, batch, steps in jobs:
        proc = subprocess.Popen(_command(modes, args, batch, steps), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        pending.append((modes, batch, proc, time.time()))
        if not parallel:
            out.append(_collect(*pending.pop()))
    return out + [_collect(*job) for job in pending]


def _collect(modes: list[str], batch: int, proc: subprocess.Popen, t0: float) -> list[dict]:
    stdout, stderr = proc.communicate()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or len(lines) != len(modes):
        raise RuntimeError(f"{','.join(modes)} at batch {batch} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    results = [json.loads(line[7:]) for line in lines]
    for r in results:
        r["shared_process"] = len(modes) > 1
        print(f"[bench] {r['mode']} at batch {batch}: {r['ms_per_clip']:.0f} ms/clip, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"first call {r['first_call_s']:.1f} s, process {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return results


def _reuse(path: str | None, args: argparse.Namespace) -> dict:
    """The results of an earlier run's JSON (``--reuse``) at the same setting, by configuration."""
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        earlier = json.load(f)
    same = {k: v for k, v in earlier["setting"].items() if k not in ("memory_batch", "steps", "quick")}
    now = {k: v for k, v in summarize({}, args)["setting"].items() if k not in ("memory_batch", "steps", "quick")}
    if same != now:
        print(f"[bench] {path}: another setting, not reused", file=sys.stderr)
        return {}
    return {k: v for k, v in earlier["results"].items() if not v.get("shared_process")}


def _merge(results: dict, jobs, done, big: int) -> None:
    for (_, batch, _), measured in zip(jobs, done):
        for r in measured:
            results[r["mode"] if batch != big or r["shared_process"] else f"{r['mode']}@{big}"] = r


def summarize(results: dict, args: argparse.Namespace) -> dict:
    big = args.batch * args.memory_factor
    per_clip, memory = {}, {}
    for mode in args.modes:
        if mode not in results:
            continue
        small, large = results[mode], results.get(f"{mode}@{big}")
        entry = {"ms_per_clip": small["ms_per_clip"], "ms_per_step": small["step_ms_median"], "batch": args.batch}
        if large is not None and not small["shared_process"]:
            slope = (large["peak_rss_mb"] - small["peak_rss_mb"]) / (big - args.batch)
            entry["activation_mb_per_clip"] = slope
            entry["intercept_mb"] = small["peak_rss_mb"] - slope * args.batch
            entry["ms_per_clip_at_memory_batch"] = large["ms_per_clip"]
        per_clip[mode] = entry
    ratios = {}

    def ratio(name, a, b, key):
        if a in per_clip and b in per_clip and key in per_clip[a] and key in per_clip[b] and per_clip[b][key] > 0:
            ratios[name] = per_clip[a][key] / per_clip[b][key]

    for key, tag in (("ms_per_clip", "time"), ("activation_mb_per_clip", "memory")):
        for darts in ("darts1", "darts2"):
            ratio(f"{darts}_over_prob_{tag}", darts, "prob", key)
            ratio(f"{darts}_over_cell_plain_{tag}", darts, "cell_plain", key)
            ratio(f"{darts}_over_block_plain_{tag}", darts, "block_plain", key)
        ratio(f"darts2_over_darts1_{tag}", "darts2", "darts1", key)
        ratio(f"prob_over_block_plain_{tag}", "prob", "block_plain", key)
        ratio(f"prob_weights_over_block_plain_{tag}", "prob_weights", "block_plain", key)
    budget_mb = 1024 * (args.memory_budget_gb or _machine_gb())
    for darts in ("darts1", "darts2"):
        entry = per_clip.get(darts, {})
        if "activation_mb_per_clip" not in entry or entry["activation_mb_per_clip"] <= 0:
            continue
        slope, intercept = entry["activation_mb_per_clip"], entry["intercept_mb"]
        at = lambda b: intercept + slope * b  # noqa: E731
        memory[darts] = {
            "target_batch": args.target_batch,
            "peak_gb_at_target_batch": at(args.target_batch) / 1024,
            "activation_gb_at_target_batch": slope * args.target_batch / 1024,
            "budget_gb": budget_mb / 1024,
            "max_batch_in_budget": max(0, int((budget_mb - intercept) // slope)),
            "max_batch_by_device_gb": {str(gb): max(0, int((1024 * gb - intercept) // slope)) for gb in DEVICE_GB},
            "memory_is_the_limit": at(args.target_batch) > budget_mb,
        }
    setting = {"cell_space": args.cell_space, **{f"cell_{k}": v for k, v in _cell_overrides(args).items()}, "space": args.space, "segments": args.segments, "frames": args.frames,
               "size": args.size, "batch": args.batch, "memory_batch": big, "steps": args.steps,
               "samples": args.samples, "classes": args.classes, "quick": args.quick,
               "memory_method": "peak RSS (getrusage ru_maxrss) of a fresh process per configuration; "
                                "activation memory = slope between batch and memory_batch"}
    return {"setting": setting, "per_clip": per_clip, "ratios": ratios, "memory_limit": memory, "results": results}


def format_report(summary: dict) -> str:
    s = summary["setting"]
    lines = [f"clip {s['segments']} segment(s) x {s['frames']} frames x {s['size']}x{s['size']}, batch {s['batch']} "
             f"(memory: batch {s['batch']} -> {s['memory_batch']}), cell space {s['cell_space']}, block space "
             f"{s['space']}, K={s['samples']}, {s['classes']} classes",
             f"{'mode':<34}| {'GMACs/clip':>10} | {'ms/step':>9} | {'ms/clip':>9} | {'act. MB/clip':>12} | first call s"]
    lines.append("-" * len(lines[-1]))
    for mode, entry in summary["per_clip"].items():
        r = summary["results"][mode]
        gmacs = r.get("gmacs_per_clip", r.get("expected_gmacs_per_clip"))
        mem = entry.get("activation_mb_per_clip")
        lines.append(f"{LABELS[mode]:<34}| {gmacs:>10.3f} | {entry['ms_per_step']:>9.0f} | {entry['ms_per_clip']:>9.0f} | "
                     f"{'-' if mem is None else f'{mem:.1f}':>12} | {r['first_call_s']:.1f}")
    lines.append("(GMACs: the largest networks' exact count; the searches' expectation under the uniform weights)")
    if summary["ratios"]:
        lines.append("ratios per clip: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["ratios"].items()))
    for darts, m in summary["memory_limit"].items():
        verdict = "memory IS the limit" if m["memory_is_the_limit"] else "memory is not the limit"
        lines.append(
            f"{darts}: batch {m['target_batch']} needs ~{m['peak_gb_at_target_batch']:.1f} GB peak "
            f"({m['activation_gb_at_target_batch']:.1f} GB activations); {verdict} in {m['budget_gb']:.0f} GB "
            f"(largest batch {m['max_batch_in_budget']}); largest batch by device memory: "
            + ", ".join(f"{gb} GB: {b}" for gb, b in m["max_batch_by_device_gb"].items()))
        if m["memory_is_the_limit"]:
            lines.append("  -> the partial-channel trick (PC-DARTS: mix only 1/K of the channels on every edge) "
                         "would cut the mixed edges' activations about K-fold; not implemented here.")
    return "\n".join(lines)


def plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(summary["per_clip"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].barh([LABELS[m] for m in modes], [summary["per_clip"][m]["ms_per_clip"] for m in modes], color="tab:blue")
    axes[0].set_xlabel("step time per clip (ms)")
    mem = [summary["per_clip"][m].get("activation_mb_per_clip", 0.0) for m in modes]
    axes[1].barh([LABELS[m] for m in modes], mem, color="tab:orange")
    axes[1].set_xlabel("activation memory per clip (MB, peak-RSS slope)")
    axes[1].set_yticklabels([])
    s = summary["setting"]
    fig.suptitle(f"search cost: {s['segments']} x {s['frames']} x {s['size']}^2 clips, batch {s['batch']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--cell_space", default="cells", choices=["cells", "cells-tiny"])
    parser.add_argument("--cell_ops", help="comma-separated candidate operations (default: the preset's)")
    parser.add_argument("--nodes", type=int, help="nodes per cell (default: the preset's)")
    parser.add_argument("--cell_layers", type=int, help="cells (default: the preset's)")
    parser.add_argument("--channels", type=int, help="channels of the first cells (default: the preset's)")
    parser.add_argument("--space", default="autox3d-v1", choices=["autox3d-v1", "autox3d-v1-L", "small", "tiny"])
    parser.add_argument("--segments", type=int, default=4, help="snippets per clip (K); 1: plain clips")
    parser.add_argument("--frames", type=int, default=2, help="frames per snippet")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (median)")
    parser.add_argument("--samples", type=int, default=4, help="K held-out architectures per distribution step")
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--memory_modes", help="measure the memory of these modes only (default: all; --quick: darts1)")
    parser.add_argument("--memory_steps", type=int, default=1,
                        help="timed steps of the memory runs (0: the first call only; the peak is reached there)")
    parser.add_argument("--reuse", help="take the configurations already measured in this JSON (same setting)")
    parser.add_argument("--memory_factor", type=int, default=2, help="memory: also run at this many times the batch")
    parser.add_argument("--target_batch", type=int, default=8, help="the batch whose memory the verdict extrapolates")
    parser.add_argument("--memory_budget_gb", type=float, help="memory for the verdict (default: this machine's)")
    parser.add_argument("--quick", action="store_true", help="CI: tiny spaces, 2 x 2 x 32 x 32 clips (under a minute)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--png", help="also draw a bar chart here")
    parser.add_argument("--_mode", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args._mode:
        for mode in args._mode.split(","):
            print("RESULT " + json.dumps(measure(mode, args)), flush=True)
        return 0
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(args.modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; valid: {', '.join(MODES)}")
    memory_modes = args.modes if args.memory_modes is None else [m for m in args.memory_modes.split(",") if m in args.modes]
    args.memory_modes = memory_modes if args.memory_factor > 1 else []
    big = args.batch * args.memory_factor
    # A fresh process per configuration whose memory is measured; the others share one process.
    jobs = []
    for mode in args.modes:
        if mode in args.memory_modes:
            jobs += [([mode], args.batch, args.steps), ([mode], big, args.memory_steps)]
    shared = [m for m in args.modes if m not in args.memory_modes]
    if shared:
        jobs.append((shared, args.batch, args.steps))
    results = {}

    def save() -> dict:
        summary = summarize(results, args)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(summary, f, indent=2)
        return summary

    try:
        if args.quick:  # smoke test: all at once (the times mean little)
            done = _run(jobs, args, parallel=True)
        else:
            done = []
            reused = _reuse(args.reuse, args)
            for job in jobs:
                key = job[0][0] if job[1] == args.batch else f"{job[0][0]}@{big}"
                if len(job[0]) == 1 and key in reused:
                    done.append([reused[key]])
                else:
                    done += _run([job], args, parallel=False)
                _merge(results, [job], done[-1:], big)
                save()
        results.clear()
        _merge(results, jobs, done, big)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    summary = save()
    if args.png:
        try:
            plot(summary, args.png)
        except Exception as err:  # noqa: BLE001 - a picture is never worth the figures
            print(f"[bench] no plot ({type(err).__name__}: {err})", file=sys.stderr)
    print(json.dumps(summary, indent=2) if args.json else format_report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
