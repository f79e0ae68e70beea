"""Fine-tuning semantics of pretrained weights: another number of classes loads everything but the
classifier; include_top=False keeps every pretrained layer up to it; the rest stays strict.

The pretrained weights are a 400-class pytorchvideo X3D-XS with random weights (tests/helpers/
checkpoints.py), as a PyTorch checkpoint, its Keras conversion and a training run folder."""

from __future__ import annotations

import logging
import pathlib
import shutil

import numpy as np
import pytest

from autox3d_tf.models import build_model, feature_extractor
from autox3d_tf.weights import RUN_WEIGHTS_FILE, WeightsMismatchError, convert_checkpoint
from autox3d_tf.zoo import X3D_XS, AutoX3D_XS
from tests.helpers.checkpoints import reference_model, save_pytorchvideo_checkpoint

SHAPE = (4, 64, 64, 3)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 400-class X3D-XS checkpoint, its .weights.h5, a run folder, and the full Keras model."""
    folder = tmp_path_factory.mktemp("pretrained")
    pyth = folder / "x3d_xs.pyth"
    save_pytorchvideo_checkpoint(reference_model("XS", seed=5), pyth)
    h5 = folder / "x3d_xs.weights.h5"
    convert_checkpoint(pyth, h5, "X3D_XS")
    run = folder / "run"
    run.mkdir()
    shutil.copy(h5, run / RUN_WEIGHTS_FILE)
    full = X3D_XS(weights=str(h5), input_shape=SHAPE, classifier_activation=None)
    return {"pyth": pyth, "h5": h5, "run": run, "full": full}


def _layer_weights(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _clip(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, *SHAPE)).astype("float32")


@pytest.mark.parametrize("source", ["pyth", "h5", "run"])
def test_other_class_count_loads_all_but_the_classifier(pretrained, source, caplog):
    with caplog.at_level(logging.WARNING, logger="autox3d_tf.weights"):
        model = X3D_XS(weights=pretrained[source], classes=10, input_shape=SHAPE)
    reference = _layer_weights(pretrained["full"])
    loaded = _layer_weights(model)
    assert set(loaded) == set(reference)
    for name, values in loaded.items():
        if name == "predictions":
            continue
        for got, want in zip(values, reference[name]):
            np.testing.assert_array_equal(got, want, err_msg=name)
    kernel, bias = loaded["predictions"]
    assert kernel.shape == (2048, 10) and not np.any(bias)
    assert 0.005 < kernel.std() < 0.02  # the fresh N(0, 0.01) initialisation, not a slice of the checkpoint's
    report = model.pretrained_report
    assert report.skipped == ["predictions"] and report.source_classes == 400 and report.model_classes == 10
    assert report.loaded_tensors == len(model.weights) - 2
    lines = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(lines) == 1 and "predictions" in lines[0] and "400" in lines[0] and "10" in lines[0]


def test_same_class_count_loads_everything_without_a_warning(pretrained, caplog):
    with caplog.at_level(logging.WARNING, logger="autox3d_tf.weights"):
        model = X3D_XS(weights=pretrained["pyth"], input_shape=SHAPE)
    assert model.pretrained_report.skipped == [] and model.pretrained_report.loaded_tensors == len(model.weights)
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[0],
                                  pretrained["full"].get_layer("predictions").get_weights()[0])
    assert not [r for r in caplog.records if "left out" in r.getMessage()]


def test_pathlike_weights_are_accepted(pretrained):
    model = X3D_XS(weights=pathlib.Path(pretrained["h5"]), classes=3, input_shape=SHAPE)
    assert model.pretrained_report.file == str(pretrained["h5"])


def test_backbone_mismatch_stays_strict(pretrained, tmp_path):
    other = AutoX3D_XS(input_shape=SHAPE, classes=400)  # X3D-S is X3D-XS's network: another architecture
    other_file = tmp_path / "autox3d_xs.weights.h5"
    other.save_weights(other_file)
    with pytest.raises(WeightsMismatchError, match="does not match"):
        X3D_XS(weights=other_file, classes=10, input_shape=SHAPE)

    import torch

    state = torch.load(pretrained["pyth"], weights_only=True)["model_state"]
    state["blocks.1.res_blocks.0.branch2.conv_a.weight"] = torch.zeros(7, 24, 1, 1, 1)
    broken = tmp_path / "broken.pyth"
    torch.save({"model_state": state}, broken)
    with pytest.raises(WeightsMismatchError, match=r"blocks\.1\.res_blocks\.0\.branch2\.conv_a\.weight expected"):
        X3D_XS(weights=broken, classes=10, input_shape=SHAPE)


def test_headless_keeps_the_pretrained_pre_logit_layer(pretrained):
    full_features = feature_extractor(pretrained["full"])
    want = {k: np.asarray(v) for k, v in full_features(_clip(), training=False).items()}
    assert want["pre_logits"].shape == (2, 2048) and want["feature_map"].shape == (2, 4, 2, 2, 432)

    pooled = X3D_XS(weights=pretrained["pyth"], include_top=False, pooling="avg", input_shape=SHAPE)
    assert tuple(pooled.output_shape) == (None, 2048)
    np.testing.assert_allclose(np.asarray(pooled(_clip(), training=False)), want["pre_logits"], rtol=1e-5, atol=1e-6)
    assert pooled.pretrained_report.skipped == []

    fmap = X3D_XS(weights=pretrained["h5"], include_top=False, input_shape=SHAPE)
    np.testing.assert_allclose(np.asarray(fmap(_clip(), training=False)), want["feature_map"], rtol=1e-5, atol=1e-6)

    both = feature_extractor(pooled)
    assert set(both.output) == {"feature_map", "pre_logits"}


def test_autox3d_factory_fine_tunes_from_a_run_folder(tmp_path):
    trained = AutoX3D_XS(classes=5, input_shape=SHAPE)
    run = tmp_path / "run"
    run.mkdir()
    trained.save_weights(run / RUN_WEIGHTS_FILE)
    model = AutoX3D_XS(weights=run, classes=3, input_shape=SHAPE)
    assert model.pretrained_report.skipped == ["predictions"] and model.pretrained_report.source_classes == 5
    np.testing.assert_array_equal(model.get_layer("head_conv").get_weights()[0],
                                  trained.get_layer("head_conv").get_weights()[0])
    with pytest.raises(FileNotFoundError, match=RUN_WEIGHTS_FILE):
        AutoX3D_XS(weights=tmp_path, classes=3, input_shape=SHAPE)


def test_feature_extractor_needs_a_built_network():
    import keras

    inputs = keras.Input((4, 8, 8, 3))
    plain = keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(inputs))
    with pytest.raises(ValueError, match="head_conv"):
        feature_extractor(plain)
    spec_model = build_model(X3D_XS(input_shape=SHAPE).arch_spec, input_shape=SHAPE, include_top=False, pooling="max")
    assert tuple(spec_model.output_shape) == (None, 2048)
