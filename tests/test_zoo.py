"""Independent tests of the X3D zoo against pytorchvideo's `create_x3d` (issue 2, points 3-4).

Each pytorchvideo parameter is mapped to the Keras weight the builder documents for it
(`autox3d_tf.models.builder`: stem_conv_spatial, stage{s}_block{b}_conv_a, ...), its shape converted
from PyTorch's layout to Keras': Conv3d (out, in, t, h, w) -> (t, h, w, in, out); depthwise Conv3d
-> (t, h, w, C, 1); 1x1x1 Conv3d and Linear -> (in, out). The mapping is then used to copy random
weights into the Keras model and compare the two networks' outputs.
"""

from __future__ import annotations

import collections
import functools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.arch import x3d_spec
from autox3d_tf.zoo import X3D_L, X3D_M, X3D_S, X3D_XL, X3D_XS, get_model, list_models
from tests.helpers.reference import build_reference_x3d, require

VARIANTS = ["XS", "S", "M", "L", "XL"]
FACTORIES = {"XS": X3D_XS, "S": X3D_S, "M": X3D_M, "L": X3D_L, "XL": X3D_XL}
PARAMS = {"XS": 3_794_274, "S": 3_794_274, "M": 3_794_274, "L": 6_153_384, "XL": 11_095_840}
DEFAULT_SHAPES = {
    "XS": (4, 160, 160, 3),
    "S": (13, 160, 160, 3),
    "M": (16, 224, 224, 3),
    "L": (16, 312, 312, 3),
    "XL": (16, 312, 312, 3),
}
SMALL = (4, 64, 64, 3)


def seed(value: int = 0) -> np.random.Generator:
    keras.utils.set_random_seed(value)
    return np.random.default_rng(value)


@functools.lru_cache(maxsize=None)
def keras_x3d(variant: str) -> keras.Model:
    """A Keras X3D at its default input shape (building is symbolic: cheap at any size)."""
    return FACTORIES[variant]()


def run(model: keras.Model, x) -> np.ndarray:
    """Inference in eager mode (tracing `predict` costs ~10 s per X3D model on 2 cores)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


# --------------------------------------------------------------------------------------------
# PyTorch -> Keras mapping (names and layouts)
# --------------------------------------------------------------------------------------------

_BLOCK_PARTS = {
    "branch1_conv": "shortcut_conv",
    "branch1_norm": "shortcut_bn",
    "branch2.conv_a": "conv_a",
    "branch2.norm_a": "bn_a",
    "branch2.conv_b": "conv_b",
    "branch2.norm_b.0": "bn_b",
    "branch2.norm_b.1.block.0": "se_reduce",
    "branch2.norm_b.1.block.2": "se_expand",
    "branch2.conv_c": "conv_c",
    "branch2.norm_c": "bn_c",
}
_HEAD_PARTS = {"pool.pre_conv": "head_conv", "pool.pre_norm": "head_bn", "pool.post_conv": "head_dense", "proj": "predictions"}
_STEM_PARTS = {"conv.conv_t": "stem_conv_spatial", "conv.conv_xy": "stem_conv_temporal", "norm": "stem_bn"}
_PARAM_NAMES = {
    "weight": "kernel",
    "bias": "bias",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_BN_PARAM_NAMES = {**_PARAM_NAMES, "weight": "gamma", "bias": "beta"}


def keras_name(torch_key: str, module, num_stages: int) -> str:
    """'blocks.1.res_blocks.0.branch2.conv_a.weight' -> 'stage1_block0_conv_a/kernel'."""
    torch_nn = require("torch").nn
    module_path, param = torch_key.rsplit(".", 1)
    names = _BN_PARAM_NAMES if isinstance(module, torch_nn.BatchNorm3d) else _PARAM_NAMES
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", module_path)
    assert m, torch_key
    stage, rest = int(m.group(1)), m.group(2)
    if stage == 0:
        layer = _STEM_PARTS[rest]
    elif stage == num_stages + 1:
        layer = _HEAD_PARTS[rest]
    else:
        mb = re.fullmatch(r"res_blocks\.(\d+)\.(.+)", rest)
        assert mb, torch_key
        layer = f"stage{stage}_block{mb.group(1)}_{_BLOCK_PARTS[mb.group(2)]}"
    return f"{layer}/{names[param]}"


def to_keras_layout(value: np.ndarray, module) -> np.ndarray:
    """A PyTorch parameter in the Keras layout of the matching layer."""
    torch_nn = require("torch").nn
    if isinstance(module, torch_nn.Conv3d) and value.ndim == 5:
        out_ch, in_ch, kt, kh, kw = value.shape
        if module.groups > 1:
            assert module.groups == out_ch and in_ch == 1
            return np.transpose(value, (2, 3, 4, 0, 1))  # (t, h, w, C, 1)
        if (kt, kh, kw) == (1, 1, 1):
            return value[:, :, 0, 0, 0].T  # PointwiseConv3D / Dense: (in, out)
        return np.transpose(value, (2, 3, 4, 1, 0))  # Conv3D: (t, h, w, in, out)
    if isinstance(module, torch_nn.Linear) and value.ndim == 2:
        return value.T
    return value


def reference_params(reference, trainable_only: bool):
    """[(keras name, value in Keras layout, torch key)] in state_dict order."""
    modules = dict(reference.named_modules())
    trainable = {name for name, p in reference.named_parameters() if p.requires_grad}
    num_stages = len(reference.blocks) - 2
    out = []
    for key, tensor in reference.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if trainable_only and key not in trainable:
            continue
        module = modules[key.rsplit(".", 1)[0]]
        value = to_keras_layout(tensor.detach().numpy().astype(np.float64), module)
        out.append((keras_name(key, module, num_stages), value, key))
    return out


def layer_name(weight_path: str) -> str:
    return weight_path.split("/")[0]


def block_of(layer: str) -> str:
    m = re.match(r"(stage\d+_block\d+)_", layer)
    return m.group(1) if m else layer.split("_")[0]


# --------------------------------------------------------------------------------------------
# Parameter counts, shapes and layer order against pytorchvideo
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_trainable_parameter_count(variant):
    model = keras_x3d(variant)
    assert count(model.trainable_weights) == PARAMS[variant]
    reference = build_reference_x3d(variant)
    assert sum(p.numel() for p in reference.parameters() if p.requires_grad) == PARAMS[variant]


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_shapes_and_order_match_pytorchvideo(variant):
    model = keras_x3d(variant)
    reference = build_reference_x3d(variant)
    params = reference_params(reference, trainable_only=False)
    keras_weights = {w.path: w for w in model.weights}
    assert len(keras_weights) == len(model.weights)  # unique names

    # Every torch parameter / BN statistic has a Keras weight of the converted shape, and vice versa.
    names = [name for name, _, _ in params]
    assert len(set(names)) == len(names)
    assert set(names) == set(keras_weights), sorted(set(names) ^ set(keras_weights))[:10]
    for name, value, key in params:
        assert tuple(keras_weights[name].shape) == value.shape, (key, name)

    # Trainable sets agree, and the multisets of converted shapes agree.
    trainable = {name for name, _, _ in reference_params(reference, trainable_only=True)}
    assert trainable == {w.path for w in model.trainable_weights}
    torch_shapes = collections.Counter(v.shape for _, v, _ in params)
    keras_shapes = collections.Counter(tuple(w.shape) for w in model.weights)
    assert torch_shapes == keras_shapes

    # Same order of blocks, and of layers inside each block (a functional model orders the
    # parallel shortcut branch arbitrarily, so shortcut layers are compared separately).
    def ordered(seq):
        layers = list(dict.fromkeys(layer_name(n) for n in seq))
        blocks = list(dict.fromkeys(block_of(n) for n in layers))
        main = [n for n in layers if "shortcut" not in n]
        shortcut = [n for n in layers if "shortcut" in n]
        return blocks, main, shortcut

    assert ordered(names) == ordered([w.path for w in model.weights])


def test_stage_widths_and_depths_match_pytorchvideo_modules():
    """Block counts and output widths per stage, read from the reference's modules (L and XL)."""
    for variant in ("L", "XL"):
        reference = build_reference_x3d(variant)
        spec = x3d_spec(variant)
        stages = reference.blocks[1:-1]
        assert [len(s.res_blocks) for s in stages] == list(spec.depths)
        assert [s.res_blocks[0].branch2.conv_c.out_channels for s in stages] == list(spec.widths)
        assert reference.blocks[0].conv.conv_t.out_channels == spec.stem_width
        assert reference.blocks[-1].pool.pre_conv.out_channels == spec.head_width


def copy_reference_weights(model: keras.Model, reference) -> None:
    """Randomises the reference (incl. BN statistics and gammas) and copies it into the model."""
    torch = require("torch")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in reference.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            elif name.endswith("running_mean") or name.endswith(".bias"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
            elif tensor.ndim == 1:  # BN gamma
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (1.0 / fan_in) ** 0.5)
    weights = {w.path: w for w in model.weights}
    for name, value, _ in reference_params(reference, trainable_only=False):
        weights[name].assign(value.astype("float32"))


@pytest.mark.parametrize(
    "variant,shape",
    [
        ("XS", (4, 64, 64, 3)),
        ("S", (13, 64, 64, 3)),
        ("L", (16, 64, 96, 3)),
    ],
)
def test_outputs_match_pytorchvideo(variant, shape):
    """The Keras network computes the same function as the reference (eval mode, logits)."""
    torch = require("torch")
    frames, height, width, _ = shape
    reference = build_reference_x3d(variant, crop=height, num_classes=7)
    if width != height:  # the reference's head pools over a fixed (T, crop/32, crop/32) window
        reference.blocks[-1].pool.pool = torch.nn.AvgPool3d((frames, height // 32, width // 32))
    model = FACTORIES[variant](input_shape=shape, classes=7, classifier_activation=None)
    copy_reference_weights(model, reference)
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(np.transpose(x, (0, 4, 1, 2, 3)))).numpy()
    got = run(model, x)
    assert got.shape == expected.shape == (2, 7)
    assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) < 1e-4


# --------------------------------------------------------------------------------------------
# keras.applications arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_default_input_and_output_shapes(variant):
    model = keras_x3d(variant)
    assert tuple(model.input_shape) == (None, *DEFAULT_SHAPES[variant])
    assert tuple(model.output_shape) == (None, 400)
    assert model.name == f"x3d_{variant.lower()}"


def test_output_shapes_for_top_and_pooling():
    seed(0)
    x = np.random.default_rng(0).standard_normal((2, *SMALL)).astype("float32")
    features = X3D_XS(include_top=False, input_shape=SMALL)
    assert tuple(features.output_shape) == (None, 4, 2, 2, 432)
    fmap = run(features, x)
    assert fmap.shape == (2, 4, 2, 2, 432)
    assert fmap.min() >= 0.0  # ends with ReLU

    avg = X3D_XS(include_top=False, pooling="avg", input_shape=SMALL)
    mx = X3D_XS(include_top=False, pooling="max", input_shape=SMALL)
    assert tuple(avg.output_shape) == tuple(mx.output_shape) == (None, 2048)  # pre-logits: pooled, head_dense, ReLU
    for pooled, reduce in ((avg, np.mean), (mx, np.max)):
        for layer in features.layers:
            if layer.weights:
                pooled.get_layer(layer.name).set_weights(layer.get_weights())
        projection = pooled.get_layer("head_dense").get_weights()[0]
        expected = np.maximum(reduce(fmap, axis=(1, 2, 3)) @ projection, 0.0)
        np.testing.assert_allclose(run(pooled, x), expected, rtol=1e-4, atol=1e-5)

    top = X3D_XS(input_shape=SMALL, classes=10)
    probs = run(top, x)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert top.get_layer("predictions").activation is keras.activations.softmax

    logits = X3D_XS(input_shape=SMALL, classes=10, classifier_activation=None)
    logits.set_weights(top.get_weights())
    z = run(logits, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(z)), probs, rtol=1e-4, atol=1e-7)


def test_pooling_ignored_shapes_with_top_and_bad_pooling():
    model = X3D_XS(input_shape=SMALL, classes=5, pooling="avg")  # keras.applications ignores pooling with top
    assert tuple(model.output_shape) == (None, 5)
    with pytest.raises(ValueError, match="pooling"):
        X3D_XS(include_top=False, pooling="mean", input_shape=SMALL)
    with pytest.raises(ValueError, match="classes"):
        X3D_XS(input_shape=SMALL, classes=0)


def test_head_layers_and_initialisation():
    seed(0)
    model = X3D_XS(input_shape=(4, 32, 32, 3), classes=10)
    assert tuple(model.get_layer("head_dense").kernel.shape) == (432, 2048)
    assert model.get_layer("head_dense").bias is None
    assert model.get_layer("head_dropout").rate == 0.5
    pred = model.get_layer("predictions")
    assert tuple(pred.kernel.shape) == (2048, 10) and pred.bias is not None
    assert abs(float(np.std(pred.kernel.numpy())) - 0.01) < 0.002  # N(0, 0.01)
    # The last BN of every block starts at gamma 0 (PySlowFast).
    for layer in model.layers:
        if layer.name.endswith("_bn_c"):
            np.testing.assert_array_equal(layer.gamma.numpy(), 0.0)
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == pytest.approx(0.9)
    no_dropout = X3D_XS(input_shape=(4, 32, 32, 3), dropout_rate=0.0)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in no_dropout.layers)


def test_list_models_and_get_model():
    names = list_models()
    assert {"X3D_XS", "X3D_S", "X3D_M", "X3D_L", "X3D_XL"} <= set(names)
    assert len(names) == len(set(names))
    model = get_model("X3D_S", classes=10)
    assert tuple(model.input_shape) == (None, 13, 160, 160, 3)
    assert tuple(model.output_shape) == (None, 10)
    assert count(model.trainable_weights) == PARAMS["S"] - 2048 * 400 - 400 + 2048 * 10 + 10


@pytest.mark.parametrize("name", ["x3d_xs", "X3D_XS", "X3d_Xs", "x3d-xs"])
def test_get_model_is_case_insensitive(name):
    model = get_model(name, input_shape=(4, 32, 32, 3), classes=3)
    assert tuple(model.output_shape) == (None, 3)
    assert count(model.trainable_weights) == PARAMS["XS"] - 2048 * 397 - 397


def test_get_model_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_model("nope")
    for name in list_models():
        assert name in str(err.value)


@pytest.mark.parametrize(
    "shape,words",
    [
        ((64, 64, 3), ["(frames, height, width, 3)"]),
        ((1, 4, 64, 64, 3), ["(frames, height, width, 3)"]),
        ((4, 64, 64, 1), ["(frames, height, width, 3)"]),
        ((3, 4, 64, 64), ["(frames, height, width, 3)"]),  # channels first
        ((4, 16, 64, 3), ["height", "32"]),
        ((4, 64, 31, 3), ["width", "32"]),
        ((0, 64, 64, 3), ["frame"]),
        (("four", 64, 64, 3), ["(frames, height, width, 3)"]),
    ],
)
def test_bad_input_shape(shape, words):
    with pytest.raises(ValueError) as err:
        X3D_XS(input_shape=shape)
    for word in words:
        assert word in str(err.value)


def test_non_default_input_shapes_build_and_run():
    seed(1)
    model = X3D_XS(input_shape=(8, 128, 128, 3), classes=4)
    assert tuple(model.input_shape) == (None, 8, 128, 128, 3)
    y = run(model, np.random.default_rng(0).random((1, 8, 128, 128, 3), dtype=np.float32))
    assert y.shape == (1, 4) and np.all(np.isfinite(y))

    # Odd sizes, one frame, and a dynamic clip length.
    model = X3D_XS(input_shape=(1, 33, 45, 3), include_top=False)
    assert run(model, np.zeros((1, 1, 33, 45, 3), "float32")).shape == (1, 1, 2, 2, 432)
    model = X3D_XS(input_shape=(None, 64, 64, 3), include_top=False, pooling="avg")
    for frames in (3, 6):
        assert run(model, np.zeros((2, frames, 64, 64, 3), "float32")).shape == (2, 2048)


def test_model_name_and_input_tensor():
    assert X3D_XS(input_shape=SMALL, name="my_x3d").name == "my_x3d"
    inputs = keras.Input(SMALL, name="clip")
    model = X3D_XS(input_tensor=inputs, classes=3)
    assert model.inputs[0] is inputs
    assert tuple(model.output_shape) == (None, 3)


def test_no_grouped_conv3d_or_avgpool3d_layers():
    model = X3D_XS(input_shape=SMALL)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            assert layer.groups == 1, layer.name
        assert not isinstance(layer, keras.layers.AveragePooling3D), layer.name
    assert sum(isinstance(layer, keras.layers.Conv3D) for layer in model.layers) == 1  # the stem only


# --------------------------------------------------------------------------------------------
# Serialisation and training
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_xs():
    seed(3)
    model = X3D_XS(input_shape=(4, 32, 32, 3), classes=6)
    rng = np.random.default_rng(3)
    for w in model.weights:  # non-trivial BN statistics and gammas
        if "moving_variance" in w.path or "gamma" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif "moving_mean" in w.path or "beta" in w.path:
            w.assign(rng.normal(0, 0.1, w.shape).astype("float32"))
    x = rng.standard_normal((2, 4, 32, 32, 3)).astype("float32")
    return model, x, run(model, x)


def test_config_round_trip(small_xs):
    model, x, expected = small_xs
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(run(clone, x), expected)
    clone2 = keras.models.clone_model(model)
    clone2.set_weights(model.get_weights())
    np.testing.assert_array_equal(run(clone2, x), expected)


def test_save_and_reload_keras_file(small_xs, tmp_path):
    model, x, expected = small_xs
    path = tmp_path / "x3d_xs.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.name == model.name
    assert count(loaded.trainable_weights) == count(model.trainable_weights)
    np.testing.assert_array_equal(run(loaded, x), expected)
    weights_path = tmp_path / "x3d_xs.weights.h5"
    model.save_weights(weights_path)
    fresh = X3D_XS(input_shape=(4, 32, 32, 3), classes=6)
    fresh.load_weights(weights_path)
    np.testing.assert_array_equal(run(fresh, x), expected)


def graph_op_types(concrete) -> collections.Counter:
    graph = concrete.graph.as_graph_def()
    ops = collections.Counter(node.op for node in graph.node)
    for f in graph.library.function:
        ops.update(node.op for node in f.node_def)
    return ops


@pytest.mark.slow
def test_train_step_in_tf_function():
    """training=True inside tf.function: gradients, an SGD step, BN statistics, dropout; no XLA."""
    seed(5)
    model = X3D_XS(input_shape=(4, 32, 32, 3), classes=3, classifier_activation=None)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(5)
    x = tf.constant(rng.standard_normal((4, 4, 32, 32, 3)).astype("float32"))
    y = tf.constant([0, 1, 2, 1])
    learning_rate = 0.05

    # A plain SGD update (tracing keras' optimizer over 300+ variables costs ~30 s on 2 cores).
    @tf.function(input_signature=[tf.TensorSpec((None, 4, 32, 32, 3)), tf.TensorSpec((None,), tf.int32)])
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = loss_fn(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        for var, grad in zip(model.trainable_variables, grads):
            var.assign_sub(learning_rate * grad)
        return loss, grads

    before = {w.path: w.numpy().copy() for w in model.weights}
    losses = []
    for _ in range(4):
        loss, grads = train_step(x, y)
        losses.append(float(loss))
        assert len(grads) == len(model.trainable_variables)
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    # Conv kernels changed, and BN moving statistics were updated in training mode.
    assert not np.allclose(model.get_layer("stage1_block0_conv_b").kernel.numpy(), before["stage1_block0_conv_b/kernel"])
    assert not np.allclose(model.get_layer("stem_bn").moving_mean.numpy(), before["stem_bn/moving_mean"])
    # Forward and backward graphs: no grouped Conv3D, no XLA, no AvgPool3D; one dense Conv3D (the
    # stem) and its two gradients.
    ops = graph_op_types(train_step.get_concrete_function())
    assert not {op for op in ops if "Xla" in op or "AvgPool3D" in op}, ops
    conv3d_ops = {op: n for op, n in ops.items() if op.startswith("Conv3D")}
    assert conv3d_ops.get("Conv3D", 0) <= 1, conv3d_ops
    assert sum(conv3d_ops.values()) <= 3, conv3d_ops
    # Dropout is active in training mode only.
    a = keras.ops.convert_to_numpy(model(x, training=True))
    b = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(run(model, x), run(model, x))
