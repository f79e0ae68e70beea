"""Writes the AutoX3D model cards (zoo/AutoX3D_<V>.md) from the frozen specs and measured results.

    python zoo/make_cards.py --bench zoo/results/bench_autox3d.json --accuracy zoo/results/accuracy_synthetic.json

Architecture tables, params and MACs come from building each model (fvcore-convention counter,
`autox3d_tf.flops`); latency and accuracy figures from the JSON files the benchmark scripts write
(`benchmarks/bench_autox3d.py --json`, `benchmarks/accuracy_synthetic.py --json`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _stage_rows(spec, stats):
    by_name = {s.name: s for s in stats}
    rows = []
    stem = by_name["stem"]
    rows.append(f"| stem | 1x3x3 conv stride (1,2,2) + 5x1x1 depthwise | {spec.stem_width} | - | - | - | "
                f"{'x'.join(str(d) for d in stem.output_shape[-4:-1])} | {stem.params:,} | {stem.macs / 1e6:.1f} |")
    for i, stage in enumerate(spec.stages, 1):
        s = by_name[f"stage{i}"]
        types = Counter(b.type for b in stage.blocks if not b.is_skip)
        exps = Counter(b.expansion for b in stage.blocks if not b.is_skip)
        se = sum(b.attention == "se" for b in stage.blocks if not b.is_skip)
        seq = " ".join(
            "skip" if b.is_skip else f"{b.type}/{b.expansion:g}{'+SE' if b.attention == 'se' else ''}" for b in stage.blocks
        )
        rows.append(
            f"| stage{i} | {', '.join(f'{n}x {t}' for t, n in types.most_common())} | {stage.width} | "
            f"{stage.depth} | {', '.join(f'{n}x {e:g}' for e, n in sorted(exps.items()))} | {se} | "
            f"{'x'.join(str(d) for d in s.output_shape[-4:-1])} | {s.params:,} | {s.macs / 1e6:.1f} |"
        )
        rows.append(f"| | `{seq}` | | | | | | | |")
    head = by_name["head"]
    pred = by_name.get("predictions")
    hp = head.params + (pred.params if pred else 0)
    hm = head.macs + (pred.macs if pred else 0)
    rows.append(f"| head | 1x1x1 conv to {spec.head_width}, pool, dense {spec.head_hidden}, dense 400 | "
                f"{spec.head_width} | - | - | - | 1 | {hp:,} | {hm / 1e6:.1f} |")
    return rows


def card(variant, bench_rows, acc_rows, bench_cmd, acc_cmd, acc_clip="8x48x48"):
    from autox3d_tf.arch import x3d_spec
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.flops import count_macs, count_params, stage_stats
    from autox3d_tf.search.entropy_score import entropy_score
    from autox3d_tf.zoo import get_model_config, get_model, get_spec

    name = f"AutoX3D_{variant}"
    spec, cfg, x3d = get_spec(name), get_model_config(name), x3d_spec(variant)
    model = get_model(name)
    xmodel = get_model(f"X3D_{variant}")
    macs, xmacs = count_macs(model), count_macs(xmodel)
    assert macs == spec_macs(spec)
    params, xparams = count_params(model), count_params(xmodel)
    test_macs = spec_macs(spec, size=cfg.test_crop)
    with open(os.path.join(ROOT, "zoo", "recipes", f"autox3d_{variant.lower()}.sh"), encoding="utf-8") as f:
        recipe = "".join(line for line in f if not line.startswith(("#", "set ")))
    lines = [
        f"# AutoX3D-{variant}",
        "",
        f"An architecture of the autox3d-v1 space (docs/ARCHITECTURE.md section 6) found by this project's **training-free**",
        f"entropy search (E3D-style STEntr score + evolution, `autox3d_tf.search.evolution.entropy_search`) under",
        f"the exact MACs of X3D-{variant} on the same clip. **It has not been trained**: no pretrained weights exist,",
        f"and `{name}(weights=\"kinetics400\")` raises `NoPretrainedWeightsError` listing the weights that do exist.",
        "",
        "It is *not* the Auto-X3D paper's model (Jiang et al., WACV 2022): that work searched with a weight-sharing",
        "probabilistic NAS trained on Kinetics, and its searched architectures were not published in a form we",
        "could read. The name says which X3D budget the model targets.",
        "",
        "```python",
        f"from autox3d_tf.zoo import {name}",
        f"model = {name}(weights=None, classes=400)   # input ({cfg.frames}, {cfg.train_crop}, {cfg.train_crop}, 3)",
        "```",
        "",
        "## Summary",
        "",
        "| | AutoX3D-%s | X3D-%s |" % (variant, variant),
        "|---|---|---|",
        f"| input (train clip) | {cfg.frames}x{cfg.train_crop}x{cfg.train_crop}, sampling rate {cfg.sampling_rate} | same |",
        f"| params | {params:,} | {xparams:,} |",
        f"| GMACs at {cfg.frames}x{cfg.train_crop}x{cfg.train_crop} (fvcore convention) | {macs / 1e9:.4f} ({macs:,}) | {xmacs / 1e9:.4f} ({xmacs:,}) |",
        f"| MACs / budget | {100 * macs / xmacs:.2f}% | 100% |",
        f"| GMACs at test crop {cfg.test_crop} | {test_macs / 1e9:.3f} | {spec_macs(x3d, size=cfg.test_crop) / 1e9:.3f} |",
        f"| STEntr score | {entropy_score(spec):.3f} | {entropy_score(x3d):.3f} |",
        f"| widths / computing depths | {list(spec.widths)} / {list(spec.depths)} | {list(x3d.widths)} / {list(x3d.depths)} |",
        f"| pretrained weights | none | Kinetics-400 (official checkpoints, converted) |",
        "",
        "MACs and params are counted on the built Keras model (`autox3d_tf.flops.count_macs`, equal to",
        "`spec_macs`); `autox3d info " + name + "` prints the same figures.",
        "",
        "## Architecture",
        "",
        "Block notation `type/expansion[+SE]`: `3x3x3` is X3D's depthwise kernel, `2+1d` a depthwise 1x3x3 then",
        "3x1x1, `1x3x3` spatial only; every block is 1x1x1 -> depthwise -> [SE] -> Swish -> 1x1x1 with a residual,",
        "inner width `int(expansion x width)`, stride 2 in the first block of each stage.",
        "",
        "| stage | blocks | width | depth | expansions | SE blocks | output T x H x W | params | MMACs |",
        "|---|---|---|---|---|---|---|---|---|",
        *_stage_rows(spec, stage_stats(model)),
        "",
        f"Spec (package data): `autox3d_tf/resources/autox3d/autox3d_{variant.lower()}.json`.",
        "",
        "## Search recipe",
        "",
        "Training-free: no data and no weights are involved. The fitness is the STEntr score (an analytic",
        "spatio-temporal entropy of the architecture, `autox3d_tf.search.entropy_score`); the cost the exact MACs.",
        f"The first population holds X3D-{variant} itself and random architectures; children (2 mutated decisions)",
        "over the budget are dropped; the result is the best score within [95%, 100%] of the budget.",
        "Block types are restricted to 3x3x3, 1x3x3 and 2+1d: with 3x5x5 and 5x3x3 allowed the score fills the",
        "network with them and, for XS and S where we measured it, the result was not faster than X3D on CPU (zoo/README.md).",
        "",
        "```bash",
        recipe.strip(),
        "```",
        "",
        f"Deterministic: `tests/test_entropy_search.py::test_xs_recipe_reproduces_the_frozen_spec` re-runs the XS",
        "recipe and compares with the frozen spec. Search log line: `" + spec.notes + "`.",
        "",
        "## Latency (measured here)",
        "",
    ]
    rows = [r for r in bench_rows if r["variant"] == variant]
    if rows:
        lines += [
            "CPU, TensorFlow, random weights and inputs, X3D and AutoX3D timed in interleaved rounds in the same",
            "process with the same threads (see `benchmarks/bench_autox3d.py`). This machine was shared with other",
            "jobs while measuring: absolute times are noisy; the per-round ratio is the more robust figure.",
            "",
            "| batch | threads | X3D ms (median / min) | AutoX3D ms (median / min) | AutoX3D / X3D (median of rounds) |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['batch']} | {r['threads']} | {r['x3d_median_ms']:.1f} / {r['x3d_min_ms']:.1f} | "
                f"{r['autox3d_median_ms']:.1f} / {r['autox3d_min_ms']:.1f} | {r['ratio_median_of_rounds']:.3f} |"
            )
        lines += ["", "Command:", "", "```bash", bench_cmd, "```", ""]
    else:
        lines += ["Not measured.", "", "Command:", "", "```bash", bench_cmd, "```", ""]
    lines += ["## What it has and has not been trained on", ""]
    lines += [
        "- **Kinetics-400 / any video dataset: not trained.** No accuracy on a real benchmark is claimed.",
        "- The architecture was chosen without data (training-free score).",
    ]
    acc = [r for r in acc_rows if r["model"] == name]
    if acc:
        xacc = [r for r in acc_rows if r["model"] == f"X3D_{variant}"]
        mean = lambda rs, k: 100 * sum(r[k] for r in rs) / len(rs)  # noqa: E731
        lines += [
            f"- Sanity check only (`benchmarks/accuracy_synthetic.py`): the same architecture at an {acc_clip} clip,",
            f"  trained from scratch for {acc[0]['epochs']} epochs on the built-in synthetic motion dataset (4 classes,",
            f"  seeds {[r['seed'] for r in acc]}): test top-1 {mean(acc, 'test_top1'):.1f}% vs X3D-{variant} "
            f"{mean(xacc, 'test_top1'):.1f}% under the same recipe (see zoo/README.md); those weights are not shipped. "
            f"Command: `{acc_cmd}`.",
        ]
    lines += [
        "",
        "## References",
        "",
        "- X3D: Feichtenhofer, *X3D: Expanding Architectures for Efficient Video Recognition*, CVPR 2020.",
        "- Auto-X3D: Jiang et al., *Auto-X3D: Ultra-Efficient Video Understanding via Finer-Grained Neural",
        "  Architecture Search*, WACV 2022 (the search space this project reconstructs).",
        "- E3D / STEntr: Wang et al., *Maximizing Spatio-Temporal Entropy of Deep 3D CNNs for Efficient Video",
        "  Recognition*, ICLR 2023; score as implemented in alibaba/lightweight-neural-architecture-search.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", nargs="*", default=[], help="JSON files from benchmarks/bench_autox3d.py --json")
    p.add_argument("--accuracy", help="JSON from benchmarks/accuracy_synthetic.py --json")
    p.add_argument("--bench-cmd", default="python benchmarks/bench_autox3d.py --models XS S M --batch 1 8 --threads 2 --runs 9")
    p.add_argument("--acc-cmd", default="python benchmarks/accuracy_synthetic.py --seeds 0 --epochs 12")
    p.add_argument("--variants", nargs="+", default=["XS", "S", "M", "L"])
    args = p.parse_args(argv)
    bench_rows, commands = [], {}
    for path in args.bench:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        bench_rows += data["results"]
        a = data["args"]
        for r in data["results"]:
            commands[r["variant"]] = (
                f"python benchmarks/bench_autox3d.py --models {' '.join(a['models'])} --batch {' '.join(map(str, a['batch']))} "
                f"--threads {a['threads']} --runs {a['runs']} --json zoo/results/{os.path.basename(path)}"
            )
    acc_rows, acc_cmd, acc_clip = [], args.acc_cmd, "8x48x48"
    if args.accuracy:
        with open(args.accuracy, encoding="utf-8") as f:
            data = json.load(f)
        acc_rows, a = data["results"], data["args"]
        acc_clip = data.get("clip", "8x64x64")  # files written before the clip was recorded: 8x64x64
        acc_cmd = (
            f"python benchmarks/accuracy_synthetic.py --seeds {' '.join(map(str, a['seeds']))} --epochs {a['epochs']} "
            f"--json zoo/results/{os.path.basename(args.accuracy)}"
        )
    for v in args.variants:
        path = os.path.join(ROOT, "zoo", f"AutoX3D_{v}.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(card(v, bench_rows, acc_rows, commands.get(v, args.bench_cmd), acc_cmd, acc_clip))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
