"""The weight-sharing supernet of a `SearchSpace`.

One network holds every candidate at once:

* each stage is built at its widest candidate and each block at its largest expansion; a
  sampled width or expansion is a channel mask ("fair channel selection": a random subset of
  8-channel groups of the chosen size for widths, a random subset of inner channels for
  expansions, drawn anew each step from the step's stateless seed), so the 1x1x1 convolutions
  are shared by all block types;
* each block type has its own depthwise weights (and BatchNorm), and a graph-mode switch
  (``tf.switch_case``) on the sampled type index runs only the chosen one; ``skip`` is a
  ``tf.cond`` around the whole residual branch, so a skipped block computes nothing. An
  architecture is a tensor input: no retracing per architecture. Squeeze-excitation is
  computed on the pooled vector and blended in (``scale = 1`` when off): it costs two tiny
  matmuls and saves a conditional's gradient function.

BatchNorm in the supernet always normalises with the statistics of the current batch, split
into groups of ``bn_group_size`` clips ("ghost" batches). Moving statistics would mix
architectures and are never used; fixed-size groups make a step on N replicas compute exactly
what one replica computes on the same global batch, without cross-replica communication
inside the conditionals (which tf.distribute does not allow).

Implementation note: the supernet is TensorFlow-only and written with raw ``tf`` ops on 4-D
``(batch * frames, height, width, channels)`` activations, which keeps the graph small (the
trace and Grappler time of the search step grow with the op count, and every block carries
all candidate branches). The function of a sampled architecture equals the `build_model`
network of its `ArchSpec` (BatchNorm in training mode, no dropout) with the selected channels'
weights; ``tests/test_search_supernet.py`` checks this.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch.spec import BLOCK_KERNELS, SE_RATIO, round_width
from autox3d_tf.models.builder import BN_EPSILON, CONV_INIT, DEPTHWISE_INIT, HEAD_INIT
from autox3d_tf.models.builder import fresh_initializer as _fresh
from autox3d_tf.search.space import SearchSpace

GROUP = 8  # channels per group in fair width selection


def _slug(block_type: str) -> str:
    """A block type as a weight-name fragment ("2+1d" -> "2p1d")."""
    return block_type.replace("+", "p")


def _ghost_norm(x, gamma, beta, rows_per_group: int, epsilon: float):
    """BatchNorm over consecutive groups of ``rows_per_group`` rows of ``x`` (fused when one group)."""
    rows = x.shape[0]
    if rows is not None and rows == rows_per_group:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon, is_training=True)
        return y
    c = x.shape[-1]
    h = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
    w = x.shape[2] if x.shape[2] is not None else tf.shape(x)[2]
    g = tf.reshape(x, [-1, rows_per_group * h * w, c])
    mean, var = tf.nn.moments(g, axes=[1], keepdims=True)
    y = (g - mean) * (tf.math.rsqrt(var + epsilon) * gamma) + beta
    return tf.reshape(y, tf.shape(x))


@keras.saving.register_keras_serializable(package="autox3d_tf")
class GhostBatchNorm(keras.layers.Layer):
    """BatchNorm over groups of ``group_size`` samples, with batch statistics in every mode.

    A standalone layer for any ``(batch, ..., channels)`` tensor (the supernet itself calls the
    same normalisation through `_ghost_norm` on its 4-D activations).
    """

    def __init__(self, group_size: int | None = None, epsilon: float = BN_EPSILON, zero_gamma: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size
        self.epsilon = epsilon
        self.zero_gamma = zero_gamma

    def build(self, input_shape):
        c = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="zeros" if self.zero_gamma else "ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")

    def call(self, x):
        rank = len(x.shape)
        if self.group_size:
            g = tf.reshape(x, [-1, self.group_size, *x.shape[1:]])
            axes = list(range(1, rank))
        else:
            g = x
            axes = list(range(rank - 1))
        mean, var = tf.nn.moments(g, axes=axes, keepdims=True)
        g = (g - mean) * tf.math.rsqrt(var + self.epsilon)
        return tf.reshape(g, tf.shape(x)) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon, "zero_gamma": self.zero_gamma}


def random_subset_mask(seed, size: int, count, groups: int = 1) -> tf.Tensor:
    """A float mask of ``size`` entries with ``count`` ones at random positions.

    With ``groups > 1`` whole groups of ``groups`` adjacent channels are kept or dropped
    (``size`` and ``count`` are multiples of ``groups``). ``seed`` is a stateless (2,) seed.
    """
    n = size // groups
    r = tf.random.stateless_uniform((n,), seed=seed)
    threshold = tf.gather(tf.sort(r), tf.maximum(count // groups - 1, 0))
    keep = tf.cast(r <= threshold, tf.float32) * tf.cast(count > 0, tf.float32)
    return tf.repeat(keep, groups) if groups > 1 else keep


class _Net(keras.layers.Layer):
    """Shared helpers: weight creation and the raw ops on 4-D activations."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._no_decay_ids: set[int] = set()

    def _pointwise_weight(self, name: str, cin: int, cout: int):
        return self.add_weight(name=name, shape=(1, 1, cin, cout), initializer=_fresh(CONV_INIT))

    def _bn_weights(self, name: str, c: int, zero_gamma: bool = False):
        gamma = self.add_weight(name=f"{name}_gamma", shape=(c,), initializer="zeros" if zero_gamma else "ones")
        beta = self.add_weight(name=f"{name}_beta", shape=(c,), initializer="zeros")
        self._no_decay_ids.update((id(gamma), id(beta)))
        return gamma, beta

    def _bias_weight(self, name: str, size: int):
        bias = self.add_weight(name=name, shape=(size,), initializer="zeros")
        self._no_decay_ids.add(id(bias))
        return bias

    def no_weight_decay_weights(self) -> list:
        """This layer's own BatchNorm parameters and biases: raw variables, which
        ``autox3d_tf.training.recipe.weight_decay_exclusions`` finds through this method."""
        return [v for v in self.trainable_weights if id(v) in self._no_decay_ids]


def _along_frames(x, frames: int, kernel, kt: int) -> tf.Tensor:
    """A depthwise convolution of 4-D ``x`` ``(clips * frames, H, W, C)`` along the frame axis of
    each clip with ``kernel`` ``(kt, 1, C, 1)``, zero-padded in time (``kt // 2`` frames before).

    The clips are viewed as ``(clips, frames, H * W, C)`` (a free reshape), so the frame axis is a
    spatial axis of one depthwise 2D convolution: no pad, slice or row gather."""
    dyn = tf.shape(x)
    h, w, c = (d if d is not None else dyn[i + 1] for i, d in enumerate(x.shape[1:]))
    p = kt // 2
    y = tf.nn.depthwise_conv2d(
        tf.reshape(x, [-1, frames, h * w, c]), kernel, [1, 1, 1, 1], [[0, 0], [p, kt - 1 - p], [0, 0], [0, 0]]
    )
    return tf.reshape(y, [-1, h, w, c])


def _temporal_taps(x, frames: int, kt: int, conv) -> tf.Tensor:
    """``sum_i conv_i(x[t + i - kt // 2])`` over the frames of each clip, zero-padded in time.

    ``x`` is ``(clips * frames, H, W, C)``; ``conv(frames, i)`` maps all frames for tap ``i``,
    and each tap but the middle one is moved to its frames by `_along_frames` with a one-hot
    kernel (as `DepthwiseConv3D`'s "shift_conv"; a training step is about 2x faster than with
    padded, sliced and gathered frames).
    """
    terms = []
    for i in range(kt):
        y = conv(x, i)
        if i != kt // 2:
            one_hot = np.zeros((kt, 1, y.shape[-1], 1), y.dtype.as_numpy_dtype)
            one_hot[i] = 1.0
            y = _along_frames(y, frames, tf.constant(one_hot), kt)
        terms.append(y)
    return tf.add_n(terms)


class SearchableBlock(_Net):
    """A residual block whose type, expansion, attention and widths are chosen per call."""

    def __init__(
        self,
        in_width: int,
        width: int,
        stride: int,
        block_types: tuple[str, ...],
        max_expansion: float,
        attentions: tuple[str, ...],
        allow_skip: bool,
        bn_group_size: int | None,
        frames: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_width, self.width, self.stride = in_width, width, stride
        self.block_types = tuple(block_types)
        self.allow_skip = allow_skip
        self.frames = frames
        self.bn_group_size = bn_group_size
        self.inner = int(max_expansion * width)
        self.se_width = round_width(self.inner, SE_RATIO)
        self.has_se = "se" in attentions
        self.se_index = attentions.index("se") if self.has_se else -1
        self.has_shortcut = in_width != width or stride > 1

    def build(self, input_shape=None):
        inner = self.inner
        self.conv_a = self._pointwise_weight("conv_a_kernel", self.in_width, inner)
        self.bn_a = self._bn_weights("bn_a", inner)
        self.branch_kernels = []
        self.branch_bns = []
        for t in self.block_types:
            kernels = [
                self.add_weight(name=f"conv_b_{_slug(t)}_{i}_kernel", shape=(*k, inner, 1), initializer=_fresh(DEPTHWISE_INIT))
                for i, k in enumerate(BLOCK_KERNELS[t])
            ]
            self.branch_kernels.append(kernels)
            self.branch_bns.append(self._bn_weights(f"bn_b_{_slug(t)}", inner))
        if self.has_se:
            self.se_reduce_kernel = self.add_weight(name="se_reduce_kernel", shape=(inner, self.se_width), initializer=_fresh(CONV_INIT))
            self.se_reduce_bias = self._bias_weight("se_reduce_bias", self.se_width)
            self.se_expand_kernel = self.add_weight(name="se_expand_kernel", shape=(self.se_width, inner), initializer=_fresh(CONV_INIT))
            self.se_expand_bias = self._bias_weight("se_expand_bias", inner)
        self.conv_c = self._pointwise_weight("conv_c_kernel", inner, self.width)
        self.bn_c = self._bn_weights("bn_c", self.width, zero_gamma=True)
        if self.has_shortcut:
            self.shortcut_conv = self._pointwise_weight("shortcut_conv_kernel", self.in_width, self.width)
            self.shortcut_bn = self._bn_weights("shortcut_bn", self.width)
        self.built = True

    # ------------------------------------------------------------------ compute
    def _bn(self, x, weights):
        rows = None if self.bn_group_size is None else self.bn_group_size * self.frames
        if rows is None:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, weights[0], weights[1], epsilon=BN_EPSILON, is_training=True)
            return y
        return _ghost_norm(x, weights[0], weights[1], rows, BN_EPSILON)

    def _depthwise(self, y, kernel, shape, first: bool):
        """One depthwise convolution of the kernel ``shape`` (kt, kh, kw) on 4-D ``y``."""
        kt, kh, kw = shape
        s = self.stride if first else 1
        pad = [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]]
        if kt == 1:
            return tf.nn.depthwise_conv2d(y, kernel[0], [1, s, s, 1], pad)
        if kh == kw == 1 and s == 1:
            return _along_frames(y, self.frames, kernel[:, 0], kt)
        taps = tf.unstack(kernel, axis=0)
        return _temporal_taps(y, self.frames, kt, lambda tap, i: tf.nn.depthwise_conv2d(tap, taps[i], [1, s, s, 1], pad))

    def _branch(self, index: int):
        kernels = self.branch_kernels[index]
        shapes = BLOCK_KERNELS[self.block_types[index]]
        bn = self.branch_bns[index]

        def run(y):
            for i, (kernel, shape) in enumerate(zip(kernels, shapes)):
                y = self._depthwise(y, kernel, shape, i == 0)
            return self._bn(y, bn)

        return run

    def _residual(self, x, type_index, use_se, masks):
        out_mask, inner_mask, se_mask, same_width = masks
        s = self.stride
        y = tf.nn.conv2d(x, self.conv_a, 1, "VALID")
        y = tf.nn.relu(self._bn(y, self.bn_a)) * inner_mask
        if len(self.block_types) == 1:
            y = self._branch(0)(y)
        else:
            branches = [self._branch(i) for i in range(len(self.block_types))]
            y = tf.switch_case(tf.minimum(type_index, len(branches) - 1), [lambda f=f: f(y) for f in branches])
        y = y * inner_mask
        if self.has_se:
            shape = tf.shape(y)
            clips = tf.reshape(y, [-1, self.frames * shape[1], shape[2], self.inner])
            pooled = tf.reduce_mean(clips, axis=[1, 2])
            h = tf.nn.relu(tf.matmul(pooled, self.se_reduce_kernel) + self.se_reduce_bias) * se_mask
            gate = tf.sigmoid(tf.matmul(h, self.se_expand_kernel) + self.se_expand_bias)
            gate = tf.where(use_se, gate, tf.ones_like(gate))
            y = tf.reshape(clips * gate[:, None, None, :], shape)
        y = tf.nn.silu(y)
        y = self._bn(tf.nn.conv2d(y, self.conv_c, 1, "VALID"), self.bn_c) * out_mask
        shortcut = x
        if self.has_shortcut:
            shortcut = tf.nn.conv2d(x, self.shortcut_conv, [1, s, s, 1], "VALID")
            # The built network normalises the shortcut only when the width changes.
            shortcut = tf.where(same_width, shortcut, self._bn(shortcut, self.shortcut_bn)) * out_mask
        return tf.nn.relu(shortcut + y)

    def call(self, x, choice, masks):
        """``choice`` = (type, expansion, attention) indices; ``masks`` from `SuperNet`."""
        type_index, use_se = choice[0], tf.equal(choice[2], self.se_index)
        if not self.allow_skip:
            return self._residual(x, type_index, use_se, masks)
        skip = tf.equal(type_index, len(self.block_types))
        return tf.cond(skip, lambda: tf.identity(x), lambda: self._residual(x, type_index, use_se, masks))


class SuperNet(_Net):
    """Every architecture of ``space`` in one set of weights; ``call(clips, choices, seed)``.

    Args:
        space: the `SearchSpace` (its ``input_frames`` is the clip length the supernet runs on).
        bn_group_size: clips per BatchNorm statistics group (``None``: the whole batch).
    """

    def __init__(self, space: SearchSpace, bn_group_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        self.bn_group_size = bn_group_size
        self.frames = space.input_frames
        self.blocks: list[tuple[int, int, SearchableBlock]] = []
        in_width = space.stem_width
        max_exp = max(space.expansions)
        for s, depth in enumerate(space.max_depths):
            width = max(space.stage_widths[s])
            for b in range(depth):
                block = SearchableBlock(
                    in_width if b == 0 else width,
                    width,
                    2 if b == 0 else 1,
                    space.block_types,
                    max_exp,
                    space.attentions,
                    allow_skip=space.allow_skip and b > 0,
                    bn_group_size=bn_group_size,
                    frames=self.frames,
                    name=f"stage{s + 1}_block{b}",
                )
                self.blocks.append((s, b, block))
            in_width = width
        self.last_width = in_width
        for s, widths in enumerate(space.stage_widths):
            if any(w % GROUP for w in widths):
                raise ValueError(f"stage {s + 1} widths {widths} must be multiples of {GROUP}.")

        # Lookup tables: active inner / SE widths per (width candidate, expansion candidate).
        self._inner_counts = []
        self._se_counts = []
        for s in range(space.num_stages):
            widths = space.stage_widths[s]
            inner = np.array([[int(e * w) for e in space.expansions] for w in widths], np.int32)
            self._inner_counts.append(inner)
            self._se_counts.append(np.vectorize(lambda n: round_width(n, SE_RATIO))(inner).astype(np.int32))

    def build(self, input_shape=None):
        space = self.space
        self.stem_conv = self.add_weight(name="stem_conv_spatial_kernel", shape=(3, 3, 3, space.stem_width), initializer=_fresh(CONV_INIT))
        k = space.stem_temporal_kernel
        self.stem_temporal = self.add_weight(
            name="stem_conv_temporal_kernel", shape=(k, 1, 1, space.stem_width, 1), initializer=_fresh(DEPTHWISE_INIT)
        )
        self.stem_bn = self._bn_weights("stem_bn", space.stem_width)
        for _, _, block in self.blocks:
            block.build()
        self.head_conv = self._pointwise_weight("head_conv_kernel", self.last_width, space.head_width)
        self.head_bn = self._bn_weights("head_bn", space.head_width)
        features = space.head_width
        if space.head_hidden:
            self.head_dense = self.add_weight(
                name="head_dense_kernel", shape=(space.head_width, space.head_hidden), initializer=_fresh(CONV_INIT)
            )
            features = space.head_hidden
        self.classifier_kernel = self.add_weight(name="predictions_kernel", shape=(features, space.classes), initializer=_fresh(HEAD_INIT))
        self.classifier_bias = self._bias_weight("predictions_bias", space.classes)
        self.built = True

    # ------------------------------------------------------------------ masks
    def masks(self, choices, seed) -> dict:
        """The channel masks and width flags of one call (see `call`), keyed by block name.

        Returns ``{"stage_masks": [per stage (width,)], block name: (out_mask, inner_mask,
        se_mask, same_width)}``. All masks come from one stateless draw keyed by ``seed``.
        """
        space = self.space
        choices = tf.cast(choices, tf.int32)
        rows, sizes, counts = [], [], []
        for s in range(space.num_stages):
            widths = np.asarray(space.stage_widths[s], np.int32)
            sizes.append(int(widths.max()) // GROUP)
            counts.append(tf.gather(widths // GROUP, choices[s]))
        for s, b, block in self.blocks:
            e_index = choices[space.block_decision_index(s, b) + 1]
            sizes.append(block.inner)
            counts.append(tf.gather_nd(self._inner_counts[s], tf.stack([choices[s], e_index])[None])[0])
        n = max(sizes)
        r = tf.random.stateless_uniform((len(sizes), n), seed=seed)
        r = tf.where(tf.constant(np.arange(n)[None, :] < np.array(sizes)[:, None]), r, 2.0)
        counts = tf.stack(counts)
        threshold = tf.gather(tf.sort(r, axis=1), tf.maximum(counts - 1, 0), axis=1, batch_dims=1)
        keep = tf.cast(r <= threshold[:, None], tf.float32) * tf.cast(counts > 0, tf.float32)[:, None]
        out = {"stage_masks": []}
        for s in range(space.num_stages):
            out["stage_masks"].append(tf.repeat(keep[s, : sizes[s]], GROUP))
        for j, (s, b, block) in enumerate(self.blocks):
            i = space.block_decision_index(s, b)
            se_count = tf.gather_nd(self._se_counts[s], tf.stack([choices[s], choices[i + 1]])[None])[0]
            se_mask = tf.cast(tf.range(block.se_width) < se_count, tf.float32)
            inner_mask = keep[space.num_stages + j, : block.inner]
            if b == 0:
                in_w = tf.constant(space.stem_width) if s == 0 else tf.gather(space.stage_widths[s - 1], choices[s - 1])
                same = tf.equal(in_w, tf.gather(space.stage_widths[s], choices[s]))
            else:
                same = tf.constant(True)
            out[block.name] = (out["stage_masks"][s], inner_mask, se_mask, same)
        return out

    # ------------------------------------------------------------------ forward
    def call(self, clips, choices, seed):
        """Logits of the architecture ``choices`` (int vector in the space's decision order).

        ``clips`` is ``(batch, frames, H, W, 3)`` with ``frames = space.input_frames``;
        ``seed`` (a stateless (2,) int seed) draws the channel subsets of this call.
        """
        space = self.space
        choices = tf.cast(choices, tf.int32)
        shape = clips.shape
        if shape[1] is not None and shape[1] != self.frames:
            raise ValueError(f"the supernet runs on {self.frames}-frame clips, got {shape[1]}.")
        dyn = tf.shape(clips)
        x = tf.reshape(clips, [-1, dyn[2], dyn[3], dyn[4]])
        x = tf.nn.conv2d(x, self.stem_conv, [1, 2, 2, 1], [[0, 0], [1, 1], [1, 1], [0, 0]])
        k = space.stem_temporal_kernel
        if k > 1:
            x = _along_frames(x, self.frames, self.stem_temporal[:, 0], k)
        else:
            x = x * self.stem_temporal[0, 0, 0, :, 0]
        x = tf.nn.relu(self._norm(x, self.stem_bn))
        masks = self.masks(choices, seed)
        for s, b, block in self.blocks:
            i = space.block_decision_index(s, b)
            x = block.call(x, choices[i : i + 3], masks[block.name])
        x = tf.nn.relu(self._norm(tf.nn.conv2d(x, self.head_conv, 1, "VALID"), self.head_bn))
        xs = tf.shape(x)
        x = tf.reduce_mean(tf.reshape(x, [-1, self.frames * xs[1] * xs[2], space.head_width]), axis=1)
        if space.head_hidden:
            x = tf.nn.relu(tf.matmul(x, self.head_dense))
        return tf.matmul(x, self.classifier_kernel) + self.classifier_bias

    def _norm(self, x, weights):
        if self.bn_group_size is None:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, weights[0], weights[1], epsilon=BN_EPSILON, is_training=True)
            return y
        return _ghost_norm(x, weights[0], weights[1], self.bn_group_size * self.frames, BN_EPSILON)

    # ------------------------------------------------------------ sub-networks
    def subnet(self, choices, seed=(0, 0), name: str = "autox3d_subnet") -> keras.Model:
        """The plain `build_model` network of ``choices`` with the weights the supernet uses.

        The channels kept are those of the masks drawn from ``seed`` (as in ``call``), so
        ``subnet(c, seed)(clips, training=True)`` equals ``self(clips, c, seed)`` (BatchNorm with
        batch statistics over the whole batch, i.e. ``bn_group_size=None``). The model outputs
        logits and has no dropout; its BatchNorm moving statistics are the initial ones.
        """
        from autox3d_tf.models.builder import build_model

        space = self.space
        choices = np.asarray(choices, np.int32).reshape(-1)
        spec = space.decode(choices, name=name)
        model = build_model(
            spec,
            input_shape=(space.input_frames, space.input_size, space.input_size, 3),
            classes=space.classes,
            classifier_activation=None,
            dropout_rate=0.0,
        )
        masks = self.masks(tf.constant(choices), tf.constant(seed, tf.int64))
        idx = lambda m: np.flatnonzero(np.asarray(m) > 0)  # noqa: E731
        stage_idx = [idx(m) for m in masks["stage_masks"]]
        get = lambda v: np.asarray(keras.ops.convert_to_numpy(v))  # noqa: E731

        def put(layer_name: str, *values) -> None:
            model.get_layer(layer_name).set_weights(
                list(values) + [w.numpy() for w in model.get_layer(layer_name).weights[len(values):]]
            )

        put("stem_conv_spatial", get(self.stem_conv)[None])
        put("stem_conv_temporal", get(self.stem_temporal))
        put("stem_bn", get(self.stem_bn[0]), get(self.stem_bn[1]))
        in_idx = np.arange(space.stem_width)
        for s, b, block in self.blocks:
            i = space.block_decision_index(s, b)
            t = block.block_types[choices[i]] if choices[i] < len(block.block_types) else "skip"
            if t == "skip":
                continue
            _, inner_m, se_m, same = masks[block.name]
            inner, out_idx = idx(inner_m), stage_idx[s]
            p = f"stage{s + 1}_block{b}"
            put(f"{p}_conv_a", get(block.conv_a)[0, 0][np.ix_(in_idx, inner)])
            put(f"{p}_bn_a", get(block.bn_a[0])[inner], get(block.bn_a[1])[inner])
            ti = block.block_types.index(t)
            kernels = block.branch_kernels[ti]
            for k, kernel in enumerate(kernels):
                suffix = "" if len(kernels) == 1 else f"_{k}"
                put(f"{p}_conv_b{suffix}", get(kernel)[..., inner, :])
            put(f"{p}_bn_b", get(block.branch_bns[ti][0])[inner], get(block.branch_bns[ti][1])[inner])
            if space.attentions[choices[i + 2]] == "se":
                se = int(np.asarray(se_m).sum())
                put(f"{p}_se_reduce", get(block.se_reduce_kernel)[inner, :se], get(block.se_reduce_bias)[:se])
                put(f"{p}_se_expand", get(block.se_expand_kernel)[:se][:, inner], get(block.se_expand_bias)[inner])
            put(f"{p}_conv_c", get(block.conv_c)[0, 0][np.ix_(inner, out_idx)])
            put(f"{p}_bn_c", get(block.bn_c[0])[out_idx], get(block.bn_c[1])[out_idx])
            if block.has_shortcut:
                put(f"{p}_shortcut_conv", get(block.shortcut_conv)[0, 0][np.ix_(in_idx, out_idx)])
                if not bool(same):
                    put(f"{p}_shortcut_bn", get(block.shortcut_bn[0])[out_idx], get(block.shortcut_bn[1])[out_idx])
            in_idx = out_idx
        put("head_conv", get(self.head_conv)[0, 0][in_idx])
        put("head_bn", get(self.head_bn[0]), get(self.head_bn[1]))
        if space.head_hidden:
            put("head_dense", get(self.head_dense))
        put("predictions", get(self.classifier_kernel), get(self.classifier_bias))
        return model
