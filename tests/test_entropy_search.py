"""The training-free search: STEntr score against hand-computed values, evolution under a MACs budget."""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from autox3d_tf.arch import ArchSpec, BlockSpec, StageSpec, x3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.search.entropy_score import entropy_score, entropy_score_terms, refinement
from autox3d_tf.search.evolution import (
    NoFeasibleArchitectureError,
    counterpart_problem,
    entropy_search,
    mutate,
)
from autox3d_tf.search.space import autox3d_v1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Spec A: 4x32x32 clip, stem 8 (temporal kernel 3), one stage of width 8 with one 3x3x3 block (x1.5), head 16.
SPEC_A = ArchSpec(
    name="a",
    stages=(StageSpec(8, (BlockSpec("3x3x3", 1.5, "none"),), 2),),
    input_frames=4,
    input_size=32,
    stem_width=8,
    stem_temporal_kernel=3,
    head_width=16,
    head_hidden=0,
)
# Spec B: 8x16x16 clip, stem 8 (temporal kernel 5); stage 1 width 8: 1x3x3 (x2.25), skip;
# stage 2 width 16: 2+1d (x3.0) with SE; head 32.
SPEC_B = ArchSpec(
    name="b",
    stages=(
        StageSpec(8, (BlockSpec("1x3x3", 2.25, "none"), BlockSpec("skip")), 2),
        StageSpec(16, (BlockSpec("2+1d", 3.0, "se"),), 2),
    ),
    input_frames=8,
    input_size=16,
    stem_width=8,
    stem_temporal_kernel=5,
    head_width=32,
    head_hidden=0,
)


def _alpha(dot: float, norm_u_sq: float, norm_v_sq: float) -> float:
    return -math.log(1 - dot / math.sqrt(norm_u_sq * norm_v_sq))


def test_score_spec_a_by_hand():
    # stem spatial conv 1x3x3 on an output map 4x16x16: u = (4, 16, 16), v = (1, 3, 3).
    stem = 0.5 * math.log(3 * 9 * _alpha(4 + 48 + 48, 16 + 256 + 256, 19))
    temporal = 0.5 * math.log(1 * 3)  # depthwise 3x1x1: one input channel per group, k = 1 -> alpha = 1
    # block: C_in 8, inner int(1.5 * 8) = 12, 3x3x3 on 4x8x8: u = (4, 8, 8), v = (3, 3, 3).
    block = 0.5 * math.log(8) + 0.5 * math.log(27 * _alpha(12 + 24 + 24, 16 + 64 + 64, 27)) + 0.5 * math.log(12)
    head = 0.5 * math.log(8)  # 1x1x1 conv from 8 channels
    expected = stem + temporal + block + head + math.log(16)
    assert expected == pytest.approx(11.464333, abs=1e-6)  # the same sum, evaluated once by hand
    assert entropy_score(SPEC_A) == pytest.approx(expected, rel=1e-12)
    values = {t.name: t.value for t in entropy_score_terms(SPEC_A)}
    assert values["stem_spatial"] == pytest.approx(2.579194, abs=1e-6)
    assert values["stage1_block0"] == pytest.approx(4.523523, abs=1e-6)


def test_score_spec_b_by_hand():
    stem = 0.5 * math.log(27 * _alpha(8 + 24 + 24, 3 * 64, 19))  # map 8x8x8
    temporal = 0.5 * math.log(5)
    # stage 1 block 0: C_in 8, inner 18, 1x3x3 on 8x4x4; the skip adds nothing.
    b1 = 0.5 * (math.log(8) + math.log(9 * _alpha(8 + 12 + 12, 64 + 16 + 16, 19)) + math.log(18))
    # stage 2 block 0: C_in 8, inner 48, 1x3x3 then 3x1x1 on 8x2x2; SE adds nothing.
    b2 = 0.5 * (math.log(8) + math.log(9 * _alpha(8 + 6 + 6, 64 + 4 + 4, 19)) + math.log(3) + math.log(48))
    expected = stem + temporal + b1 + b2 + 0.5 * math.log(16) + math.log(32)
    assert expected == pytest.approx(16.029784, abs=1e-6)
    assert entropy_score(SPEC_B) == pytest.approx(expected, rel=1e-12)
    assert [t.size for t in entropy_score_terms(SPEC_B)] == [8, 8, 4, 2, 2, 2]


def test_refinement_properties():
    assert refinement(16, 56, (3, 1, 1)) == 1.0
    assert refinement(16, 56, (1, 1, 1)) == 1.0
    # a kernel shaped like the map refines less than one that is not
    assert refinement(4, 80, (1, 3, 3)) > refinement(4, 80, (3, 3, 3))
    assert refinement(16, 5, (3, 3, 3)) > refinement(16, 5, (1, 3, 3))
    with pytest.raises(ValueError):
        refinement(4, 8, (3, 3, 5))


def test_attention_is_score_neutral_and_scores_follow_the_clip():
    x3d = x3d_spec("XS")
    no_se = x3d.replace(
        stages=tuple(
            s.__class__(s.width, tuple(BlockSpec(b.type, b.expansion, "none") for b in s.blocks), s.stride)
            for s in x3d.stages
        )
    )
    assert entropy_score(no_se) == pytest.approx(entropy_score(x3d), rel=1e-12)
    assert entropy_score(x3d, frames=13) != entropy_score(x3d)
    assert entropy_score(x3d_spec("L")) > entropy_score(x3d_spec("M"))  # deeper


def _small_space():
    return autox3d_v1(input_frames=4, input_size=32, classes=10)


def test_mutate_changes_exactly_n_decisions():
    space = _small_space()
    rng = np.random.default_rng(0)
    base = [0] * space.num_decisions
    for n in (1, 2, 5):
        child = mutate(space, base, rng, n)
        assert sum(a != b for a, b in zip(base, child)) == n
        space.decode(child)  # in range


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.6, 1.0])
def test_search_never_returns_a_spec_over_budget(seed, fraction):
    space = _small_space()
    x3d = x3d_spec("XS")
    budget = int(fraction * spec_macs(x3d, 4, 32, classes=10))
    lines = []
    spec, history = entropy_search(
        space, budget, population=24, generations=6, seed=seed, min_fraction=0.9, progress=lines.append
    )
    macs = spec_macs(spec, classes=10)
    assert 0.9 * budget <= macs <= budget
    assert space.contains(spec)
    assert len(history) == len(lines) == 7  # generation 0 (the initial population) and 6 generations
    assert all(line.startswith("gen ") and "GMACs" in line for line in lines)
    assert all(h["best_macs"] is None or h["best_macs"] <= budget for h in history)
    assert history[-1]["best_score"] == pytest.approx(entropy_score(spec))
    assert [h["best_score"] for h in history if h["best_score"] is not None] == sorted(
        h["best_score"] for h in history if h["best_score"] is not None
    )
    assert history[-1]["dropped"] > 0  # children over the budget were produced and dropped


def test_search_is_deterministic_under_a_seed():
    space = _small_space()
    budget = spec_macs(x3d_spec("XS"), 4, 32, classes=10)
    runs = [entropy_search(space, budget, population=16, generations=4, seed=s, progress=None) for s in (3, 3, 4)]
    assert runs[0][0] == runs[1][0] and runs[0][0].to_json() == runs[1][0].to_json()
    assert [h["best_score"] for h in runs[0][1]] == [h["best_score"] for h in runs[1][1]]
    assert runs[0][0] != runs[2][0]


def test_search_improves_on_its_seed_point_and_respects_constraint():
    space = _small_space()
    x3d = x3d_spec("XS")
    budget = spec_macs(x3d, 4, 32, classes=10)
    spec, _ = entropy_search(
        space,
        budget,
        population=32,
        generations=20,
        seed=0,
        init_specs=[x3d.replace(input_size=32)],
        constraint=lambda s: all(b.type != "3x5x5" for st in s.stages for b in st.blocks),
        progress=None,
    )
    assert entropy_score(spec) > entropy_score(x3d, 4, 32)
    assert all(b.type != "3x5x5" for st in spec.stages for b in st.blocks)


def test_search_errors():
    space = _small_space()
    with pytest.raises(NoFeasibleArchitectureError):
        entropy_search(space, 1000, population=4, generations=1, progress=None)
    with pytest.raises(ValueError, match="macs_budget"):
        entropy_search(space, -5, progress=None)
    with pytest.raises(ValueError, match="min_fraction"):
        entropy_search(space, 10**9, min_fraction=1.5, progress=None)
    with pytest.raises(ValueError, match="over the budget"):
        entropy_search(space, 10**6, init_specs=[x3d_spec("XS").replace(input_size=32)], progress=None)


def test_counterpart_problem():
    space, budget, init = counterpart_problem("XS")
    assert budget == spec_macs(x3d_spec("XS")) == 626_146_112
    assert (space.input_frames, space.input_size, space.max_depths) == (4, 160, (3, 5, 11, 7))
    assert init == [x3d_spec("XS")]
    space, budget, _ = counterpart_problem("L")
    assert space.max_depths == (5, 10, 25, 15) and budget == spec_macs(x3d_spec("L"))
    _, _, init = counterpart_problem("S", block_types=("1x3x3",))
    assert init == []  # X3D's 3x3x3 is not in that space
    with pytest.raises(ValueError):
        counterpart_problem("XL")


def _recipe_args(variant: str) -> list[str]:
    with open(os.path.join(ROOT, "zoo", "recipes", f"autox3d_{variant}.sh"), encoding="utf-8") as f:
        text = f.read()
    command = re.search(r"^python training/search_entropy\.py.*?(?<!\\)$", text.replace("\\\n", " "), re.M | re.S)
    assert command, "the recipe holds one python training/search_entropy.py command"
    return shlex.split(command.group(0))[2:]


@pytest.mark.slow
def test_xs_recipe_reproduces_the_frozen_spec(tmp_path):
    """Re-runs the recorded command of AutoX3D-XS and compares with the packaged spec (~30-40 s)."""
    args = [a for a in _recipe_args("xs") if not a.startswith("--output")]
    out = tmp_path / "xs.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "training", "search_entropy.py"), *args, f"--output={out}", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = ArchSpec.load(str(out))
    frozen = ArchSpec.load(os.path.join(ROOT, "autox3d_tf", "resources", "autox3d", "autox3d_xs.json"))
    assert found == frozen
    assert found.notes == frozen.notes


@pytest.mark.parametrize("variant", ["xs", "s", "m", "l"])
def test_recipes_record_the_budget_and_output(variant):
    args = _recipe_args(variant)
    assert f"--variant={variant.upper()}" in args
    assert f"--output=autox3d_tf/resources/autox3d/autox3d_{variant}.json" in args
    assert "--seed=0" in args
