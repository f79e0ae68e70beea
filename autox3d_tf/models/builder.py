"""One builder from an `ArchSpec` to a plain functional `keras.Model`.

The layer order and shapes follow pytorchvideo's ``create_x3d`` one to one, so that a
checkpoint maps onto the model weight by weight. The layers are named by `autox3d_tf.arch.naming`
(``stem_conv_spatial``, ``stage{s}_block{b}_conv_a``, ..., ``predictions``), the scheme the
supernet and the checkpoint converter share.
"""

from __future__ import annotations

import functools
from typing import Sequence

import keras
import numpy as np
from keras import layers

from autox3d_tf.arch import naming
from autox3d_tf.arch.spec import POOL, PROJECTION, RELU, SE_RATIO, ArchSpec, BlockSpec, round_width
from autox3d_tf.layers import (
    CumulativeAveragePooling3D,
    DepthwiseConv3D,
    FrameConv3D,
    FramePooling2D,
    PixelNormalization,
    PointwiseConv3D,
    TemporalBuffer,
    causal_padding,
)
from autox3d_tf.models.pseudo3d import FOLD_PARTS, combine_pseudo3d, pseudo3d_convs
from autox3d_tf.models.video_model import VideoModel

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1

# PySlowFast's initialisation: He normal with fan_out for convolutions. Keras computes fan_out of a
# depthwise kernel (t, h, w, C, 1) as t*h*w, while PyTorch uses C*t*h*w, which Keras calls fan_in.
CONV_INIT = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
DEPTHWISE_INIT = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
HEAD_INIT = keras.initializers.RandomNormal(stddev=0.01)


def fresh_initializer(template: keras.initializers.Initializer) -> keras.initializers.Initializer:
    """A new instance of ``template`` with its own seed, for one weight.

    Keras 3 gives a seed-less random initializer a fixed seed when it is created, so one shared
    instance would draw the same values for every weight of the same shape (and ignore
    ``keras.utils.set_random_seed`` when created at import). A fresh instance per weight draws
    its seed from Python's RNG, which ``set_random_seed`` controls.
    """
    config = template.get_config()
    config["seed"] = None
    return template.__class__.from_config(config)

POOLING_CHOICES = (None, "avg", "max")


def _bn(name: str, zero_gamma: bool = False) -> layers.BatchNormalization:
    return layers.BatchNormalization(
        axis=-1,
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )


def validate_input_shape(input_shape: Sequence[int | None] | None, spec: ArchSpec) -> tuple:
    """Checks a channels-last ``(frames, height, width, 3)`` input shape; defaults from the spec."""
    if input_shape is None:
        return (spec.input_frames, spec.input_size, spec.input_size, 3)
    try:
        shape = tuple(input_shape)
        if not all(d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) for d in shape):
            raise TypeError
        shape = tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        raise ValueError(
            f"`input_shape` must be (frames, height, width, 3) with positive ints, got {input_shape!r}."
        ) from None
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            f"`input_shape` must be (frames, height, width, 3), channels last, got {input_shape!r}. "
            f"This model's default is {(spec.input_frames, spec.input_size, spec.input_size, 3)}."
        )
    frames, height, width, _ = shape
    if frames is not None and frames < 1:
        raise ValueError(f"`input_shape` needs at least 1 frame, got {input_shape!r}.")
    minimum = spec.total_stride
    for label, size in (("height", height), ("width", width)):
        if size is not None and size < minimum:
            raise ValueError(
                f"`input_shape` {label} must be at least {minimum} (the network's total stride), got {input_shape!r}."
            )
    return shape


class _Graph:
    """Build options shared by the helpers: BatchNorm folded into the convolution before it?
    The causal form of the network? Its streaming form (`autox3d_tf.models.streaming`), whose
    state inputs and outputs the helpers collect in ``states_in`` / ``states_out``?"""

    def __init__(self, fold_batch_norm: bool, causal: bool = False, stream: bool = False,
                 batch_size: int | None = None):
        self.fold = fold_batch_norm
        self.causal = causal or stream
        self.stream = stream
        self.batch_size = batch_size
        self.states_in: dict[str, object] = {}
        self.states_out: dict[str, object] = {}
        self.folded: dict[str, str] = {}  # convolution layer name -> the BatchNorm folded into it
        # convolution layer name -> the parts of its BatchNorm it takes ("scale", "bias"), where
        # not both (the two convolutions of a pseudo-3D block share one BatchNorm)
        self.fold_parts: dict[str, tuple[str, ...]] = {}

    def padding(self, kernel, dilation: int = 1):
        """A depthwise convolution's padding: PyTorch's symmetric ``k // 2`` (``dilation * (kt // 2)``
        frames in time); in a causal network only on the past side in time; in a stream none in
        time (its `TemporalBuffer` holds the past frames)."""
        if not self.causal:
            if dilation == 1:
                return tuple(k // 2 for k in kernel)
            return (dilation * (kernel[0] // 2), kernel[1] // 2, kernel[2] // 2)
        pads = causal_padding(kernel, dilation)
        return ((0, 0), *pads[1:]) if self.stream else pads

    def _state(self, name: str, shape: tuple):
        state = keras.Input(shape=shape, batch_size=self.batch_size, name=name)
        self.states_in[name] = state
        return state

    def apply(self, conv, x):
        """``conv(x)``; in a stream, a temporal convolution takes its input after the past frames
        it needs (a `TemporalBuffer` ``{conv.name}_buffer`` with a state input and output
        ``{conv.name}_state``)."""
        if self.stream and isinstance(conv, DepthwiseConv3D):
            span = (conv.kernel_size[0] - 1) * conv.dilation_rate[0] + 1
            if span > 1:
                name = f"{conv.name}_state"
                state = self._state(name, (span - 1, *x.shape[2:]))
                x, self.states_out[name] = TemporalBuffer(span - 1, name=f"{conv.name}_buffer")(x, state)
        return conv(x)

    def time_average(self, x, name: str, keepdims: bool):
        """The average over space and time before the squeeze-excitation's or the head's dense
        layers: global, or in a causal network cumulative (with states ``{name}_total`` and
        ``{name}_count`` in a stream)."""
        if not self.causal:
            return layers.GlobalAveragePooling3D(keepdims=keepdims, name=name)(x)
        pool = CumulativeAveragePooling3D(keepdims=keepdims, name=name)
        if not self.stream:
            return pool(x)
        total = self._state(f"{name}_total", (x.shape[-1],))
        count = self._state(f"{name}_count", (1,))
        y, self.states_out[f"{name}_total"], self.states_out[f"{name}_count"] = pool(x, total, count)
        return y

    def norm_parts(self, y, convs, parts, bn_name: str):
        """BatchNorm ``bn_name`` on ``y``, computed by ``convs``; folded, ``parts[i]`` of it go to
        ``convs[i]`` (see `autox3d_tf.models.pseudo3d.FOLD_PARTS`)."""
        if not self.fold:
            return _bn(bn_name)(y)
        for conv, part in zip(convs, parts):
            if part:
                self.folded[conv.name] = bn_name
                if tuple(part) != ("scale", "bias"):
                    self.fold_parts[conv.name] = tuple(part)
        return y

    def norm(self, x, conv, bn_name: str, relu_name: str | None = None, zero_gamma: bool = False):
        """Applies ``conv``, then BatchNorm (or the bias it folds into) and an optional ReLU."""
        if self.fold:
            self.folded[conv.name] = bn_name
            return self.apply(conv, x)
        x = _bn(bn_name, zero_gamma)(self.apply(conv, x))
        return layers.ReLU(name=relu_name)(x) if relu_name else x


def network_stem(x, spec: ArchSpec, g: _Graph | None = None):
    """The stem: a 1x3x3 stride-2 convolution, the temporal depthwise convolution, BN, ReLU
    (without the temporal convolution when ``spec.stem_temporal_kernel`` is 0, as in E3D)."""
    g = g or _Graph(False)
    x = layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name=naming.STEM_PAD)(x)
    k = spec.stem_temporal_kernel
    spatial = FrameConv3D(
        spec.stem_width,
        (1, 3, 3),
        strides=(1, 2, 2),
        padding="valid",
        use_bias=g.fold and not k,
        kernel_initializer=fresh_initializer(CONV_INIT),
        name=naming.STEM_CONV_SPATIAL,
    )
    if not k:
        x = g.norm(x, spatial, naming.STEM_BN)
        return layers.ReLU(name=naming.STEM_RELU)(x)
    x = spatial(x)
    conv = DepthwiseConv3D(
        (k, 1, 1),
        padding=g.padding((k, 1, 1)),
        use_bias=g.fold,
        kernel_initializer=fresh_initializer(DEPTHWISE_INIT),
        name=naming.STEM_CONV_TEMPORAL,
    )
    x = g.norm(x, conv, naming.STEM_BN)
    return layers.ReLU(name=naming.STEM_RELU)(x)


def _squeeze_excite(x, channels: int, prefix: str, g: _Graph):
    reduced = round_width(channels, SE_RATIO)
    name = functools.partial(naming.block_layer, prefix)
    s = g.time_average(x, name(naming.SE_POOL), keepdims=True)
    s = layers.Dense(reduced, activation="relu", kernel_initializer=fresh_initializer(CONV_INIT), name=name(naming.SE_REDUCE))(s)
    s = layers.Dense(channels, activation="sigmoid", kernel_initializer=fresh_initializer(CONV_INIT), name=name(naming.SE_EXPAND))(s)
    return layers.Multiply(name=name(naming.SE_SCALE))([x, s])


def residual_block(x, block: BlockSpec, in_width: int, width: int, stride: int, prefix: str, g: _Graph | None = None):
    """One X3D-style bottleneck block with its shortcut (the block must not be a skip).

    ``prefix`` is the block's name (`naming.block_prefix`); its layers are named by their role.
    ``block.shortcut`` says which shortcut (`autox3d_tf.arch.spec.SHORTCUTS`; E3D's "pool" is an
    identity, after a per-frame average pool when strided, or none when the width changes) and
    ``block.activation`` what follows the depthwise convolution (Swish, or E3D's ReLU).
    """
    g = g or _Graph(False)
    name = functools.partial(naming.block_layer, prefix)
    inner = block.inner_width(width)
    strides = (1, stride, stride)

    shortcut = x
    if block.shortcut == POOL:
        if in_width != width:
            shortcut = None
        elif stride > 1:
            shortcut = FramePooling2D("avg", stride, stride, name=name(naming.SHORTCUT_POOL))(x)
    elif in_width != width or stride > 1:
        with_bn = in_width != width
        conv = PointwiseConv3D(
            width, strides=strides, use_bias=g.fold and with_bn, kernel_initializer=fresh_initializer(CONV_INIT), name=name(naming.SHORTCUT_CONV)
        )
        shortcut = g.norm(x, conv, name(naming.SHORTCUT_BN)) if with_bn else conv(x)

    relu = "relu" if g.fold else None
    conv_a = PointwiseConv3D(inner, use_bias=g.fold, activation=relu, kernel_initializer=fresh_initializer(CONV_INIT), name=name(naming.CONV_A))
    y = g.norm(x, conv_a, name(naming.BN_A), relu_name=name(naming.RELU_A))
    kernels = block.kernels
    op = block.pseudo3d
    if op is not None:
        parts = FOLD_PARTS[op.topology]
        spatial, temporal = pseudo3d_convs(
            op,
            stride,
            names=(name(naming.depthwise_role(0, 2)), name(naming.depthwise_role(1, 2))),
            biases=(g.fold and "bias" in parts[0], g.fold and "bias" in parts[1]),
            initializer=lambda: fresh_initializer(DEPTHWISE_INIT),
            temporal_padding=g.padding(op.temporal_kernel, op.temporal_dilation),
        )
        y = combine_pseudo3d(y, functools.partial(g.apply, spatial), functools.partial(g.apply, temporal),
                             op.topology, name=name(naming.CONV_B_ADD))
        y = g.norm_parts(y, (spatial, temporal), parts, name(naming.BN_B))
        kernels = ()
    for i, kernel in enumerate(kernels):
        last = i == len(kernels) - 1
        conv = DepthwiseConv3D(
            kernel,
            strides=strides if i == 0 else 1,
            padding=g.padding(kernel),
            use_bias=g.fold and last,
            kernel_initializer=fresh_initializer(DEPTHWISE_INIT),
            name=name(naming.depthwise_role(i, len(kernels))),
        )
        y = g.norm(y, conv, name(naming.BN_B)) if last else g.apply(conv, y)
    if block.attention == "se":
        y = _squeeze_excite(y, inner, prefix, g)
    if block.activation == RELU:
        y = layers.ReLU(name=name(naming.RELU_B))(y)
    else:
        y = layers.Activation("silu", name=name(naming.SWISH))(y)
    conv_c = PointwiseConv3D(width, use_bias=g.fold, kernel_initializer=fresh_initializer(CONV_INIT), name=name(naming.CONV_C))
    # X3D's init zeroes the last BN of a block; E3D keeps PyTorch's ones (some of its blocks have no
    # shortcut, which a zero BN would cut off).
    y = g.norm(y, conv_c, name(naming.BN_C), zero_gamma=block.shortcut == PROJECTION)

    if shortcut is not None:
        y = layers.Add(name=name(naming.ADD))([shortcut, y])
    return layers.ReLU(name=name(naming.RELU))(y)


def network_head(x, spec: ArchSpec, g: _Graph | None = None, *, include_top: bool = True,
                 pooling: str | None = None, classes: int = 400, classifier_activation: str | None = "softmax",
                 dropout_rate: float = 0.5, frame_outputs: bool = False):
    """The head on the last stage's output ``x``: the 1x1x1 convolution, BN
    and ReLU; with the top (or ``pooling``) the pooling and the projection; with the top the dropout
    and the classifier. With ``frame_outputs`` (a causal network) the average pooling is
    cumulative over time, and the outputs are per frame, ``(batch, frames, ...)``; a causal
    network without it pools globally, which is its cumulative average at the last frame."""
    g = g or _Graph(False)
    relu = "relu" if g.fold else None
    head = PointwiseConv3D(spec.head_width, use_bias=g.fold, activation=relu, kernel_initializer=fresh_initializer(CONV_INIT), name=naming.HEAD_CONV)
    x = g.norm(x, head, naming.HEAD_BN, relu_name=naming.HEAD_RELU)

    if include_top or pooling is not None:
        if include_top or pooling == "avg":
            pool_name = naming.HEAD_POOL if include_top else naming.AVG_POOL
            if frame_outputs or g.stream:
                x = g.time_average(x, pool_name, keepdims=False)
            else:
                x = layers.GlobalAveragePooling3D(name=pool_name)(x)
        elif g.stream or frame_outputs:
            raise ValueError("Per-frame outputs need `pooling='avg'` (or the top): a cumulative max is not built.")
        else:
            x = layers.GlobalMaxPooling3D(name=naming.MAX_POOL)(x)
        if spec.head_hidden:
            x = layers.Dense(spec.head_hidden, use_bias=spec.head_bias, kernel_initializer=fresh_initializer(CONV_INIT), name=naming.HEAD_DENSE)(x)
            if spec.head_activation == RELU:
                x = layers.ReLU(name=naming.HEAD_DENSE_RELU)(x)
            else:
                x = layers.Activation("silu", name=naming.HEAD_DENSE_SWISH)(x)
    if include_top:
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=naming.HEAD_DROPOUT)(x)
        x = layers.Dense(
            classes, activation=classifier_activation, kernel_initializer=fresh_initializer(HEAD_INIT), name=naming.PREDICTIONS
        )(x)
    return x


def network(inputs, spec: ArchSpec, g: _Graph, *, include_preprocessing: bool = False, **head):
    """The whole network on ``inputs`` as ``g`` builds it: preprocessing, stem, stages, head
    (``head``: `network_head`'s keyword arguments)."""
    x = PixelNormalization(name=naming.PREPROCESSING)(inputs) if include_preprocessing else inputs
    x = network_stem(x, spec, g)
    in_width = spec.stem_width
    for s, stage in enumerate(spec.stages, start=1):
        for b, block in enumerate(stage.blocks):
            if block.is_skip:
                continue
            stride = stage.stride if b == 0 else 1
            x = residual_block(x, block, in_width, stage.width, stride, naming.block_prefix(s, b), g)
            in_width = stage.width
    return network_head(x, spec, g, **head)


def build_model(
    spec: ArchSpec,
    *,
    include_top: bool = True,
    input_shape: Sequence[int | None] | None = None,
    input_tensor=None,
    classes: int = 400,
    pooling: str | None = None,
    classifier_activation: str | None = "softmax",
    dropout_rate: float = 0.5,
    name: str | None = None,
    fold_batch_norm: bool = False,
    include_preprocessing: bool = False,
    frame_outputs: bool = False,
) -> VideoModel:
    """Builds the network described by ``spec``.

    Args:
        spec: the architecture.
        include_top: with the classifier (pooling, head projection, dropout, dense to ``classes``).
            Without it, and without ``pooling``, the model ends at the head's 1x1x1 convolution +
            BN + ReLU spatio-temporal feature map.
        input_shape: ``(frames, height, width, 3)``; defaults to the spec's clip.
        input_tensor: optional Keras tensor to use as the input.
        classes: number of classes of the classifier.
        pooling: with ``include_top=False``: None (the 5D feature map), "avg" or "max": the pooled
            features through the head's projection (``head_dense`` + ReLU, 2048 wide for X3D, the
            pre-logit features of the full model, whose pretrained weights it keeps) when the spec
            has one.
        classifier_activation: activation of the last layer (None for logits).
        dropout_rate: dropout before the classifier.
        name: model name (default: the spec's name).
        fold_batch_norm: build the inference graph in which every BatchNorm is folded into the
            convolution before it (see `fuse_for_inference`, which also folds the weights).
        include_preprocessing: the model takes RGB pixels in [0, 255] (uint8 or float) and
            normalises them itself (a `PixelNormalization` layer named "preprocessing" first).
        frame_outputs: for a causal spec (``spec.causal``): the outputs at every frame,
            ``(batch, frames, classes)`` (the head's pooling a cumulative average over time), instead
            of the output at the last frame. Same weights.

    Returns:
        A functional `VideoModel` (a ``keras.Model`` carrying ``spec`` and these options) taking
        normalised float clips (see ``preprocess_input``), or raw pixels with ``include_preprocessing``.
    """
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"`spec` must be an ArchSpec, got {type(spec).__name__}.")
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"`pooling` must be one of {list(POOLING_CHOICES)}, got {pooling!r}.")
    if include_top and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` must be a positive integer, got {classes!r}.")
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"`dropout_rate` must be in [0, 1), got {dropout_rate!r}.")
    shape = validate_input_shape(input_shape, spec)
    if frame_outputs and not spec.causal:
        raise ValueError(
            "`frame_outputs=True` needs a causal network (`causal=True`): a non-causal network's output "
            "at frame t depends on later frames."
        )

    if input_tensor is None:
        inputs = keras.Input(shape=shape, name=naming.INPUTS)
    else:
        inputs = input_tensor
    g = _Graph(fold_batch_norm, causal=spec.causal)
    x = network(inputs, spec, g, include_top=include_top, pooling=pooling, classes=classes,
                classifier_activation=classifier_activation, dropout_rate=dropout_rate,
                include_preprocessing=include_preprocessing, frame_outputs=frame_outputs)

    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    options = {
        "include_top": bool(include_top),
        "classes": int(classes) if include_top else None,
        "pooling": None if include_top else pooling,
        "classifier_activation": classifier_activation if include_top else None,
        "dropout_rate": float(dropout_rate),
        "include_preprocessing": bool(include_preprocessing),
        "fold_batch_norm": bool(fold_batch_norm),
    }
    if frame_outputs:
        options["frame_outputs"] = True
    model = VideoModel(inputs, x, name=name or spec.name, arch_spec=spec, build_options=options)
    model.folded_batch_norms = dict(g.folded)
    model.folded_batch_norm_parts = dict(g.fold_parts)
    return model
