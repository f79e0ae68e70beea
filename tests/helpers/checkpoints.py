"""Helpers for the weights and parity tests: reference checkpoints written by pytorchvideo.

The reference is pytorchvideo's ``create_x3d`` (tests/helpers/reference.py). A PySlowFast checkpoint is
made independently of autox3d_tf's mapping code by renaming pytorchvideo's keys with the table
below, after giving the reference model the BatchNorm that PySlowFast has on stage 1's shortcut
(so the reference computes what a PySlowFast X3D computes).
"""

from __future__ import annotations

import re

import numpy as np

from tests.helpers.reference import X3D_REFERENCE_KWARGS, build_reference_x3d

# pytorchvideo module path -> PySlowFast module path (applied to key prefixes, in order).
_PSF_RULES = [
    (r"^blocks\.0\.conv\.conv_t\.", "s1.pathway0_stem.conv_xy."),
    (r"^blocks\.0\.conv\.conv_xy\.", "s1.pathway0_stem.conv."),
    (r"^blocks\.0\.norm\.", "s1.pathway0_stem.bn."),
    (r"^blocks\.5\.pool\.pre_conv\.", "head.conv_5."),
    (r"^blocks\.5\.pool\.pre_norm\.", "head.conv_5_bn."),
    (r"^blocks\.5\.pool\.post_conv\.", "head.lin_5."),
    (r"^blocks\.5\.proj\.", "head.projection."),
]
_PSF_BLOCK = [
    ("branch1_conv.", "branch1."),
    ("branch1_norm.", "branch1_bn."),
    ("branch2.conv_a.", "branch2.a."),
    ("branch2.norm_a.", "branch2.a_bn."),
    ("branch2.conv_b.", "branch2.b."),
    ("branch2.norm_b.0.", "branch2.b_bn."),
    ("branch2.norm_b.1.block.0.", "branch2.se.fc1."),
    ("branch2.norm_b.1.block.2.", "branch2.se.fc2."),
    ("branch2.conv_c.", "branch2.c."),
    ("branch2.norm_c.", "branch2.c_bn."),
]


def pyslowfast_key(key: str) -> str:
    """Renames one pytorchvideo X3D key to PySlowFast's name for the same tensor."""
    for pattern, repl in _PSF_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    m = re.match(r"^blocks\.(\d+)\.res_blocks\.(\d+)\.(.*)$", key)
    if not m:
        raise KeyError(key)
    rest = m.group(3)
    for old, new in _PSF_BLOCK:
        if rest.startswith(old):
            rest = new + rest[len(old) :]
            break
    else:
        raise KeyError(key)
    return f"s{int(m.group(1)) + 1}.pathway0_res{m.group(2)}.{rest}"


def randomize_batchnorm(model, seed: int) -> None:
    """Random affine parameters and running statistics for every BatchNorm3d."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)


def reference_model(variant: str, seed: int = 0, num_classes: int = 400):
    """pytorchvideo X3D (eval, logits) with random weights and random BN statistics."""
    import torch

    torch.manual_seed(seed)
    model = build_reference_x3d(variant, num_classes=num_classes)
    randomize_batchnorm(model, seed + 1)
    return model


def add_stage1_shortcut_bn(model, seed: int = 0) -> None:
    """Gives the reference stage 1's shortcut the BatchNorm PySlowFast has there (random stats)."""
    import torch

    block = model.blocks[1].res_blocks[0]
    channels = block.branch1_conv.out_channels
    block.branch1_norm = torch.nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        block.branch1_norm.weight.copy_(torch.rand(channels, generator=gen) + 0.5)
        block.branch1_norm.bias.copy_(torch.randn(channels, generator=gen) * 0.3)
        block.branch1_norm.running_mean.copy_(torch.randn(channels, generator=gen) * 0.3)
        block.branch1_norm.running_var.copy_(torch.rand(channels, generator=gen) + 0.5)
    block.eval()


def save_pytorchvideo_checkpoint(model, path) -> None:
    """As the pytorchvideo model zoo stores it: ``{"model_state": state_dict}``."""
    import torch

    torch.save({"model_state": model.state_dict()}, str(path))


def save_pyslowfast_checkpoint(model, path) -> None:
    """A PySlowFast-style checkpoint (renamed keys, plus epoch, optimizer state and cfg)."""
    import collections

    import torch

    state = collections.OrderedDict((pyslowfast_key(k), v) for k, v in model.state_dict().items())
    some = next(iter(state.values()))
    torch.save(
        {
            "epoch": 300,
            "model_state": state,
            "optimizer_state": {"state": {0: {"momentum_buffer": torch.zeros_like(some)}}, "param_groups": [{"lr": 0.1}]},
            "cfg": "MODEL:\n  ARCH: x3d\n",
        },
        str(path),
    )


def random_clip(variant: str, seed: int = 0, batch: int = 1, crop: int | None = None) -> np.ndarray:
    """A normalised-looking random clip, torch layout (B, C, T, H, W)."""
    frames, train_crop, _, _ = X3D_REFERENCE_KWARGS[variant]
    size = crop or train_crop
    return np.random.default_rng(seed).standard_normal((batch, 3, frames, size, size)).astype(np.float32)


def reference_logits(model, clip_bcthw: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(clip_bcthw)).numpy()


def keras_logits(model, clip_bcthw: np.ndarray) -> np.ndarray:
    return np.asarray(model(np.transpose(clip_bcthw, (0, 2, 3, 4, 1)), training=False))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| divided by max |a| (the logits' scale)."""
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-12))
