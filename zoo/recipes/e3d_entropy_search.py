"""The entropy search on E3D's space at E3D's budgets, against the published E3D and X3D.

    python zoo/recipes/e3d_entropy_search.py [--generations 100] [--variants SML] > zoo/results/e3d_entropy_search.jsonl

For each of S, M, L: the STEntr score of X3D and of the published E3D at the same clip, then
`entropy_search` (population 256, 2 mutations per child) on `e3d_space` under the MACs of the X3D
model of the same budget and E3D's layer budget (83 / 83 / 167), in three settings: E3D's kernels;
E3D's kernels with the bottleneck / width ratio in [4/3, 4]; and with 3x5x5 kernels added. Each
setting starts once from the published E3D structure (seed 0) and once from random architectures
(seed 1). One JSON line per variant and setting.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    from autox3d_tf.arch.e3d import E3D_VARIANTS, e3d_layers, e3d_spec
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.arch.x3d import x3d_spec
    from autox3d_tf.search.e3d_space import KERNELS, e3d_space, layer_constraint
    from autox3d_tf.search.entropy_score import entropy_score
    from autox3d_tf.search.evolution import entropy_search

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--variants", default="SML")
    args = parser.parse_args()
    settings = {
        "e3d-kernels": ({}, None),
        "e3d-kernels, btn/width in [4/3, 4]": ({}, (4 / 3, 4.0)),
        "e3d-kernels + 3x5x5": ({"kernels": KERNELS + ((3, 5),)}, None),
    }

    def summary(spec) -> dict:
        return {"score": entropy_score(spec), "macs": spec_macs(spec), "layers": e3d_layers(spec),
                "stages": [[s.width, s.blocks[0].inner, s.blocks[0].type, len(s.blocks)] for s in spec.stages]}

    for v in args.variants:
        e = E3D_VARIANTS[v]
        e3d, x3d = e3d_spec(v), x3d_spec(v)
        budget = spec_macs(x3d)
        for label, (overrides, ratio) in settings.items():
            space = e3d_space(v, **overrides)
            constraint = layer_constraint(e.layers_budget, btn_ratio=ratio)
            row = {"variant": v, "setting": label, "clip": [e.frames, e.size], "budget_macs": budget,
                   "generations": args.generations, "x3d": {"score": entropy_score(x3d), "macs": budget},
                   "e3d": summary(e3d)}
            for key, seed, init in (("ours_from_e3d", 0, [e3d]), ("ours_from_random", 1, [])):
                start = time.time()
                best, _ = entropy_search(space, budget, generations=args.generations, seed=seed, min_fraction=0.9,
                                         init_specs=init, constraint=constraint, progress=None)
                row[key] = {**summary(best), "seconds": round(time.time() - start, 1)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
