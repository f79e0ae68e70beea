"""The weight-sharing supernet of a `SearchSpace`.

One network holds every candidate at once:

* each stage is built at its widest candidate and each block at its largest expansion; a
  sampled width or expansion is a channel mask ("fair channel selection": a random subset of
  8-channel groups of the chosen size for widths, a random subset of inner channels for
  expansions, drawn anew each step), so the 1x1x1 convolutions are shared by all block types;
* each block type has its own depthwise weights (and BatchNorm), and a graph-mode switch on the
  sampled type index runs only the chosen one; ``skip`` and ``SE`` are conditionals too, so an
  architecture is a tensor input: no retracing per architecture.

BatchNorm in the supernet always normalises with the statistics of the current batch, split
into groups of ``bn_group_size`` clips ("ghost" batches). Moving statistics would mix
architectures and are never used; fixed-size groups make a step on N replicas compute exactly
what one replica computes on the same global batch, without cross-replica communication
inside the conditionals (which tf.distribute does not allow).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from autox3d_tf.arch.spec import BLOCK_KERNELS, SE_RATIO, round_width
from autox3d_tf.layers import DepthwiseConv3D, PointwiseConv3D
from autox3d_tf.models.builder import CONV_INIT, DEPTHWISE_INIT, HEAD_INIT
from autox3d_tf.search.space import SearchSpace

GROUP = 8  # channels per group in fair width selection


@keras.saving.register_keras_serializable(package="autox3d_tf")
class GhostBatchNorm(keras.layers.Layer):
    """BatchNorm over groups of ``group_size`` samples, with batch statistics in every mode."""

    def __init__(self, group_size: int | None = None, epsilon: float = 1e-5, zero_gamma: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size
        self.epsilon = epsilon
        self.zero_gamma = zero_gamma

    def build(self, input_shape):
        c = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="zeros" if self.zero_gamma else "ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")

    def call(self, x):
        shape = ops.shape(x)
        if self.group_size:
            g = ops.reshape(x, (-1, self.group_size, *x.shape[1:]))
            axes = tuple(range(1, len(x.shape)))
        else:
            g = x
            axes = tuple(range(len(x.shape) - 1))
        mean, var = ops.moments(g, axes=axes, keepdims=True)
        g = (g - mean) * ops.rsqrt(var + self.epsilon)
        return ops.reshape(g, shape) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon, "zero_gamma": self.zero_gamma}


def _slug(block_type: str) -> str:
    """A block type as a layer-name fragment ("2+1d" -> "2p1d")."""
    return block_type.replace("+", "p")


def random_subset_mask(seed, size: int, count, groups: int = 1):
    """A float mask of ``size`` entries with ``count`` ones at random positions.

    With ``groups > 1`` whole groups of ``groups`` adjacent channels are kept or dropped
    (``size`` and ``count`` are multiples of ``groups``). ``seed`` is a stateless (2,) seed.
    """
    import tensorflow as tf

    n = size // groups
    r = tf.random.stateless_uniform((n,), seed=seed)
    rank = tf.argsort(tf.argsort(r))
    keep = tf.cast(rank < count // groups, "float32")
    return tf.repeat(keep, groups) if groups > 1 else keep


class SearchableBlock(keras.layers.Layer):
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_width, self.width, self.stride = in_width, width, stride
        self.block_types = block_types
        self.allow_skip = allow_skip
        self.inner = int(max_expansion * width)
        self.se_width = round_width(self.inner, SE_RATIO)
        self.has_se = "se" in attentions
        self.se_index = attentions.index("se") if self.has_se else -1
        bn = lambda name, zero=False: GhostBatchNorm(bn_group_size, zero_gamma=zero, name=name)  # noqa: E731
        self.conv_a = PointwiseConv3D(self.inner, kernel_initializer=CONV_INIT, name="conv_a")
        self.bn_a = bn("bn_a")
        self.branches = []
        for t in block_types:
            kernels = BLOCK_KERNELS[t]
            convs = [
                DepthwiseConv3D(
                    k,
                    strides=(1, stride, stride) if i == 0 else 1,
                    padding=tuple(v // 2 for v in k),
                    kernel_initializer=DEPTHWISE_INIT,
                    name=f"conv_b_{_slug(t)}_{i}",
                )
                for i, k in enumerate(kernels)
            ]
            self.branches.append((convs, bn(f"bn_b_{_slug(t)}")))
        if self.has_se:
            self.se_reduce = layers.Dense(self.se_width, kernel_initializer=CONV_INIT, name="se_reduce")
            self.se_expand = layers.Dense(self.inner, kernel_initializer=CONV_INIT, name="se_expand")
        self.conv_c = PointwiseConv3D(width, kernel_initializer=CONV_INIT, name="conv_c")
        self.bn_c = bn("bn_c", zero=True)
        self.has_shortcut = in_width != width or stride > 1
        if self.has_shortcut:
            self.shortcut_conv = PointwiseConv3D(
                width, strides=(1, stride, stride), kernel_initializer=CONV_INIT, name="shortcut_conv"
            )
            self.shortcut_bn = bn("shortcut_bn")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.conv_a.build(shape)
        inner_shape = (*shape[:-1], self.inner)
        self.bn_a.build(inner_shape)
        for convs, bn in self.branches:
            s = inner_shape
            for conv in convs:
                conv.build(s)
                s = conv.compute_output_shape(s)
            bn.build(s)
        out_inner = self.branches[0][0][-1].compute_output_shape(inner_shape)
        if self.has_se:
            self.se_reduce.build((None, self.inner))
            self.se_expand.build((None, self.se_width))
        self.conv_c.build(out_inner)
        out = (*out_inner[:-1], self.width)
        self.bn_c.build(out)
        if self.has_shortcut:
            self.shortcut_conv.build(shape)
            self.shortcut_bn.build(out)

    def _branch(self, index: int):
        convs, bn = self.branches[index]

        def run(y):
            for conv in convs:
                y = conv(y)
            return bn(y)

        return run

    def _residual(self, x, type_index, attention, out_mask, inner_mask, se_mask):
        y = ops.relu(self.bn_a(self.conv_a(x))) * inner_mask
        if len(self.branches) == 1:
            y = self._branch(0)(y)
        else:
            y = ops.switch(ops.minimum(type_index, len(self.branches) - 1), [self._branch(i) for i in range(len(self.branches))], y)
        y = y * inner_mask
        if self.has_se:

            def squeeze_excite(y):
                s = ops.mean(y, axis=(1, 2, 3))
                s = ops.relu(self.se_reduce(s)) * se_mask
                s = ops.sigmoid(self.se_expand(s))
                return y * s[:, None, None, None, :]

            y = ops.cond(ops.equal(attention, self.se_index), lambda: squeeze_excite(y), lambda: y)
        y = ops.silu(y)
        y = self.bn_c(self.conv_c(y)) * out_mask
        shortcut = x
        if self.has_shortcut:
            shortcut = self.shortcut_bn(self.shortcut_conv(x)) * out_mask
        return ops.relu(shortcut + y)

    def call(self, x, choice, out_mask, inner_mask, se_mask):
        """``choice`` = (type, expansion, attention) indices; masks select the active channels."""
        type_index, attention = choice[0], choice[2]
        if not self.allow_skip:
            return self._residual(x, type_index, attention, out_mask, inner_mask, se_mask)
        skip = ops.equal(type_index, len(self.block_types))
        return ops.cond(
            skip, lambda: x, lambda: self._residual(x, type_index, attention, out_mask, inner_mask, se_mask)
        )


class SuperNet(keras.layers.Layer):
    """Every architecture of ``space`` in one set of weights; ``call(clips, choices, seed)``."""

    def __init__(self, space: SearchSpace, bn_group_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        bn = lambda name, zero=False: GhostBatchNorm(bn_group_size, zero_gamma=zero, name=name)  # noqa: E731
        self.stem_pad = layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)))
        self.stem_conv = layers.Conv3D(
            space.stem_width, (1, 3, 3), strides=(1, 2, 2), use_bias=False, kernel_initializer=CONV_INIT, name="stem_conv_spatial"
        )
        k = space.stem_temporal_kernel
        self.stem_temporal = DepthwiseConv3D((k, 1, 1), padding=(k // 2, 0, 0), kernel_initializer=DEPTHWISE_INIT, name="stem_conv_temporal")
        self.stem_bn = bn("stem_bn")
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
                    name=f"stage{s + 1}_block{b}",
                )
                self.blocks.append((s, b, block))
            in_width = width
        self.head_conv = PointwiseConv3D(space.head_width, kernel_initializer=CONV_INIT, name="head_conv")
        self.head_bn = bn("head_bn")
        self.head_dense = (
            layers.Dense(space.head_hidden, use_bias=False, kernel_initializer=CONV_INIT, name="head_dense")
            if space.head_hidden
            else None
        )
        self.classifier = layers.Dense(space.classes, kernel_initializer=HEAD_INIT, name="predictions")

        # Lookup tables: active inner / SE widths per (width candidate, expansion candidate).
        self._inner_counts = []
        self._se_counts = []
        for s in range(space.num_stages):
            widths = space.stage_widths[s]
            inner = np.array([[int(e * w) for e in space.expansions] for w in widths], np.int32)
            self._inner_counts.append(inner)
            self._se_counts.append(np.vectorize(lambda n: round_width(n, SE_RATIO))(inner).astype(np.int32))

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.stem_conv.build(self.stem_pad.compute_output_shape(shape))
        s = self.stem_conv.compute_output_shape(self.stem_pad.compute_output_shape(shape))
        self.stem_temporal.build(s)
        self.stem_bn.build(s)
        for _, _, block in self.blocks:
            block.build(s)
            t, h, w = s[1], s[2], s[3]
            if block.stride > 1:
                h, w = (h - 1) // block.stride + 1, (w - 1) // block.stride + 1
            s = (s[0], t, h, w, block.width)
        self.head_conv.build(s)
        hs = (*s[:-1], self.space.head_width)
        self.head_bn.build(hs)
        features = self.space.head_width
        if self.head_dense is not None:
            self.head_dense.build((None, features))
            features = self.space.head_hidden
        self.classifier.build((None, features))

    def call(self, clips, choices, seed):
        """Logits of the architecture ``choices`` (int vector in the space's decision order).

        ``seed`` (a stateless (2,) int seed) draws the channel subsets of this call.
        """
        import tensorflow as tf

        space = self.space
        choices = ops.cast(choices, "int32")
        x = self.stem_bn(self.stem_temporal(self.stem_conv(self.stem_pad(clips))))
        x = ops.relu(x)
        out_mask = None
        stage_masks = []
        for s in range(space.num_stages):
            widths = np.asarray(space.stage_widths[s], np.int32)
            width = ops.take(widths, choices[s])
            stage_masks.append(
                random_subset_mask(tf.random.experimental.stateless_fold_in(seed, 1000 + s), int(widths.max()), width, GROUP)
            )
        for s, b, block in self.blocks:
            i = space.block_decision_index(s, b)
            choice = choices[i : i + 3]
            out_mask = stage_masks[s]
            w_index, e_index = choices[s], choice[1]
            inner_count = tf.gather_nd(self._inner_counts[s], ops.stack([w_index, e_index])[None])[0]
            se_count = tf.gather_nd(self._se_counts[s], ops.stack([w_index, e_index])[None])[0]
            inner_mask = random_subset_mask(tf.random.experimental.stateless_fold_in(seed, 2000 + i), block.inner, inner_count)
            se_mask = ops.cast(ops.arange(block.se_width) < se_count, "float32")
            x = block(x, choice, out_mask, inner_mask, se_mask)
        x = ops.relu(self.head_bn(self.head_conv(x)))
        x = ops.mean(x, axis=(1, 2, 3))
        if self.head_dense is not None:
            x = ops.relu(self.head_dense(x))
        return self.classifier(x)
