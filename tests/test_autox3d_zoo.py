"""AutoX3D-XS/S/M/L: frozen specs under the X3D budgets, factories, registry entries, weights errors."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

from autox3d_tf.arch import ArchSpec, x3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.flops import count_macs
from autox3d_tf.search.space import autox3d_v1
from autox3d_tf.weights import NoPretrainedWeightsError
from autox3d_tf.zoo import (
    X3D_XS,
    AutoX3D_L,
    AutoX3D_M,
    AutoX3D_S,
    AutoX3D_XS,
    autox3d_spec,
    get_config,
    get_model,
    get_spec,
    list_models,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTORIES = {"XS": AutoX3D_XS, "S": AutoX3D_S, "M": AutoX3D_M, "L": AutoX3D_L}
# Exact MACs of X3D at its train clip (DESIGN.md section 3: 0.626 / 2.031 / 4.896 / 18.928 GMACs).
BUDGETS = {"XS": 626_146_112, "S": 2_030_783_312, "M": 4_896_243_200, "L": 18_927_802_976}


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_spec_is_within_95_to_100_percent_of_the_x3d_budget(variant):
    spec = autox3d_spec(variant)
    x3d = x3d_spec(variant)
    assert spec_macs(x3d) == BUDGETS[variant]
    macs = spec_macs(spec)
    assert 0.95 * BUDGETS[variant] <= macs <= BUDGETS[variant]
    assert (spec.input_frames, spec.input_size) == (x3d.input_frames, x3d.input_size)
    space = autox3d_v1("L" if variant == "L" else "default", input_frames=x3d.input_frames, input_size=x3d.input_size)
    assert space.contains(spec)
    assert spec != x3d  # searched, not a copy of X3D
    assert "entropy_search(" in spec.notes and f"budget={BUDGETS[variant]}" in spec.notes
    assert get_spec(f"AutoX3D_{variant}") == spec
    with open(os.path.join(ROOT, "autox3d_tf", "resources", "autox3d", f"autox3d_{variant.lower()}.json")) as f:
        assert ArchSpec.from_json(f.read()) == spec


@pytest.mark.parametrize("variant", ["XS", "S"])
def test_built_model_macs_equal_the_spec(variant):
    model = FACTORIES[variant]()
    assert tuple(model.input_shape) == (None, *get_config(f"X3D_{variant}").input_shape)
    assert count_macs(model) == spec_macs(autox3d_spec(variant))


@pytest.mark.parametrize("variant", list(FACTORIES))
def test_config_has_the_x3d_clip_settings(variant):
    auto, x3d = get_config(f"AutoX3D_{variant}"), get_config(f"X3D_{variant}")
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
    assert tuple(features.output_shape) == (None, autox3d_spec("XS").head_width)
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
