"""Exact parity of converted checkpoints against pytorchvideo, for both key layouts.

For each of X3D-XS, S, M and L: pytorchvideo's ``create_x3d`` with random weights and random
BatchNorm statistics is saved as a checkpoint, converted, and both models run the same random
clip in inference mode. Then the reference gets PySlowFast's stage-1 shortcut BatchNorm, is saved
with PySlowFast key names, converted (the BN is folded), and compared again. The bound is a max
absolute logit difference under 1e-4 of the logits' scale.
"""

from __future__ import annotations

import pytest

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

TOLERANCE = 1e-4


def _check_variant(variant: str, tmp_path) -> None:
    from autox3d_tf.weights import load_torch_weights
    from autox3d_tf.zoo import get_model

    ref = reference_model(variant, seed=11)
    clip = random_clip(variant, seed=3)
    model = get_model(f"X3D_{variant}", weights=None, classifier_activation=None)

    ptv_path = tmp_path / f"X3D_{variant}.pyth"
    save_pytorchvideo_checkpoint(ref, ptv_path)
    info = load_torch_weights(model, ptv_path)
    assert info["layout"] == "pytorchvideo" and info["folded"] == []
    expected = reference_logits(ref, clip)
    assert expected.std() > 1e-3, "degenerate reference logits"
    err = relative_error(expected, keras_logits(model, clip))
    print(f"X3D_{variant} pytorchvideo layout: relative max |diff| = {err:.3g}")
    assert err < TOLERANCE

    add_stage1_shortcut_bn(ref, seed=5)
    psf_path = tmp_path / f"x3d_{variant.lower()}.pyth"
    save_pyslowfast_checkpoint(ref, psf_path)
    info = load_torch_weights(model, psf_path)
    assert info["layout"] == "pyslowfast"
    assert info["folded"] == ["stage1_block0"]
    expected_psf = reference_logits(ref, clip)
    assert relative_error(expected, expected_psf) > 1e-3, "the shortcut BN must change the reference"
    err = relative_error(expected_psf, keras_logits(model, clip))
    print(f"X3D_{variant} PySlowFast layout: relative max |diff| = {err:.3g}")
    assert err < TOLERANCE


def test_parity_x3d_xs(tmp_path):
    _check_variant("XS", tmp_path)


def test_parity_x3d_s(tmp_path):
    _check_variant("S", tmp_path)


@pytest.mark.slow
def test_parity_x3d_m(tmp_path):
    _check_variant("M", tmp_path)


@pytest.mark.slow
def test_parity_x3d_l(tmp_path):
    _check_variant("L", tmp_path)
