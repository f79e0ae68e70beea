"""E3D-S, M and L factories: the published networks of E3D (ICLR 2023), exact to the authors' code.

The structures are E3D's ``E3D_{S,M,L}.txt`` (`autox3d_tf.arch.e3d`); the networks match the
authors' PyTorch ``Cnn3DNet`` layer for layer (parameters, fvcore MACs and logits are tested against
it: ``tests/test_e3d_parity.py``), and the authors' ``state_dict`` converts strictly
(``autox3d_tf.weights`` "e3d" layout). No pretrained weights are registered (the authors published
Something-Something V1 results, not checkpoints we could read).
"""

from __future__ import annotations

import functools

from autox3d_tf.arch.e3d import DROPOUT, E3D_VARIANTS, e3d_spec
from autox3d_tf.arch.macs import spec_macs
from autox3d_tf.zoo.factory import make_factory
from autox3d_tf.zoo.registry import register_factory

__all__ = ["E3D_L", "E3D_M", "E3D_S"]

_DOC = """Instantiates E3D-{variant} (Wang et al., "Maximizing Spatio-Temporal Entropy of Deep 3D CNNs
for Efficient Video Recognition", ICLR 2023): the published structure found by the authors'
training-free STEntr search under the FLOPs budget of {counterpart}, exact to their PyTorch code
({gmacs:.3f} GMACs for {frames}x{size}x{size}, fvcore's count).

Network: a 1x3x3 stride-2 stem (BN, ReLU; no temporal convolution), five stages of 1x1x1 ->
depthwise (kt, k, k) -> 1x1x1 blocks (ReLU after the depthwise convolution, no squeeze-excitation;
identity shortcut when the width is kept, after a per-frame 2x2 average pool when strided, none
when the width changes), a 1x1x1 convolution to 512 with BN and ReLU, global average pooling, a
dense layer to 2048 with bias (the hidden width is unset upstream; 2048 as X3D), Swish, dropout
and the classifier. Model card: ``zoo/E3D_{variant}.md``.

Default input: {frames} frames ({counterpart}'s sampling rate {rate}), {size}x{size} crop (test crop
{test_crop}, {counterpart}'s), pixels in [0, 1] normalised with mean 0.45 and std 0.225 (see
`preprocess_input`), or raw pixels in [0, 255] with `include_preprocessing=True`.

Args:
    weights: None (random init) or a path (str or os.PathLike) to a `.weights.h5` file, a PyTorch
        checkpoint of the authors' `Cnn3DNet` (its `state_dict`) or a training run folder; no
        dataset weights are registered.
    include_top: whether to include the classification head.
    input_shape: (frames, height, width, 3); defaults to ({frames}, {size}, {size}, 3).
    input_tensor: optional Keras tensor to use as the model input.
    classes: number of classes. With weights of another class count (fine-tuning), every tensor
        but the classifier is loaded and the classifier is freshly initialised (one log line).
    pooling: with include_top=False: None (the 5D feature map), "avg" or "max" (the pooled
        features through the 2048-wide hidden layer and its Swish: the pre-logits).
    classifier_activation: activation of the last layer; None returns logits.
    dropout_rate: dropout before the classifier (E3D's 0.2 by default).
    name: model name.
    include_preprocessing: take RGB pixels in [0, 255] and normalise inside the model.
    causal: the causal form (output at frame t from frames up to t only), which trains with
        `fit` like any model and streams frame by frame (`autox3d_tf.models.streaming.stream_model`);
        non-causal weights load with a warning (README, "Causal models").

Returns:
    A `keras.Model`.
"""


def _make_factory(variant: str):
    model_name = f"E3D_{variant}"
    v = E3D_VARIANTS[variant]
    doc = _DOC.format(
        variant=variant,
        counterpart=v.counterpart.replace("_", "-"),
        gmacs=spec_macs(e3d_spec(variant)) / 1e9,
        frames=v.frames,
        size=v.size,
        rate=v.sampling_rate,
        test_crop=v.test_crop,
    )
    factory = make_factory(model_name, functools.partial(e3d_spec, variant), doc, default_dropout=DROPOUT)
    register_factory(model_name, factory)
    return factory


E3D_S = _make_factory("S")
E3D_M = _make_factory("M")
E3D_L = _make_factory("L")
