"""Training-free architecture search: evolution of choice vectors under a MACs budget (E3D-style).

    from autox3d_tf.search.space import autox3d_v1
    from autox3d_tf.search.evolution import entropy_search

    space = autox3d_v1(input_frames=4, input_size=160)
    spec, history = entropy_search(space, macs_budget=626_000_000, generations=60, seed=0)

The fitness is the STEntr score (`autox3d_tf.search.entropy_score`); the cost is the exact analytic
MACs (`autox3d_tf.arch.macs.spec_macs`, equal to the fvcore-convention count of the built model).
No data, no weights, no training: the whole search runs in seconds to minutes on a CPU.

Algorithm ((mu + lambda) evolution on the space's choice vectors, deterministic under ``seed``):

1. Initial population: ``init_specs`` (e.g. the X3D point of the budget), then random choice vectors;
   a random vector over the budget is repaired (a random block skipped, or a random width / expansion
   stepped down) until it fits.
2. Each generation makes ``children`` (default ``population``) children: a parent drawn uniformly from
   the population, ``mutations`` (default 2) distinct decisions re-drawn to a different candidate.
   Children over the budget, failing ``constraint``, or already seen are dropped.
3. Population and surviving children are ranked by score (ties: fewer MACs, then the choice vector)
   and the best ``population`` survive.
4. The result is the best-scoring architecture ever evaluated whose MACs lie in
   ``[min_fraction * budget, budget]``.

One progress line per generation goes to ``progress`` (``print`` by default; None for silence).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.search.entropy_score import entropy_score
from autox3d_tf.search.e3d_space import E3DSearchSpace
from autox3d_tf.search.space import SearchSpace

__all__ = [
    "Candidate",
    "NoFeasibleArchitectureError",
    "counterpart_problem",
    "entropy_search",
    "mutate",
    "random_choices",
]

DEFAULT_GENERATIONS = 100
# Decisions whose candidates cost more the later they come (the repair step walks them down):
# autox3d-v1's widths and expansions, the E3D space's bottlenecks and depths
# (`autox3d_tf.search.e3d_space`).
_ORDERED_KINDS = ("width", "expansion", "bottleneck", "depth")


class NoFeasibleArchitectureError(RuntimeError):
    """No evaluated architecture met the budget window (``min_fraction * budget <= MACs <= budget``)."""


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture."""

    choices: tuple[int, ...]
    spec: ArchSpec
    macs: int
    score: float

    def rank_key(self) -> tuple:
        return (-self.score, self.macs, self.choices)


def random_choices(space: SearchSpace, rng: np.random.Generator) -> list[int]:
    """A uniformly random choice vector of ``space``."""
    return [int(rng.integers(d.size)) for d in space.decisions]


def mutate(space: SearchSpace, choices: Sequence[int], rng: np.random.Generator, mutations: int = 2) -> list[int]:
    """``choices`` with ``mutations`` distinct decisions re-drawn to a different candidate."""
    child = [int(c) for c in choices]
    mutable = [i for i, d in enumerate(space.decisions) if d.size > 1]
    picks = rng.choice(len(mutable), size=min(mutations, len(mutable)), replace=False)
    for p in np.sort(picks):
        i = mutable[int(p)]
        new = int(rng.integers(space.decisions[i].size - 1))
        child[i] = new + (new >= child[i])
    return child


def _repair(space: SearchSpace, choices: list[int], rng: np.random.Generator, macs_fn, budget: int) -> list[int] | None:
    """Shrinks an over-budget vector: a random block to skip, or a width / expansion (E3D: bottleneck,
    depth) one step down."""
    choices = list(choices)
    for _ in range(10 * space.num_decisions):
        if macs_fn(choices) <= budget:
            return choices
        moves = []
        for i, d in enumerate(space.decisions):
            if d.kind in _ORDERED_KINDS and choices[i] > 0:
                moves.append((i, choices[i] - 1))  # candidates are in increasing order
            elif d.kind == "type" and "skip" in d.candidates and d.candidates[choices[i]] != "skip":
                moves.append((i, d.candidates.index("skip")))
        if not moves:
            return None
        i, value = moves[int(rng.integers(len(moves)))]
        choices[i] = value
    return None


def _check_sorted(space: SearchSpace) -> None:
    for d in space.decisions:
        if d.kind in _ORDERED_KINDS and list(d.candidates) != sorted(d.candidates):
            raise ValueError(f"decision {d.name}: candidates must be in increasing order for the repair step.")


def entropy_search(
    space: SearchSpace | E3DSearchSpace,
    macs_budget: int,
    *,
    population: int = 256,
    generations: int = DEFAULT_GENERATIONS,
    seed: int = 0,
    min_fraction: float = 0.95,
    mutations: int = 2,
    children: int | None = None,
    init_specs: Iterable[ArchSpec] = (),
    constraint: Callable[[ArchSpec], bool] | None = None,
    score_fn: Callable[[ArchSpec], float] | None = None,
    name: str = "autox3d_entropy",
    progress: Callable[[str], None] | None = print,
) -> tuple[ArchSpec, list[dict]]:
    """Evolutionary search for the highest STEntr score under a MACs budget.

    Args:
        space: the search space (e.g. ``autox3d_v1(input_frames=4, input_size=160)``, or E3D's
            ``autox3d_tf.search.e3d_space.e3d_space("S")``); MACs are counted
            on its clip with its ``classes``.
        macs_budget: the most MACs an architecture may cost (children over it are dropped).
        population: size of the population kept between generations.
        generations: number of generations.
        seed: seed of the only random generator used: same arguments, same result.
        min_fraction: the result costs at least ``min_fraction * macs_budget``.
        mutations: decisions changed per child.
        children: children per generation (default ``population``).
        init_specs: architectures placed in the first population (each must be in ``space`` and
            within the budget).
        constraint: optional extra predicate; children for which it is False are dropped.
        score_fn: fitness (default: `entropy_score` on the space's clip).
        name: name of the returned `ArchSpec`.
        progress: called with one line per generation (None: silent).

    Returns:
        ``(spec, history)``: the best architecture and one dict per generation (best / median
        score, best MACs and fraction of the budget, evaluated and dropped counts, seconds).

    Raises:
        NoFeasibleArchitectureError: nothing evaluated lies in ``[min_fraction * budget, budget]``.
    """
    if isinstance(macs_budget, bool) or not isinstance(macs_budget, (int, np.integer)) or macs_budget <= 0:
        raise ValueError(f"`macs_budget` must be a positive integer number of MACs, got {macs_budget!r}.")
    if population < 2 or generations < 0 or mutations < 1:
        raise ValueError("need population >= 2, generations >= 0 and mutations >= 1.")
    if not 0.0 <= min_fraction <= 1.0:
        raise ValueError(f"`min_fraction` must be in [0, 1], got {min_fraction!r}.")
    _check_sorted(space)
    budget = int(macs_budget)
    floor = min_fraction * budget
    children = population if children is None else int(children)
    rng = np.random.default_rng(seed)
    score_fn = score_fn or (lambda s: entropy_score(s, space.input_frames, space.input_size))

    seen: dict[tuple[int, ...], Candidate | None] = {}  # None: dropped (over budget / constraint)
    best_feasible: list[Candidate] = []
    counters = {"evaluated": 0, "dropped": 0, "duplicates": 0}

    def macs_of(choices: Sequence[int]) -> int:
        return spec_macs(space.decode(choices), classes=space.classes)

    def evaluate(choices: Sequence[int]) -> Candidate | None:
        spec = space.decode(choices)
        key = tuple(space.encode(spec))  # canonical: skip blocks carry no expansion / attention
        if key in seen:
            counters["duplicates"] += 1
            return None
        macs = spec_macs(spec, classes=space.classes)
        if macs > budget or (constraint is not None and not constraint(spec)):
            seen[key] = None
            counters["dropped"] += 1
            return None
        cand = Candidate(key, spec, int(macs), float(score_fn(spec)))
        seen[key] = cand
        counters["evaluated"] += 1
        if macs >= floor and (not best_feasible or cand.rank_key() < best_feasible[0].rank_key()):
            best_feasible[:] = [cand]
        return cand

    start = time.time()
    pop: list[Candidate] = []
    for spec in init_specs:
        choices = space.encode(spec)
        cand = evaluate(choices)
        if cand is None and seen.get(tuple(choices)) is None:
            raise ValueError(f"init spec {spec.name!r} is over the budget or fails the constraint.")
        if cand is not None:
            pop.append(cand)
    attempts = 0
    while len(pop) < population and attempts < 50 * population:
        attempts += 1
        choices = _repair(space, random_choices(space, rng), rng, macs_of, budget)
        if choices is None:
            continue
        cand = evaluate(choices)
        if cand is not None:
            pop.append(cand)
    if not pop:
        raise NoFeasibleArchitectureError(f"no architecture of the space fits {budget} MACs.")
    pop.sort(key=Candidate.rank_key)

    history: list[dict] = []

    def record(generation: int) -> None:
        scores = [c.score for c in pop]
        top = best_feasible[0] if best_feasible else None
        entry = {
            "generation": generation,
            "best_score": top.score if top else None,
            "best_macs": top.macs if top else None,
            "best_fraction": top.macs / budget if top else None,
            "population_best_score": pop[0].score,
            "population_median_score": float(np.median(scores)),
            "population_min_fraction": min(c.macs for c in pop) / budget,
            "evaluated": counters["evaluated"],
            "dropped": counters["dropped"],
            "duplicates": counters["duplicates"],
            "seconds": round(time.time() - start, 3),
        }
        history.append(entry)
        if progress is not None:
            best = (
                f"best {top.score:.4f} at {top.macs / 1e9:.4f} GMACs ({100 * top.macs / budget:.2f}% of budget)"
                if top
                else "no architecture in the budget window yet"
            )
            progress(
                f"gen {generation:>4}/{generations}: {best}; population median {entry['population_median_score']:.4f}; "
                f"evaluated {counters['evaluated']}, dropped {counters['dropped']} over budget; {entry['seconds']:.1f}s"
            )

    record(0)
    for generation in range(1, generations + 1):
        born = []
        for _ in range(children):
            parent = pop[int(rng.integers(len(pop)))]
            cand = evaluate(mutate(space, parent.choices, rng, mutations))
            if cand is not None:
                born.append(cand)
        pop = sorted(pop + born, key=Candidate.rank_key)[:population]
        record(generation)

    if not best_feasible:
        raise NoFeasibleArchitectureError(
            f"no evaluated architecture costs between {math.ceil(floor)} and {budget} MACs; "
            "pass init_specs near the budget, more generations, or a lower min_fraction."
        )
    top = best_feasible[0]
    notes = (
        f"entropy_search(space={space.name}, frames={space.input_frames}, size={space.input_size}, "
        f"budget={budget}, population={population}, generations={generations}, seed={seed}, "
        f"min_fraction={min_fraction}, mutations={mutations}); STEntr score {top.score:.6f}, "
        f"{top.macs} MACs ({100 * top.macs / budget:.2f}% of budget)"
    )
    return top.spec.replace(name=name, notes=notes), history


def counterpart_problem(variant: str, **space_overrides) -> tuple[SearchSpace, int, list[ArchSpec]]:
    """The search problem of AutoX3D-``variant``: its X3D counterpart's clip, MACs and seed point.

    Returns ``(space, budget, init_specs)``: ``autox3d_v1`` on the X3D train clip of ``variant``
    (budget "L" for L, else "default"), the exact MACs of X3D-``variant`` on that clip (400 classes),
    and ``[X3D-variant]`` when it is a point of the space (it is unless ``space_overrides`` remove its
    block type or expansion). ``space_overrides`` go to ``autox3d_v1`` (e.g. ``block_types``).
    """
    from autox3d_tf.arch.x3d import X3D_VARIANTS, x3d_spec
    from autox3d_tf.search.space import autox3d_v1

    key = variant.upper()
    if key not in X3D_VARIANTS or key == "XL":
        raise ValueError(f"Unknown AutoX3D variant {variant!r}; valid variants are ['XS', 'S', 'M', 'L'].")
    x3d = x3d_spec(key)
    space = autox3d_v1(
        "L" if key == "L" else "default",
        input_frames=x3d.input_frames,
        input_size=x3d.input_size,
        classes=400,
        **space_overrides,
    )
    budget = spec_macs(x3d, classes=400)
    init = [x3d] if space.contains(x3d) else []
    return space, int(budget), init
