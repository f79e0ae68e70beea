"""STEntr-Score: the training-free spatio-temporal entropy score of an `ArchSpec` (E3D, ICLR 2023).

The score of a network is an analytic upper bound of the entropy of its final feature map, computed
from the architecture alone: no weights, no data, no forward pass. This follows the formula of
alibaba/lightweight-neural-architecture-search (``tinynas``: ``get_alpha_w``,
``Conv3DKXBN.get_stentr_forward``, ``Res3DK1DWK1.get_stentr_forward``), see docs/ARCHITECTURE.md section 8:

- refinement of a kernel ``(Kt, k, k)`` on an output map ``T x R x R``:
  ``alpha = 1`` if ``k == 1``, else ``-ln(1 - cos(u, v))`` with ``u = [T, R, R] / |[T, R, R]|`` and
  ``v = [Kt, k, k] / |[Kt, k, k]|``;
- a plain convolution with ``C_in`` input channels per group: ``0.5 ln(C_in Kt k^2 alpha)``;
- an inner residual block (1x1x1 -> depthwise ``(Kt, k, k)`` -> 1x1x1) with input width ``C_in`` and
  bottleneck (inner) width ``B``: ``0.5 ln(C_in) + 0.5 ln(Kt k^2 alpha) + 0.5 ln(B)``;
- score = sum of the layer terms + ``ln(final channels)``.

How the layers of an autox3d-v1 spec map onto these terms (our choices where tinynas has no such layer):

- stem: its spatial conv ``1x3x3`` (3 -> stem width) is a plain conv with ``C_in = 3``; its depthwise
  temporal conv ``(Kt, 1, 1)`` a plain conv with ``C_in = 1`` (one input channel per group) and
  ``alpha = 1``. Both are the same for every spec of a space, so they shift all scores equally.
- every computing block is an inner residual block; ``T`` is the clip length (no temporal stride in
  the space) and ``R`` the block's output size (the stride-2 first block of a stage halves it, with
  the same symmetric padding as the model: ``R = (R_in - 1) // 2 + 1``).
- a block with several depthwise kernels (``2+1d``: ``1x3x3`` then ``3x1x1``) contributes
  ``0.5 ln(Kt k^2 alpha)`` for each kernel.
- the other pseudo-3D types (parallel ``p3d-b``, ``p3d-c`` with its residual, the dilated ``2+1d-d2``)
  have no such term: scoring a spec with one raises a ValueError naming the type.
- skip blocks contribute nothing; neither does squeeze-excitation (tinynas' ``SE3D`` has no STEntr
  term), so attention is score-neutral and only costs MACs.
- E3D specs (`autox3d_tf.arch.e3d`) map one to one onto tinynas' own layers: the stem is only its
  ``1x3x3`` conv (``stem_temporal_kernel`` 0: no temporal term), each block's bottleneck ``B`` is its
  ``inner`` width, and the 1x1x1 conv to 512 is the head conv below.
- the head's 1x1x1 conv (last stage width -> ``head_width``) is a plain conv (``0.5 ln(C_in)``), and
  the final channels are ``head_width``, the map that global pooling sees. Layers after pooling
  (the dense layers) are not part of the score, as in tinynas (``stentr_forward_pre_GAP``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from autox3d_tf.arch.naming import block_prefix
from autox3d_tf.arch.spec import BLOCK_KERNELS, ArchSpec, is_plain_series

__all__ = [
    "LayerTerm",
    "block_term",
    "conv_term",
    "entropy_score",
    "entropy_score_terms",
    "refinement",
]


def refinement(frames: int, size: int, kernel: Sequence[int]) -> float:
    """``alpha``: 1 for kernels with spatial size 1, else ``-ln(1 - cos([T, R, R], [Kt, k, k]))``."""
    kt, kh, kw = (int(k) for k in kernel)
    if kh != kw:
        raise ValueError(f"STEntr needs square spatial kernels, got {tuple(kernel)}.")
    if kh == 1:
        return 1.0
    u = (float(frames), float(size), float(size))
    v = (float(kt), float(kh), float(kw))
    cos = sum(a * b for a, b in zip(u, v)) / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))
    cos = min(cos, 1.0 - 1e-12)  # a kernel exactly parallel to the map: a finite, very large refinement
    return -math.log(1.0 - cos)


def _kernel_log(frames: int, size: int, kernel: Sequence[int]) -> float:
    kt, k, _ = kernel
    return math.log(kt * k * k * refinement(frames, size, kernel))


def conv_term(in_channels: int, frames: int, size: int, kernel: Sequence[int]) -> float:
    """``0.5 ln(C_in Kt k^2 alpha)`` of a plain convolution (``in_channels`` per group)."""
    return 0.5 * (math.log(in_channels) + _kernel_log(frames, size, kernel))


def block_term(in_channels: int, inner: int, frames: int, size: int, kernels: Sequence[Sequence[int]]) -> float:
    """``0.5 ln(C_in) + 0.5 sum ln(Kt k^2 alpha) + 0.5 ln(B)`` of an inner residual block."""
    return 0.5 * (math.log(in_channels) + sum(_kernel_log(frames, size, k) for k in kernels) + math.log(inner))


@dataclass(frozen=True)
class LayerTerm:
    """One term of the score: which layer, the output map it saw, its contribution."""

    name: str
    frames: int
    size: int
    value: float


def _down(size: int, stride: int) -> int:
    """Output size of a 3x3-class convolution with symmetric padding (the builder's)."""
    return (size + 2 - 3) // stride + 1


def entropy_score_terms(spec: ArchSpec, frames: int | None = None, size: int | None = None) -> list[LayerTerm]:
    """Every term of the STEntr score of ``spec`` on a ``frames x size x size`` clip (default: its own)."""
    frames = int(frames or spec.input_frames)
    size = int(size or spec.input_size)
    terms: list[LayerTerm] = []
    r = _down(size, 2)
    terms.append(LayerTerm("stem_spatial", frames, r, conv_term(3, frames, r, (1, 3, 3))))
    kt = spec.stem_temporal_kernel
    if kt:  # E3D's stem has no temporal convolution (stem_temporal_kernel 0)
        terms.append(LayerTerm("stem_temporal", frames, r, conv_term(1, frames, r, (kt, 1, 1))))
    in_width = spec.stem_width
    for s, stage in enumerate(spec.stages):
        for b, block in enumerate(stage.blocks):
            if block.is_skip:
                continue
            stride = stage.stride if b == 0 else 1
            r = _down(r, stride) if stride > 1 else r
            if not is_plain_series(block.type):
                op = block.pseudo3d
                raise ValueError(
                    f"{block_prefix(s + 1, b)}: block type {block.type!r} ({op.topology}, temporal dilation "
                    f"{op.temporal_dilation}) has no STEntr term (the score chains a block's kernels undilated); "
                    f"the scored types are {[t for t in BLOCK_KERNELS if is_plain_series(t)]}."
                )
            inner = block.inner_width(stage.width)
            value = block_term(in_width, inner, frames, r, block.kernels)
            terms.append(LayerTerm(block_prefix(s + 1, b), frames, r, value))
            in_width = stage.width
    terms.append(LayerTerm("head_conv", frames, r, conv_term(in_width, frames, r, (1, 1, 1))))
    terms.append(LayerTerm("final_channels", frames, r, math.log(spec.head_width)))
    return terms


def entropy_score(spec: ArchSpec, frames: int | None = None, size: int | None = None) -> float:
    """The STEntr score of ``spec`` (higher is better); see the module docstring for the formula."""
    return float(sum(t.value for t in entropy_score_terms(spec, frames, size)))

