"""E3D in the zoo and in `ArchSpec`: factories, clip settings, JSON, folding, `autox3d info` (no torch)."""

from __future__ import annotations

import inspect
import json

import keras
import numpy as np
import pytest

from autox3d_tf.arch import naming
from autox3d_tf.arch.e3d import e3d_spec
from autox3d_tf.arch.spec import ArchSpec, BlockSpec, SpecError
from autox3d_tf.arch.x3d import x3d_spec
from autox3d_tf.zoo import E3D_L, E3D_M, E3D_S, X3D_S, get_model, get_model_config, list_models

FACTORIES = {"S": E3D_S, "M": E3D_M, "L": E3D_L}


def get_spec_depths(variant: str) -> tuple[int, ...]:
    return e3d_spec(variant).depths
SMALL = (4, 64, 64, 3)


def test_registry_configs_and_signatures():
    assert list_models("e3d*") == ["E3D_S", "E3D_M", "E3D_L"]
    assert list_models("e3d*", pretrained=True) == []
    for variant, (frames, size) in {"S": (13, 160), "M": (16, 224), "L": (16, 312)}.items():
        cfg = get_model_config(f"e3d-{variant.lower()}")
        assert (cfg.name, cfg.family, cfg.frames, cfg.train_crop) == (f"E3D_{variant}", "e3d", frames, size)
        assert cfg.input_shape == (frames, size, size, 3)
        factory = FACTORIES[variant]
        params = inspect.signature(factory).parameters
        assert list(params) == list(inspect.signature(X3D_S).parameters)
        assert params["dropout_rate"].default == 0.2
        assert "2048" in factory.__doc__ and factory.__name__ == f"E3D_{variant}"


def test_spec_fields_and_json_round_trip():
    spec = e3d_spec("S")
    assert spec.space == "e3d" and spec.stem_temporal_kernel == 0
    assert spec.widths == (24, 48, 120, 120, 256) and spec.depths == (3, 6, 6, 6, 6)
    assert [s.stride for s in spec.stages] == [2, 2, 2, 1, 2]
    assert spec.stages[0].blocks[0] == BlockSpec("1x5x5", inner=32, activation="relu", shortcut="pool")
    assert ArchSpec.from_json(spec.to_json()) == spec
    data = spec.to_dict()
    assert data["head_activation"] == "swish" and data["head_bias"] is True
    assert data["stages"][1]["blocks"][0] == {
        "type": "3x3x3", "inner": 96, "attention": "none", "activation": "relu", "shortcut": "pool"}
    # X3D's JSON is unchanged: none of the new fields appear at their defaults
    x3d = x3d_spec("S").to_dict()
    assert "head_activation" not in x3d and "head_bias" not in x3d
    assert set(x3d["stages"][0]["blocks"][0]) == {"type", "expansion", "attention"}


@pytest.mark.parametrize(
    "change,words",
    [
        (dict(inner=0), ["inner"]),
        (dict(activation="gelu"), ["activation", "swish", "relu"]),
        (dict(shortcut="conv"), ["shortcut", "projection", "pool"]),
    ],
)
def test_block_validation(change, words):
    with pytest.raises(SpecError) as err:
        BlockSpec("3x3x3", **change)
    for word in words:
        assert word in str(err.value)


def test_spec_validation():
    spec = e3d_spec("S")
    for change, word in ((dict(stem_temporal_kernel=2), "stem_temporal_kernel"),
                         (dict(head_activation="tanh"), "head_activation"),
                         (dict(space="e4d"), "space")):
        with pytest.raises(SpecError, match=word):
            spec.replace(**change)


def test_e3d_is_not_a_point_of_autox3d_v1():
    from autox3d_tf.search.space import autox3d_v1

    assert not autox3d_v1(input_frames=13, input_size=160).contains(e3d_spec("S"))


@pytest.mark.parametrize("variant", ["S", pytest.param("M", marks=pytest.mark.slow),
                                     pytest.param("L", marks=pytest.mark.slow)])
def test_layers_follow_the_reference(variant):
    model = FACTORIES[variant](input_shape=SMALL, classes=5)
    names = {layer.name for layer in model.layers}
    assert naming.STEM_CONV_TEMPORAL not in names
    assert "stage1_block0_shortcut_pool" in names and "stage1_block0_add" in names  # 24 -> 24, stride 2
    for s in (2, 3, 5):  # width changes: no shortcut at all
        assert f"stage{s}_block0_add" not in names and f"stage{s}_block0_shortcut_conv" not in names
    assert "stage4_block0_add" in names  # 120 -> 120, stride 1: identity
    stage_layers = [n for n in names if n.startswith("stage")]
    assert not any(n.endswith(("_se_pool", "_se_reduce", "_swish")) for n in stage_layers)
    assert sum(n.endswith("_relu_b") for n in stage_layers) == sum(get_spec_depths(variant))
    assert model.get_layer(naming.HEAD_DENSE).use_bias
    assert model.get_layer(naming.HEAD_DROPOUT).rate == 0.2
    assert not any(isinstance(layer, keras.layers.AveragePooling3D) for layer in model.layers)
    out = model(np.zeros((2, *SMALL), np.float32), training=False)
    assert out.shape == (2, 5)


def test_fold_and_features():
    from autox3d_tf.models import feature_extractor, fuse_for_inference

    keras.utils.set_random_seed(0)
    model = E3D_S(input_shape=SMALL, classifier_activation=None)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # random BN statistics, so that folding has something to fold
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 2.0, n)])
    x = rng.standard_normal((1, *SMALL)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    folded = fuse_for_inference(model)
    got = np.asarray(folded(x, training=False))
    assert np.max(np.abs(got - expected)) < 1e-4 * np.max(np.abs(expected))
    features = feature_extractor(get_model("E3D_S", input_shape=SMALL, include_top=False, pooling="avg"))
    assert tuple(features.output["pre_logits"].shape) == (None, 2048)
    assert features.get_layer(naming.HEAD_DENSE_SWISH) is not None


def test_cli_info_json(capsys):
    from autox3d_tf.cli.main import main

    assert main(["info", "E3D_S", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 3_846_456 and info["macs"] == 1_923_662_976
    assert [s["stage"] for s in info["stages"]][:7] == ["stem", "stage1", "stage2", "stage3", "stage4", "stage5", "head"]
