r"""Training-free architecture search (E3D STEntr score + evolution) under a MACs budget.

No data, no training: the fitness is an analytic entropy score of the architecture
(`autox3d_tf.search.entropy_score`), the cost its exact MACs. Runs in seconds to minutes on a CPU.

The AutoX3D zoo specs come from this workflow (see zoo/recipes/), e.g.

    python training/search_entropy.py --variant=XS --population=256 --generations=200 --seed=0 \
        --output=autox3d_tf/resources/autox3d/autox3d_xs.json
    autox3d search-entropy --variant=XS ... (the same flags, from an installed package)

With --variant the budget, clip and space come from the X3D counterpart (its exact MACs, its train
clip, autox3d-v1 with budget "L" for L) and X3D itself seeds the first population. Without it, give
--macs_budget (and --frames, --size, --space_budget).

Writes the `ArchSpec` JSON (--output) and optionally the per-generation history (--history).
"""

from __future__ import annotations

import json
import os
from typing import Sequence

from autox3d_tf.workflows.flagset import FlagSet

__all__ = ["main", "search_and_save"]

FLAGS = FlagSet("autox3d search-entropy", __doc__)

FLAGS.enum("variant", None, ["XS", "S", "M", "L"], "Search under the budget and clip of this X3D model.")
FLAGS.integer("macs_budget", None, "MACs budget (default with --variant: the X3D counterpart's exact MACs).")
FLAGS.integer("frames", None, "Clip length the MACs refer to (without --variant; default 16).")
FLAGS.integer("size", None, "Crop size the MACs refer to (without --variant; default 224).")
FLAGS.enum("space_budget", None, ["default", "L"], "autox3d-v1 depth budget (without --variant).")
FLAGS.list("block_types", None, "Restrict the block types (e.g. 3x3x3,1x3x3,2+1d); default: all five.")
FLAGS.integer("population", 256, "Population size.")
FLAGS.integer("generations", 200, "Generations.")
FLAGS.integer("mutations", 2, "Decisions mutated per child.")
FLAGS.integer("seed", 0, "Random seed (the search is deterministic under it).")
FLAGS.float("min_fraction", 0.95, "The result costs at least this fraction of the budget.")
FLAGS.boolean("init_x3d", True, "With --variant: put the X3D counterpart in the first population.")
FLAGS.string("name", None, "Name of the resulting spec (default autox3d_<variant> or autox3d_entropy).")
FLAGS.string("output", None, "Write the resulting ArchSpec JSON here.")
FLAGS.string("history", None, "Write the per-generation history JSON here.")
FLAGS.boolean("quiet", False, "No progress lines.")


def search_and_save(
    variant: str | None = None,
    *,
    macs_budget: int | None = None,
    frames: int | None = None,
    size: int | None = None,
    space_budget: str | None = None,
    block_types=None,
    population: int = 256,
    generations: int = 200,
    mutations: int = 2,
    seed: int = 0,
    min_fraction: float = 0.95,
    init_x3d: bool = True,
    name: str | None = None,
    output: str | None = None,
    history_path: str | None = None,
    quiet: bool = False,
):
    """The entropy search as a function (also `autox3d search --method entropy`): returns (spec, history).

    Raises ValueError on inconsistent arguments (e.g. --variant with --frames).
    """
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.search.evolution import counterpart_problem, entropy_search
    from autox3d_tf.search.space import autox3d_v1

    overrides = {}
    if block_types:
        overrides["block_types"] = tuple(block_types)
    if variant:
        if frames or size or space_budget:
            raise ValueError("--variant fixes the clip and space; drop --frames/--size/--space_budget")
        space, budget, init = counterpart_problem(variant, **overrides)
        budget = macs_budget or budget
        if not init_x3d:
            init = []
        name = name or f"autox3d_{variant.lower()}"
    else:
        if not macs_budget:
            raise ValueError("give --variant or --macs_budget")
        space = autox3d_v1(space_budget or "default", input_frames=frames or 16, input_size=size or 224, **overrides)
        budget, init, name = macs_budget, [], name or "autox3d_entropy"
    init = [s for s in init if spec_macs(s, classes=space.classes) <= budget]

    print(
        f"search_entropy: {space.name} on {space.input_frames}x{space.input_size}x{space.input_size}, "
        f"budget {budget} MACs ({budget / 1e9:.4f} G), population {population}, "
        f"generations {generations}, seed {seed}, block types {list(space.block_types)}",
        flush=True,
    )
    spec, history = entropy_search(
        space,
        budget,
        population=population,
        generations=generations,
        seed=seed,
        min_fraction=min_fraction,
        mutations=mutations,
        init_specs=init,
        name=name,
        progress=None if quiet else (lambda line: print(line, flush=True)),
    )
    macs = spec_macs(spec, classes=space.classes)
    print(f"result: {spec.name}: {macs} MACs ({100 * macs / budget:.2f}% of budget), widths {list(spec.widths)}, "
          f"depths {list(spec.depths)}, STEntr {history[-1]['best_score']:.4f}")
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        spec.save(output)
        print(f"wrote {output}")
    else:
        print(spec.to_json())
    if history_path:
        with open(history_path, "w", encoding="utf-8") as f:
            json.dump(history, f, indent=1)
    return spec, history


def main(argv: Sequence[str] | None = None) -> int:
    """``autox3d search-entropy``: parses ``argv`` (``argv[0]`` is the program name) and runs :func:`run`."""
    return FLAGS.main(argv, run)


def run() -> int:
    """:func:`search_and_save` with the parsed flags."""
    search_and_save(
        FLAGS.variant,
        macs_budget=FLAGS.macs_budget,
        frames=FLAGS.frames,
        size=FLAGS.size,
        space_budget=FLAGS.space_budget,
        block_types=FLAGS.block_types,
        population=FLAGS.population,
        generations=FLAGS.generations,
        mutations=FLAGS.mutations,
        seed=FLAGS.seed,
        min_fraction=FLAGS.min_fraction,
        init_x3d=FLAGS.init_x3d,
        name=FLAGS.name,
        output=FLAGS.output,
        history_path=FLAGS.history,
        quiet=FLAGS.quiet,
    )
    return 0
