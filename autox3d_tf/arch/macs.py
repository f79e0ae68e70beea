"""Analytic multiply-adds of an `ArchSpec`, without building it.

Same convention as `autox3d_tf.flops` (fvcore's, on pytorchvideo's X3D in eval mode): a
convolution costs output elements x input channels per group x kernel volume, a dense layer
output x input features, an inference BatchNorm 2 x its elements; biases, activations,
pooling and element-wise ops cost nothing. The search uses these figures to know the cost
of a sampled architecture; a test checks them against the counter on built models.
"""

from __future__ import annotations


from autox3d_tf.arch.spec import POOL, SE_RATIO, ArchSpec, BlockSpec, round_width


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output length of a convolution with PyTorch-style symmetric padding ``kernel // 2``."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def stem_macs(frames: int, size: int, stem_width: int, temporal_kernel: int) -> tuple[int, int]:
    """(MACs, output spatial size) of the X3D stem on a ``frames x size x size x 3`` clip
    (``temporal_kernel=0``: E3D's stem, without the temporal convolution)."""
    out = conv_out(size, 3, 2)
    elems = frames * out * out * stem_width
    return elems * 3 * 9 + elems * temporal_kernel + 2 * elems, out


def block_macs(
    frames: int, size: int, in_width: int, width: int, stride: int, block: BlockSpec
) -> tuple[int, int]:
    """(MACs, output spatial size) of one residual block (zero for a skip)."""
    if block.is_skip:
        return 0, size
    inner = block.inner_width(width)
    macs = frames * size * size * in_width * inner + 2 * frames * size * size * inner  # conv_a, bn_a
    h = size
    for i, (kt, kh, kw) in enumerate(block.kernels):
        h = conv_out(h, kh, stride if i == 0 else 1)
        macs += frames * h * h * inner * kt * kh * kw
    out_elems = frames * h * h
    macs += 2 * out_elems * inner  # bn_b
    if block.attention == "se":
        macs += 2 * inner * round_width(inner, SE_RATIO)
    macs += out_elems * inner * width + 2 * out_elems * width  # conv_c, bn_c
    if block.shortcut == POOL:  # identity or a per-frame average pool (free), or no shortcut
        return macs, h
    if in_width != width or stride > 1:
        macs += out_elems * in_width * width
        if in_width != width:
            macs += 2 * out_elems * width
    return macs, h


def head_macs(frames: int, size: int, in_width: int, head_width: int, head_hidden: int, classes: int) -> int:
    elems = frames * size * size * head_width
    macs = elems * in_width + 2 * elems
    if head_hidden:
        macs += head_width * head_hidden + head_hidden * classes
    else:
        macs += head_width * classes
    return macs


def spec_macs(
    spec: ArchSpec, frames: int | None = None, size: int | None = None, classes: int = 400, include_top: bool = True
) -> int:
    """MACs of ``spec`` for one clip of ``frames x size x size`` (default: the spec's input)."""
    frames = frames or spec.input_frames
    size = size or spec.input_size
    macs, h = stem_macs(frames, size, spec.stem_width, spec.stem_temporal_kernel)
    in_width = spec.stem_width
    for stage in spec.stages:
        for b, block in enumerate(stage.blocks):
            if block.is_skip:
                continue
            m, h = block_macs(frames, h, in_width, stage.width, stage.stride if b == 0 else 1, block)
            macs += m
            in_width = stage.width
    top = head_macs(frames, h, in_width, spec.head_width, spec.head_hidden, classes)
    if not include_top:
        top = (frames * h * h * spec.head_width) * (in_width + 2)
    return int(macs + top)


def spec_gmacs(spec: ArchSpec, **kwargs) -> float:
    return spec_macs(spec, **kwargs) / 1e9


def stage_sizes(size: int, strides: list[int]) -> list[int]:
    """Spatial size after the stem and after each stage (3x3-class kernels, symmetric pads)."""
    sizes = [conv_out(size, 3, 2)]
    for s in strides:
        sizes.append(conv_out(sizes[-1], 3, s))
    return sizes


__all__ = ["block_macs", "conv_out", "head_macs", "spec_gmacs", "spec_macs", "stage_sizes", "stem_macs"]
