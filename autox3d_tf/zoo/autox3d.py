"""AutoX3D-XS, S, M and L factories: searched points of the autox3d-v1 space under X3D budgets.

Each spec is package data (``autox3d_tf/resources/autox3d/autox3d_<variant>.json``) found by the
project's training-free entropy search (STEntr score + evolution, `autox3d_tf.search.evolution`) under
the exact MACs of its X3D counterpart on the same clip; the command that reproduces it is in
``zoo/recipes/autox3d_<variant>.sh``. The specs have not been trained on any data: there are no
pretrained AutoX3D weights (``weights="kinetics400"`` raises an error that lists what exists).
"""

from __future__ import annotations

import functools
import importlib.resources

from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.arch.x3d import X3D_VARIANTS
from autox3d_tf.zoo.factory import make_factory
from autox3d_tf.zoo.registry import register_model, x3d_clip_config

AUTOX3D_VARIANTS = ("XS", "S", "M", "L")

_DOC = """Instantiates AutoX3D-{variant}: an autox3d-v1 architecture found by the training-free entropy
search (E3D-style STEntr score + evolution) under the MACs of X3D-{variant} at the same input
({gmacs:.3f} GMACs for {frames}x{crop}x{crop}).

Not the architecture of the Auto-X3D paper (Jiang et al., WACV 2022), whose searched models were not
published in a form we could read, and not trained: no pretrained weights exist, so
``weights="kinetics400"`` raises an error. Spec: ``autox3d_tf/resources/autox3d/autox3d_{lower}.json``;
recipe: ``zoo/recipes/autox3d_{lower}.sh``; model card: ``zoo/AutoX3D_{variant}.md``.

Default input (as X3D-{variant}): {frames} frames sampled every {rate}, {crop}x{crop} crop (test crop
{test_crop}), pixels in [0, 1] normalised with mean 0.45 and std 0.225 (see `preprocess_input`).

Args:
    weights: None (random init) or a path to a `.weights.h5` file; a dataset name goes through the
        weights registry (none is registered for AutoX3D models).
    include_top: whether to include the classification head.
    input_shape: (frames, height, width, 3); defaults to ({frames}, {crop}, {crop}, 3).
    input_tensor: optional Keras tensor to use as the model input.
    classes: number of classes.
    pooling: with include_top=False: None, "avg" or "max".
    classifier_activation: activation of the last layer; None returns logits.
    dropout_rate: dropout before the classifier.
    name: model name.

Returns:
    A `keras.Model`.
"""


@functools.lru_cache(maxsize=None)
def _spec_text(variant: str) -> str:
    resource = importlib.resources.files("autox3d_tf").joinpath("resources", "autox3d", f"autox3d_{variant.lower()}.json")
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError:  # pragma: no cover - broken installation
        raise RuntimeError(
            f"The AutoX3D-{variant} spec is missing from the package ({resource}); reinstall autox3d_tf, or "
            f"regenerate it with zoo/recipes/autox3d_{variant.lower()}.sh."
        ) from None


def autox3d_spec(variant: str) -> ArchSpec:
    """The frozen `ArchSpec` of AutoX3D-XS, S, M or L (package data)."""
    key = str(variant).upper()
    if key not in AUTOX3D_VARIANTS:
        raise ValueError(f"Unknown AutoX3D variant {variant!r}; valid variants are {list(AUTOX3D_VARIANTS)}.")
    return ArchSpec.from_json(_spec_text(key))


def _make_factory(variant: str):
    model_name = f"AutoX3D_{variant}"
    v = X3D_VARIANTS[variant]
    from autox3d_tf.arch.macs import spec_macs
    from autox3d_tf.arch.x3d import x3d_spec

    doc = _DOC.format(
        variant=variant,
        lower=variant.lower(),
        gmacs=spec_macs(x3d_spec(variant)) / 1e9,
        frames=v.frames,
        rate=v.sampling_rate,
        crop=v.train_crop,
        test_crop=v.test_crop,
    )
    factory = make_factory(model_name, functools.partial(autox3d_spec, variant), doc)
    register_model(
        x3d_clip_config(
            model_name,
            variant,
            family="autox3d",
            description=(
                f"AutoX3D-{variant}: autox3d-v1 architecture from the training-free entropy search under the "
                f"MACs of X3D-{variant}; untrained (no pretrained weights)"
            ),
            paper="https://openaccess.thecvf.com/content/WACV2022/html/Jiang_Auto-X3D_Ultra-Efficient_Video_Understanding_via_Finer-Grained_Neural_Architecture_Search_WACV_2022_paper.html",
            extra={
                "spec": f"resources/autox3d/autox3d_{variant.lower()}.json",
                "recipe": f"zoo/recipes/autox3d_{variant.lower()}.sh",
                "search": "entropy (STEntr, training-free)",
                "counterpart": f"X3D_{variant}",
            },
        ),
        functools.partial(autox3d_spec, variant),
        factory,
    )
    return factory


AutoX3D_XS = _make_factory("XS")
AutoX3D_S = _make_factory("S")
AutoX3D_M = _make_factory("M")
AutoX3D_L = _make_factory("L")
