"""The metadata a user needs (timm's pretrained_cfg): get_model_config, list_models' filters, and the
deprecated get_config."""

from __future__ import annotations

import pytest

from autox3d_tf.preprocessing import kinetics400_classes
from autox3d_tf.zoo import ModelConfig, get_model_config, list_models


def test_model_config_holds_clip_normalisation_weights_and_labels():
    cfg = get_model_config("x3d-s")
    assert isinstance(cfg, ModelConfig) and cfg.name == "X3D_S"
    assert (cfg.frames, cfg.sampling_rate, cfg.train_crop, cfg.test_crop) == (13, 6, 160, 182)
    assert cfg.train_scale == (182, 228)
    assert cfg.mean == (0.45, 0.45, 0.45) and cfg.std == (0.225, 0.225, 0.225)
    assert cfg.weights == ("kinetics400",)
    assert cfg.pretrained["kinetics400"]["num_classes"] == 400 and cfg.pretrained["kinetics400"]["url"]
    assert cfg.label_names == tuple(kinetics400_classes()) and len(cfg.label_names) == 400
    assert cfg.to_dict()["weights"] == ("kinetics400",)

    auto = get_model_config("AutoX3D_S")
    assert auto.weights == () and auto.label_names == () and auto.frames == cfg.frames


def test_list_models_by_wildcard_and_weights():
    assert list_models("x3d*") == ["X3D_XS", "X3D_S", "X3D_M", "X3D_L", "X3D_XL"]
    assert list_models("*_s") == ["X3D_S", "AutoX3D_S", "E3D_S"]
    pretrained = list_models(pretrained=True)
    assert pretrained and all(get_model_config(n).weights for n in pretrained)
    assert not [n for n in pretrained if n.startswith("AutoX3D")]
    assert list_models("autox3d*", pretrained=True) == []
    assert list_models("nothing*") == []


def test_get_config_is_a_deprecated_alias():
    from autox3d_tf.zoo import get_config

    with pytest.warns(DeprecationWarning, match="get_model_config"):
        assert get_config("X3D_XS") == get_model_config("X3D_XS")


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="Did you mean 'X3D_S'"):
        get_model_config("X3D_SS")
