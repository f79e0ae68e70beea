"""Strict conversion and loading: layouts, missing / extra / mis-shaped keys, include_top, CLI."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import numpy as np
import pytest

from autox3d_tf.weights import (
    WeightsMismatchError,
    convert_checkpoint,
    detect_layout,
    extract_state_dict,
    load_keras_weights,
    load_torch_checkpoint,
    load_torch_weights,
)
from autox3d_tf.zoo import X3D_XS, get_model
from tests.helpers.checkpoints import (
    add_stage1_shortcut_bn,
    keras_logits,
    random_clip,
    reference_logits,
    reference_model,
    relative_error,
    save_pyslowfast_checkpoint,
    save_pytorchvideo_checkpoint,
)


@pytest.fixture(scope="module")
def xs_reference(tmp_path_factory):
    """pytorchvideo X3D-XS with random weights, its checkpoints in both layouts, its logits."""
    folder = tmp_path_factory.mktemp("xs")
    ref = reference_model("XS", seed=21)
    clip = random_clip("XS", seed=4)
    ptv = folder / "X3D_XS.pyth"
    save_pytorchvideo_checkpoint(ref, ptv)
    ptv_logits = reference_logits(ref, clip)
    add_stage1_shortcut_bn(ref, seed=9)
    psf = folder / "x3d_xs.pyth"
    save_pyslowfast_checkpoint(ref, psf)
    psf_logits = reference_logits(ref, clip)
    return {"ptv": ptv, "psf": psf, "clip": clip, "ptv_logits": ptv_logits, "psf_logits": psf_logits, "dir": folder}


@pytest.fixture(scope="module")
def xs_model():
    return X3D_XS(weights=None, classifier_activation=None)


def _state(path):
    return extract_state_dict(load_torch_checkpoint(path))


def test_detects_layouts(xs_reference):
    assert detect_layout(_state(xs_reference["ptv"])) == "pytorchvideo"
    assert detect_layout(_state(xs_reference["psf"])) == "pyslowfast"
    with pytest.raises(ValueError, match="key layout"):
        detect_layout({"features.0.weight": np.zeros(1)})


def test_extract_state_dict_variants(xs_reference):
    sd = _state(xs_reference["ptv"])
    assert not any(k.endswith("num_batches_tracked") for k in sd)
    wrapped = {"state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items())}
    assert list(extract_state_dict(wrapped)) == list(sd)
    assert list(extract_state_dict(sd)) == list(sd)


def test_factory_loads_pytorch_checkpoints_of_both_layouts(xs_reference):
    for key in ("ptv", "psf"):
        model = X3D_XS(weights=str(xs_reference[key]), classifier_activation=None)
        err = relative_error(xs_reference[f"{key}_logits"], keras_logits(model, xs_reference["clip"]))
        assert err < 1e-4, (key, err)


def _assert_untouched(model, before):
    after = [w.copy() for w in model.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "a failed load must not assign anything"


def test_missing_key_is_an_error_listing_it(xs_reference, xs_model):
    sd = _state(xs_reference["ptv"])
    del sd["blocks.2.res_blocks.1.branch2.conv_b.weight"]
    before = [w.copy() for w in xs_model.get_weights()]
    with pytest.raises(WeightsMismatchError, match=r"Missing \(1\): blocks\.2\.res_blocks\.1\.branch2\.conv_b\.weight") as info:
        load_torch_weights(xs_model, sd)
    assert info.value.missing == ["blocks.2.res_blocks.1.branch2.conv_b.weight"]
    assert "Nothing was loaded" in str(info.value)
    _assert_untouched(xs_model, before)


def test_extra_key_is_an_error_listing_it(xs_reference, xs_model):
    sd = _state(xs_reference["ptv"])
    sd["blocks.1.res_blocks.0.branch1_norm.weight"] = np.ones(24, np.float32)
    sd["blocks.9.extra.weight"] = np.ones(3, np.float32)
    with pytest.raises(WeightsMismatchError, match=r"Unexpected \(2\)") as info:
        load_torch_weights(xs_model, sd)
    assert set(info.value.unexpected) == {"blocks.1.res_blocks.0.branch1_norm.weight", "blocks.9.extra.weight"}


def test_misshaped_key_is_an_error_listing_it(xs_reference, xs_model):
    sd = _state(xs_reference["ptv"])
    sd["blocks.0.conv.conv_t.weight"] = np.zeros((24, 3, 1, 5, 5), np.float32)
    with pytest.raises(WeightsMismatchError, match=r"blocks\.0\.conv\.conv_t\.weight expected \(24, 3, 1, 3, 3\), found \(24, 3, 1, 5, 5\)"):
        load_torch_weights(xs_model, sd)


def test_wrong_number_of_classes_is_an_error(xs_reference):
    model = X3D_XS(weights=None, classes=10)
    with pytest.raises(WeightsMismatchError, match=r"proj\.weight expected \(10, 2048\), found \(400, 2048\)"):
        load_torch_weights(model, xs_reference["ptv"])


def test_include_top_false_skips_only_the_classifier(xs_reference):
    full = X3D_XS(weights=str(xs_reference["ptv"]), classifier_activation=None)
    for key in ("ptv", "psf"):
        pooled = X3D_XS(weights=str(xs_reference[key]), include_top=False, pooling="avg")
        info = load_torch_weights(pooled, xs_reference[key])
        assert len(info["ignored_top"]) == 2  # proj / projection weight and bias: the pooled model keeps post_conv
        feature_map = X3D_XS(weights=str(xs_reference[key]), include_top=False)
        info = load_torch_weights(feature_map, xs_reference[key])
        assert len(info["ignored_top"]) == 3  # post_conv / lin_5 weight, proj / projection weight and bias
    headless = X3D_XS(weights=str(xs_reference["ptv"]), include_top=False, pooling="avg")
    for layer in ("head_conv", "head_dense"):
        np.testing.assert_array_equal(headless.get_layer(layer).get_weights()[0], full.get_layer(layer).get_weights()[0])


def test_pyslowfast_fold_is_logged(xs_reference, xs_model, caplog):
    with caplog.at_level("INFO", logger="autox3d_tf.weights"):
        info = load_torch_weights(xs_model, xs_reference["psf"])
    assert info["folded"] == ["stage1_block0"]
    assert "Folded PySlowFast's shortcut BatchNorm" in caplog.text


def test_pyslowfast_partial_shortcut_bn_is_missing(xs_reference, xs_model):
    sd = _state(xs_reference["psf"])
    del sd["s2.pathway0_res0.branch1_bn.running_var"]
    with pytest.raises(WeightsMismatchError, match=r"s2\.pathway0_res0\.branch1_bn\.running_var"):
        load_torch_weights(xs_model, sd)


def test_convert_checkpoint_writes_keras_weights(xs_reference, tmp_path):
    dst = tmp_path / "x3d_xs.weights.h5"
    info = convert_checkpoint(xs_reference["psf"], dst, "x3d_xs")
    assert info["layout"] == "pyslowfast" and info["classes"] == 400 and info["model"] == "X3D_XS"
    assert dst.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    # Plain Keras can load it into the same architecture ...
    model = X3D_XS(weights=None, classifier_activation=None)
    model.load_weights(str(dst))
    assert relative_error(xs_reference["psf_logits"], keras_logits(model, xs_reference["clip"])) < 1e-4
    # ... and so can the factory, with or without the top.
    model = X3D_XS(weights=str(dst), classifier_activation=None)
    assert relative_error(xs_reference["psf_logits"], keras_logits(model, xs_reference["clip"])) < 1e-4
    X3D_XS(weights=str(dst), include_top=False)


def test_convert_refuses_bad_output_name_and_mismatch(xs_reference, tmp_path):
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        convert_checkpoint(xs_reference["ptv"], tmp_path / "out.h5", "X3D_XS")
    dst = tmp_path / "s.weights.h5"
    with pytest.raises(WeightsMismatchError):
        convert_checkpoint(xs_reference["ptv"], dst, "X3D_L")  # L is deeper: missing keys
    assert not dst.exists() and list(tmp_path.iterdir()) == []


def test_strict_keras_weights_loading(xs_reference, tmp_path):
    dst = tmp_path / "x3d_xs.weights.h5"
    convert_checkpoint(xs_reference["ptv"], dst, "X3D_XS")
    small_head = X3D_XS(weights=str(dst), classes=10)  # fine-tuning: all but the classifier (test_finetune_weights)
    assert small_head.pretrained_report.skipped == ["predictions"]
    with pytest.raises(WeightsMismatchError, match="Wrong shape"):
        load_keras_weights(X3D_XS(weights=None, classes=10), str(dst))  # the low-level loader is strict throughout
    other = get_model("X3D_S", weights=None)  # same widths, same depths: same variables -> loads
    load_keras_weights(other, str(dst))
    small = tmp_path / "small.weights.h5"
    import keras

    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Dense(2)(inp)).save_weights(str(small))
    with pytest.raises(WeightsMismatchError, match="Missing"):
        X3D_XS(weights=str(small))


def test_weights_value_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        X3D_XS(weights=str(tmp_path / "missing.weights.h5"))


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "autox3d_tf.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_cli_convert(xs_reference, tmp_path):
    dst = tmp_path / "cli.weights.h5"
    out = _cli("convert", str(xs_reference["psf"]), str(dst), "--model", "X3D_XS")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pyslowfast layout" in out.stdout and "stage1_block0" in out.stdout
    assert "Folded PySlowFast's shortcut BatchNorm" in out.stderr
    assert dst.exists()



def test_cli_convert_json_and_errors(xs_reference, tmp_path, capsys):
    from autox3d_tf.cli.main import main

    assert main(["convert", str(xs_reference["ptv"]), str(tmp_path / "j.weights.h5"), "--model", "X3D_XS", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layout"] == "pytorchvideo" and summary["classes"] == 400 and summary["folded"] == []

    bad = tmp_path / "bad.weights.h5"
    assert main(["convert", str(xs_reference["ptv"]), str(bad), "--model", "X3D_L"]) == 1
    err = capsys.readouterr().err
    assert "Missing (" in err and "blocks.1.res_blocks.3." in err and not bad.exists()
    assert main(["convert", str(xs_reference["ptv"]), str(bad), "--model", "X3D_XS", "--layout", "pyslowfast"]) == 1
    assert "pytorchvideo layout, not pyslowfast" in capsys.readouterr().err and not bad.exists()
    assert main(["convert", str(tmp_path / "nope.pyth"), str(bad), "--model", "X3D_XS"]) == 1
    assert "no such file" in capsys.readouterr().err
