"""The authors' E3D reference (alibaba/lightweight-neural-architecture-search, ``Cnn3DNet``) for tests.

The standalone copy lives in ``../shared/reference/e3d`` (see its README); it is imported from there,
never copied into the project. Without torch (or without the copy) the tests skip, unless
``AUTOX3D_REQUIRE_REFERENCE=1``, in which case they fail.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import sys

import numpy as np
import pytest

from tests.helpers.checkpoints import randomize_batchnorm
from tests.helpers.reference import require

REFERENCE_ROOT = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference"

# The reference README's fvcore figures (FlopCountAnalysis(...).total(), eval mode, 400 classes)
# and parameter counts (num_hidden 2048), at each model's own clip.
FVCORE_MACS = {"S": 1_923_662_976, "M": 4_788_582_912, "L": 18_848_295_808}
REFERENCE_PARAMS = {"S": 3_846_456, "M": 3_710_904, "L": 5_967_968}


def e3d_reference():
    """The reference package ``e3d`` (``build_e3d``, ``E3D_INPUTS``)."""
    require("torch")
    if not (REFERENCE_ROOT / "e3d" / "build.py").is_file():
        if os.environ.get("AUTOX3D_REQUIRE_REFERENCE") == "1":
            raise FileNotFoundError(f"the E3D reference is not at {REFERENCE_ROOT / 'e3d'}")
        pytest.skip(f"the E3D reference is not at {REFERENCE_ROOT / 'e3d'}")
    if str(REFERENCE_ROOT) not in sys.path:
        sys.path.insert(0, str(REFERENCE_ROOT))
    import e3d

    return e3d


def quiet():
    """The reference's ``Conv3DKXBNRELU.forward`` prints its input size: keep it off the output."""
    return contextlib.redirect_stdout(io.StringIO())


def reference_e3d(variant: str, seed: int = 0, num_classes: int = 400, random_bn: bool = True):
    """The reference E3D-``variant`` in eval mode (PyTorch default init from ``seed``, random BN)."""
    e3d = e3d_reference()
    with quiet():
        model, _ = e3d.build_e3d(f"E3D_{variant}", num_classes=num_classes, seed=seed)
    if random_bn:
        randomize_batchnorm(model, seed + 1)
    return model.eval()


def state_dict_arrays(model) -> dict[str, np.ndarray]:
    """The model's ``state_dict`` as NumPy arrays (what `load_torch_weights` takes)."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def reference_logits(model, clip_bcthw: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad(), quiet():
        return model(torch.from_numpy(clip_bcthw)).numpy()


def reference_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def fvcore_macs(model, clip_bcthw: np.ndarray) -> int:
    """fvcore's ``FlopCountAnalysis(...).total()`` of the reference on the clip."""
    import torch

    fvcore = require("fvcore.nn")
    with torch.no_grad(), quiet():
        analysis = fvcore.FlopCountAnalysis(model, torch.from_numpy(clip_bcthw))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())
