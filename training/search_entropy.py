r"""Training-free architecture search (E3D STEntr score + evolution) under a MACs budget.

No data, no training: the fitness is an analytic entropy score of the architecture
(`autox3d_tf.search.entropy_score`), the cost its exact MACs. Runs in seconds to minutes on a CPU.

The AutoX3D zoo specs come from this script (see zoo/recipes/), e.g.

    python training/search_entropy.py --variant=XS --population=256 --generations=200 --seed=0 \
        --output=autox3d_tf/resources/autox3d/autox3d_xs.json

With --variant the budget, clip and space come from the X3D counterpart (its exact MACs, its train
clip, autox3d-v1 with budget "L" for L) and X3D itself seeds the first population. Without it, give
--macs_budget (and --frames, --size, --space_budget).

Writes the `ArchSpec` JSON (--output) and optionally the per-generation history (--history).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_enum("variant", None, ["XS", "S", "M", "L"], "Search under the budget and clip of this X3D model.")
flags.DEFINE_integer("macs_budget", None, "MACs budget (default with --variant: the X3D counterpart's exact MACs).")
flags.DEFINE_integer("frames", None, "Clip length the MACs refer to (default: the variant's, else 16).")
flags.DEFINE_integer("size", None, "Crop size the MACs refer to (default: the variant's, else 224).")
flags.DEFINE_enum("space_budget", None, ["default", "L"], "autox3d-v1 depth budget (default: L for --variant=L).")
flags.DEFINE_list("block_types", None, "Restrict the block types (e.g. 3x3x3,1x3x3,2+1d); default: all five.")
flags.DEFINE_integer("population", 256, "Population size.")
flags.DEFINE_integer("generations", 200, "Generations.")
flags.DEFINE_integer("mutations", 2, "Decisions mutated per child.")
flags.DEFINE_integer("seed", 0, "Random seed (the search is deterministic under it).")
flags.DEFINE_float("min_fraction", 0.95, "The result costs at least this fraction of the budget.")
flags.DEFINE_bool("init_x3d", True, "With --variant: put the X3D counterpart in the first population.")
flags.DEFINE_string("name", None, "Name of the resulting spec (default autox3d_<variant> or autox3d_entropy).")
flags.DEFINE_string("output", None, "Write the resulting ArchSpec JSON here.")
flags.DEFINE_string("history", None, "Write the per-generation history JSON here.")
flags.DEFINE_bool("quiet", False, "No progress lines.")


def run(argv=None) -> int:
    del argv
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.search.evolution import counterpart_problem, entropy_search
    from autox3d_tf.search.space import autox3d_v1

    overrides = {}
    if FLAGS.block_types:
        overrides["block_types"] = tuple(FLAGS.block_types)
    if FLAGS.variant:
        if FLAGS.frames or FLAGS.size or FLAGS.space_budget:
            print("search_entropy: --variant fixes the clip and space; drop --frames/--size/--space_budget", file=sys.stderr)
            return 2
        space, budget, init = counterpart_problem(FLAGS.variant, **overrides)
        budget = FLAGS.macs_budget or budget
        if not FLAGS.init_x3d:
            init = []
        name = FLAGS.name or f"autox3d_{FLAGS.variant.lower()}"
    else:
        if not FLAGS.macs_budget:
            print("search_entropy: give --variant or --macs_budget", file=sys.stderr)
            return 2
        space = autox3d_v1(
            FLAGS.space_budget or "default", input_frames=FLAGS.frames or 16, input_size=FLAGS.size or 224, **overrides
        )
        budget, init, name = FLAGS.macs_budget, [], FLAGS.name or "autox3d_entropy"
    init = [s for s in init if spec_macs(s, classes=space.classes) <= budget]

    print(
        f"search_entropy: {space.name} on {space.input_frames}x{space.input_size}x{space.input_size}, "
        f"budget {budget} MACs ({budget / 1e9:.4f} G), population {FLAGS.population}, "
        f"generations {FLAGS.generations}, seed {FLAGS.seed}, block types {list(space.block_types)}",
        flush=True,
    )
    spec, history = entropy_search(
        space,
        budget,
        population=FLAGS.population,
        generations=FLAGS.generations,
        seed=FLAGS.seed,
        min_fraction=FLAGS.min_fraction,
        mutations=FLAGS.mutations,
        init_specs=init,
        name=name,
        progress=None if FLAGS.quiet else (lambda line: print(line, flush=True)),
    )
    macs = spec_macs(spec, classes=space.classes)
    print(f"result: {spec.name}: {macs} MACs ({100 * macs / budget:.2f}% of budget), widths {list(spec.widths)}, "
          f"depths {list(spec.depths)}, STEntr {history[-1]['best_score']:.4f}")
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        spec.save(FLAGS.output)
        print(f"wrote {FLAGS.output}")
    else:
        print(spec.to_json())
    if FLAGS.history:
        with open(FLAGS.history, "w", encoding="utf-8") as f:
            json.dump(history, f, indent=1)
    return 0


def main(argv):
    sys.exit(run(argv))


if __name__ == "__main__":
    app.run(main)
