"""E3D-S / M / L against the authors' PyTorch reference (``../shared/reference/e3d``).

Parameters to the unit, MACs equal to fvcore's count on the reference, and the same logits from the
same weights: the reference with PyTorch's default init and random BatchNorm statistics, its
``state_dict`` converted by the strict converter ("e3d" layout), within 1e-4 of the logits' scale.
M and L run a small clip in the fast tests (the analytic MACs and the weights do not depend on the
clip); their full clips are marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.e3d_reference import (
    FVCORE_MACS,
    REFERENCE_PARAMS,
    fvcore_macs,
    reference_e3d,
    reference_logits,
    reference_params,
    state_dict_arrays,
)

TOLERANCE = 1e-4
CLIPS = {"S": (13, 160), "M": (16, 224), "L": (16, 312)}
SMALL_CLIP = (8, 64)  # ceil(64 / 2) is even: the reference's stage-1 pool shortcut needs it


def _clip(frames: int, size: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, frames, size, size)).astype(np.float32)


def _ours(variant: str, frames: int, size: int):
    from autox3d_tf.zoo import get_model

    return get_model(f"E3D_{variant}", input_shape=(frames, size, size, 3), classifier_activation=None)


def _logit_error(variant: str, frames: int, size: int) -> float:
    from autox3d_tf.weights import load_torch_weights

    ref = reference_e3d(variant, seed=11)
    clip = _clip(frames, size)
    model = _ours(variant, frames, size)
    info = load_torch_weights(model, state_dict_arrays(ref))
    assert info["layout"] == "e3d"
    expected = reference_logits(ref, clip)
    assert expected.std() > 1e-3, "degenerate reference logits"
    got = np.asarray(model(np.transpose(clip, (0, 2, 3, 4, 1)), training=False))
    err = float(np.max(np.abs(expected - got)) / np.max(np.abs(expected)))
    print(f"E3D_{variant} {frames}x{size}: max |logit diff| / logit scale = {err:.3g}")
    return err


@pytest.mark.parametrize("variant", ["S", "M", "L"])
def test_params_and_macs_equal_reference(variant):
    from autox3d_tf.arch.e3d import e3d_layers
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.flops import count_macs, count_params
    from autox3d_tf.zoo import get_spec

    ref = reference_e3d(variant, random_bn=False)
    frames, size = CLIPS[variant]
    model = _ours(variant, frames, size)
    assert count_params(model) == reference_params(ref) == REFERENCE_PARAMS[variant]
    assert count_macs(model) == spec_macs(get_spec(f"E3D_{variant}")) == FVCORE_MACS[variant]
    assert e3d_layers(get_spec(f"E3D_{variant}")) == {"S": 83, "M": 83, "L": 167}[variant]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["M", "L"])
def test_macs_equal_fvcore_small_clip(variant):
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.flops import count_macs
    from autox3d_tf.zoo import get_spec

    frames, size = SMALL_CLIP
    expected = fvcore_macs(reference_e3d(variant, random_bn=False), _clip(frames, size))
    assert count_macs(_ours(variant, frames, size)) == expected
    assert spec_macs(get_spec(f"E3D_{variant}"), frames=frames, size=size) == expected


def test_macs_equal_fvcore_e3d_s():
    from autox3d_tf.flops import count_macs

    frames, size = CLIPS["S"]
    assert count_macs(_ours("S", frames, size)) == fvcore_macs(reference_e3d("S", random_bn=False), _clip(frames, size))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["M", "L"])
def test_macs_equal_fvcore_full_clip(variant):
    from autox3d_tf.flops import count_macs

    frames, size = CLIPS[variant]
    expected = fvcore_macs(reference_e3d(variant, random_bn=False), _clip(frames, size))
    assert expected == FVCORE_MACS[variant]
    assert count_macs(_ours(variant, frames, size)) == expected


def test_logits_e3d_s():
    assert _logit_error("S", *CLIPS["S"]) < TOLERANCE


@pytest.mark.parametrize("variant", ["M", pytest.param("L", marks=pytest.mark.slow)])
def test_logits_small_clip(variant):
    assert _logit_error(variant, *SMALL_CLIP) < TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["M", "L"])
def test_logits_full_clip(variant):
    assert _logit_error(variant, *CLIPS[variant]) < TOLERANCE


def test_converter_is_strict():
    from autox3d_tf.weights import WeightsMismatchError, load_torch_weights

    frames, size = SMALL_CLIP
    model = _ours("S", frames, size)
    sd = state_dict_arrays(reference_e3d("S", random_bn=False))
    missing = dict(sd)
    del missing["block_list.2.block_list.3.conv2.conv1.weight"]
    missing["block_list.9.conv1.weight"] = np.zeros((1, 1, 1, 1, 1), np.float32)
    with pytest.raises(WeightsMismatchError) as err:
        load_torch_weights(model, missing)
    assert err.value.missing == ["block_list.2.block_list.3.conv2.conv1.weight"]
    assert err.value.unexpected == ["block_list.9.conv1.weight"]
    assert "Nothing was loaded" in str(err.value)

    wrong = dict(sd)
    wrong["fc_linear.0.bias"] = np.zeros((7,), np.float32)
    with pytest.raises(WeightsMismatchError) as err:
        load_torch_weights(model, wrong)
    assert [k for k, _, _ in err.value.mismatched] == ["fc_linear.0.bias"]

    x3d_layout = {"blocks.0.conv.conv_t.weight": sd["block_list.0.conv1.weight"]}
    with pytest.raises(WeightsMismatchError):  # the right layout is detected, the keys do not fit
        load_torch_weights(model, x3d_layout)


def test_converted_weights_fine_tune_other_classes():
    """Every tensor but the classifier loads into a model of another class count (the registry's rule)."""
    from autox3d_tf.weights import checkpoint_num_classes

    sd = state_dict_arrays(reference_e3d("S", random_bn=False, num_classes=10))
    assert checkpoint_num_classes(sd) == 10
