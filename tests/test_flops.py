"""MACs / parameter counting: exact on a hand-computed model, within 1% of fvcore on pytorchvideo."""

from __future__ import annotations

import logging
import warnings

import keras
import numpy as np
import pytest

from autox3d_tf import flops
from autox3d_tf.layers import DepthwiseConv3D, PointwiseConv3D
from autox3d_tf.zoo import get_model
from tests.helpers.reference import X3D_REFERENCE_KWARGS, build_reference_x3d, require

# fvcore's counts on pytorchvideo (docs/ARCHITECTURE.md, section 4), in GMACs.
PUBLISHED_GMACS = {
    ("XS", 160): 0.626,
    ("XS", 182): 0.867,
    ("S", 160): 2.031,
    ("S", 182): 2.814,
    ("M", 224): 4.896,
    ("M", 256): 6.395,
    ("L", 312): 18.928,
    ("L", 356): 25.508,
}
CASES = [
    pytest.param(v, c, marks=[pytest.mark.slow] if v == "L" else [], id=f"{v}@{c}") for (v, c) in PUBLISHED_GMACS
]


def _fvcore_macs(variant: str, crop: int) -> int:
    torch = require("torch")
    fvcore_nn = require("fvcore.nn")
    model = build_reference_x3d(variant, crop=crop)  # eval mode
    frames = X3D_REFERENCE_KWARGS[variant][0]
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, 3, frames, crop, crop))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


@pytest.mark.parametrize("variant,crop", CASES)
def test_x3d_macs_match_fvcore_on_pytorchvideo(variant: str, crop: int) -> None:
    frames = X3D_REFERENCE_KWARGS[variant][0]
    model = get_model(f"X3D_{variant}", input_shape=(frames, crop, crop, 3))
    ours = flops.count_macs(model)
    reference = _fvcore_macs(variant, crop)
    assert abs(ours - reference) / reference < 0.01, (ours, reference)
    assert ours / 1e9 == pytest.approx(PUBLISHED_GMACS[(variant, crop)], abs=6e-4)
    if variant == "XS" and crop == 160:
        assert ours == reference == 626_146_112  # the convention is replicated exactly
    if variant == "L" and crop == 312:
        assert flops.count_params(model) == 6_153_384
    by_stage = flops.macs_by_stage(model)
    assert list(by_stage) == ["stem", "stage1", "stage2", "stage3", "stage4", "head", "predictions"]
    assert sum(by_stage.values()) == ours
    assert flops.count_macs(model, batch_size=8) == 8 * ours


def test_x3d_params_match_pytorch_convention() -> None:
    assert flops.count_params(get_model("X3D_XS")) == 3_794_274


def _tiny_model() -> keras.Model:
    """One of each supported layer type, with a nested functional model."""
    inner_in = keras.Input((4, 4, 4, 8))
    inner_out = keras.layers.Dense(8, name="stage2_dense5d")(inner_in)  # Dense on rank 5
    inner = keras.Model(inner_in, inner_out, name="nested")

    x_in = keras.Input((4, 8, 8, 3), name="frames")
    x = keras.layers.Conv3D(8, (1, 3, 3), strides=(1, 2, 2), padding="same", use_bias=False, name="stem_conv")(x_in)
    x = DepthwiseConv3D((3, 3, 3), padding=1, name="stage1_dw")(x)
    x = keras.layers.BatchNormalization(name="stage1_bn")(x)
    x = keras.layers.BatchNormalization(center=False, scale=False, name="stage1_bn_plain")(x)
    x = keras.layers.ReLU(name="stage1_relu")(x)
    x = inner(x)
    x = PointwiseConv3D(16, strides=(1, 2, 2), use_bias=True, name="stage2_pw")(x)
    x = keras.layers.Reshape((8, 2, 16), name="head_reshape")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", groups=2, name="head_conv2d")(x)
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(10, name="predictions")(x)
    return keras.Model(x_in, x, name="tiny")


def test_tiny_model_hand_computed() -> None:
    model = _tiny_model()
    expected = {
        "stem_conv": (4 * 4 * 4 * 8) * (3 * 3 * 3),  # out elements x Cin x 1x3x3 = 13824
        "stage1_dw": (4 * 4 * 4 * 8) * 27,  # out elements x 3x3x3 = 13824
        "stage1_bn": 2 * 512,  # affine BN in eval: 2 x elements
        "stage1_bn_plain": 512,  # no affine: 1 x elements
        "stage1_relu": 0,
        "nested/stage2_dense5d": 512 * 8,  # out elements x in features = 4096
        "stage2_pw": (4 * 2 * 2 * 16) * 8,  # strided: 256 out elements x Cin 8 = 2048 (bias free)
        "head_reshape": 0,
        "head_conv2d": (8 * 2 * 4) * (16 // 2) * 9,  # groups=2: 64 x 8 x 9 = 4608
        "head_flatten": 0,
        "predictions": 64 * 10,  # 640
    }
    assert flops.macs_by_layer(model) == expected
    total = sum(expected.values())
    assert total == 40_576
    assert flops.count_macs(model) == total
    assert flops.count_macs(model, batch_size=3) == 3 * total
    assert flops.macs_by_stage(model) == {
        "stem": 13824,
        "stage1": 13824 + 1024 + 512,
        "stage2": 4096 + 2048,
        "head": 4608,
        "predictions": 640,
    }
    # Parameters: PyTorch convention (no BN running statistics; biases included).
    params = 3 * 9 * 8 + 27 * 8 + 2 * 8 + (8 * 8 + 8) + (8 * 16 + 16) + (8 * 9 * 4 + 4) + (64 * 10 + 10)
    assert flops.count_params(model) == params
    assert flops.count_params(model) == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    stages = {s.name: s for s in flops.stage_stats(model)}
    assert stages["stage2"].output_shape == (4, 2, 2, 16)
    assert stages["stage2"].width == 16
    assert stages["stem"].params == 3 * 9 * 8


def test_sequential_and_depthwise2d() -> None:
    model = keras.Sequential(
        [
            keras.Input((6, 6, 4)),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", name="dw"),
            keras.layers.Reshape((16, 8), name="r"),
            keras.layers.Conv1D(3, 2, name="c1"),
        ]
    )
    # dw: out (4, 4, 8) = 128 elements x 9; conv1d: out (15, 3) = 45 x 8 x 2
    assert flops.macs_by_layer(model) == {"dw": 128 * 9, "r": 0, "c1": 45 * 16}


class _Custom(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


def test_unknown_layer_with_weights_is_loud() -> None:
    x_in = keras.Input((4, 4, 3))
    model = keras.Model(x_in, _Custom(name="mystery")(x_in))
    with pytest.raises(flops.UnsupportedLayerError, match="mystery.*_Custom.*register_macs_handler"):
        flops.count_macs(model)
    with pytest.warns(UserWarning, match="mystery"):
        assert flops.count_macs(model, on_unknown="warn") == 0
    try:
        flops.register_macs_handler(_Custom, lambda layer, ins, outs: int(np.prod(outs[0])))
        assert flops.count_macs(model) == 48
    finally:
        flops._HANDLERS.pop(_Custom, None)


def test_dynamic_shapes_and_subclassed_models_are_rejected() -> None:
    x_in = keras.Input((None, None, None, 3))
    model = keras.Model(x_in, PointwiseConv3D(4, name="pw")(x_in))
    with pytest.raises(ValueError, match="static input shape"):
        flops.count_macs(model)

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="subclassed"):
        flops.count_macs(Sub())
    with pytest.raises(ValueError, match="batch_size"):
        flops.count_macs(_tiny_model(), batch_size=0)


def test_stage_of() -> None:
    assert flops.stage_of("stage12_block3_conv_a") == "stage12"
    assert flops.stage_of("stem_bn") == "stem"
    assert flops.stage_of("outer/head_conv") == "head"
    assert flops.stage_of("predictions") == "predictions"
    assert flops.stage_of("stages_x") == "other"
