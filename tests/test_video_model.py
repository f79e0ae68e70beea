"""A built model knows its architecture (VideoModel), and takes raw pixels with include_preprocessing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from autox3d_tf.arch import ArchSpec, BlockSpec, StageSpec
from autox3d_tf.layers.normalization import MEAN, STD, normalize_pixels
from autox3d_tf.models import build_model, fuse_for_inference
from autox3d_tf.models.video_model import VideoModel, model_spec
from autox3d_tf.preprocessing import preprocess_input
from autox3d_tf.zoo import X3D_XS, list_models

SHAPE = (4, 64, 64, 3)


def _tiny_spec(name: str = "tiny") -> ArchSpec:
    stages = tuple(StageSpec(width=w, stride=2, blocks=(BlockSpec("3x3x3", 2.25, "se"),)) for w in (8, 16, 24, 32))
    return ArchSpec(name=name, stages=stages, input_frames=4, input_size=64, stem_width=8, head_width=48, head_hidden=64)


def _pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (2, *SHAPE)).astype(np.float32)


def _randomise_batch_norm(model: keras.Model, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


def test_normalisation_is_the_reference_formula_in_float64():
    x = _pixels()
    expected = (x.astype(np.float64) / 255.0 - np.asarray(MEAN)) / np.asarray(STD)
    np.testing.assert_allclose(normalize_pixels(x), expected, atol=2e-6)
    np.testing.assert_allclose(preprocess_input(x.astype(np.uint8)), expected, atol=2e-6)


def test_include_preprocessing_takes_raw_pixels():
    keras.utils.set_random_seed(0)
    raw = X3D_XS(input_shape=SHAPE, include_preprocessing=True, classifier_activation=None)
    plain = X3D_XS(input_shape=SHAPE, classifier_activation=None)
    plain.set_weights(raw.get_weights())
    assert raw.layers[1].name == "preprocessing" and raw.count_params() == plain.count_params()
    x = _pixels()
    np.testing.assert_allclose(raw(x.astype(np.uint8)), plain(preprocess_input(x)), atol=1e-5)
    assert not np.allclose(raw(x), plain(x), atol=1e-3), "raw pixels fed to the plain model must differ"


def test_model_carries_spec_through_config_and_keras_file(tmp_path):
    spec = _tiny_spec()
    model = build_model(spec, input_shape=SHAPE, classes=7, name="renamed", include_preprocessing=True)
    assert isinstance(model, VideoModel) and model.arch_spec == spec and model.name == "renamed"
    assert model.build_options["classes"] == 7 and model.build_options["include_preprocessing"] is True
    config = model.get_config()
    assert ArchSpec.from_dict(json.loads(json.dumps(config["arch_spec"]))) == spec
    clone = VideoModel.from_config(config)
    assert clone.arch_spec == spec and clone.build_options == model.build_options
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VideoModel) and loaded.arch_spec == spec
    x = _pixels()
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_fuse_reads_the_architecture_from_the_model_whatever_its_name():
    keras.utils.set_random_seed(0)
    model = build_model(_tiny_spec("not_a_zoo_name"), input_shape=SHAPE, classes=5, classifier_activation=None,
                        name="mine")
    _randomise_batch_norm(model)
    folded = fuse_for_inference(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    x = preprocess_input(_pixels())
    np.testing.assert_allclose(folded(x), model(x, training=False), atol=1e-4)
    headless = build_model(_tiny_spec(), input_shape=SHAPE, include_top=False, pooling="avg", name="features")
    _randomise_batch_norm(headless)
    np.testing.assert_allclose(fuse_for_inference(headless)(x), headless(x, training=False), atol=1e-4)


def test_a_model_without_spec_is_refused():
    inputs = keras.Input(SHAPE)
    plain = keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(inputs))
    with pytest.raises(ValueError, match="carries no ArchSpec"):
        model_spec(plain)
    with pytest.raises(ValueError, match="not built by autox3d_tf"):
        fuse_for_inference(plain, _tiny_spec())


def test_list_models_filter():
    assert list_models("autox3d*") == ["AutoX3D_XS", "AutoX3D_S", "AutoX3D_M", "AutoX3D_L"]
    assert list_models("X3D_X*") == ["X3D_XS", "X3D_XL"]
    assert set(list_models()) == {*list_models("x3d*"), *list_models("autox3d*"), *list_models("e3d*")}
