"""STEntr of the published E3D networks and the entropy search on E3D's space.

The score of E3D-S is checked against two independent computations: by hand in NumPy float64 from
the structure, and with the authors' own per-layer formula (``get_stentr_forward`` of their blocks,
``../shared/reference/e3d``) chained through their ``get_output_resolution``.
"""

from __future__ import annotations

import numpy as np
import pytest

from autox3d_tf.arch.e3d import e3d_layers, e3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.arch.x3d import x3d_spec
from autox3d_tf.search.e3d_space import e3d_space, layer_constraint
from autox3d_tf.search.entropy_score import entropy_score
from autox3d_tf.search.evolution import entropy_search

# E3D_S.txt: (in, out, btn, kt, k, stride, L) per stage, at 13 x 160 x 160
E3D_S_STAGES = [(24, 24, 32, 1, 5, 2, 3), (24, 48, 96, 3, 3, 2, 6), (48, 120, 176, 3, 3, 2, 6),
                (120, 120, 176, 3, 3, 1, 6), (120, 256, 384, 3, 3, 2, 6)]


def _alpha(frames: float, res: float, kt: int, k: int) -> np.float64:
    if k == 1:
        return np.float64(1.0)
    u = np.array([frames, res, res], np.float64)
    v = np.array([kt, k, k], np.float64)
    return -np.log(1.0 - np.dot(u / np.linalg.norm(u), v / np.linalg.norm(v)))


def _e3d_s_by_hand() -> float:
    t, r = 13.0, 80.0  # after the stride-2 stem
    score = 0.5 * np.log(3 * 1 * 9 * _alpha(t, r, 1, 3))
    for c_in, c_out, btn, kt, k, stride, depth in E3D_S_STAGES:
        for b in range(depth):
            if b == 0:
                r = r / stride
            cin = c_in if b == 0 else c_out
            score += 0.5 * np.log(cin) + 0.5 * np.log(kt * k * k * _alpha(t, r, kt, k)) + 0.5 * np.log(btn)
    score += 0.5 * np.log(256.0)  # the 1x1x1 conv to 512: alpha 1
    return float(score + np.log(512.0))


def test_e3d_s_score_by_hand():
    assert entropy_score(e3d_spec("S")) == pytest.approx(_e3d_s_by_hand(), rel=1e-12, abs=1e-9)


def test_e3d_s_score_with_the_reference_formula():
    from tests.helpers.e3d_reference import reference_e3d

    model = reference_e3d("S", random_bn=False)
    frames, res, terms = 13, 160, []
    for top in model.block_list:
        for block in getattr(top, "block_list", [top]):
            res = block.get_output_resolution(res)
            terms += block.get_stentr_forward(resolution=res, frames=frames)
    expected = float(np.sum(np.asarray(terms, np.float64)) + np.log(512.0))
    assert entropy_score(e3d_spec("S")) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("variant", ["S", "M", "L"])
def test_published_e3d_outscores_x3d_at_its_budget(variant):
    e3d, x3d = e3d_spec(variant), x3d_spec(variant)
    assert (e3d.input_frames, e3d.input_size) == (x3d.input_frames, x3d.input_size)
    assert spec_macs(e3d) < spec_macs(x3d)
    assert entropy_score(e3d) > entropy_score(x3d) + 1.0


@pytest.mark.parametrize("variant", ["S", "M", "L"])
def test_space_contains_the_published_structures(variant):
    space = e3d_space(variant)
    spec = e3d_spec(variant)
    choices = space.encode(spec)
    assert space.decode(choices, name=spec.name) == spec
    assert not space.contains(x3d_spec(variant))
    assert layer_constraint({"S": 83, "M": 83, "L": 167}[variant])(spec)


def test_entropy_search_on_the_e3d_space():
    space = e3d_space("S")
    budget = spec_macs(x3d_spec("S"))
    seed = e3d_spec("S")
    best, history = entropy_search(space, budget, population=32, generations=3, seed=0, min_fraction=0.9,
                                   init_specs=[seed], constraint=layer_constraint(83), progress=None)
    assert 0.9 * budget <= spec_macs(best) <= budget and e3d_layers(best) <= 83
    assert entropy_score(best) >= entropy_score(seed)
    assert history[-1]["best_score"] == pytest.approx(entropy_score(best))
