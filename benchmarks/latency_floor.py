"""A lower bound on TensorFlow's batch-1 latency for an X3D model: the same folded graph with every
depthwise 3D convolution cut to ONE depthwise 2D tap (no temporal taps, pad, slices or sums).

The cut graph computes the wrong function; it only shows what the rest of the network (pointwise
convolutions, squeeze-excitation, swish, the op dispatch of TensorFlow's executor) costs, i.e. how
far any formulation of the depthwise convolution could bring the batch-1 latency down.

    python benchmarks/latency_floor.py --model X3D_XS --runs 20
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from autox3d_tf.workflows import bench  # noqa: E402


def _one_tap(self, inputs):
    """Replacement `DepthwiseConv3D.call`: the first temporal tap's 2D convolution only."""
    from keras import ops

    from autox3d_tf.layers import depthwise_conv3d as dw

    out_shape = self.compute_output_shape(inputs.shape)
    _, sh, sw = self.strides
    frames = ops.reshape(inputs, (-1, *inputs.shape[2:]))
    y = dw._depthwise_conv2d(frames, self.kernel[0], (sh, sw), "same")
    if self.use_bias:
        y = dw._bias_add(y, self.bias)
    return ops.reshape(y, (-1, *out_shape[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="X3D_XS")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    bench.configure_threads(args.threads)

    from autox3d_tf.layers import DepthwiseConv3D
    from autox3d_tf.models import fuse_for_inference
    from autox3d_tf.zoo import get_model_config, get_model

    config = get_model_config(args.model)
    inputs = bench.make_inputs(1, (*config.input_shape[:3], 3))
    full = fuse_for_inference(get_model(config.name))
    exact = bench.time_keras(full, inputs, runs=args.runs)
    DepthwiseConv3D.call = _one_tap
    cut = fuse_for_inference(get_model(config.name))
    floor = bench.time_keras(cut, inputs, runs=args.runs)
    print(f"{config.name} batch 1, {args.threads} threads, median of {args.runs} runs (folded graph):")
    print(f"  exact:                          {exact.median_ms:7.1f} ms")
    print(f"  depthwise cut to one 2D tap:    {floor.median_ms:7.1f} ms  (lower bound, wrong outputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
