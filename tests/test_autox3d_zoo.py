"""AutoX3D-XS/S/M/L: frozen specs under the X3D budgets, factories, registry entries, weights errors."""

from __future__ import annotations

import inspect
import json
import os
import re

import numpy as np
import pytest

from autox3d_tf.arch import x3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.flops import count_macs, count_params
from autox3d_tf.search.entropy_score import entropy_score
from autox3d_tf.search.space import autox3d_v1
from autox3d_tf.weights import NoPretrainedWeightsError
from autox3d_tf.zoo import (
    X3D_XS,
    AutoX3D_L,
    AutoX3D_M,
    AutoX3D_S,
    AutoX3D_XS,
    autox3d_spec,
    get_model_config,
    get_model,
    get_spec,
    list_models,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTORIES = {"XS": AutoX3D_XS, "S": AutoX3D_S, "M": AutoX3D_M, "L": AutoX3D_L}
# Exact MACs of X3D at its train clip (0.626 / 2.031 / 4.896 / 18.928 GMACs, docs/ARCHITECTURE.md section 4).
BUDGETS = {"XS": 626_146_112, "S": 2_030_783_312, "M": 4_896_243_200, "L": 18_927_802_976}


def _cells(text: str, row: str) -> list[str]:
    """The cells after the first of the markdown table row whose first cell starts with ``row``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].startswith(row):
            return cells
    raise AssertionError(f"no table row {row!r}")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_spec_is_within_95_to_100_percent_of_the_x3d_budget(variant):
    spec = get_spec(f"AutoX3D_{variant}")
    x3d = x3d_spec(variant)
    assert spec_macs(x3d) == BUDGETS[variant]
    macs = spec_macs(spec)
    assert 0.95 * BUDGETS[variant] <= macs <= BUDGETS[variant]
    assert (spec.input_frames, spec.input_size) == (x3d.input_frames, x3d.input_size)
    space = autox3d_v1("L" if variant == "L" else "default", input_frames=x3d.input_frames, input_size=x3d.input_size)
    assert space.contains(spec)
    assert spec != x3d  # searched, not a copy of X3D


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_packaged_spec_is_what_its_recipe_searched(variant):
    """The spec's search record (its notes, written by the search) agrees with the MACs and STEntr
    score recomputed from the spec now and with the recipe's command: a spec edited by hand, or a
    recipe changed without re-running it, fails. (The XS recipe is re-run in test_entropy_search.py.)"""
    spec = get_spec(f"AutoX3D_{variant}")
    x3d = x3d_spec(variant)
    m = re.fullmatch(r"entropy_search\((?P<args>[^)]*)\); STEntr score (?P<score>[\d.]+), (?P<macs>\d+) MACs "
                     r"\((?P<percent>[\d.]+)% of budget\)", spec.notes)
    assert m, spec.notes
    searched = dict(kv.split("=") for kv in m["args"].split(", "))
    assert searched["space"] == spec.space
    assert (int(searched["frames"]), int(searched["size"])) == (x3d.input_frames, x3d.input_size)
    assert int(searched["budget"]) == BUDGETS[variant]
    assert int(m["macs"]) == spec_macs(spec)
    assert m["percent"] == f"{100 * spec_macs(spec) / BUDGETS[variant]:.2f}"
    assert float(m["score"]) == pytest.approx(entropy_score(spec), abs=1e-6)
    assert entropy_score(spec) > entropy_score(x3d)  # the search improved on X3D, its seed point

    recipe = dict(re.findall(r"--(\w+)=(\S+)", _read("zoo", "recipes", f"autox3d_{variant.lower()}.sh")))
    assert recipe["variant"] == variant
    for flag in ("population", "generations", "seed", "min_fraction", "mutations"):
        assert recipe[flag] == searched[flag], flag
    assert float(searched["min_fraction"]) * BUDGETS[variant] <= spec_macs(spec)
    used = {b.type for stage in spec.stages for b in stage.blocks if not b.is_skip}
    assert used <= set(recipe["block_types"].split(",")), used
    assert os.path.samefile(os.path.join(ROOT, recipe["output"]), os.path.join(
        ROOT, "autox3d_tf", "resources", "autox3d", f"autox3d_{variant.lower()}.json"))


def _block_sequence(stage) -> str:
    return " ".join(
        "skip" if b.is_skip else f"{b.type}/{b.expansion:g}{'+SE' if b.attention == 'se' else ''}" for b in stage.blocks
    )


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_model_card_and_zoo_readme_describe_the_packaged_spec(variant):
    """zoo/AutoX3D_<V>.md and zoo/README.md state the architecture, MACs, budget share and scores of
    the spec that is packaged (computed here from the spec, not read from the cards' generator)."""
    spec, x3d, config = get_spec(f"AutoX3D_{variant}"), x3d_spec(variant), get_model_config(f"AutoX3D_{variant}")
    macs = spec_macs(spec)
    card = _read("zoo", f"AutoX3D_{variant}.md")
    widths, depths = _cells(card, "widths / computing depths")[1].split(" / ")
    assert (json.loads(widths), json.loads(depths)) == (list(spec.widths), list(spec.depths))
    gmacs = _cells(card, f"GMACs at {spec.input_frames}x{spec.input_size}x{spec.input_size}")
    assert gmacs[1] == f"{macs / 1e9:.4f} ({macs:,})"
    assert gmacs[2] == f"{BUDGETS[variant] / 1e9:.4f} ({BUDGETS[variant]:,})"
    assert _cells(card, "MACs / budget")[1] == f"{100 * macs / BUDGETS[variant]:.2f}%"
    assert _cells(card, f"GMACs at test crop {config.test_crop}")[1] == f"{spec_macs(spec, size=config.test_crop) / 1e9:.3f}"
    assert _cells(card, "STEntr score")[1:3] == [f"{entropy_score(spec):.3f}", f"{entropy_score(x3d):.3f}"]
    sequences = re.findall(r"^\| \| `([^`]*)`", card, re.M)
    assert sequences == [_block_sequence(stage) for stage in spec.stages]
    assert f"Search log line: `{spec.notes}`" in card

    row = _cells(_read("zoo", "README.md"), f"{variant} {spec.input_frames}x{spec.input_size}x{spec.input_size}")
    assert [_number(row[1]), _number(row[2])] == [BUDGETS[variant], macs]
    assert row[3] == f"{100 * macs / BUDGETS[variant]:.2f}%"
    assert row[4] == f"{entropy_score(x3d):.2f} -> {entropy_score(spec):.2f}"


@pytest.mark.parametrize("variant", ["XS", "S"])
def test_built_model_macs_and_params_equal_the_spec_and_card(variant):
    """The flops counter on the built Keras model (not the spec's formula) gives the spec's MACs, and
    the card's parameter count is the built model's."""
    model = FACTORIES[variant]()
    assert tuple(model.input_shape) == (None, *get_model_config(f"X3D_{variant}").input_shape)
    assert count_macs(model) == spec_macs(autox3d_spec(variant))
    card = _read("zoo", f"AutoX3D_{variant}.md")
    assert _number(_cells(card, "params")[1]) == count_params(model)


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_config_has_the_x3d_clip_settings(variant):
    auto, x3d = get_model_config(f"AutoX3D_{variant}"), get_model_config(f"X3D_{variant}")
    for field in ("frames", "sampling_rate", "train_crop", "test_crop", "train_scale", "mean", "std", "num_classes"):
        assert getattr(auto, field) == getattr(x3d, field), field
    assert auto.family == "autox3d"
    assert "untrained" in auto.description
    assert os.path.exists(os.path.join(ROOT, auto.extra["recipe"]))


def test_registry_and_signatures():
    names = list_models()
    assert {"AutoX3D_XS", "AutoX3D_S", "AutoX3D_M", "AutoX3D_L"} <= set(names)
    for variant, factory in FACTORIES.items():
        assert factory.__name__ == f"AutoX3D_{variant}"
        assert inspect.signature(factory) == inspect.signature(X3D_XS)
        assert "no pretrained weights" in factory.__doc__


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_factories_build_small_clips(variant):
    model = FACTORIES[variant](input_shape=(4, 32, 32, 3), classes=5, name=f"tiny_{variant}")
    assert model.name == f"tiny_{variant}"
    assert tuple(model.output_shape) == (None, 5)
    out = model(np.zeros((2, 4, 32, 32, 3), np.float32), training=False)
    np.testing.assert_allclose(np.sum(np.asarray(out), axis=-1), 1.0, rtol=1e-5)


def test_keras_applications_arguments():
    features = AutoX3D_XS(include_top=False, pooling="avg", input_shape=(4, 64, 64, 3))
    assert tuple(features.output_shape) == (None, autox3d_spec("XS").head_hidden)  # the pre-logit features
    logits = get_model("autox3d_xs", input_shape=(4, 32, 32, 3), classes=3, classifier_activation=None, dropout_rate=0.0)
    assert tuple(logits.output_shape) == (None, 3)


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_kinetics_weights_raise_a_clear_error(variant):
    with pytest.raises(NoPretrainedWeightsError) as err:
        FACTORIES[variant](weights="kinetics400")
    message = str(err.value)
    assert f"AutoX3D_{variant} has no pretrained weights for 'kinetics400'" in message
    assert "X3D_XS: kinetics400" in message  # says what exists
    assert "weights=None" in message


def test_weights_path_round_trip(tmp_path):
    model = AutoX3D_XS(input_shape=(4, 32, 32, 3), classes=4)
    path = str(tmp_path / "auto_xs.weights.h5")
    model.save_weights(path)
    again = AutoX3D_XS(weights=path, input_shape=(4, 32, 32, 3), classes=4)
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fuse_for_inference_finds_the_autox3d_spec():
    from autox3d_tf.models.fuse import fuse_for_inference

    model = AutoX3D_S(input_shape=(4, 32, 32, 3), classes=4, dropout_rate=0.0)
    fused = fuse_for_inference(model)
    x = np.random.default_rng(0).normal(size=(1, 4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fused(x)), np.asarray(model(x, training=False)), atol=1e-5)


def test_unknown_variant():
    with pytest.raises(ValueError, match="valid variants"):
        autox3d_spec("XL")
