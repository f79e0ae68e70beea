"""The weight-sharing supernet of a `SearchSpace` (TensorFlow only).

TensorFlow-only: the supernet is written with raw ``tf`` ops (``tf.switch_case``, ``tf.cond``,
fused BatchNorm) and runs on the TensorFlow backend only, as the search trainer that drives it;
the layers and the built models (`autox3d_tf.layers`, `autox3d_tf.models`) run on every Keras
backend.

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

The activations are 4-D ``(batch * frames, height, width, channels)``, which keeps the graph
small (the trace and Grappler time of the search step grow with the op count, and every block
carries all candidate branches). The temporal taps of the depthwise convolutions are summed by
`autox3d_tf.layers.temporal`, as in `DepthwiseConv3D`. The blocks and weights are named by
`autox3d_tf.arch.naming`, as the built network's layers. The function of a sampled architecture
equals the `build_model` network of its `ArchSpec` (BatchNorm in training mode, no dropout) with
the selected channels' weights (`SuperNet.subnet`, ``autox3d_tf.search.subnet``);
``tests/test_search_supernet.py`` checks this.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from autox3d_tf.arch import naming
from autox3d_tf.arch.spec import BLOCK_KERNELS, SE_RATIO, SpecError, is_plain_series, pseudo3d, round_width
from autox3d_tf.layers.temporal import conv_along_frames, sum_temporal_taps
from autox3d_tf.models.builder import BN_EPSILON, CONV_INIT, DEPTHWISE_INIT, HEAD_INIT
from autox3d_tf.models.builder import fresh_initializer as _fresh
from autox3d_tf.search.space import SearchSpace
from autox3d_tf.search.subnet import extract_subnet

GROUP = 8  # channels per group in fair width selection


def _slug(block_type: str) -> str:
    """A block type as a weight-name fragment ("2+1d" -> "2p1d")."""
    return block_type.replace("+", "p")


def _spatial_dims(x) -> tuple:
    """``(H, W, C)`` of 4-D ``x``, static where known."""
    dyn = tf.shape(x)
    return tuple(d if d is not None else dyn[i + 1] for i, d in enumerate(x.shape[1:]))


def _ghost_norm(x, gamma, beta, rows_per_group: int, epsilon: float):
    """BatchNorm over consecutive groups of ``rows_per_group`` rows of ``x`` (fused when one group)."""
    rows = x.shape[0]
    if rows is not None and rows == rows_per_group:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon, is_training=True)
        return y
    h, w, c = _spatial_dims(x)
    g = tf.reshape(x, [-1, rows_per_group * h * w, c])
    mean, var = tf.nn.moments(g, axes=[1], keepdims=True)
    y = (g - mean) * (tf.math.rsqrt(var + epsilon) * gamma) + beta
    return tf.reshape(y, tf.shape(x))


class _Net(keras.layers.Layer):
    """Shared helpers: weight creation and BatchNorm on 4-D ``(clips * frames, H, W, C)`` activations.

    Args:
        bn_group_size: clips per BatchNorm statistics group (``None``: the whole batch).
        frames: frames per clip.
    """

    def __init__(self, bn_group_size: int | None, frames: int, **kwargs):
        super().__init__(**kwargs)
        self.bn_group_size = bn_group_size
        self.frames = frames
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

    def _norm(self, x, weights):
        """BatchNorm with batch statistics, per group of ``bn_group_size`` clips (see the module docstring)."""
        if self.bn_group_size is None:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, weights[0], weights[1], epsilon=BN_EPSILON, is_training=True)
            return y
        return _ghost_norm(x, weights[0], weights[1], self.bn_group_size * self.frames, BN_EPSILON)


def _frame_pads(kt: int) -> tuple[int, int]:
    """Zero frames (before, after) of a ``kt``-tap temporal convolution: ``kt // 2`` before."""
    return kt // 2, kt - 1 - kt // 2


def _along_frames(x, frames: int, kernel) -> tf.Tensor:
    """A depthwise convolution of 4-D ``x`` ``(clips * frames, H, W, C)`` along the frame axis of
    each clip with ``kernel`` ``(kt, 1, C, 1)``, zero-padded in time (`_frame_pads`), by
    `autox3d_tf.layers.temporal.conv_along_frames` on the ``(clips, frames, H * W, C)`` view."""
    h, w, c = _spatial_dims(x)
    y, _ = conv_along_frames(tf.reshape(x, [-1, frames, h * w, c]), kernel, _frame_pads(kernel.shape[0]))
    return tf.reshape(y, [-1, h, w, c])


def _temporal_taps(x, frames: int, kt: int, conv) -> tf.Tensor:
    """``sum_i conv(x, i)[t + i - kt // 2]`` over the frames of each clip, zero-padded in time.

    ``x`` is ``(clips * frames, H, W, C)``; ``conv(x, i)`` maps all frames for tap ``i``. The sum
    is `autox3d_tf.layers.temporal.sum_temporal_taps`, as `DepthwiseConv3D`'s "shift_conv".
    """
    y, (h, w) = sum_temporal_taps(lambda i: conv(x, i), kt, frames, _frame_pads(kt))
    return tf.reshape(y, [-1, h, w, y.shape[-1]])


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
        super().__init__(bn_group_size, frames, **kwargs)
        self.in_width, self.width, self.stride = in_width, width, stride
        self.block_types = tuple(block_types)
        for t in self.block_types:
            if not is_plain_series(t):
                op = pseudo3d(t)
                raise SpecError(
                    f"block type {t!r} ({op.topology}, temporal dilation {op.temporal_dilation}) is not supported "
                    "by the probabilistic supernet, which chains a type's kernels undilated; use the types "
                    f"{[b for b in BLOCK_KERNELS if is_plain_series(b)]}."
                )
        self.allow_skip = allow_skip
        self.inner = int(max_expansion * width)
        self.se_width = round_width(self.inner, SE_RATIO)
        self.has_se = "se" in attentions
        self.se_index = attentions.index("se") if self.has_se else -1
        self.has_shortcut = in_width != width or stride > 1

    def build(self, input_shape=None):
        inner = self.inner
        self.conv_a = self._pointwise_weight(f"{naming.CONV_A}_kernel", self.in_width, inner)
        self.bn_a = self._bn_weights(naming.BN_A, inner)
        self.branch_kernels = []
        self.branch_bns = []
        for t in self.block_types:
            kernels = [
                self.add_weight(name=f"{naming.CONV_B}_{_slug(t)}_{i}_kernel", shape=(*k, inner, 1), initializer=_fresh(DEPTHWISE_INIT))
                for i, k in enumerate(BLOCK_KERNELS[t])
            ]
            self.branch_kernels.append(kernels)
            self.branch_bns.append(self._bn_weights(f"{naming.BN_B}_{_slug(t)}", inner))
        if self.has_se:
            self.se_reduce_kernel = self.add_weight(name=f"{naming.SE_REDUCE}_kernel", shape=(inner, self.se_width), initializer=_fresh(CONV_INIT))
            self.se_reduce_bias = self._bias_weight(f"{naming.SE_REDUCE}_bias", self.se_width)
            self.se_expand_kernel = self.add_weight(name=f"{naming.SE_EXPAND}_kernel", shape=(self.se_width, inner), initializer=_fresh(CONV_INIT))
            self.se_expand_bias = self._bias_weight(f"{naming.SE_EXPAND}_bias", inner)
        self.conv_c = self._pointwise_weight(f"{naming.CONV_C}_kernel", inner, self.width)
        self.bn_c = self._bn_weights(naming.BN_C, self.width, zero_gamma=True)
        if self.has_shortcut:
            self.shortcut_conv = self._pointwise_weight(f"{naming.SHORTCUT_CONV}_kernel", self.in_width, self.width)
            self.shortcut_bn = self._bn_weights(naming.SHORTCUT_BN, self.width)
        self.built = True

    # ------------------------------------------------------------------ compute
    def _depthwise(self, y, kernel, shape, first: bool):
        """One depthwise convolution of the kernel ``shape`` (kt, kh, kw) on 4-D ``y``."""
        kt, kh, kw = shape
        s = self.stride if first else 1
        pad = [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]]
        if kt == 1:
            return tf.nn.depthwise_conv2d(y, kernel[0], [1, s, s, 1], pad)
        if kh == kw == 1 and s == 1:
            return _along_frames(y, self.frames, kernel[:, 0])
        taps = tf.unstack(kernel, axis=0)
        return _temporal_taps(y, self.frames, kt, lambda tap, i: tf.nn.depthwise_conv2d(tap, taps[i], [1, s, s, 1], pad))

    def _branch(self, index: int):
        kernels = self.branch_kernels[index]
        shapes = BLOCK_KERNELS[self.block_types[index]]
        bn = self.branch_bns[index]

        def run(y):
            for i, (kernel, shape) in enumerate(zip(kernels, shapes)):
                y = self._depthwise(y, kernel, shape, i == 0)
            return self._norm(y, bn)

        return run

    def _residual(self, x, type_index, use_se, masks):
        out_mask, inner_mask, se_mask, same_width = masks
        s = self.stride
        y = tf.nn.conv2d(x, self.conv_a, 1, "VALID")
        y = tf.nn.relu(self._norm(y, self.bn_a)) * inner_mask
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
        y = self._norm(tf.nn.conv2d(y, self.conv_c, 1, "VALID"), self.bn_c) * out_mask
        shortcut = x
        if self.has_shortcut:
            shortcut = tf.nn.conv2d(x, self.shortcut_conv, [1, s, s, 1], "VALID")
            # The built network normalises the shortcut only when the width changes.
            shortcut = tf.where(same_width, shortcut, self._norm(shortcut, self.shortcut_bn)) * out_mask
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
        super().__init__(bn_group_size, space.input_frames, **kwargs)
        self.space = space
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
                    name=naming.block_prefix(s + 1, b),
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
        self.stem_conv = self.add_weight(name=f"{naming.STEM_CONV_SPATIAL}_kernel", shape=(3, 3, 3, space.stem_width), initializer=_fresh(CONV_INIT))
        k = space.stem_temporal_kernel
        self.stem_temporal = self.add_weight(
            name=f"{naming.STEM_CONV_TEMPORAL}_kernel", shape=(k, 1, 1, space.stem_width, 1), initializer=_fresh(DEPTHWISE_INIT)
        )
        self.stem_bn = self._bn_weights(naming.STEM_BN, space.stem_width)
        for _, _, block in self.blocks:
            block.build()
        self.head_conv = self._pointwise_weight(f"{naming.HEAD_CONV}_kernel", self.last_width, space.head_width)
        self.head_bn = self._bn_weights(naming.HEAD_BN, space.head_width)
        features = space.head_width
        if space.head_hidden:
            self.head_dense = self.add_weight(
                name=f"{naming.HEAD_DENSE}_kernel", shape=(space.head_width, space.head_hidden), initializer=_fresh(CONV_INIT)
            )
            features = space.head_hidden
        self.classifier_kernel = self.add_weight(name=f"{naming.PREDICTIONS}_kernel", shape=(features, space.classes), initializer=_fresh(HEAD_INIT))
        self.classifier_bias = self._bias_weight(f"{naming.PREDICTIONS}_bias", space.classes)
        self.built = True

    # ------------------------------------------------------------------ masks
    def masks(self, choices, seed) -> dict:
        """The channel masks and width flags of one call (see `call`), keyed by block name.

        Returns ``{"stage_masks": [per stage (width,)], block name: (out_mask, inner_mask,
        se_mask, same_width)}``. All masks come from one stateless draw keyed by ``seed``.
        """
        space = self.space
        choices = tf.cast(choices, tf.int32)
        sizes, counts = [], []
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
            x = _along_frames(x, self.frames, self.stem_temporal[:, 0])
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

    # ------------------------------------------------------------ sub-networks
    def subnet(self, choices, seed=(0, 0), name: str = "autox3d_subnet") -> keras.Model:
        """The plain `build_model` network of ``choices`` with the weights the supernet uses
        (`autox3d_tf.search.subnet.extract_subnet`).

        The channels kept are those of the masks drawn from ``seed`` (as in ``call``), so
        ``subnet(c, seed)(clips, training=True)`` equals ``self(clips, c, seed)`` (BatchNorm with
        batch statistics over the whole batch, i.e. ``bn_group_size=None``). The model outputs
        logits and has no dropout; its BatchNorm moving statistics are the initial ones.
        """
        return extract_subnet(self, choices, seed=seed, name=name)
